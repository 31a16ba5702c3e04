// Whether a kTLS TX socket's records are made by the kernel (software kTLS,
// net/tls/tls_sw.c) or by the NIC (device offload, net/tls/tls_device.c).
// Only the device path reads TLS_TX_ZEROCOPY_RO: on a software socket the
// flag has no effect and a file changing under a send cannot break a
// record, so zctls has nothing to do there ([kernel] offload = "auto").
//
// A socket's TX mode is fixed when its TX key is installed: tls_set_sw_offload
// runs only after tls_set_device_offload failed (tls_main.c,
// do_tls_setsockopt_conf), and device offload needs a netdev with
// NETIF_F_HW_TLS_TX, the ethtool feature "tls-hw-tx-offload".
#pragma once

#include <cstdint>
#include <vector>

#include "kernel/nic_offload.h"
#include "kernel/tls_diag.h"

namespace zctls::kernel {

enum class TxOffload { software, device, unknown };
const char* to_string(TxOffload mode) noexcept;

// Whether any interface could give a socket device offload: one that
// offers the feature (on or off: a socket keyed while it was on keeps the
// device after it is turned off) or whose ethtool query failed for a
// reason other than "no such feature here"; also when the list could not
// be made or no interface answered at all (a /sys of another network
// namespace).  In doubt: it may.
bool host_may_offload(const std::vector<NicOffload>& nics) noexcept;

// The socket's TX mode from sock_diag's TLS_INFO_TXCONF: sw is software,
// hw and hw_record are the device's; anything else (no reply, no ULP info,
// a kernel before 5.x's TXCONF) is unknown.
TxOffload offload_of(const TlsSocket& socket) noexcept;

// Asks the kernel about one connected TCP socket (getsockname,
// getpeername, then one NETLINK_SOCK_DIAG request for exactly that
// 4-tuple with INET_DIAG_INFO, whose reply carries INET_DIAG_ULP_INFO).
// Fills *out and returns 0, or returns an errno value: ENOENT, the kernel
// found no such socket; ENODATA, it found it without the tls ULP's info
// (not kTLS), or to a caller without CAP_NET_ADMIN on 6.1 and 6.12
// (measured on the bench; 7.3 gives it the ULP info in full).  Six
// syscalls; allocates.
int query_tls_socket(int fd, TlsSocket* out);

// What the shim asks once per kTLS TX socket under offload = "auto", in
// this order, stopping at the first answer:
//  1. software when no interface may offload (tls_offload_nics, re-read at
//     most once a second per process, so an interface turned on later is
//     seen): no syscall in between;
//  2. software when /proc/net/tls_stat counts no current device TX socket
//     (TlsCurrTxDevice 0: this socket, keyed, would be one): 3 syscalls;
//  3. the socket's own TXCONF (query_tls_socket), unless an earlier query
//     in this process came back without it (unprivileged): unknown.
// `now_ns` is a monotonic clock.  Never throws (unknown on any failure).
TxOffload tx_offload(int fd, std::int64_t now_ns) noexcept;

}  // namespace zctls::kernel
