#include "real_calls.h"

#include <dlfcn.h>
#include <sys/syscall.h>
#include <sys/pidfd.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <type_traits>

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

// aarch64 has no dup2 syscall (only dup3, which refuses oldfd == newfd
// with EINVAL where dup2 returns the fd if it is open).
int raw_dup2(int oldfd, int newfd) noexcept {
#ifdef SYS_dup2
  return static_cast<int>(syscall(SYS_dup2, oldfd, newfd));
#else
  if (oldfd == newfd) return syscall(SYS_fcntl, oldfd, F_GETFD) < 0 ? -1 : oldfd;
  return static_cast<int>(syscall(SYS_dup3, oldfd, newfd, 0));
#endif
}

}  // namespace

// One trampoline per line of hooked_calls.def, resolved at its first call,
// declared as glibc declares it (real_calls.h).
#define ZCTLS_EXC_NOTHROW noexcept
#define ZCTLS_EXC_CANCELS
#define ZCTLS_HOOKED(EXC, ret, name, params, args, fallback) \
  ret name params ZCTLS_EXC_##EXC {                           \
    using Fn = ret(*) params;                                 \
    static std::atomic<Fn> slot{nullptr};                     \
    if (Fn fn = resolve(slot, #name)) return fn args;         \
    return fallback;                                          \
  }
// fcntl is variadic: called through a pointer of its own, variadic type
// (on x86-64 a variadic callee reads %al; through a fixed-argument pointer
// the caller would not set it).
#define ZCTLS_HOOKED_FCNTL(name)                               \
  int name(int fd, int cmd, void* arg) {                       \
    using Fn = int (*)(int, int, ...);                         \
    static std::atomic<Fn> slot{nullptr};                      \
    if (Fn fn = resolve(slot, #name)) return fn(fd, cmd, arg); \
    return static_cast<int>(syscall(SYS_fcntl, fd, cmd, arg)); \
  }
#include "hooked_calls.def"
#undef ZCTLS_HOOKED_FCNTL
#undef ZCTLS_HOOKED

// Each line of hooked_calls.def says what glibc's headers declare: the
// exports (which redeclare glibc's functions) then match it too.
#define ZCTLS_HOOKED(EXC, ret, name, params, args, fallback)                  \
  static_assert(std::is_same_v<decltype(::name), ret params ZCTLS_EXC_##EXC>, \
                #name ": hooked_calls.def differs from glibc's declaration");
#define ZCTLS_HOOKED_FCNTL(name)                                            \
  static_assert(std::is_same_v<decltype(::name), int(int, int, ...)>, #name \
                ": glibc's declaration changed");
#include "hooked_calls.def"
#undef ZCTLS_HOOKED_FCNTL
#undef ZCTLS_HOOKED
#undef ZCTLS_EXC_CANCELS
#undef ZCTLS_EXC_NOTHROW

}  // namespace zctls::real
