#include "engine_loader.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>

#include "real_calls.h"
#include "stderr_log.h"

namespace zctls::shim {
namespace {

// Built with -fno-zero-initialized-in-bss (front.cpp): the small variables
// sit in .data; the path buffer, written only for a relative LD_PRELOAD,
// in a .bss section of its own.
#define ZCTLS_LARGE __attribute__((section(".bss.zctls_large")))

zctls_hook_side g_side{};

// Where this library was loaded from, as the loader has it (its link map's
// name, valid for the life of the process), and the working directory of
// the time if that is relative (servers chdir later).
const char* g_lib_path = nullptr;
ZCTLS_LARGE char g_lib_cwd[PATH_MAX];

enum : int { kNotLoaded, kLoading, kLoaded, kFailed };
std::atomic<int> g_state{kNotLoaded};
std::atomic<const zctls_engine_ops*> g_ops{nullptr};
// A failed try for want of fds or memory: not again before this
// (CLOCK_MONOTONIC, ns).
std::atomic<long long> g_retry_after_ns{0};
std::atomic<bool> g_said{false};  // the one message is out
// Set on this thread for the whole of load_engine: a hook reached from
// inside dlopen (the engine's constructors) or from a signal handler that
// interrupted this thread passes through instead of waiting for itself.
thread_local bool t_loading __attribute__((tls_model("initial-exec"))) = false;

long long now_ns() noexcept {
  timespec ts{};
  // The kernel's clock, not an interposed clock_gettime (libfaketime).
  syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// libzctls-engine.so in the directory of `lib` (the link map's name; made
// absolute with the working directory of load time), into `out`
// (PATH_MAX bytes); false if unknown or too long.
bool engine_beside(const char* lib, bool relative, char* out) noexcept {
  const char* slash = strrchr(lib, '/');
  const size_t dir = slash != nullptr ? static_cast<size_t>(slash - lib) + 1 : 0;
  const int n = snprintf(out, PATH_MAX, "%s%s%.*s%s", relative ? g_lib_cwd : "",
                         relative ? "/" : "", static_cast<int>(dir), lib, ZCTLS_ENGINE_FILE);
  return n > 0 && n < PATH_MAX;
}

// The same beside the file the name resolves to, if that differs (a
// symlink elsewhere pointing at the packaged library).
bool engine_beside_target(char* out) noexcept {
  char name[PATH_MAX], target[PATH_MAX];
  const bool relative = g_lib_path[0] != '/';
  const int n = snprintf(name, sizeof name, "%s%s%s", relative ? g_lib_cwd : "",
                         relative ? "/" : "", g_lib_path);
  if (n <= 0 || n >= PATH_MAX || realpath(name, target) == nullptr) return false;
  return strcmp(target, name) != 0 && engine_beside(target, false, out);
}

// The one message, on fd 2 if that is a log (stderr_log.h), written with a
// raw syscall (write(3) is a cancellation point; sendfile and setsockopt
// are not).
void say(const char* path, const char* what) noexcept {
  if (g_said.exchange(true, std::memory_order_relaxed)) return;
  unsigned long long dev = 0, ino = 0;
  if (const char* stream = g_side.env[ZCTLS_ENV_JOURNAL_STREAM])
    sscanf(stream, "%llu:%llu", &dev, &ino);
  if (stderr_not_a_log(dev, ino) != nullptr) return;
  char line[1024];
  int n = snprintf(line, sizeof line - 1, "zctls[%d]: error: cannot load the engine %s: %s",
                   static_cast<int>(getpid()), path, what);
  if (n < 0) return;
  if (n > static_cast<int>(sizeof line) - 2) n = sizeof line - 2;
  line[n++] = '\n';
  syscall(SYS_write, 2, line, static_cast<size_t>(n));
}

// One try: the ops, or nullptr with the state to go to.
const zctls_engine_ops* try_load(int* next_state) noexcept {
  *next_state = kFailed;
  char path[PATH_MAX];
  if (g_lib_path == nullptr || !engine_beside(g_lib_path, g_lib_path[0] != '/', path)) {
    say(ZCTLS_ENGINE_FILE,
        "the path libzctls.so was loaded from is unknown or too long; zctls passes everything "
        "through in this process");
    return nullptr;
  }
  void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  int err = errno;
  if (handle == nullptr) {
    char other[PATH_MAX];
    if (engine_beside_target(other)) {
      handle = dlopen(other, RTLD_NOW | RTLD_LOCAL);
      if (handle != nullptr) memcpy(path, other, sizeof other);
    }
  }
  if (handle == nullptr) {
    const char* why = dlerror();
    char what[768];
    const bool transient = err == EMFILE || err == ENFILE || err == ENOMEM;
    snprintf(what, sizeof what, "%s; %s", why != nullptr ? why : "unknown error",
             transient ? "zctls passes through and tries again"
                       : "zctls passes everything through in this process");
    say(path, what);
    if (transient) *next_state = kNotLoaded;
    return nullptr;
  }
  auto attach = reinterpret_cast<zctls_engine_attach_fn>(dlsym(handle, ZCTLS_ENGINE_ENTRY));
  if (attach == nullptr) {
    say(path, "it has no " ZCTLS_ENGINE_ENTRY "; zctls passes everything through in this process");
    dlclose(handle);
    return nullptr;
  }
  g_side.abi = ZCTLS_ENGINE_ABI;
  g_side.ticket_bytes = ZCTLS_TICKET_BYTES;
  g_side.real_setsockopt = real::setsockopt;
  g_side.real_getsockopt = real::getsockopt;
  g_side.real_close = real::close;
  const zctls_engine_ops* ops = attach(&g_side);
  if (ops == nullptr) {  // out of memory inside the engine
    say(path, "out of memory; zctls passes through and tries again");
    *next_state = kNotLoaded;
    return nullptr;
  }
  if (ops->abi != ZCTLS_ENGINE_ABI) {
    // Installed by an upgrade after this process started.  Unmapped, so
    // that `zctls status` lists the process as without an engine.
    say(path,
        "it is from another build of zctls (restart the process after an upgrade); zctls "
        "passes everything through in this process");
    dlclose(handle);
    return nullptr;
  }
  *next_state = kLoaded;
  return ops;
}

}  // namespace

zctls_hook_side& hook_side() noexcept { return g_side; }

void remember_lib_path() noexcept {
  Dl_info self{};
  if (dladdr(reinterpret_cast<void*>(&remember_lib_path), &self) == 0 || self.dli_fname == nullptr)
    return;
  if (self.dli_fname[0] != '/' && getcwd(g_lib_cwd, sizeof g_lib_cwd) == nullptr) return;
  g_lib_path = self.dli_fname;
}

const zctls_engine_ops* attached_engine() noexcept { return g_ops.load(std::memory_order_acquire); }

bool engine_failed() noexcept { return g_state.load(std::memory_order_acquire) == kFailed; }

const zctls_engine_ops* load_engine() noexcept {
  if (const zctls_engine_ops* ops = attached_engine()) return ops;
  if (t_loading) return nullptr;
  t_loading = true;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  const int saved = errno;
  const zctls_engine_ops* ops = nullptr;
  const long long give_up = now_ns() + 5 * 1000000000LL;
  for (;;) {
    int state = g_state.load(std::memory_order_acquire);
    if (state == kLoaded) {
      ops = attached_engine();
      break;
    }
    if (state == kFailed) break;
    if (state == kNotLoaded) {
      if (now_ns() < g_retry_after_ns.load(std::memory_order_relaxed)) break;
      if (!g_state.compare_exchange_strong(state, kLoading, std::memory_order_acq_rel)) continue;
      // dlopen runs the engine's constructors; no cancellation in the
      // middle of that (the state would stay "loading" for ever).
      int cancel = 0;
      pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
      int next = kFailed;
      ops = try_load(&next);
      if (next == kNotLoaded) g_retry_after_ns.store(now_ns() + 1000000000LL);
      // The ops first: a fork child that sees "loading" checks them.
      if (ops != nullptr) g_ops.store(ops, std::memory_order_release);
      g_state.store(next, std::memory_order_release);
      pthread_setcancelstate(cancel, nullptr);
      break;
    }
    // Another thread is loading it: a few milliseconds.
    if (now_ns() > give_up) break;  // this call passes through
    sched_yield();
  }
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t_loading = false;
  errno = saved;
  return ops;
}

const zctls_engine_ops* engine_after_fork_in_child() noexcept {
  if (const zctls_engine_ops* ops = attached_engine()) {
    // Attached, though the loading thread (not in this child) may not have
    // published the state yet.
    g_state.store(kLoaded, std::memory_order_release);
    return ops;
  }
  int loading = kLoading;
  g_state.compare_exchange_strong(loading, kFailed, std::memory_order_acq_rel);
  return nullptr;
}

}  // namespace zctls::shim
