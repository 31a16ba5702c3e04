// A TLS 1.3 connection over loopback with OpenSSL turning kTLS on, whose
// server side sends files with SSL_sendfile: what sender.cpp's "openssl"
// mode runs, and what the plugin module (ssl_plugin.cpp) runs from a
// library that its program loaded with dlopen.
#pragma once

#include <string>
#include <vector>

namespace zctls_ktls_app {

// Prints "ktls send=yes|no", "NAME flag=N" (a raw getsockopt after each
// file) and "bytes ok"/"BYTES DIFFER"; 0 only if kTLS sent every byte.
int openssl_send(const std::vector<std::string>& files);

}  // namespace zctls_ktls_app
