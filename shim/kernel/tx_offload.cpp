#include "kernel/tx_offload.h"

#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace zctls::kernel {

const char* to_string(TxOffload mode) noexcept {
  switch (mode) {
    case TxOffload::software:
      return "software";
    case TxOffload::device:
      return "device";
    case TxOffload::unknown:
      break;
  }
  return "unknown";
}

bool host_may_offload(const std::vector<NicOffload>& nics) noexcept {
  int answered = 0;
  for (const NicOffload& nic : nics) {
    if (nic.name.empty()) return true;  // the list could not be made
    if (nic.error == 0) {
      if (nic.available) return true;
      ++answered;
      continue;
    }
    // Gone since it was listed, or a kernel without the feature's name:
    // that interface cannot offload.  Anything else: it may.
    if (nic.error != ENODEV && nic.error != ENOENT && nic.error != EOPNOTSUPP) return true;
  }
  // Not one interface answered (not even lo): a /sys of another network
  // namespace, or none at all.  In doubt.
  return answered == 0;
}

TxOffload offload_of(const TlsSocket& socket) noexcept {
  switch (socket.tx) {
    case TlsConf::sw:
      return TxOffload::software;
    case TlsConf::hw:
    case TlsConf::hw_record:
      return TxOffload::device;
    default:
      return TxOffload::unknown;
  }
}

namespace {

// The 4-tuple of a connected TCP socket into an exact inet_diag id (what
// inet_diag_find_one_icsk looks up; v4-mapped IPv6 included).
bool diag_id(int fd, std::uint8_t* family, inet_diag_sockid* id) {
  sockaddr_storage local{}, peer{};
  socklen_t llen = sizeof local, plen = sizeof peer;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) != 0 ||
      getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) != 0 ||
      local.ss_family != peer.ss_family)
    return false;
  *id = inet_diag_sockid{};
  id->idiag_cookie[0] = id->idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  if (local.ss_family == AF_INET) {
    const auto* l = reinterpret_cast<const sockaddr_in*>(&local);
    const auto* p = reinterpret_cast<const sockaddr_in*>(&peer);
    id->idiag_sport = l->sin_port;
    id->idiag_dport = p->sin_port;
    std::memcpy(id->idiag_src, &l->sin_addr, sizeof l->sin_addr);
    std::memcpy(id->idiag_dst, &p->sin_addr, sizeof p->sin_addr);
  } else if (local.ss_family == AF_INET6) {
    const auto* l = reinterpret_cast<const sockaddr_in6*>(&local);
    const auto* p = reinterpret_cast<const sockaddr_in6*>(&peer);
    id->idiag_sport = l->sin6_port;
    id->idiag_dport = p->sin6_port;
    id->idiag_if = l->sin6_scope_id;  // link-local: the lookup needs the interface
    std::memcpy(id->idiag_src, &l->sin6_addr, sizeof l->sin6_addr);
    std::memcpy(id->idiag_dst, &p->sin6_addr, sizeof p->sin6_addr);
  } else {
    return false;
  }
  *family = static_cast<std::uint8_t>(local.ss_family);
  return true;
}

}  // namespace

int query_tls_socket(int fd, TlsSocket* out) {
  std::uint8_t family = 0;
  inet_diag_sockid id{};
  errno = 0;
  if (!diag_id(fd, &family, &id)) return errno != 0 ? errno : EAFNOSUPPORT;
  alignas(nlmsghdr) std::uint8_t buf[8192];
  std::vector<TlsSocket> found;
  int parsed = 0;
  // One reply: the socket, or an error (ENOENT: no such socket).
  int err = tcp_ulp_diag(family, &id, buf, [&](const std::uint8_t* data, std::size_t n) {
    parse_diag_datagram(data, n, found, &parsed);
    return false;
  });
  if (err == 0) err = parsed;
  if (err != 0) return err;
  // Found, but without the tls ULP's info: not a kTLS socket, or a caller
  // without CAP_NET_ADMIN, whom tcp_diag_get_aux gives no ULP info.
  if (found.empty()) return ENODATA;
  *out = std::move(found.front());
  return 0;
}

namespace {

// TlsCurrTxDevice of /proc/net/tls_stat (this network namespace's kTLS TX
// sockets with device offload, net/tls/tls_proc.c), or -1.  Fixed buffer.
long current_device_tx_sockets() {
  const int fd = open("/proc/net/tls_stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char text[4096];
  const ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return -1;
  text[n] = '\0';
  const char* at = std::strstr(text, "TlsCurrTxDevice");
  if (at == nullptr) return -1;
  at += std::strlen("TlsCurrTxDevice");
  char* end = nullptr;
  const long value = std::strtol(at, &end, 10);
  return end != at ? value : -1;
}

}  // namespace

TxOffload tx_offload(int fd, std::int64_t now_ns) noexcept {
  // -1: not asked yet; 0: no interface may offload; 1: some may.
  static std::atomic<int> host{-1};
  static std::atomic<std::int64_t> next_check{0};
  constexpr std::int64_t kRecheck = 1'000'000'000;
  try {
    std::int64_t next = next_check.load(std::memory_order_relaxed);
    int may = host.load(std::memory_order_acquire);
    // One thread re-reads the interfaces when due; the others use the last
    // answer (or, before there is one, read them too).
    if ((now_ns >= next &&
         next_check.compare_exchange_strong(next, now_ns + kRecheck, std::memory_order_relaxed)) ||
        may < 0) {
      may = host_may_offload(tls_offload_nics()) ? 1 : 0;
      host.store(may, std::memory_order_release);
    }
    if (may == 0) return TxOffload::software;
    // This socket has its TX key: were it offloaded, it would be one of
    // the namespace's current device TX sockets.  None: it is software.
    if (current_device_tx_sockets() == 0) return TxOffload::software;
    // Some are: ask about this one, unless the kernel has already shown it
    // tells this process nothing (no CAP_NET_ADMIN: no ULP info).
    static std::atomic<bool> diag_blind{false};
    if (diag_blind.load(std::memory_order_relaxed)) return TxOffload::unknown;
    // Unprivileged, 6.1 and 6.12 give no ULP info at all (ENODATA); 7.3
    // gives it all (measured on the bench).  A name without attributes
    // would say nothing either.
    TlsSocket socket;
    const int err = query_tls_socket(fd, &socket);
    if (err == ENODATA || (err == 0 && socket.tx == TlsConf::unknown))
      diag_blind.store(true, std::memory_order_relaxed);
    return err == 0 ? offload_of(socket) : TxOffload::unknown;
  } catch (...) {
    return TxOffload::unknown;
  }
}

}  // namespace zctls::kernel
