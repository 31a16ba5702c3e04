// The emulated TLS-offload NIC (zctlsnic.c) as the test programs see it:
// its two namespaces and addresses (made by `tests/offload-nic/nic up`,
// which names the same ones), a connection across it, its ethtool
// counters and its loss control.  Header-only, for the kTLS test programs.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

namespace zctls_nic {

// As in tests/offload-nic/nic.
inline constexpr const char* kServerNetns = "/run/netns/zctls-srv";
inline constexpr const char* kClientNetns = "/run/netns/zctls-cli";
inline constexpr const char* kServerDevice = "zcn0";
inline constexpr const char* kServerAddress = "10.77.0.1";
inline constexpr const char* kClientAddress = "10.77.0.2";

// Runs `make` with the calling thread in the network namespace at `path`
// (a socket keeps the namespace it was made in), then returns to the
// thread's own.  False (errno set) if either switch fails.
template <typename Make>
bool in_netns(const char* path, Make&& make) {
  const int here = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  const int there = open(path, O_RDONLY | O_CLOEXEC);
  bool ok = here >= 0 && there >= 0 && setns(there, CLONE_NEWNET) == 0;
  if (ok) {
    make();
    const int saved = errno;
    ok = setns(here, CLONE_NEWNET) == 0;
    if (ok) errno = saved;
  }
  const int saved = errno;
  if (here >= 0) close(here);
  if (there >= 0) close(there);
  errno = saved;
  return ok;
}

// A TCP connection that leaves through the NIC: the client end is made in
// the caller's namespace (start the program in the server namespace:
// `tests/offload-nic/nic srv PROGRAM`), the listener and so the accepted end
// in the client namespace, so the caller's socket is the one whose TX key
// the NIC offloads.  Closing is the owner's job (RAII), as LoopbackPair.
class NicPair {
 public:
  NicPair() noexcept {
    int listener = -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    socklen_t len = sizeof addr;
    const bool made = in_netns(kClientNetns, [&] {
      listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      inet_pton(AF_INET, kClientAddress, &addr.sin_addr);
      if (listener >= 0 && (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
                            listen(listener, 1) != 0 ||
                            getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0)) {
        close(listener);
        listener = -1;
      }
    });
    if (!made || listener < 0 || (client_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(client_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        (server_ = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC)) < 0)
      error_ = errno != 0 ? errno : EIO;
    if (listener >= 0) close(listener);
  }
  ~NicPair() {
    if (client_ >= 0) close(client_);
    if (server_ >= 0) close(server_);
  }
  NicPair(const NicPair&) = delete;
  NicPair& operator=(const NicPair&) = delete;

  int error() const noexcept { return error_; }
  int client() const noexcept { return client_; }  // sends: over the NIC
  int server() const noexcept { return server_; }  // receives, in the other namespace

 private:
  int client_ = -1;
  int server_ = -1;
  int error_ = 0;
};

// One of the server end's ethtool -S counters (SIOCETHTOOL, which needs no
// privilege), asked from the caller's namespace: -1 if there is no such
// device or counter.
inline long long counter(const std::string& name) {
  const int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return -1;
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", kServerDevice);
  const auto ask = [&](void* data) {
    ifr.ifr_data = static_cast<char*>(data);
    return ioctl(sock, SIOCETHTOOL, &ifr) == 0;
  };
  long long value = -1;
  alignas(ethtool_sset_info) std::uint8_t sset_buf[sizeof(ethtool_sset_info) + 4]{};
  auto* sset = reinterpret_cast<ethtool_sset_info*>(sset_buf);
  sset->cmd = ETHTOOL_GSSET_INFO;
  sset->sset_mask = 1ULL << ETH_SS_STATS;
  if (ask(sset) && sset->sset_mask != 0) {
    const std::uint32_t n = sset->data[0];
    auto names = std::make_unique<std::uint8_t[]>(sizeof(ethtool_gstrings) + n * ETH_GSTRING_LEN);
    auto* strings = reinterpret_cast<ethtool_gstrings*>(names.get());
    strings->cmd = ETHTOOL_GSTRINGS;
    strings->string_set = ETH_SS_STATS;
    strings->len = n;
    auto values = std::make_unique<std::uint8_t[]>(sizeof(ethtool_stats) + n * sizeof(std::uint64_t));
    auto* stats = reinterpret_cast<ethtool_stats*>(values.get());
    stats->cmd = ETHTOOL_GSTATS;
    stats->n_stats = n;
    if (ask(strings) && ask(stats))
      for (std::uint32_t i = 0; i < n; ++i)
        if (name == reinterpret_cast<const char*>(strings->data) + i * ETH_GSTRING_LEN)
          value = static_cast<long long>(stats->data[i]);
  }
  close(sock);
  return value;
}

// The loss control (zctlsnic.c): n > 0 loses the nth offloaded data frame
// from now on and holds its retransmissions; 0 releases them.  Needs root
// and the server namespace's /sys (ip netns exec mounts it).
inline bool set_loss(int n) {
  const std::string path = std::string("/sys/class/net/") + kServerDevice + "/zctlsnic/loss";
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  const bool ok = std::fprintf(f, "%d\n", n) > 0;
  return std::fclose(f) == 0 && ok;
}

}  // namespace zctls_nic
