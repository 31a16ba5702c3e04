#include "real_calls.h"

#include <dlfcn.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

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
  Fn fn = slot.load(std::memory_order_acquire);
  if (fn != nullptr) return fn;
  void* sym = dlsym(RTLD_NEXT, name);
  if (sym == nullptr || in_this_library(sym)) return nullptr;
  fn = reinterpret_cast<Fn>(sym);
  slot.store(fn, std::memory_order_release);
  return fn;
}

}  // namespace

#define ZCTLS_REAL(ret, name, params, args, fallback) \
  ret name params noexcept {                          \
    using Fn = ret(*) params;                         \
    static std::atomic<Fn> slot{nullptr};             \
    if (Fn fn = resolve(slot, #name)) return fn args; \
    return fallback;                                  \
  }

ZCTLS_REAL(ssize_t, sendfile, (int out_fd, int in_fd, off_t* offset, size_t count),
           (out_fd, in_fd, offset, count), syscall(SYS_sendfile, out_fd, in_fd, offset, count))
ZCTLS_REAL(ssize_t, sendfile64, (int out_fd, int in_fd, off_t* offset, size_t count),
           (out_fd, in_fd, offset, count), syscall(SYS_sendfile, out_fd, in_fd, offset, count))
ZCTLS_REAL(int, setsockopt, (int fd, int level, int optname, const void* value, socklen_t length),
           (fd, level, optname, value, length),
           static_cast<int>(syscall(SYS_setsockopt, fd, level, optname, value, length)))
ZCTLS_REAL(int, getsockopt, (int fd, int level, int optname, void* value, socklen_t* length),
           (fd, level, optname, value, length),
           static_cast<int>(syscall(SYS_getsockopt, fd, level, optname, value, length)))
ZCTLS_REAL(int, close, (int fd), (fd), static_cast<int>(syscall(SYS_close, fd)))
ZCTLS_REAL(int, dup2, (int oldfd, int newfd), (oldfd, newfd),
           static_cast<int>(syscall(SYS_dup2, oldfd, newfd)))
ZCTLS_REAL(int, dup3, (int oldfd, int newfd, int flags), (oldfd, newfd, flags),
           static_cast<int>(syscall(SYS_dup3, oldfd, newfd, flags)))
ZCTLS_REAL(int, close_range, (unsigned first, unsigned last, int flags), (first, last, flags),
           static_cast<int>(syscall(SYS_close_range, first, last, flags)))

#undef ZCTLS_REAL

ClockGettimeFn libc_clock_gettime() noexcept {
  void* libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  if (libc == nullptr) return nullptr;
  void* sym = dlsym(libc, "clock_gettime");
  dlclose(libc);  // only drops the reference RTLD_NOLOAD took: libc stays
  return reinterpret_cast<ClockGettimeFn>(sym);
}

}  // namespace zctls::real
