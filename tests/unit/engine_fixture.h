// The engine's test double and fixture, shared by the engine's unit tests:
// a kernel of scripted replies that counts every call the engine makes
// (FakeKernel), and an engine over it with a two-rule config (EngineTest).
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "engine.h"

namespace engine_test {

using zctls::Config;
using zctls::Counter;
using zctls::Engine;
using zctls::SocketKind;
namespace k = zctls::kernel;

struct FakeFile {
  std::string path;
  mode_t mode = S_IFREG | 0644;
  ino_t ino = 0;
  long ctime_nsec = 0;
  off_t size = 0;
  nlink_t nlink = 1;
};

class FakeKernel final : public zctls::KernelPort {
 public:
  std::map<int, FakeFile> files;
  std::map<int, k::TxKind> sockets;
  std::map<int, bool> flags;
  int set_error = 0;
  std::int64_t realtime = 1'000'000'000'000'000'000;  // "now" for file times
  std::int64_t monotonic = 5'000'000'000;

  int stats = 0, paths = 0, queries = 0, gets = 0;
  std::vector<std::pair<int, bool>> sets;

  int calls() const {
    return stats + paths + queries + gets + seeks + static_cast<int>(sets.size());
  }

  int stat_fd(int fd, struct stat* st) noexcept override {
    ++stats;
    auto it = files.find(fd);
    if (it == files.end()) return EBADF;
    std::memset(st, 0, sizeof *st);
    st->st_mode = it->second.mode;
    st->st_ino = it->second.ino;
    st->st_dev = 1;
    st->st_ctim.tv_nsec = it->second.ctime_nsec;
    st->st_size = it->second.size;
    st->st_nlink = it->second.nlink;
    return 0;
  }
  ssize_t fd_path(int fd, char* buf, std::size_t size) noexcept override {
    ++paths;
    const std::string& p = files.at(fd).path;
    if (p.size() >= size) return -1;
    std::memcpy(buf, p.data(), p.size());
    return static_cast<ssize_t>(p.size());
  }
  // The key version query_tx reads back for a kTLS TX socket keyed out of
  // sight (TLS 1.2 unless a test says otherwise).
  std::map<int, k::KeyVersion> versions;
  k::TxKind query_tx(int fd, k::KeyVersion* version) noexcept override {
    ++queries;
    auto it = sockets.find(fd);
    const k::TxKind kind = it == sockets.end() ? k::TxKind::not_ktls : it->second;
    if (version != nullptr && kind == k::TxKind::ktls_tx)
      *version = versions.count(fd) != 0 ? versions[fd] : k::KeyVersion::tls12;
    return kind;
  }
  // Device offload unless the test says otherwise; asked once per kTLS TX
  // socket under offload = "auto" (counted apart from calls(): the
  // classification's cost, not a send's).
  std::map<int, k::TxOffload> offload;
  int offload_queries = 0;
  k::TxOffload tx_offload(int fd) noexcept override {
    ++offload_queries;
    auto it = offload.find(fd);
    return it == offload.end() ? k::TxOffload::device : it->second;
  }
  k::FlagState get_zerocopy(int fd) noexcept override {
    ++gets;
    return {0, flags[fd]};
  }
  std::int64_t realtime_ns() noexcept override { return realtime; }
  std::int64_t monotonic_ns() noexcept override { return monotonic; }
  void peer_name(int, char* buf, std::size_t size) noexcept override {
    std::snprintf(buf, size, "127.0.0.1:4433");
  }
  off_t position = 0;
  off_t file_position(int) noexcept override {
    ++seeks;
    return position;
  }
  int seeks = 0;
  k::KernelIdentity identity = debian_6_12();
  k::KernelIdentity kernel_identity() noexcept override { return identity; }
  bool unreadable_offsets = false;
  bool read_offset(const off_t* where, off_t* value) noexcept override {
    if (where == nullptr || unreadable_offsets) return false;
    *value = *where;
    return true;
  }
  static k::KernelIdentity debian_6_12() {
    k::KernelIdentity id;
    std::snprintf(id.release, sizeof id.release, "6.12.117+deb12-amd64");
    std::snprintf(id.version, sizeof id.version,
                  "#1 SMP PREEMPT_DYNAMIC Debian 6.12.117-1~deb12u1");
    return id;
  }
  void shutdown_socket(int fd) noexcept override { shutdown_calls.push_back(fd); }
  std::vector<int> shutdown_calls;
  k::TcpProgress progress{0, 0};
  int progress_calls = 0;
  bool tcp_progress(int, k::TcpProgress* out) noexcept override {
    ++progress_calls;
    *out = progress;
    return true;
  }
  void backtrace(char* buf, std::size_t size) noexcept override {
    std::snprintf(buf, size, "send_it <- main");
  }
  // Other names by fd; an fd absent here has none.  `mount_table_reads`
  // counts refresh_mounts calls; `unknown_mount_once` makes the next
  // lookup miss the table.
  std::map<int, std::vector<std::string>> names;
  zctls::NameLookup names_result = zctls::NameLookup::known;
  bool unknown_mount_once = false;
  int name_lookups = 0, mount_table_reads = 0;
  zctls::NameLookup other_names(int fd, std::string_view,
                                std::vector<std::string>* out) noexcept override {
    ++name_lookups;
    if (unknown_mount_once) {
      unknown_mount_once = false;
      return zctls::NameLookup::unknown_mount;
    }
    if (auto it = names.find(fd); it != names.end()) *out = it->second;
    return names_result;
  }
  std::vector<int> written_back;
  void write_back(int fd) noexcept override { written_back.push_back(fd); }
  // A read forced by an unknown mount finds the table changed; the
  // periodic ones find it as it was.
  // `mount_change_once`: the next periodic read finds the table changed.
  bool mount_change_once = false;
  bool refresh_mounts(bool now) noexcept override {
    ++mount_table_reads;
    if (!now && mount_change_once) {
      mount_change_once = false;
      return true;
    }
    return now;
  }

