#include "real_calls.h"

#include <dlfcn.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace zctls::real {
namespace {

// Whether `sym` lies in libzctls.so itself: resolving to one of the shim's
// own hooks (possible when the shim is loaded twice or linked oddly) would
// recurse.  Asked by address, not by comparing with dlsym(RTLD_DEFAULT):
// for a call the shim does not wrap (getsockopt) that finds another
// preloaded library's wrapper, which must be called, not bypassed (the
// fault-injection table found the shim going around it).
bool in_this_library(void* sym) noexcept {
  Dl_info mine{}, theirs{};
  return dladdr(reinterpret_cast<void*>(&in_this_library), &mine) != 0 &&
         dladdr(sym, &theirs) != 0 && theirs.dli_fbase == mine.dli_fbase;
}

// Resolves `name` once.
template <typename Fn>
Fn resolve(std::atomic<Fn>& slot, const char* name) noexcept {
  // A lookup that found nothing usable is remembered too (this value),
  // so that the raw syscall stands in without a dlsym (which may lock
  // and allocate) on every call, close() included.
  const Fn none = reinterpret_cast<Fn>(std::uintptr_t{1});
  Fn fn = slot.load(std::memory_order_acquire);
  if (fn != nullptr) return fn == none ? nullptr : fn;
  void* sym = dlsym(RTLD_NEXT, name);
  fn = sym == nullptr || in_this_library(sym) ? none : reinterpret_cast<Fn>(sym);
  slot.store(fn, std::memory_order_release);
  return fn == none ? nullptr : fn;
}

}  // namespace

