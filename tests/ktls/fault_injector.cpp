// libzctls_test_faults.so: a test-only preload that makes one call of a
// chosen function fail with a chosen errno, or send fewer bytes than asked
// (a short count), instead of running it.  Loaded after libzctls.so
// (LD_PRELOAD=libzctls.so:libzctls_test_faults.so), it sits between the
// shim and libc: the shim's "real" calls, which it finds with
// dlsym(RTLD_NEXT), land here first.  Loaded alone it does the same to the
// application directly, which gives the run to compare against.
//
// One arm, one shot: zctls_fault_arm() names the call (and, for the
// sockopt calls, the level and option), the errno to fail with or the
// short count, and the first matching call takes it.  zctls_fault_fired()
// says whether it did, so that a test whose fault never fired can tell.
#include <dlfcn.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#define ZCTLS_FAULT_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

struct Arm {
  char call[32] = {};
  int level = -1;    // -1: any (setsockopt/getsockopt only)
  int optname = -1;  // -1: any
  int err = 0;       // > 0: fail with it; 0: run with count cut to short_count
  long short_count = 0;
};

Arm g_arm;
std::atomic<bool> g_armed{false};
std::atomic<int> g_fired{0};

// Takes the armed fault if it matches this call: returns true once.
bool take(const char* call, int level = -1, int optname = -1) noexcept {
  if (!g_armed.load(std::memory_order_acquire)) return false;
  if (std::strcmp(call, g_arm.call) != 0) return false;
  if (g_arm.level != -1 && g_arm.level != level) return false;
  if (g_arm.optname != -1 && g_arm.optname != optname) return false;
  bool expected = true;
  if (!g_armed.compare_exchange_strong(expected, false)) return false;
  g_fired.fetch_add(1);
  return true;
}

template <typename Fn>
Fn next(const char* name) noexcept {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

// A sendfile-like call: fail, or run with the count cut short.
template <typename Fn, typename Off>
ssize_t sendfile_like(const char* name, int out_fd, int in_fd, Off* offset, size_t count) noexcept {
  static const Fn real = next<Fn>(name);
  if (take(name)) {
    if (g_arm.err != 0) {
      errno = g_arm.err;
      return -1;
    }
    count = std::min(count, static_cast<size_t>(g_arm.short_count));
  }
  return real(out_fd, in_fd, offset, count);
}

// A call that can only fail: fail, or run.
#define ZCTLS_FAIL_OR_RUN(name, ...)             \
  do {                                           \
    if (take(name __VA_OPT__(, ) __VA_ARGS__)) { \
      errno = g_arm.err;                         \
      return -1;                                 \
    }                                            \
  } while (0)

}  // namespace

ZCTLS_FAULT_EXPORT void zctls_fault_arm(const char* call, int level, int optname, int err,
                                        long short_count) {
  g_armed.store(false);
  std::strncpy(g_arm.call, call, sizeof g_arm.call - 1);
  g_arm.level = level;
  g_arm.optname = optname;
  g_arm.err = err;
  g_arm.short_count = short_count;
  g_fired.store(0);
  g_armed.store(true, std::memory_order_release);
}

ZCTLS_FAULT_EXPORT void zctls_fault_disarm() { g_armed.store(false); }

ZCTLS_FAULT_EXPORT int zctls_fault_fired() { return g_fired.load(); }

ZCTLS_FAULT_EXPORT ssize_t sendfile(int out_fd, int in_fd, off_t* offset, size_t count) {
  return sendfile_like<ssize_t (*)(int, int, off_t*, size_t)>("sendfile", out_fd, in_fd, offset,
                                                              count);
}

ZCTLS_FAULT_EXPORT ssize_t sendfile64(int out_fd, int in_fd, off64_t* offset, size_t count) {
  return sendfile_like<ssize_t (*)(int, int, off64_t*, size_t)>("sendfile64", out_fd, in_fd, offset,
                                                                count);
}

// Only failures: a short count needs a real SSL object, which the fault
// table's callers do not build (the shim's hook forwards SSL_sendfile
// untouched; libssl's own sendfile(2) is what the shim decides on).
ZCTLS_FAULT_EXPORT long SSL_sendfile(void* ssl, int fd, off_t offset, size_t size, int flags) {
  using Fn = long (*)(void*, int, off_t, size_t, int);
  ZCTLS_FAIL_OR_RUN("SSL_sendfile");
  static const Fn real = next<Fn>("SSL_sendfile");
  if (real == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  return real(ssl, fd, offset, size, flags);
}

ZCTLS_FAULT_EXPORT int setsockopt(int fd, int level, int optname, const void* value,
                                  socklen_t length) {
  ZCTLS_FAIL_OR_RUN("setsockopt", level, optname);
  static const auto real = next<int (*)(int, int, int, const void*, socklen_t)>("setsockopt");
  return real(fd, level, optname, value, length);
}

ZCTLS_FAULT_EXPORT int getsockopt(int fd, int level, int optname, void* value, socklen_t* length) {
  ZCTLS_FAIL_OR_RUN("getsockopt", level, optname);
  static const auto real = next<int (*)(int, int, int, void*, socklen_t*)>("getsockopt");
  return real(fd, level, optname, value, length);
}

ZCTLS_FAULT_EXPORT int close(int fd) {
  ZCTLS_FAIL_OR_RUN("close");
  static const auto real = next<int (*)(int)>("close");
  return real(fd);
}

ZCTLS_FAULT_EXPORT int dup2(int oldfd, int newfd) {
  ZCTLS_FAIL_OR_RUN("dup2");
  static const auto real = next<int (*)(int, int)>("dup2");
  return real(oldfd, newfd);
}

ZCTLS_FAULT_EXPORT int dup3(int oldfd, int newfd, int flags) {
  ZCTLS_FAIL_OR_RUN("dup3");
  static const auto real = next<int (*)(int, int, int)>("dup3");
  return real(oldfd, newfd, flags);
}

ZCTLS_FAULT_EXPORT int close_range(unsigned first, unsigned last, int flags) {
  ZCTLS_FAIL_OR_RUN("close_range");
  static const auto real = next<int (*)(unsigned, unsigned, int)>("close_range");
  return real(first, last, flags);
}
