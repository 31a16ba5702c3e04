#include "kernel/ktls.h"

#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

// The uapi header is the authority; our constants exist only for builds
// against older headers.  Catch any drift at compile time.
static_assert(SOL_TLS == zctls::kernel::kSolTls);
static_assert(TLS_TX == zctls::kernel::kTlsTx);
static_assert(TLS_RX == zctls::kernel::kTlsRx);
#ifdef TLS_TX_ZEROCOPY_RO
static_assert(TLS_TX_ZEROCOPY_RO == zctls::kernel::kTlsTxZerocopyRo);
#endif
#ifdef TLS_RX_EXPECT_NO_PAD
static_assert(TLS_RX_EXPECT_NO_PAD == zctls::kernel::kTlsRxExpectNoPad);
#endif

namespace zctls::kernel {
namespace {

// Runs a socket call and turns its result into an errno value while leaving
// the caller's errno exactly as it was.
template <typename Call>
int errno_of(Call&& call) noexcept {
  const int saved = errno;
  const int rc = call();
  const int err = rc == 0 ? 0 : errno;
  errno = saved;
  return err;
}

template <typename Info>
int install(int fd, Direction dir, TlsVersion version, std::uint16_t cipher_type,
            const KeyMaterial& km) noexcept {
  Info info;
  std::memset(&info, 0, sizeof info);
  info.info.version = version == TlsVersion::tls13 ? TLS_1_3_VERSION : TLS_1_2_VERSION;
  info.info.cipher_type = cipher_type;
  std::memcpy(info.key, km.key, sizeof info.key);
  std::memcpy(info.iv, km.iv, sizeof info.iv);
  std::memcpy(info.salt, km.salt, sizeof info.salt);
  std::memcpy(info.rec_seq, km.rec_seq, sizeof info.rec_seq);
  static_assert(sizeof info.key <= sizeof km.key && sizeof info.iv <= sizeof km.iv &&
                sizeof info.salt <= sizeof km.salt && sizeof info.rec_seq <= sizeof km.rec_seq);
  const int optname = dir == Direction::tx ? kTlsTx : kTlsRx;
  return errno_of([&] { return setsockopt(fd, kSolTls, optname, &info, sizeof info); });
}

}  // namespace

std::string_view to_string(TlsVersion v) noexcept {
  return v == TlsVersion::tls13 ? "TLS 1.3" : "TLS 1.2";
}

std::string_view to_string(Cipher c) noexcept {
  switch (c) {
    case Cipher::aes_gcm_128:
      return "aes-gcm-128";
    case Cipher::aes_gcm_256:
      return "aes-gcm-256";
    case Cipher::aes_ccm_128:
      return "aes-ccm-128";
    case Cipher::chacha20_poly1305:
      return "chacha20-poly1305";
  }
  return "unknown";
}

int attach_tls_ulp(int fd) noexcept {
  return errno_of(
      [&] { return setsockopt(fd, SOL_TCP, TCP_ULP, kTlsUlpName, std::strlen(kTlsUlpName)); });
}

int install_key(int fd, Direction dir, TlsVersion version, Cipher cipher,
                const KeyMaterial& key) noexcept {
  switch (cipher) {
    case Cipher::aes_gcm_128:
      return install<tls12_crypto_info_aes_gcm_128>(fd, dir, version, TLS_CIPHER_AES_GCM_128, key);
    case Cipher::aes_gcm_256:
      return install<tls12_crypto_info_aes_gcm_256>(fd, dir, version, TLS_CIPHER_AES_GCM_256, key);
    case Cipher::aes_ccm_128:
      return install<tls12_crypto_info_aes_ccm_128>(fd, dir, version, TLS_CIPHER_AES_CCM_128, key);
    case Cipher::chacha20_poly1305:
      return install<tls12_crypto_info_chacha20_poly1305>(fd, dir, version,
                                                          TLS_CIPHER_CHACHA20_POLY1305, key);
  }
  return EINVAL;
}

const SockoptCalls& libc_sockopt_calls() noexcept {
  static const SockoptCalls calls{::setsockopt, ::getsockopt};
  return calls;
}

AppSockopt classify_sockopt(int level, int optname) noexcept {
  if (level == SOL_TCP && optname == TCP_ULP) return AppSockopt::ulp;
  if (level != kSolTls) return AppSockopt::other;
  if (optname == kTlsTx) return AppSockopt::tls_tx_key;
  if (optname == kTlsTxZerocopyRo) return AppSockopt::tx_zerocopy;
  return AppSockopt::other;
}

KeyVersion key_version(const void* crypto_info, socklen_t length) noexcept {
  tls_crypto_info header{};
  if (crypto_info == nullptr || length < sizeof header) return KeyVersion::unknown;
  std::memcpy(&header, crypto_info, sizeof header);
  return header.version == TLS_1_3_VERSION ? KeyVersion::tls13 : KeyVersion::tls12;
}

TxKind query_tx(int fd, const SockoptCalls& calls, KeyVersion* version) noexcept {
  // First ask TCP which ULP the socket has (SOL_TCP, so that a plain socket
  // never sees a SOL_TLS call); only a "tls" socket is asked about TLS_TX.
  char ulp[16] = {};
  socklen_t ulp_len = sizeof ulp - 1;
  if (errno_of([&] { return calls.get(fd, SOL_TCP, TCP_ULP, ulp, &ulp_len); }) != 0 ||
      std::strcmp(ulp, kTlsUlpName) != 0)
    return TxKind::not_ktls;
  tls_crypto_info header{};
  socklen_t len = sizeof header;
  const int err = errno_of([&] { return calls.get(fd, kSolTls, kTlsTx, &header, &len); });
  if (err == 0) {
    if (version != nullptr) *version = key_version(&header, len);
    return TxKind::ktls_tx;
  }
  return err == EBUSY ? TxKind::ulp_without_tx : TxKind::not_ktls;
}

int set_tx_zerocopy(int fd, bool on, const SockoptCalls& calls) noexcept {
  // do_tls_setsockopt_tx_zc: exactly an unsigned int, 0 or 1, else EINVAL.
  const unsigned int value = on ? 1U : 0U;
  return errno_of([&] { return calls.set(fd, kSolTls, kTlsTxZerocopyRo, &value, sizeof value); });
}

FlagState get_tx_zerocopy(int fd, const SockoptCalls& calls) noexcept {
  unsigned int value = 0;
  socklen_t len = sizeof value;
  FlagState state;
  state.error = errno_of([&] { return calls.get(fd, kSolTls, kTlsTxZerocopyRo, &value, &len); });
  state.on = state.error == 0 && value != 0;
  return state;
}

}  // namespace zctls::kernel
