// A server module the way servers load them: a shared library linked to
// libssl, dlopened by a program that is not (ssl_loader.cpp).  Its
// SSL_sendfile call binds wherever the dynamic linker finds SSL_sendfile
// for it; issue 18 #3: to libzctls.so's export, which then could not find
// a libssl loaded RTLD_LOCAL and returned ENOSYS.
#include <vector>

#include "openssl_send.h"

extern "C" __attribute__((visibility("default"))) int zctls_plugin_send(int n,
                                                                        const char* const* files) {
  return zctls_ktls_app::openssl_send(std::vector<std::string>(files, files + n));
}