// NOEXCEPT is `noexcept` for calls glibc declares __THROW, and empty for
// cancellation points (close, accept, recvmsg, fclose, fcntl for F_SETLKW,
// splice...), through which pthread_cancel unwinds: the trampolines and
// hooks declare what glibc declares (integration/cancellation).
#define ZCTLS_REAL(NOEXCEPT, ret, name, params, args, fallback) \
  ret name params NOEXCEPT {                                    \
    using Fn = ret(*) params;                                   \
    static std::atomic<Fn> slot{nullptr};                       \
    if (Fn fn = resolve(slot, #name)) return fn args;           \
    return fallback;                                            \
  }
#define ZCTLS_NOTHROW noexcept
#define ZCTLS_CANCELS

ZCTLS_REAL(ZCTLS_NOTHROW, ssize_t, sendfile, (int out_fd, int in_fd, off_t* offset, size_t count),
           (out_fd, in_fd, offset, count), syscall(SYS_sendfile, out_fd, in_fd, offset, count))
ZCTLS_REAL(ZCTLS_NOTHROW, ssize_t, sendfile64, (int out_fd, int in_fd, off_t* offset, size_t count),
           (out_fd, in_fd, offset, count), syscall(SYS_sendfile, out_fd, in_fd, offset, count))
ZCTLS_REAL(ZCTLS_NOTHROW, int, setsockopt,
           (int fd, int level, int optname, const void* value, socklen_t length),
           (fd, level, optname, value, length),
           static_cast<int>(syscall(SYS_setsockopt, fd, level, optname, value, length)))
ZCTLS_REAL(ZCTLS_NOTHROW, int, getsockopt,
           (int fd, int level, int optname, void* value, socklen_t* length),
           (fd, level, optname, value, length),
           static_cast<int>(syscall(SYS_getsockopt, fd, level, optname, value, length)))
ZCTLS_REAL(ZCTLS_CANCELS, int, close, (int fd), (fd), static_cast<int>(syscall(SYS_close, fd)))
ZCTLS_REAL(ZCTLS_NOTHROW, int, dup2, (int oldfd, int newfd), (oldfd, newfd),
           static_cast<int>(syscall(SYS_dup2, oldfd, newfd)))
ZCTLS_REAL(ZCTLS_NOTHROW, int, dup3, (int oldfd, int newfd, int flags), (oldfd, newfd, flags),
           static_cast<int>(syscall(SYS_dup3, oldfd, newfd, flags)))
ZCTLS_REAL(ZCTLS_NOTHROW, int, close_range, (unsigned first, unsigned last, int flags),
           (first, last, flags), static_cast<int>(syscall(SYS_close_range, first, last, flags)))
ZCTLS_REAL(ZCTLS_NOTHROW, void, closefrom, (int lowfd), (lowfd),
           static_cast<void>(syscall(SYS_close_range, lowfd, ~0U, 0)))
ZCTLS_REAL(ZCTLS_CANCELS, ssize_t, splice,
           (int fd_in, loff_t* off_in, int fd_out, loff_t* off_out, size_t len, unsigned int flags),
           (fd_in, off_in, fd_out, off_out, len, flags),
           syscall(SYS_splice, fd_in, off_in, fd_out, off_out, len, flags))
// stdio has no syscall to stand in: without libc's (which cannot happen in
// a process that links libc) the call fails.
ZCTLS_REAL(ZCTLS_CANCELS, int, fclose, (FILE * stream), (stream), (errno = ENOSYS, EOF))
ZCTLS_REAL(ZCTLS_CANCELS, int, pclose, (FILE * stream), (stream), (errno = ENOSYS, -1))
ZCTLS_REAL(ZCTLS_CANCELS, FILE*, freopen, (const char* path, const char* mode, FILE* stream),
           (path, mode, stream), (errno = ENOSYS, nullptr))
ZCTLS_REAL(ZCTLS_CANCELS, FILE*, freopen64, (const char* path, const char* mode, FILE* stream),
           (path, mode, stream), (errno = ENOSYS, nullptr))
ZCTLS_REAL(ZCTLS_NOTHROW, int, socket, (int domain, int type, int protocol),
           (domain, type, protocol), static_cast<int>(syscall(SYS_socket, domain, type, protocol)))
ZCTLS_REAL(ZCTLS_NOTHROW, int, socketpair, (int domain, int type, int protocol, int* sv),
           (domain, type, protocol, sv),
           static_cast<int>(syscall(SYS_socketpair, domain, type, protocol, sv)))
ZCTLS_REAL(ZCTLS_CANCELS, int, accept, (int fd, sockaddr* addr, socklen_t* len), (fd, addr, len),
           static_cast<int>(syscall(SYS_accept, fd, addr, len)))
ZCTLS_REAL(ZCTLS_CANCELS, int, accept4, (int fd, sockaddr* addr, socklen_t* len, int flags),
           (fd, addr, len, flags), static_cast<int>(syscall(SYS_accept4, fd, addr, len, flags)))
ZCTLS_REAL(ZCTLS_NOTHROW, int, dup, (int fd), (fd), static_cast<int>(syscall(SYS_dup, fd)))
// fcntl is variadic: called through a pointer of its own, variadic type
// (on x86-64 a variadic callee reads %al; through a fixed-argument pointer
// the caller would not set it).
#define ZCTLS_REAL_FCNTL(name)                                 \
  int name(int fd, int cmd, void* arg) {                       \
    using Fn = int (*)(int, int, ...);                         \
    static std::atomic<Fn> slot{nullptr};                      \
    if (Fn fn = resolve(slot, #name)) return fn(fd, cmd, arg); \
    return static_cast<int>(syscall(SYS_fcntl, fd, cmd, arg)); \
  }
ZCTLS_REAL_FCNTL(fcntl)
ZCTLS_REAL_FCNTL(fcntl64)
#undef ZCTLS_REAL_FCNTL
ZCTLS_REAL(ZCTLS_CANCELS, ssize_t, recvmsg, (int fd, msghdr* msg, int flags), (fd, msg, flags),
           syscall(SYS_recvmsg, fd, msg, flags))
ZCTLS_REAL(ZCTLS_CANCELS, int, recvmmsg,
           (int fd, mmsghdr* msgs, unsigned int n, int flags, timespec* timeout),
           (fd, msgs, n, flags, timeout),
           static_cast<int>(syscall(SYS_recvmmsg, fd, msgs, n, flags, timeout)))
ZCTLS_REAL(ZCTLS_NOTHROW, int, pidfd_getfd, (int pidfd, int targetfd, unsigned int flags),
           (pidfd, targetfd, flags),
           static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, targetfd, flags)))

#undef ZCTLS_CANCELS
#undef ZCTLS_NOTHROW
#undef ZCTLS_REAL

}  // namespace zctls::real
