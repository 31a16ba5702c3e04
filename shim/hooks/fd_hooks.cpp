// The exported hooks on the calls that close, replace or create fds: what
// the shim knows about an fd number must not outlive the object it was
// learned from (glibc's closefrom closes through close_range inside libc,
// unseen: a new kTLS socket on the number would inherit a stale flag).
//
//   closing:   close, close_range, closefrom, dup2, dup3, fclose, freopen,
//              freopen64, pclose
//   creating:  socket, socketpair, accept, accept4, dup, fcntl/fcntl64
//              (F_DUPFD, F_DUPFD_CLOEXEC), recvmsg/recvmmsg (SCM_RIGHTS),
//              pidfd_getfd
//
// A new fd forgets its number's entry even if the old one was closed behind
// every hook (a raw syscall, io_uring): a socket can only appear on a number
// through one of the creating calls, or become kTLS through setsockopt
// (TCP_ULP resets the entry).  ARCHITECTURE.md lists what still escapes.
//
// The close-side hooks must stay async-signal-safe: they only touch atomics
// (front.h).  noexcept exactly where glibc declares the function __THROW;
// the others are cancellation points, through which pthread_cancel unwinds
// (integration/cancellation).
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>

#include "front.h"
#include "real_calls.h"

#define ZCTLS_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

namespace hooks = zctls::hooks;

// The fd of a stream, or -1; without taking the stream's lock (fileno
// does): the call that follows takes it.  errno kept: fileno sets EBADF
// for a stream with no fd (fmemopen, fopencookie), and a successful
// fclose must leave errno as it was.
int fd_of(FILE* stream) noexcept {
  if (stream == nullptr) return -1;
  const int saved = errno;
  const int fd = fileno_unlocked(stream);
  errno = saved;
  return fd;
}

}  // namespace

// --- closing -----------------------------------------------------------

ZCTLS_EXPORT int close(int fd) {
  const std::uint32_t epoch = hooks::before_close(fd);
  const int rc = zctls::real::close(fd);
  // Linux releases the fd number even when close fails (EINTR, EIO).
  hooks::after_close(fd, epoch);
  return rc;
}

ZCTLS_EXPORT int close_range(unsigned first, unsigned last, int flags) noexcept {
  const int rc = zctls::real::close_range(first, last, flags);
  if (rc == 0) hooks::after_close_range(first, last, flags);
  return rc;
}

ZCTLS_EXPORT void closefrom(int lowfd) noexcept {
  zctls::real::closefrom(lowfd);
  if (lowfd >= 0) hooks::after_close_range(static_cast<unsigned>(lowfd), ~0U, 0);
}

ZCTLS_EXPORT int dup2(int oldfd, int newfd) noexcept {
  const int rc = zctls::real::dup2(oldfd, newfd);
  if (rc >= 0) hooks::after_dup(oldfd, newfd);
  return rc;
}

ZCTLS_EXPORT int dup3(int oldfd, int newfd, int flags) noexcept {
  const int rc = zctls::real::dup3(oldfd, newfd, flags);
  if (rc >= 0) hooks::after_dup(oldfd, newfd);
  return rc;
}

// A stream over a socket (fdopen) closes its fd inside libc.
ZCTLS_EXPORT int fclose(FILE* stream) {
  const int fd = fd_of(stream);
  const std::uint32_t epoch = fd >= 0 ? hooks::before_close(fd) : hooks::kNoEpoch;
  const int rc = zctls::real::fclose(stream);
  if (fd >= 0) hooks::after_close(fd, epoch);  // the stream's fd is gone even on error
  return rc;
}

ZCTLS_EXPORT int pclose(FILE* stream) {
  const int fd = fd_of(stream);
  const int rc = zctls::real::pclose(stream);
  if (fd >= 0) hooks::after_close(fd);
  return rc;
}

// freopen closes the stream's fd and opens another (often on the same
// number).
namespace {
template <typename Real>
FILE* reopen(Real real, const char* path, const char* mode, FILE* stream) {
  const int fd = fd_of(stream);
  FILE* f = real(path, mode, stream);
  if (fd >= 0) hooks::after_close(fd);
  if (const int now = fd_of(f); now >= 0) hooks::after_new_fd(now);
  return f;
}
}  // namespace

ZCTLS_EXPORT FILE* freopen(const char* path, const char* mode, FILE* stream) {
  return reopen(zctls::real::freopen, path, mode, stream);
}

ZCTLS_EXPORT FILE* freopen64(const char* path, const char* mode, FILE* stream) {
  return reopen(zctls::real::freopen64, path, mode, stream);
}

// --- creating ------------------------------------------------------------

ZCTLS_EXPORT int socket(int domain, int type, int protocol) noexcept {
  const int fd = zctls::real::socket(domain, type, protocol);
  if (fd >= 0) hooks::after_new_fd(fd);
  return fd;
}

ZCTLS_EXPORT int socketpair(int domain, int type, int protocol, int sv[2]) noexcept {
  const int rc = zctls::real::socketpair(domain, type, protocol, sv);
  if (rc == 0) hooks::after_new_fds(sv, 2);
  return rc;
}

ZCTLS_EXPORT int accept(int fd, sockaddr* addr, socklen_t* len) {
  const int got = zctls::real::accept(fd, addr, len);
  if (got >= 0) hooks::after_new_fd(got);
  return got;
}

ZCTLS_EXPORT int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  const int got = zctls::real::accept4(fd, addr, len, flags);
  if (got >= 0) hooks::after_new_fd(got);
  return got;
}

ZCTLS_EXPORT int dup(int fd) noexcept {
  const int got = zctls::real::dup(fd);
  if (got >= 0) hooks::after_new_fd(got);
  return got;
}

// fcntl's third argument is an int, a pointer or nothing, by command; it is
// passed on as a pointer-sized word, as glibc's own fcntl reads it.
namespace {
template <typename Real>
int fcntl_with(Real real, int fd, int cmd, va_list args) {
  void* arg = va_arg(args, void*);
  const int rc = real(fd, cmd, arg);
  if (rc >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) hooks::after_new_fd(rc);
  return rc;
}
}  // namespace

ZCTLS_EXPORT int fcntl(int fd, int cmd, ...) {
  va_list args;
  va_start(args, cmd);
  const int rc = fcntl_with(zctls::real::fcntl, fd, cmd, args);
  va_end(args);
  return rc;
}

// What programs built with _FILE_OFFSET_BITS=64 call (nginx): glibc 2.28+.
ZCTLS_EXPORT int fcntl64(int fd, int cmd, ...) {
  va_list args;
  va_start(args, cmd);
  const int rc = fcntl_with(zctls::real::fcntl64, fd, cmd, args);
  va_end(args);
  return rc;
}

ZCTLS_EXPORT ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  const ssize_t rc = zctls::real::recvmsg(fd, msg, flags);
  if (rc >= 0) hooks::after_received_fds(msg);
  return rc;
}

ZCTLS_EXPORT int recvmmsg(int fd, mmsghdr* msgs, unsigned int n, int flags, timespec* timeout) {
  const int rc = zctls::real::recvmmsg(fd, msgs, n, flags, timeout);
  for (int i = 0; i < rc; ++i) hooks::after_received_fds(&msgs[i].msg_hdr);
  return rc;
}

// (Declared here: glibc 2.36's <sys/pidfd.h> lacks extern "C".)
ZCTLS_EXPORT int pidfd_getfd(int pidfd, int targetfd, unsigned int flags) noexcept {
  const int got = zctls::real::pidfd_getfd(pidfd, targetfd, flags);
  if (got >= 0) hooks::after_new_fd(got);
  return got;
}
