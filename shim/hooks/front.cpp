// The hook library's side of zctls (front.h): the plain-fd bitmap, the
// ZCTLS_* environment captured at load, and the engine, loaded by the first
// hook that meets a kTLS TX socket.  Built without a C++ runtime: no new,
// no exceptions, no function-local static built at run time.
#include "front.h"

#include <dlfcn.h>
#include <linux/close_range.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>

#include "plain_fds.h"
#include "real_calls.h"
#include "zctls/ktls.h"

namespace zctls::shim {
namespace {

// Built with -fno-zero-initialized-in-bss: the small variables of this
// library sit in .data, on the one writable page the loader dirties anyway
// (relocations), and a process that never meets kTLS touches no other.
// The three large arrays go to a .bss section of their own (ZCTLS_LARGE):
// their pages cost memory only once written.
#define ZCTLS_LARGE __attribute__((section(".bss.zctls_large")))

std::atomic<bool> g_disabled{false};  // ZCTLS_DISABLE: every hook passes through
ZCTLS_LARGE PlainFds g_plain;         // plain fds learnt before there is an engine

// --- the environment, as it was at load ---------------------------------

zctls_hook_side g_side{};
// The captured values, copied: nginx moves its environment's strings (its
// setproctitle) and replaces environ in its workers.  A process that sets
// none of them touches none of this page.
ZCTLS_LARGE char g_env_text[4096];

void capture_environment() noexcept {
  if (const char* v = secure_getenv("ZCTLS_DISABLE");
      v != nullptr && *v != '\0' && strcmp(v, "0") != 0) {
    g_disabled.store(true, std::memory_order_relaxed);
    return;
  }
  static constexpr const char* kNames[ZCTLS_ENV_COUNT] = {"ZCTLS_CONFIG",    "ZCTLS_RULES",
                                                          "ZCTLS_LOG_LEVEL", "ZCTLS_APP_FLAG",
                                                          "ZCTLS_OFFLOAD",   "JOURNAL_STREAM"};
  size_t used = 0;
  for (int i = 0; i < ZCTLS_ENV_COUNT; ++i) {
    const char* v = secure_getenv(kNames[i]);
    if (v == nullptr) continue;
    const size_t n = strlen(v) + 1;
    if (n <= sizeof g_env_text - used) {
      g_side.env[i] = static_cast<const char*>(memcpy(g_env_text + used, v, n));
      used += n;
    } else {
      // A long ZCTLS_RULES: load time, not a signal handler, so malloc
      // is allowed; never freed (the engine may read it at any time).
      g_side.env[i] = strdup(v);  // nullptr if out of memory: as if unset
    }
  }
}

// --- the engine -----------------------------------------------------------

// Where this library was loaded from, as the loader has it (its link map's
// name, valid for the life of the process), and the working directory of
// the time if that is relative (servers chdir later).  Only a relative
// LD_PRELOAD path writes to the buffer: the rest of this page stays clean.
const char* g_lib_path = nullptr;
ZCTLS_LARGE char g_lib_cwd[PATH_MAX];

void remember_lib_path() noexcept {
  Dl_info self{};
  if (dladdr(reinterpret_cast<void*>(&remember_lib_path), &self) == 0 || self.dli_fname == nullptr)
    return;
  if (self.dli_fname[0] != '/' && getcwd(g_lib_cwd, sizeof g_lib_cwd) == nullptr) return;
  g_lib_path = self.dli_fname;
}

// libzctls-engine.so beside this library, into `out` (PATH_MAX bytes);
// false if the path is unknown or too long.
bool engine_path(char* out) noexcept {
  if (g_lib_path == nullptr) return false;
  const char* slash = strrchr(g_lib_path, '/');
  const size_t dir = slash != nullptr ? static_cast<size_t>(slash - g_lib_path) + 1 : 0;
  const int n = snprintf(out, PATH_MAX, "%s%s%.*s%s", g_lib_cwd, g_lib_cwd[0] != '\0' ? "/" : "",
                         static_cast<int>(dir), g_lib_path, ZCTLS_ENGINE_FILE);
  return n > 0 && n < PATH_MAX;
}

// One line on stderr when the engine cannot be had (the engine's own log is
// what it failed to load); the process then passes through for good.
void say_no_engine(const char* path, const char* why) noexcept {
  char line[768];
  int n = snprintf(line, sizeof line,
                   "zctls[%d]: error: cannot load the engine %s: %s; zctls passes everything "
                   "through in this process\n",
                   static_cast<int>(getpid()), path, why != nullptr ? why : "unknown error");
  if (n < 0) return;
  if (n > static_cast<int>(sizeof line) - 1) n = sizeof line - 1;
  const ssize_t ignored = write(STDERR_FILENO, line, static_cast<size_t>(n));
  (void)ignored;
}

enum : int { kNotLoaded, kLoading, kLoaded, kFailed };
std::atomic<int> g_state{kNotLoaded};
std::atomic<const zctls_engine_ops*> g_ops{nullptr};
thread_local bool t_loading __attribute__((tls_model("initial-exec"))) = false;

const zctls_engine_ops* load_engine() noexcept {
  int state = g_state.load(std::memory_order_acquire);
  for (;;) {
    if (state == kLoaded) return g_ops.load(std::memory_order_acquire);
    if (state == kFailed || t_loading) return nullptr;  // t_loading: a hook inside dlopen
    if (state == kNotLoaded &&
        g_state.compare_exchange_weak(state, kLoading, std::memory_order_acq_rel))
      break;
    if (state == kLoading) {  // another thread is loading it: a few ms at most
      sched_yield();
      state = g_state.load(std::memory_order_acquire);
    }
  }
  t_loading = true;
  const int saved = errno;
  const zctls_engine_ops* ops = nullptr;
  char path[PATH_MAX];
  const bool have_path = engine_path(path);
  void* handle = have_path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : nullptr;
  if (!have_path) {
    say_no_engine(ZCTLS_ENGINE_FILE, "the path libzctls.so was loaded from is unknown or too long");
  } else if (handle == nullptr) {
    say_no_engine(path, dlerror());
  } else if (auto attach =
                 reinterpret_cast<zctls_engine_attach_fn>(dlsym(handle, ZCTLS_ENGINE_ENTRY))) {
    g_side.abi = ZCTLS_ENGINE_ABI;
    g_side.real_setsockopt = real::setsockopt;
    g_side.real_getsockopt = real::getsockopt;
    g_side.real_close = real::close;
    ops = attach(&g_side);
    if (ops == nullptr || ops->abi != ZCTLS_ENGINE_ABI) {
      ops = nullptr;
      say_no_engine(path,
                    "it is from another build of zctls (restart the process after an upgrade)");
    }
  } else {
    say_no_engine(path, "it has no " ZCTLS_ENGINE_ENTRY);
  }
  // A failed dlopen leaves nothing mapped; a refused engine stays mapped
  // (its constructors ran) but is never called.
  g_ops.store(ops, std::memory_order_release);
  g_state.store(ops != nullptr ? kLoaded : kFailed, std::memory_order_release);
  t_loading = false;
  errno = saved;
  return ops;
}

// The engine if it is loaded: one acquire load.
const zctls_engine_ops* ops() noexcept { return g_ops.load(std::memory_order_acquire); }

void child_after_fork() noexcept {
  // A thread of the parent was loading: that thread is not in this child.
  int loading = kLoading;
  if (g_state.compare_exchange_strong(loading, kFailed, std::memory_order_acq_rel)) return;
  if (const zctls_engine_ops* e = ops()) e->child_after_fork();
}

__attribute__((constructor)) void load_time() {
  capture_environment();
  if (g_disabled.load(std::memory_order_relaxed)) return;
  remember_lib_path();
  pthread_atfork(nullptr, nullptr, child_after_fork);
}

}  // namespace

bool known_plain(int fd) noexcept {
  if (g_plain.test(fd)) return true;
  const zctls_engine_ops* e = ops();
  return e != nullptr && e->known_plain(fd) != 0;
}

void before_send(Ticket& ticket, int out_fd, int in_fd, const off_t* offset) noexcept {
  ticket.counted = false;
  if (g_disabled.load(std::memory_order_relaxed)) return;
  const zctls_engine_ops* e = ops();
  if (e == nullptr) {
    if (g_state.load(std::memory_order_acquire) == kFailed) return;
    // No kTLS socket yet in this process: classify this one without the
    // engine; only a kTLS one brings it (issue 20 #4).  The bit goes in
    // first: a close, new fd or setsockopt of another thread that lands
    // after it clears it, and one that landed before is what the query
    // then sees.  One query per fd, as the engine makes.
    g_plain.set(out_fd);
    const int saved = errno;
    const kernel::TxKind kind =
        kernel::query_tx(out_fd, kernel::SockoptCalls{real::setsockopt, real::getsockopt});
    errno = saved;
    if (kind == kernel::TxKind::not_ktls) return;
    g_plain.clear(out_fd);
    if (kind == kernel::TxKind::ulp_without_tx) return;  // asked again at its next send
    e = load_engine();
    if (e == nullptr) return;
  }
  ticket.counted = e->before_send(ticket.bytes, out_fd, in_fd, offset) != 0;
}

void after_send(const Ticket& ticket, ssize_t result, const off_t* offset) noexcept {
  if (!ticket.counted) return;                      // not a kTLS TX socket: no work, no errno save
  ops()->after_send(ticket.bytes, result, offset);  // loaded: the ticket came from it
}

void after_setsockopt(int fd, int level, int optname, const void* value,
                      socklen_t length) noexcept {
  if (g_disabled.load(std::memory_order_relaxed)) return;
  const kernel::AppSockopt what = kernel::classify_sockopt(level, optname);
  if (what == kernel::AppSockopt::other) return;
  g_plain.clear(fd);  // a ULP or a key: not the plain socket it may have been
  // TCP_ULP alone makes no kTLS TX socket: the engine waits for a key or
  // the application's flag (or a send that finds one).
  const zctls_engine_ops* e = what == kernel::AppSockopt::ulp ? ops() : load_engine();
  if (e != nullptr) e->after_setsockopt(fd, level, optname, value, length);
}

// The fd hooks below run inside close() and dup2(), which must stay
// async-signal-safe: they never load the engine (no engine, no state to
// forget) and never allocate.
std::uint32_t before_close(int fd) noexcept {
  g_plain.clear(fd);
  const zctls_engine_ops* e = ops();
  if (e == nullptr) return kNoEpoch;
  return e->before_close(fd);
}

void after_close(int fd, std::uint32_t epoch) noexcept {
  g_plain.clear(fd);
  if (const zctls_engine_ops* e = ops()) e->after_close(fd, epoch);
}

void after_close_range(unsigned first, unsigned last, int flags) noexcept {
  if ((flags & CLOSE_RANGE_CLOEXEC) != 0) return;
  g_plain.clear_range(first, last);
  if (const zctls_engine_ops* e = ops()) e->after_close_range(first, last);
}

void after_dup(int oldfd, int newfd) noexcept {
  if (oldfd == newfd) return;
  g_plain.clear(newfd);
  if (const zctls_engine_ops* e = ops()) e->after_dup(newfd);
}

void after_new_fd(int fd) noexcept {
  g_plain.clear(fd);
  if (const zctls_engine_ops* e = ops()) e->forget(fd);
}

void after_new_fds(const int* fds, int n) noexcept {
  const zctls_engine_ops* e = ops();
  for (int i = 0; i < n; ++i) {
    g_plain.clear(fds[i]);
    if (e != nullptr) e->forget(fds[i]);
  }
}

void after_received_fds(const msghdr* msg) noexcept {
  if (msg == nullptr || msg->msg_control == nullptr || msg->msg_controllen == 0) return;
  const zctls_engine_ops* e = ops();
  for (cmsghdr* c = CMSG_FIRSTHDR(msg); c != nullptr;
       c = CMSG_NXTHDR(const_cast<msghdr*>(msg), c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t bytes = c->cmsg_len - CMSG_LEN(0);
    const auto* fds = reinterpret_cast<const int*>(CMSG_DATA(c));
    for (size_t i = 0; i < bytes / sizeof(int); ++i) {
      g_plain.clear(fds[i]);
      if (e != nullptr) e->forget(fds[i]);
    }
  }
}

void before_other_send(int fd) noexcept {
  // No engine yet: nothing in this process turned a flag on.  (A socket
  // inherited with the flag on is left as it is until the first sendfile
  // loads the engine.)
  if (const zctls_engine_ops* e = ops()) e->before_other_send(fd);
}

}  // namespace zctls::shim
