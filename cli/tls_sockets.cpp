// zctls status's view of the host's kTLS sockets: the sock_diag dump and
// the names it prints (CLI only: the library every server maps needs
// neither).
#include "tls_sockets.h"

#include <linux/netlink.h>
#include <linux/tls.h>
#include <sys/socket.h>

#include <cstdio>

#include "kernel/ktls.h"

namespace zctls::kernel {

// The names are ktls.h's, so that probe and status print the same words.
std::string tls_version_name(std::uint16_t v) {
  if (v == TLS_1_2_VERSION) return std::string(to_string(TlsVersion::tls12));
  if (v == TLS_1_3_VERSION) return std::string(to_string(TlsVersion::tls13));
  char out[16];
  std::snprintf(out, sizeof out, "0x%04x", v);
  return out;
}

std::string tls_cipher_name(std::uint16_t c) {
  switch (c) {
    case TLS_CIPHER_AES_GCM_128:
      return std::string(to_string(Cipher::aes_gcm_128));
    case TLS_CIPHER_AES_GCM_256:
      return std::string(to_string(Cipher::aes_gcm_256));
    case TLS_CIPHER_AES_CCM_128:
      return std::string(to_string(Cipher::aes_ccm_128));
    case TLS_CIPHER_CHACHA20_POLY1305:
      return std::string(to_string(Cipher::chacha20_poly1305));
    default:
      return "cipher " + std::to_string(c);
  }
}

int list_tls_sockets(std::vector<TlsSocket>& out, const DiagRecorder& recorder) {
  for (const int family : {AF_INET, AF_INET6}) {
    alignas(nlmsghdr) std::uint8_t buf[32768];
    int parsed = 0;
    int err = tcp_ulp_diag(family, nullptr, buf, [&](const std::uint8_t* data, std::size_t n) {
      if (recorder) recorder(data, n);
      return parse_diag_datagram(data, n, out, &parsed);
    });
    if (err == 0) err = parsed;
    if (err != 0) return err;
  }
  return 0;
}

}  // namespace zctls::kernel
