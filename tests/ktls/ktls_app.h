// What the kTLS test applications (sender.cpp, lifecycle.cpp,
// fault_table.cpp) share: a kTLS loopback connection set up with the
// application's own setsockopt calls, a receiver thread, and a raw read of
// TLS_TX_ZEROCOPY_RO that does not go through the shim's bookkeeping.
#pragma once

#include <fcntl.h>
#include <linux/sockios.h>
#include <linux/tls.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grp.h>

#include <memory>

#include "../offload-nic/offload_nic.h"
#include "kernel/ktls.h"
#include "kernel/loopback.h"

namespace zctls_ktls_app {

namespace k = zctls::kernel;

inline std::mutex g_print;

inline void say(const std::string& line) {
  const std::lock_guard<std::mutex> lock(g_print);
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

inline std::string base(const std::string& path) { return path.substr(path.rfind('/') + 1); }

inline int raw_flag(int fd) {
  unsigned int v = 99;
  socklen_t len = sizeof v;
  if (getsockopt(fd, SOL_TLS, TLS_TX_ZEROCOPY_RO, &v, &len) != 0) return -errno;
  return static_cast<int>(v);
}

inline k::KeyMaterial key() {
  k::KeyMaterial km;
  for (unsigned i = 0; i < sizeof km.key; ++i) km.key[i] = static_cast<std::uint8_t>(7 * i);
  return km;
}

// Reads `expected` from fd on a thread; compare() says whether it matched.
class Receiver {
 public:
  // held = true: do not read until go(), so that the sender blocks.
  Receiver(int fd, std::string expected, bool held = false)
      : fd_(fd), expected_(std::move(expected)), held_(held) {
    timeval tv{30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    thread_ = std::thread([this, fd] {
      {
        std::unique_lock<std::mutex> lock(gate_);
        released_.wait(lock, [this] { return !held_; });
      }
      std::vector<char> buf(1 << 16);
      while (got_.size() < expected_.size()) {
        const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
        if (n <= 0) break;
        got_.append(buf.data(), static_cast<std::size_t>(n));
      }
    });
  }
  ~Receiver() {
    go();
    if (thread_.joinable()) thread_.join();
  }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  void go() {
    {
      const std::lock_guard<std::mutex> lock(gate_);
      held_ = false;
    }
    released_.notify_all();
  }
  bool compare() {
    go();
    if (thread_.joinable()) thread_.join();
    return got_ == expected_;
  }
  std::size_t received() const { return got_.size(); }  // after compare()
  int fd() const { return fd_; }

 private:
  int fd_;
  std::string expected_;
  std::string got_;
  bool held_;
  std::mutex gate_;
  std::condition_variable released_;
  std::thread thread_;
};

// Reads and discards everything fd receives until EOF or an error, on a
// thread, for a peer whose bytes no test compares; finish() waits for that
// and says how much arrived and how it ended.
class Drain {
 public:
  explicit Drain(int fd) {
    timeval tv{30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    thread_ = std::thread([this, fd] {
      std::vector<char> buf(1 << 16);
      ssize_t n = 0;
      while ((n = recv(fd, buf.data(), buf.size(), 0)) > 0) total_ += static_cast<std::size_t>(n);
      end_ = n == 0 ? "EOF" : strerrorname_np(errno);
    });
  }
  ~Drain() {
    if (thread_.joinable()) thread_.join();
  }
  Drain(const Drain&) = delete;
  Drain& operator=(const Drain&) = delete;

  std::string finish() {
    if (thread_.joinable()) thread_.join();
    return "recv=" + std::to_string(total_) + " rx=" + end_;
  }

 private:
  std::size_t total_ = 0;
  std::string end_ = "?";
  std::thread thread_;
};

// The connection a test application sends on: over loopback, or, with
// ZCTLS_TEST_NIC=1 in a program started in the emulated offload NIC's
// server namespace (tests/offload-nic/nic srv), across the NIC: client()
// sends through a device with TLS TX offload.
class TestPair {
 public:
  TestPair() {
    const char* nic = std::getenv("ZCTLS_TEST_NIC");
    if (nic != nullptr && nic[0] == '1')
      nic_ = std::make_unique<zctls_nic::NicPair>();
    else
      loopback_ = std::make_unique<k::LoopbackPair>();
  }
  int error() const { return nic_ ? nic_->error() : loopback_->error(); }
  int client() const { return nic_ ? nic_->client() : loopback_->client(); }
  int server() const { return nic_ ? nic_->server() : loopback_->server(); }

 private:
  std::unique_ptr<zctls_nic::NicPair> nic_;
  std::unique_ptr<k::LoopbackPair> loopback_;
};

// The TLS version of the keys make_ktls installs: 1.3, or 1.2 with
// ZCTLS_TEST_TLS=1.2 (device offload takes TLS 1.2 keys only).
inline k::TlsVersion test_tls_version() {
  const char* v = std::getenv("ZCTLS_TEST_TLS");
  return v != nullptr && std::string(v) == "1.2" ? k::TlsVersion::tls12 : k::TlsVersion::tls13;
}

// ZCTLS_TEST_DROP_TO=UID: once its first connection is keyed, the program
// goes on as that user (and group), as nginx's workers run unprivileged.
inline bool drop_privileges() {
  const char* to = std::getenv("ZCTLS_TEST_DROP_TO");
  if (to == nullptr || *to == '\0' || getuid() != 0) return true;
  const auto id = static_cast<uid_t>(std::stoul(to));
  return setgroups(0, nullptr) == 0 && setgid(id) == 0 && setuid(id) == 0;
}

// A connection with TLS_TX on the client and TLS_RX on the server, set up
// with the application's own setsockopt calls (which the shim sees).
template <typename Pair>
bool make_ktls(const Pair& pair) {
  const k::TlsVersion version = test_tls_version();
  const int errs[] = {
      pair.error(),
      k::attach_tls_ulp(pair.client()),
      k::install_key(pair.client(), k::Direction::tx, version, k::Cipher::aes_gcm_128, key()),
      k::attach_tls_ulp(pair.server()),
      k::install_key(pair.server(), k::Direction::rx, version, k::Cipher::aes_gcm_128, key()),
  };
  for (const int e : errs) {
    if (e != 0) {
      say(std::string("kTLS setup failed: ") + strerrorname_np(e));
      return false;
    }
  }
  // ZCTLS_TEST_APP_FLAG=0|1: the application sets the flag itself right
  // after the TX key, as OpenSSL >= 3.2 does with KTLSTxZerocopySendfile
  // (ssl/record/methods/ktls_meth.c), through libc's setsockopt.
  if (const char* v = std::getenv("ZCTLS_TEST_APP_FLAG"); v != nullptr && *v != '\0') {
    const unsigned int on = v[0] == '1' ? 1U : 0U;
    if (setsockopt(pair.client(), SOL_TLS, TLS_TX_ZEROCOPY_RO, &on, sizeof on) != 0) {
      say(std::string("setting the flag failed: ") + strerrorname_np(errno));
      return false;
    }
  }
  if (!drop_privileges()) {
    say(std::string("dropping privileges failed: ") + strerrorname_np(errno));
    return false;
  }
  return true;
}

// Waits until a blocked sender has stopped filling the socket: the send
// queue (SIOCOUTQ) holds more than any TLS handshake flight and has not
// moved for 50 ms.  "Non-empty" was not enough: on a loaded guest the
// handshake's last bytes can sit unacknowledged for that long before the
// sending thread has even called sendfile, and a change made then comes
// before the send, not during it.  A blocked send of a few MB queues
// 2.5 MB (measured on the bench: a loopback send buffer is 2.6 MB).
inline void wait_until_blocked(int sock) {
  constexpr int kMoreThanAHandshake = 256 * 1024;
  int last = -1, stable = 0;
  for (int i = 0; i < 1000 && stable < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    int queued = 0;
    ioctl(sock, SIOCOUTQ, &queued);
    stable = queued > kMoreThanAHandshake && queued == last ? stable + 1 : 0;
    last = queued;
  }
}

inline bool g_sendfile64 = false;  // nginx calls sendfile64; libssl calls sendfile

// Sends the whole file with sendfile (or sendfile64), looping on short
// counts; says why if a call fails.
inline bool send_file(int sock, const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  fstat(fd, &st);
  off_t off = 0;
  bool ok = true;
  while (off < st.st_size) {
    const std::size_t rest = static_cast<std::size_t>(st.st_size - off);
    const ssize_t n =
        g_sendfile64 ? sendfile64(sock, fd, &off, rest) : sendfile(sock, fd, &off, rest);
    if (n <= 0) {
      say("sendfile " + base(path) + " failed: " + strerrorname_np(errno));
      ok = false;
      break;
    }
  }
  close(fd);
  return ok;
}

}  // namespace zctls_ktls_app
