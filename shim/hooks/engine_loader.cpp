#include "engine_loader.h"

#include <dlfcn.h>
#include <fcntl.h>
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

namespace zctls::hooks {
namespace {

// Built with -fno-zero-initialized-in-bss (front.cpp): the small variables
// sit in .data; the buffers, written only for a relative LD_PRELOAD or
// while loading (one thread at a time), in a .bss section of their own.
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
// The messages: at most one "tries again" and one final one per process.
std::atomic<bool> g_said_transient{false}, g_said_final{false};
// Set on this thread for the whole of load_engine: a hook reached from
// inside dlopen (the engine's constructors) or from a signal handler that
// interrupted this thread passes through instead of waiting for itself.
thread_local bool t_loading __attribute__((tls_model("initial-exec"))) = false;

// The loading thread's buffers (only the thread in kLoading uses them):
// kept off its stack, which may be small.
ZCTLS_LARGE char g_path[PATH_MAX];    // the engine tried last
ZCTLS_LARGE char g_name[PATH_MAX];    // this library's name, made absolute
ZCTLS_LARGE char g_target[PATH_MAX];  // ...and resolved
ZCTLS_LARGE char g_message[1024];     // the line to say, once the state is out
bool g_message_transient = false;

long long now_ns() noexcept {
  timespec ts{};
  // The kernel's clock, not an interposed clock_gettime (libfaketime).
  syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// The engine file in the directory of `lib` (made absolute with the
// working directory of load time if `relative`), into g_path; false if too
// long.
bool engine_beside(const char* lib, bool relative) noexcept {
  const char* slash = strrchr(lib, '/');
  const size_t dir = slash != nullptr ? static_cast<size_t>(slash - lib) + 1 : 0;
  const int n = snprintf(g_path, sizeof g_path, "%s%s%.*s%s", relative ? g_lib_cwd : "",
                         relative ? "/" : "", static_cast<int>(dir), lib, ZCTLS_ENGINE_FILE);
  return n > 0 && n < PATH_MAX;
}

// The same beside the file this library's name resolves to, if that is
// another directory's (a symlink elsewhere pointing at the packaged one).
bool engine_beside_target() noexcept {
  const bool relative = g_lib_path[0] != '/';
  const int n = snprintf(g_name, sizeof g_name, "%s%s%s", relative ? g_lib_cwd : "",
                         relative ? "/" : "", g_lib_path);
  if (n <= 0 || n >= PATH_MAX || realpath(g_name, g_target) == nullptr) return false;
  return strcmp(g_target, g_name) != 0 && engine_beside(g_target, false);
}

// dlopen of g_path; errno is what this dlopen left (0 if it set none: most
// of its errors are not errno's).
void* open_engine(int* err) noexcept {
  errno = 0;
  void* handle = dlopen(g_path, RTLD_NOW | RTLD_LOCAL);
  *err = errno;
  return handle;
}

// Prepares the message about g_path; say() writes it later.
void message(const char* what, bool transient) noexcept {
  snprintf(g_message, sizeof g_message, "zctls[%d]: error: cannot load the engine %s: %s; %s",
           static_cast<int>(getpid()), g_path[0] != '\0' ? g_path : ZCTLS_ENGINE_FILE, what,
           transient ? "zctls passes through and tries again"
                     : "zctls passes everything through in this process");
  g_message_transient = transient;
}

// Writes the prepared message (after the state is published: a full pipe
// on fd 2 must not keep other threads waiting), on fd 2 if that is a log
// (stderr_log.h), never waiting for a reader, with raw syscalls (write(3)
// is a cancellation point; sendfile and setsockopt are not).  At most once per kind.
void say() noexcept {
  if (g_message[0] == '\0') return;
  std::atomic<bool>& said = g_message_transient ? g_said_transient : g_said_final;
  if (said.exchange(true, std::memory_order_relaxed)) return;
  unsigned long long dev = 0, ino = 0;
  parse_journal_stream(g_side.env[ZCTLS_ENV_JOURNAL_STREAM], &dev, &ino);
  if (stderr_not_a_log(dev, ino) != nullptr) return;
  size_t n = strnlen(g_message, sizeof g_message - 1);
  g_message[n++] = '\n';
  write_line_to_fd2(g_message, n);  // never waits for a reader
}

// One try: the ops, or nullptr with the state to go to (kFailed, or
// kNotLoaded: try again later) and a message prepared.
const zctls_engine_ops* try_load(int* next_state) noexcept {
  *next_state = kFailed;
  g_message[0] = g_path[0] = '\0';
  if (g_lib_path == nullptr || !engine_beside(g_lib_path, g_lib_path[0] != '/')) {
    message("the path libzctls.so was loaded from is unknown or too long", false);
    return nullptr;
  }
  int err = 0;
  void* handle = open_engine(&err);
  const char* why = handle == nullptr ? dlerror() : nullptr;
  if (handle == nullptr && engine_beside_target()) {
    handle = open_engine(&err);  // the message is about the last one tried
    why = handle == nullptr ? dlerror() : nullptr;
  }
  if (handle == nullptr) {
    // dlopen's errno is not reliable (it can fail for want of fds with
    // errno 0): whether the file could be opened now says it.
    if (err == 0) {
      const long fd = syscall(SYS_openat, AT_FDCWD, g_path, O_RDONLY | O_CLOEXEC, 0);
      err = fd < 0 ? errno : 0;
      if (fd >= 0) syscall(SYS_close, fd);
    }
    const bool transient = err == EMFILE || err == ENFILE || err == ENOMEM;
    message(why != nullptr ? why : "unknown error", transient);
    if (transient) *next_state = kNotLoaded;
    return nullptr;
  }
  auto attach = reinterpret_cast<zctls_engine_attach_fn>(dlsym(handle, ZCTLS_ENGINE_ENTRY));
  if (attach == nullptr) {
    message("it has no " ZCTLS_ENGINE_ENTRY, false);
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
    message("out of memory", true);
    *next_state = kNotLoaded;
    return nullptr;
  }
  if (ops->abi != ZCTLS_ENGINE_ABI) {
    // Not possible with a file name that carries the ABI, unless the file
    // was replaced by another build's: unmapped again, so that `zctls
    // status` lists the process as without an engine.
    message("it is from another build of zctls (restart the process after an upgrade)", false);
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

bool another_copy_first() noexcept {
  Dl_info self{}, first{};
  void* const found = dlsym(RTLD_DEFAULT, "setsockopt");
  if (found == nullptr || dladdr(reinterpret_cast<void*>(&another_copy_first), &self) == 0 ||
      dladdr(found, &first) == 0 || first.dli_fbase == self.dli_fbase || first.dli_fname == nullptr)
    return false;
  // Another interposer of setsockopt (socket_wrapper) is not zctls: by
  // the file's name, as the package and the build make it.
  const char* slash = strrchr(first.dli_fname, '/');
  const char* name = slash != nullptr ? slash + 1 : first.dli_fname;
  if (strncmp(name, "libzctls.so", sizeof "libzctls.so" - 1) != 0) return false;
  unsigned long long dev = 0, ino = 0;
  parse_journal_stream(secure_getenv("JOURNAL_STREAM"), &dev, &ino);
  if (stderr_not_a_log(dev, ino) == nullptr) {
    const int n = snprintf(g_message, sizeof g_message,
                           "zctls[%d]: notice: %s is loaded before %s: that copy of zctls acts, "
                           "this one passes everything through\n",
                           static_cast<int>(getpid()), first.dli_fname,
                           self.dli_fname != nullptr ? self.dli_fname : "this copy");
    if (n > 0) write_line_to_fd2(g_message, strnlen(g_message, sizeof g_message));
    g_message[0] = '\0';
  }
  return true;
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
  long long give_up = 0;  // when waiting for another thread's load ends
  for (;;) {
    int state = g_state.load(std::memory_order_acquire);
    if (state == kLoaded) {
      ops = attached_engine();
      break;
    }
    if (state == kFailed) break;
    if (state == kNotLoaded) {
      const long long retry_after = g_retry_after_ns.load(std::memory_order_acquire);
      if (retry_after != 0 && now_ns() < retry_after) break;
      if (!g_state.compare_exchange_strong(state, kLoading, std::memory_order_acq_rel)) continue;
      // Another thread may have failed and set a new retry time between
      // the two loads above: give it back.
      if (g_retry_after_ns.load(std::memory_order_acquire) != retry_after) {
        g_state.store(kNotLoaded, std::memory_order_release);
        break;
      }
      // dlopen runs the engine's constructors; no cancellation in the
      // middle of that (the state would stay "loading" for ever).
      int cancel = 0;
      pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
      int next = kFailed;
      ops = try_load(&next);
      if (next == kNotLoaded)
        g_retry_after_ns.store(now_ns() + 1000000000LL, std::memory_order_release);
      // The ops first: a fork child that sees "loading" checks them.
      if (ops != nullptr) g_ops.store(ops, std::memory_order_release);
      g_state.store(next, std::memory_order_release);
      say();
      pthread_setcancelstate(cancel, nullptr);
      break;
    }
    // Another thread is loading it: a few milliseconds.
    const long long now = now_ns();
    if (give_up == 0) give_up = now + 5 * 1000000000LL;
    if (now > give_up) break;  // this call passes through
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

}  // namespace zctls::hooks
