// The exported hooks on the ways data and key material reach a socket:
// sendfile, sendfile64, splice, setsockopt.  Each calls the real function
// and tells the runtime what happened; the application always gets exactly
// the real function's return value and errno.  (fd_hooks.cpp: the calls
// that close, replace or create fds.)
//
// Not built with _FILE_OFFSET_BITS=64: <sys/sendfile.h> would then rename
// sendfile to sendfile64 and the shim could not define both.
//
// noexcept exactly where glibc declares the function __THROW; splice is a
// cancellation point, through which pthread_cancel unwinds.
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "front.h"
#include "real_calls.h"

#define ZCTLS_EXPORT extern "C" __attribute__((visibility("default")))

ZCTLS_EXPORT ssize_t sendfile(int out_fd, int in_fd, off_t* offset, size_t count) noexcept {
  if (zctls::hooks::known_plain(out_fd)) return zctls::real::sendfile(out_fd, in_fd, offset, count);
  zctls::hooks::Ticket ticket;
  zctls::hooks::before_send(ticket, out_fd, in_fd, offset);
  const ssize_t rc = zctls::real::sendfile(out_fd, in_fd, offset, count);
  zctls::hooks::after_send(ticket, rc, offset);
  return rc;
}

ZCTLS_EXPORT ssize_t sendfile64(int out_fd, int in_fd, off64_t* offset, size_t count) noexcept {
  static_assert(sizeof(off64_t) == sizeof(off_t), "64-bit targets only");
  if (zctls::hooks::known_plain(out_fd))
    return zctls::real::sendfile64(out_fd, in_fd, offset, count);
  auto* off = reinterpret_cast<off_t*>(offset);
  zctls::hooks::Ticket ticket;
  zctls::hooks::before_send(ticket, out_fd, in_fd, off);
  const ssize_t rc = zctls::real::sendfile64(out_fd, in_fd, offset, count);
  zctls::hooks::after_send(ticket, rc, off);
  return rc;
}

// SSL_sendfile is deliberately not interposed: libssl's kTLS path ends in
// sendfile(2) through libc (ktls_sendfile in OpenSSL's
// include/internal/ktls.h), which reaches the hook above whichever copy of
// libssl made the call and however it was loaded.  An export of our own
// could only forward to "the next" SSL_sendfile, which a libssl dlopened
// RTLD_LOCAL by a server module is not (the application would get
// -1/ENOSYS and nothing sent), and would make dlsym(RTLD_DEFAULT, "SSL_sendfile") succeed in a
// process that has no libssl.

// Pages spliced from a pipe into a kTLS socket go zerocopy if the flag is
// on (tls_device_sendpage / MSG_SPLICE_PAGES), from a file zctls never
// saw: the flag goes off first.
ZCTLS_EXPORT ssize_t splice(int fd_in, loff_t* off_in, int fd_out, loff_t* off_out, size_t len,
                            unsigned int flags) {
  if (!zctls::hooks::known_plain(fd_out)) zctls::hooks::before_other_send(fd_out);
  return zctls::real::splice(fd_in, off_in, fd_out, off_out, len, flags);
}

ZCTLS_EXPORT int setsockopt(int fd, int level, int optname, const void* value,
                            socklen_t length) noexcept {
  const int rc = zctls::real::setsockopt(fd, level, optname, value, length);
  if (rc == 0) zctls::hooks::after_setsockopt(fd, level, optname, value, length);
  return rc;
}
