#include "openssl_send.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "ktls_app.h"

namespace zctls_ktls_app {
namespace {

struct Tls {
  SSL_CTX* server_ctx = nullptr;
  SSL_CTX* client_ctx = nullptr;
};

bool make_openssl(Tls& tls) {
  EVP_PKEY* pkey = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  if (pkey == nullptr || cert == nullptr) return false;
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, pkey);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509_sign(cert, pkey, EVP_sha256());
  tls.server_ctx = SSL_CTX_new(TLS_server_method());
  tls.client_ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_use_certificate(tls.server_ctx, cert);
  SSL_CTX_use_PrivateKey(tls.server_ctx, pkey);
  // kTLS TX on the sending side; TLS 1.3 with AES-128-GCM, which 3.0 offloads.
  SSL_CTX_set_options(tls.server_ctx, SSL_OP_ENABLE_KTLS);
  SSL_CTX_set_ciphersuites(tls.server_ctx, "TLS_AES_128_GCM_SHA256");
  SSL_CTX_set_min_proto_version(tls.server_ctx, TLS1_3_VERSION);
  X509_free(cert);
  EVP_PKEY_free(pkey);
  return true;
}

}  // namespace

int openssl_send(const std::vector<std::string>& files) {
  Tls tls;
  if (!make_openssl(tls)) return 1;
  const k::LoopbackPair pair;
  if (pair.error() != 0) return 1;
  std::string all;
  for (const auto& f : files) all += slurp(f);
  std::string got;
  std::thread client([&] {
    SSL* c = SSL_new(tls.client_ctx);
    SSL_set_fd(c, pair.client());
    if (SSL_connect(c) != 1) return;
    std::vector<char> buf(1 << 16);
    while (got.size() < all.size()) {
      const int n = SSL_read(c, buf.data(), static_cast<int>(buf.size()));
      if (n <= 0) break;
      got.append(buf.data(), static_cast<std::size_t>(n));
    }
    SSL_free(c);
  });
  SSL* s = SSL_new(tls.server_ctx);
  SSL_set_fd(s, pair.server());
  bool ok = SSL_accept(s) == 1;
  if (!ok) ERR_print_errors_fp(stdout);
  const bool ktls = ok && BIO_get_ktls_send(SSL_get_wbio(s));
  say(std::string("ktls send=") + (ktls ? "yes" : "no"));
  for (const auto& f : files) {
    if (!ok || !ktls) break;
    const int fd = open(f.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    fstat(fd, &st);
    off_t off = 0;
    while (off < st.st_size) {
      const ossl_ssize_t n =
          SSL_sendfile(s, fd, off, static_cast<std::size_t>(st.st_size - off), 0);
      if (n <= 0) {
        say(std::string("SSL_sendfile failed: ") + strerrorname_np(errno));
        ok = false;
        break;
      }
      off += n;
    }
    close(fd);
    say(base(f) + " flag=" + std::to_string(raw_flag(pair.server())));
  }
  if (!ok || !ktls) shutdown(pair.server(), SHUT_RDWR);  // the client's read ends too
  client.join();
  const bool same = got == all;
  say(same ? "bytes ok" : "BYTES DIFFER");
  SSL_free(s);
  SSL_CTX_free(tls.server_ctx);
  SSL_CTX_free(tls.client_ctx);
  return ok && ktls && same ? 0 : 1;
}

}  // namespace zctls_ktls_app
