// Does the libssl this host runs actually put a connection on kTLS?  Only a
// handshake can tell: OPENSSL_NO_KTLS in the headers says how the library was
// built, not whether this libssl, this kernel and the negotiated cipher
// together engage it (OpenSSL 3.0 keeps TLS 1.3 CCM in user space, for one).
// `zctls probe` runs one loopback handshake per protocol version with
// SSL_OP_ENABLE_KTLS, the option nginx's `ssl_conf_command Options KTLS` sets.
#pragma once

#include <string>
#include <vector>

namespace zctls::cli {

struct OpenSslHandshake {
  std::string protocol;  // "TLSv1.2" or "TLSv1.3" (SSL_get_version's names)
  std::string cipher;    // negotiated; "" when the handshake failed
  bool ktls_tx = false;  // BIO_get_ktls_send on the server after the handshake,
                         // the test nginx makes before it uses SSL_sendfile
  bool data_ok = false;  // a record the server wrote arrived intact at the client
  std::string error;     // why not, when !ktls_tx or !data_ok
};

// One handshake per protocol version over a loopback TCP pair, with a
// throwaway P-256 certificate made in memory.  Each side's blocking socket
// times out after a few seconds, so a broken library cannot hang `probe`.
std::vector<OpenSslHandshake> openssl_ktls_handshakes();

}  // namespace zctls::cli
