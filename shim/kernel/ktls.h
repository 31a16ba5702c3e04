// The one place that knows the kernel's TLS socket interface: SOL_TLS and
// its options, the TCP_ULP name, and the crypto_info layouts.  Everything
// else in zctls (hooks, CLI, tests) goes through these functions.
//
// Source of truth: include/uapi/linux/tls.h and net/tls/tls_main.c.
// All functions are noexcept, touch nothing but the fd they are given, and
// report failure as an errno value (0 = success) without changing errno.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace zctls::kernel {

// uapi values, also defined here so that zctls builds against headers older
// than the features it probes (TLS_TX_ZEROCOPY_RO arrived in 5.19).
inline constexpr int kSolTls = 282;
inline constexpr int kTlsTx = 1;
inline constexpr int kTlsRx = 2;
inline constexpr int kTlsTxZerocopyRo = 3;
inline constexpr int kTlsRxExpectNoPad = 4;
inline constexpr const char* kTlsUlpName = "tls";

enum class Direction { tx, rx };
enum class TlsVersion { tls12, tls13 };
enum class Cipher { aes_gcm_128, aes_gcm_256, aes_ccm_128, chacha20_poly1305 };

std::string_view to_string(TlsVersion v) noexcept;
std::string_view to_string(Cipher c) noexcept;

inline constexpr TlsVersion kAllVersions[] = {TlsVersion::tls12, TlsVersion::tls13};
inline constexpr Cipher kAllCiphers[] = {Cipher::aes_gcm_128, Cipher::aes_gcm_256,
                                         Cipher::aes_ccm_128, Cipher::chacha20_poly1305};

// Key material for one direction.  The kernel wants fixed sizes per cipher;
// install_key() copies the prefix it needs from these buffers.
struct KeyMaterial {
  std::uint8_t key[32] = {};
  std::uint8_t iv[12] = {};  // chacha20-poly1305 uses all 12
  std::uint8_t salt[4] = {};
  std::uint8_t rec_seq[8] = {};
};

// Function pointers for the socket-option calls, so that the shim can route
// the kernel layer through the real (next) setsockopt/getsockopt instead of
// its own hooks.  Everyone else uses libc's.
struct SockoptCalls {
  int (*set)(int, int, int, const void*, socklen_t);
  int (*get)(int, int, int, void*, socklen_t*);
};
const SockoptCalls& libc_sockopt_calls() noexcept;

// What a socket is, as far as kTLS TX goes.  getsockopt(SOL_TCP, TCP_ULP)
// names the ULP ("" for none; ENOTSOCK/EOPNOTSUPP for non-TCP fds); only a
// "tls" socket is then asked getsockopt(SOL_TLS, TLS_TX) with a buffer of
// just the crypto_info header (do_tls_getsockopt_conf): success = a TX key
// is installed, EBUSY = no TX key yet.  One syscall for a plain socket.
// With `version`, also the TX key's version (KeyVersion::unknown unless
// ktls_tx).
enum class KeyVersion : std::uint8_t { unknown = 0, tls12 = 1, tls13 = 2 };
enum class TxKind { ktls_tx, ulp_without_tx, not_ktls };
TxKind query_tx(int fd, const SockoptCalls& calls, KeyVersion* version = nullptr) noexcept;

// The version of a TLS_TX or TLS_RX key from its crypto_info (the
// tls_crypto_info header's first field; the kernel takes TLS 1.2 and 1.3
// only): what the application's setsockopt passed, unknown if too short.
KeyVersion key_version(const void* crypto_info, socklen_t length) noexcept;

// The application's setsockopt calls the shim cares about: TCP_ULP (a
// socket can take a ULP once, so a successful one means a socket zctls has
// not seen as kTLS before), TLS_TX, TLS_TX_ZEROCOPY_RO.
enum class AppSockopt { other, ulp, tls_tx_key, tx_zerocopy };
AppSockopt classify_sockopt(int level, int optname) noexcept;

// setsockopt(fd, SOL_TCP, TCP_ULP, "tls").  Needs a connected TCP socket
// (ENOTCONN otherwise); ENOENT when the kernel has no tls module.
int attach_tls_ulp(int fd) noexcept;

// setsockopt(fd, SOL_TLS, TLS_TX or TLS_RX, crypto_info).  After this the
// kernel encrypts (tx) or decrypts (rx) every record on the socket.
int install_key(int fd, Direction dir, TlsVersion version, Cipher cipher,
                const KeyMaterial& key) noexcept;

// TLS_TX_ZEROCOPY_RO: the kernel reads it on every send but only acts on it
// with device offload (net/tls/tls_device.c).  Without the ULP, setting
// fails with ENOPROTOOPT and getting with EOPNOTSUPP (the IP layer answers;
// measured on 6.1 and 6.12); kernels older than 5.19 refuse the option.
int set_tx_zerocopy(int fd, bool on, const SockoptCalls& calls = libc_sockopt_calls()) noexcept;

struct FlagState {
  int error = 0;  // errno value, 0 on success
  bool on = false;
};
FlagState get_tx_zerocopy(int fd, const SockoptCalls& calls = libc_sockopt_calls()) noexcept;

// TCP_INFO byte counts of a connection (Linux 4.19+): what the application
// has written into it so far and what the peer has acknowledged.  Bytes
// written at some point are acknowledged once `acked` reaches that point.
// `retransmitted`: bytes the connection has sent again since it began
// (tcpi_bytes_retrans; on a TLS offload NIC each retransmission reads the
// file's pages again, net/tls/tls_device.c: tls_get_record and the
// driver's resync on an out-of-order segment).
struct TcpProgress {
  std::uint64_t written = 0;
  std::uint64_t acked = 0;
  std::uint64_t retransmitted = 0;
};
bool tcp_progress(int fd, const SockoptCalls& calls, TcpProgress* out) noexcept;

}  // namespace zctls::kernel
