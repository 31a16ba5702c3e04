// The exported symbols of libzctls.so, and nothing else: each hook calls
// the real function and tells the runtime what happened.  The application
// always gets exactly the real function's return value and errno.
//
// Not built with _FILE_OFFSET_BITS=64: <sys/sendfile.h> would then rename
// sendfile to sendfile64 and the shim could not define both.
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "real_calls.h"
#include "runtime.h"

#define ZCTLS_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

// Runs the real call, then tells the runtime if it succeeded.  The runtime
// keeps errno (runtime.h), so the application sees the real call's.
template <typename Real, typename After>
int call_then(Real real, After after) noexcept {
  const int rc = real();
  if (rc >= 0) after();
  return rc;
}

}  // namespace

ZCTLS_EXPORT ssize_t sendfile(int out_fd, int in_fd, off_t* offset, size_t count) noexcept {
  if (zctls::shim::known_plain(out_fd)) return zctls::real::sendfile(out_fd, in_fd, offset, count);
  const zctls::SendTicket ticket = zctls::shim::before_send(out_fd, in_fd, offset);
  const ssize_t rc = zctls::real::sendfile(out_fd, in_fd, offset, count);
  zctls::shim::after_send(ticket, rc, offset);
  return rc;
}

ZCTLS_EXPORT ssize_t sendfile64(int out_fd, int in_fd, off64_t* offset, size_t count) noexcept {
  static_assert(sizeof(off64_t) == sizeof(off_t), "64-bit targets only");
  auto* off = reinterpret_cast<off_t*>(offset);
  if (zctls::shim::known_plain(out_fd)) return zctls::real::sendfile64(out_fd, in_fd, off, count);
  const zctls::SendTicket ticket = zctls::shim::before_send(out_fd, in_fd, off);
  const ssize_t rc = zctls::real::sendfile64(out_fd, in_fd, off, count);
  zctls::shim::after_send(ticket, rc, off);
  return rc;
}

// SSL_sendfile is deliberately not interposed: libssl's kTLS path ends in
// sendfile(2) through libc (ktls_sendfile in OpenSSL's
// include/internal/ktls.h), which reaches the hook above whichever copy of
// libssl made the call and however it was loaded.  An export of our own
// could only forward to "the next" SSL_sendfile, which a libssl dlopened
// RTLD_LOCAL by a server module is not (issue 18 #3: -1/ENOSYS and nothing
// sent), and would make dlsym(RTLD_DEFAULT, "SSL_sendfile") succeed in a
// process that has no libssl.

ZCTLS_EXPORT int setsockopt(int fd, int level, int optname, const void* value,
                            socklen_t length) noexcept {
  return call_then([&] { return zctls::real::setsockopt(fd, level, optname, value, length); },
                   [&] { zctls::shim::after_setsockopt(fd, level, optname, value, length); });
}

ZCTLS_EXPORT int close(int fd) {
  zctls::shim::before_close(fd);
  const int rc = zctls::real::close(fd);
  // Linux releases the fd number even when close fails (EINTR, EIO).
  zctls::shim::after_close(fd);
  return rc;
}

ZCTLS_EXPORT int dup2(int oldfd, int newfd) noexcept {
  return call_then([&] { return zctls::real::dup2(oldfd, newfd); },
                   [&] { zctls::shim::after_dup(oldfd, newfd); });
}

ZCTLS_EXPORT int dup3(int oldfd, int newfd, int flags) noexcept {
  return call_then([&] { return zctls::real::dup3(oldfd, newfd, flags); },
                   [&] { zctls::shim::after_dup(oldfd, newfd); });
}

ZCTLS_EXPORT int close_range(unsigned first, unsigned last, int flags) noexcept {
  return call_then([&] { return zctls::real::close_range(first, last, flags); },
                   [&] { zctls::shim::after_close_range(first, last, flags); });
}
