// kTLS sockets as sock_diag (NETLINK_SOCK_DIAG) reports them: the kernel
// gives a TCP socket's ULP in INET_DIAG_ULP_INFO, and for "tls" its
// version, cipher, TX/RX mode (sw, hw, hw_record) and, since 5.19, whether
// TLS_TX_ZEROCOPY_RO is set (net/tls/tls_main.c, tls_get_info).
#pragma once

#include <linux/inet_diag.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace zctls::kernel {

enum class TlsConf { unknown, base, sw, hw, hw_record };
const char* to_string(TlsConf conf) noexcept;

// What the flag does on a socket: effective only with device offload in
// TLS_HW mode (tls_device_sendpage is its only reader).  Software kTLS
// copies anyway; hw_record (a TOE doing whole records) ignores it.
enum class ZerocopyState { effective, no_effect, off };
inline ZerocopyState zerocopy_state(bool flag, TlsConf tx) noexcept {
  if (!flag) return ZerocopyState::off;
  return tx == TlsConf::hw ? ZerocopyState::effective : ZerocopyState::no_effect;
}

struct TlsSocket {
  std::string local, peer;  // "address:port", IPv6 in brackets
  std::uint64_t inode = 0;
  std::uint32_t uid = 0;
  std::uint16_t version = 0;  // 0x0303 TLS 1.2, 0x0304 TLS 1.3
  std::uint16_t cipher = 0;   // TLS_CIPHER_* of linux/tls.h
  TlsConf tx = TlsConf::unknown, rx = TlsConf::unknown;
  bool zerocopy = false;  // TLS_INFO_ZC_RO_TX present: the flag is set (5.19+, hw only)
};

// Parses one sock_diag reply datagram; appends the kTLS sockets (others
// are skipped).  Returns false at NLMSG_DONE or NLMSG_ERROR (*error set to
// its errno value, 0 for DONE).  Pure: unit-tested with recorded replies.
bool parse_diag_datagram(const std::uint8_t* data, std::size_t size, std::vector<TlsSocket>& out,
                         int* error);

// One sock_diag request for TCP sockets of `family` (AF_INET, AF_INET6)
// with their ULP info: every one (id == nullptr: a dump) or the one whose
// 4-tuple is *id.  Sends it on a new NETLINK_SOCK_DIAG socket, then hands
// each reply datagram, received into `buffer`, to on_datagram until it
// returns false.  Returns an errno value (0 = ok; a failed send or recv).
// The library asks about one socket (kernel/tx_offload.cpp), zctls status
// about all of them (cli/tls_sockets.cpp).
using DiagDatagram = std::function<bool(const std::uint8_t* data, std::size_t size)>;
int tcp_ulp_diag(int family, const inet_diag_sockid* id, std::span<std::uint8_t> buffer,
                 const DiagDatagram& on_datagram);

}  // namespace zctls::kernel