  int set_zerocopy(int fd, bool on) noexcept override {
    sets.emplace_back(fd, on);
    if (set_error != 0) return set_error;
    flags[fd] = on;
    return 0;
  }
};

inline const Config* g_config = nullptr;
inline const Config* load_test_config() { return g_config; }

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto parsed = zctls::parse_config(R"(
[[rule]]
path = "/www/uploads/**"
zerocopy = false
[[rule]]
path = "/www/**"
zerocopy = true
)",
                                      "test.toml");
    ASSERT_TRUE(parsed.config);
    config_ = std::move(*parsed.config);
    g_config = &config_;
    kernel_.files[10] = {"/www/app.js", S_IFREG | 0644, 100, 0};
    kernel_.files[11] = {"/www/uploads/u.png", S_IFREG | 0644, 101, 0};
    kernel_.files[12] = {"/etc/motd", S_IFREG | 0644, 102, 0};
    kernel_.files[13] = {"pipe:[1234]", S_IFIFO | 0600, 103, 0};
    kernel_.files[14] = {"/www/gone.js (deleted)", S_IFREG | 0644, 104, 0};
  }
  // A whole send as the hooks make it: decided, then counted after the call
  // (which moved `result` bytes).
  zctls::SendTicket sent(int out, int in, const off_t* offset = nullptr, ssize_t result = 1) {
    const zctls::SendTicket t = engine_.before_send(out, in, offset);
    engine_.after_send(t, result, offset);
    return t;
  }
  // The application installs a TX key on `fd` through the hook (with a
  // version: its crypto_info header, as the kernel takes it).
  void app_tls_tx(int fd) {
    kernel_.sockets[fd] = k::TxKind::ktls_tx;
    engine_.after_app_setsockopt(fd, k::kSolTls, k::kTlsTx, nullptr, 0);
  }
  void app_tls_tx(int fd, k::TlsVersion version) {
    kernel_.sockets[fd] = k::TxKind::ktls_tx;
    const std::uint16_t header[2] = {
        static_cast<std::uint16_t>(version == k::TlsVersion::tls13 ? 0x0304 : 0x0303), 51};
    engine_.after_app_setsockopt(fd, k::kSolTls, k::kTlsTx, header, sizeof header);
  }
  // The application sets TLS_TX_ZEROCOPY_RO on `fd` itself, through the
  // hook (as OpenSSL's KTLSTxZerocopySendfile does).
  void app_sets_flag(int fd, bool on) {
    const unsigned int value = on ? 1U : 0U;
    engine_.after_app_setsockopt(fd, k::kSolTls, k::kTlsTxZerocopyRo, &value, sizeof value);
  }

  Config config_;
  FakeKernel kernel_;
  Engine engine_{kernel_, load_test_config};
};

}  // namespace engine_test
