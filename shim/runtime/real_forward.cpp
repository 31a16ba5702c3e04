// The real functions, inside the engine: the hook library resolved them
// (real_calls.cpp) and handed them over at attach (engine_abi.h).  The
// engine calls no other hooked name through zctls::real.
#include <dlfcn.h>

#include "real_calls.h"
#include "runtime.h"

namespace zctls::real {

int setsockopt(int fd, int level, int optname, const void* value, socklen_t length) noexcept {
  return runtime::hook_side().real_setsockopt(fd, level, optname, value, length);
}

int getsockopt(int fd, int level, int optname, void* value, socklen_t* length) noexcept {
  return runtime::hook_side().real_getsockopt(fd, level, optname, value, length);
}

int close(int fd) { return runtime::hook_side().real_close(fd); }

ClockGettimeFn libc_clock_gettime() noexcept {
  void* libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  if (libc == nullptr) return nullptr;
  void* sym = dlsym(libc, "clock_gettime");
  dlclose(libc);  // only drops the reference RTLD_NOLOAD took: libc stays
  return reinterpret_cast<ClockGettimeFn>(sym);
}

}  // namespace zctls::real
