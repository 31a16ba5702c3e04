// What the kernel-level kTLS tests share (kernel_ktls_test.cpp on
// loopback, offload-nic/device_offload_test.cpp over the emulated NIC):
// reproducible file contents, unlinked files in the guest's tmpfs, a reader
// thread, /proc/net/tls_stat.
#pragma once

#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace zctls_kernel_test {

inline std::string err_name(int err) {
  const char* n = strerrorname_np(err);
  return n != nullptr ? n : std::to_string(err);
}

// xorshift bytes: reproducible, not compressible; another seed, other bytes.
inline std::vector<unsigned char> pattern(std::size_t size, std::uint32_t seed = 2463534242U) {
  std::vector<unsigned char> data(size);
  std::uint32_t x = seed;
  for (auto& b : data) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<unsigned char>(x);
  }
  return data;
}

// An unlinked temp file with the given contents (the guest's /tmp is
// tmpfs: page cache, which an offload NIC reads again at a retransmission).
inline int temp_file_with(const std::vector<unsigned char>& data) {
  char path[] = "/tmp/zctls-ktls-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return -1;
  unlink(path);
  if (pwrite(fd, data.data(), data.size(), 0) != static_cast<ssize_t>(data.size())) {
    close(fd);
    return -1;
  }
  return fd;
}

// Reads exactly `size` bytes (or until EOF/error) on a thread, so that the
// sender never blocks on a full socket buffer.
class Reader {
 public:
  Reader(int fd, std::size_t size) : buf_(size) {
    timeval tv{60, 0};  // a broken kernel must fail the test, not hang it
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    thread_ = std::thread([this, fd] {
      while (got_ < buf_.size()) {
        const ssize_t n = recv(fd, buf_.data() + got_, buf_.size() - got_, 0);
        if (n <= 0) {
          error_ = n < 0 ? errno : 0;
          return;
        }
        got_ += static_cast<std::size_t>(n);
      }
    });
  }
  ~Reader() {
    if (thread_.joinable()) thread_.join();
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  const std::vector<unsigned char>& finish() {
    if (thread_.joinable()) thread_.join();
    buf_.resize(got_);
    return buf_;
  }
  int error() const { return error_; }

 private:
  std::vector<unsigned char> buf_;
  std::size_t got_ = 0;
  int error_ = 0;
  std::thread thread_;
};

// sendfile until `size` bytes have gone: the bytes sent, or what the
// failing call returned (errno set).
inline ssize_t sendfile_all(int sock, int file, std::size_t size) {
  off_t off = 0;
  while (static_cast<std::size_t>(off) < size) {
    const ssize_t n = sendfile(sock, file, &off, size - static_cast<std::size_t>(off));
    if (n <= 0) return n;
  }
  return off;
}

// A counter of /proc/net/tls_stat as the calling thread's network
// namespace has it, or -1.
inline long tls_stat(const char* name) {
  std::ifstream in("/proc/thread-self/net/tls_stat");
  std::string key;
  long value = -1;
  while (in >> key >> value)
    if (key == name) return value;
  return -1;
}

}  // namespace zctls_kernel_test
