#include "openssl_ktls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <memory>
#include <string_view>
#include <thread>

#include "kernel/loopback.h"

namespace zctls::cli {
namespace {

template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509_free>>;
using Context = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX_free>>;
using Connection = std::unique_ptr<SSL, Deleter<SSL_free>>;

constexpr std::string_view kPayload = "zctls probe record";

// The oldest error on this thread's OpenSSL queue, or `fallback`; the queue
// is emptied so the next step starts clean.
std::string openssl_error(std::string_view fallback) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return std::string(fallback);
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

// A self-signed certificate the client never verifies: the handshake only
// has to complete, not authenticate anyone.
bool make_identity(Key& key, Cert& cert) {
  key.reset(EVP_EC_gen("P-256"));
  cert.reset(X509_new());
  if (!key || !cert) return false;
  X509_NAME* name = X509_get_subject_name(cert.get());
  return X509_set_version(cert.get(), X509_VERSION_3) == 1 &&
         ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1) == 1 &&
         X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60) != nullptr &&
         X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600) != nullptr &&
         X509_set_pubkey(cert.get(), key.get()) == 1 &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    reinterpret_cast<const unsigned char*>("zctls probe"), -1, -1,
                                    0) == 1 &&
         X509_set_issuer_name(cert.get(), name) == 1 &&
         X509_sign(cert.get(), key.get(), EVP_sha256()) > 0;
}

Context make_context(const SSL_METHOD* method, int version) {
  Context ctx(SSL_CTX_new(method));
  if (ctx && (SSL_CTX_set_min_proto_version(ctx.get(), version) != 1 ||
              SSL_CTX_set_max_proto_version(ctx.get(), version) != 1)) {
    ctx.reset();
  }
  return ctx;
}

void set_timeouts(int fd) {
  const timeval limit{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
}

// The client side, run on its own thread: connect, then read the server's
// record.  Returns what it read, or "" with `error` set.
std::string client_reads(SSL_CTX* ctx, int fd, std::string& error) {
  Connection ssl(SSL_new(ctx));
  if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) {
    error = openssl_error("client SSL_new failed");
    return {};
  }
  if (SSL_connect(ssl.get()) != 1) {
    error = openssl_error("client handshake failed");
    return {};
  }
  char buf[64];
  std::string got;
  while (got.size() < kPayload.size()) {
    const int n = SSL_read(ssl.get(), buf, sizeof buf);
    if (n <= 0) {
      error = openssl_error("client read failed");
      break;
    }
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

OpenSslHandshake handshake(const char* protocol, int version, EVP_PKEY* key, X509* cert) {
  OpenSslHandshake result;
  result.protocol = protocol;
  Context server_ctx = make_context(TLS_server_method(), version);
  Context client_ctx = make_context(TLS_client_method(), version);
  // kTLS on the server side only: its TX is what SSL_sendfile needs, and the
  // client's keys stay out of the kernel (one TLS_TX per handshake to see).
  if (server_ctx) SSL_CTX_set_options(server_ctx.get(), SSL_OP_ENABLE_KTLS);
  if (!server_ctx || !client_ctx || SSL_CTX_use_certificate(server_ctx.get(), cert) != 1 ||
      SSL_CTX_use_PrivateKey(server_ctx.get(), key) != 1) {
    result.error = openssl_error("cannot set up an SSL_CTX");
    return result;
  }
  const kernel::LoopbackPair pair;
  if (pair.error() != 0) {
    result.error = "no loopback TCP pair";
    return result;
  }
  set_timeouts(pair.client());
  set_timeouts(pair.server());
  Connection server(SSL_new(server_ctx.get()));
  if (!server || SSL_set_fd(server.get(), pair.server()) != 1) {
    result.error = openssl_error("server SSL_new failed");
    return result;
  }

  std::string client_error;
  std::string received;
  std::thread client(
      [&] { received = client_reads(client_ctx.get(), pair.client(), client_error); });
  if (SSL_accept(server.get()) == 1) {
    result.cipher = SSL_get_cipher_name(server.get());
    result.ktls_tx = BIO_get_ktls_send(SSL_get_wbio(server.get())) == 1;
    if (SSL_write(server.get(), kPayload.data(), static_cast<int>(kPayload.size())) !=
        static_cast<int>(kPayload.size())) {
      result.error = openssl_error("server write failed");
    }
  } else {
    result.error = openssl_error("server handshake failed");
  }
  // Wake a client still waiting for bytes that will not come.
  if (!result.error.empty()) shutdown(pair.server(), SHUT_RDWR);
  client.join();
  result.data_ok = received == kPayload;
  if (result.error.empty() && !client_error.empty()) result.error = client_error;
  if (result.error.empty() && !result.data_ok) result.error = "the client read other bytes";
  if (result.error.empty() && !result.ktls_tx)
    result.error = "libssl did not enable kTLS for this cipher";
  return result;
}

}  // namespace

std::vector<OpenSslHandshake> openssl_ktls_handshakes() {
  std::vector<OpenSslHandshake> results;
  Key key;
  Cert cert;
  const bool have_identity = make_identity(key, cert);
  for (const auto& [name, version] :
       {std::pair{"TLSv1.2", TLS1_2_VERSION}, std::pair{"TLSv1.3", TLS1_3_VERSION}}) {
    if (have_identity) {
      results.push_back(handshake(name, version, key.get(), cert.get()));
    } else {
      results.push_back({name, "", false, false, openssl_error("cannot make a test certificate")});
    }
  }
  return results;
}

}  // namespace zctls::cli
