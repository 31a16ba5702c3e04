#include "runtime.h"

#include <linux/close_range.h>
#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <new>

#include "clock.h"
#include "config_source.h"
#include "environment.h"
#include "fork_safe.h"
#include "libc_kernel.h"
#include "log.h"
#include "plain_fds.h"
#include "real_calls.h"
#include "shared_stats.h"

namespace zctls::shim {
namespace {

thread_local int t_depth __attribute__((tls_model("initial-exec"))) = 0;

// Marks the shim's own work on this thread; hooks reached from inside it
// (a libc function calling close, a signal handler) just pass through.
class Reentry {
 public:
  Reentry() noexcept : outermost_(t_depth++ == 0), saved_errno_(errno) {}
  ~Reentry() {
    --t_depth;
    errno = saved_errno_;
  }
  bool outermost() const noexcept { return outermost_; }

 private:
  bool outermost_;
  int saved_errno_;
};

// Built by the first hook that needs it (a send on a kTLS socket, or a
// setsockopt that makes one), never destroyed: a server's other threads
// may still be in a hook while exit() runs static destructors.
BuiltOnce<Engine> g_engine;
// Plain fds learnt while there is no engine (plain_fds.h).
PlainFds g_plain;

// A fork child's counters, until its first send gives it a stats file of
// its own: the parent's mapping is shared with it.
Counters g_child_counters;
std::atomic<bool> g_reshare_counters{false};

void child_after_fork() noexcept {
  // First: every SpinLock another thread of the parent held is free now.
  note_fork_in_child();
  config_source_after_fork();
  Engine* e = g_engine.get();
  if (e == nullptr) return;
  for (auto& shard : g_child_counters.shards)
    for (auto& v : shard.values) v.store(0, std::memory_order_relaxed);
  e->use_counters(&g_child_counters);
  g_reshare_counters.store(true, std::memory_order_relaxed);
}

// A fork child's own stats file, made where the config it inherited says
// ([stats] dir; "" keeps the counters private, and no file is made).  A
// child whose parent never loaded a config (nginx's master) has nothing to
// do here: its first config load shares the counters (config_source.cpp).
// The issue-22 stray file was this made before any config was known, in
// the default directory.
// Under a lock that every thread seeing the flag waits for: a child's
// threads (nginx's aio pool) must not count into the private block while
// its counts are being carried over.
SpinLock g_reshare_lock;

void reshare_counters(Engine& e) noexcept {
  const SpinGuard guard(g_reshare_lock);
  if (!g_reshare_counters.load(std::memory_order_acquire)) return;
  if (e.config_loaded()) {
    const Config* cfg = e.current_config();
    if (Counters* shared = share_counters(cfg != nullptr ? cfg->stats : StatsConfig{})) {
      e.use_counters(shared);  // first: from now on nothing lands in the private block
      for (int i = 0; i < kCounterCount; ++i)
        shared->add(static_cast<Counter>(i), g_child_counters.get(static_cast<Counter>(i)));
    }
  }
  g_reshare_counters.store(false, std::memory_order_release);
}

__attribute__((constructor)) void load_time() {
  // The kernel's clock, not an interposed one (clock.h).
  if (const ClockGettime fn = real::libc_clock_gettime()) use_clock(fn);
  capture_log_environment();  // first: capture_environment may log
  capture_environment();
  if (!disabled()) pthread_atfork(nullptr, nullptr, child_after_fork);
}

}  // namespace

Engine* engine() noexcept {
  return g_engine.get_or_build([]() noexcept {
    return new (std::nothrow) Engine(libc_kernel(), load_config, reload_config);
  });
}

bool known_plain(int fd) noexcept {
  if (g_plain.test(fd)) return true;
  const Engine* e = g_engine.get();
  return e != nullptr && e->known_plain(fd);
}

SendTicket before_send(int out_fd, int in_fd, const off_t* offset) noexcept {
  if (disabled()) return {};
  const Reentry guard;
  if (!guard.outermost()) return {};
  Engine* e = g_engine.get();
  if (e == nullptr) {
    // No kTLS socket yet in this process: classify this one without
    // building anything; only a kTLS one brings the engine (issue 20 #4).
    // The bit goes in first: a close, new fd or setsockopt of another
    // thread that lands after it clears it, and one that landed before is
    // what the query then sees.  One query per fd, as the engine makes.
    g_plain.set(out_fd);
    const kernel::TxKind kind = libc_kernel().query_tx(out_fd);
    if (kind == kernel::TxKind::not_ktls) return {};
    g_plain.clear(out_fd);
    if (kind == kernel::TxKind::ulp_without_tx) return {};  // asked again at its next send
    e = engine();
    if (e == nullptr) return {};
  }
  if (g_reshare_counters.load(std::memory_order_acquire)) reshare_counters(*e);
  return e->before_send(out_fd, in_fd, offset);
}

void after_send(const SendTicket& ticket, ssize_t result, const off_t* offset) noexcept {
  if (!ticket.counted) return;  // not a kTLS TX socket: no work, no errno save
  const Reentry guard;
  if (!guard.outermost()) return;
  Engine* e = g_engine.get();  // built: the ticket came from it
  // No file I/O here: the node_exporter textfile is the CLI's job
  // (`zctls stats --textfile`, from the shipped timer), not a worker's
  // inside sendfile (issue 20 #5).
  e->after_send(ticket, result, offset);
}

void after_setsockopt(int fd, int level, int optname, const void* value,
                      socklen_t length) noexcept {
  if (disabled()) return;
  const kernel::AppSockopt what = kernel::classify_sockopt(level, optname);
  if (what == kernel::AppSockopt::other) return;
  g_plain.clear(fd);  // a ULP or a key: not the plain socket it may have been
  const Reentry guard;
  if (!guard.outermost()) return;
  // TCP_ULP alone makes no kTLS TX socket: the engine waits for a key or
  // the application's flag (or a send that finds one).
  Engine* e = what == kernel::AppSockopt::ulp ? g_engine.get() : engine();
  if (e != nullptr) e->after_app_setsockopt(fd, level, optname, value, length);
}

// The fd hooks below run inside close() and dup2(), which must stay
// async-signal-safe: they never build the engine (no engine, no state to
// forget) and never allocate.
std::uint32_t before_close(int fd) noexcept {
  g_plain.clear(fd);
  Engine* e = g_engine.get();
  if (e == nullptr || disabled()) return kNoEpoch;
  const Reentry guard;
  if (guard.outermost()) e->before_close(fd);
  return e->close_epoch(fd);
}

void after_close(int fd, std::uint32_t epoch) noexcept {
  g_plain.clear(fd);
  Engine* e = g_engine.get();
  if (e == nullptr) return;
  if (epoch == kNoEpoch) {
    e->after_close(fd);
  } else {
    e->after_close_since(fd, epoch);
  }
}

void after_close_range(unsigned first, unsigned last, int flags) noexcept {
  if ((flags & CLOSE_RANGE_CLOEXEC) != 0) return;
  g_plain.clear_range(first, last);
  if (Engine* e = g_engine.get()) e->after_close_range(first, last);
}

void after_dup(int oldfd, int newfd) noexcept {
  if (oldfd == newfd) return;
  g_plain.clear(newfd);
  if (Engine* e = g_engine.get()) e->after_dup(newfd);
}

void after_new_fd(int fd) noexcept {
  g_plain.clear(fd);
  if (Engine* e = g_engine.get()) e->forget(fd);
}

void after_new_fds(const int* fds, int n) noexcept {
  Engine* e = g_engine.get();
  for (int i = 0; i < n; ++i) {
    g_plain.clear(fds[i]);
    if (e != nullptr) e->forget(fds[i]);
  }
}

void after_received_fds(const msghdr* msg) noexcept {
  if (msg == nullptr || msg->msg_control == nullptr || msg->msg_controllen == 0) return;
  Engine* e = g_engine.get();
  for (cmsghdr* c = CMSG_FIRSTHDR(msg); c != nullptr;
       c = CMSG_NXTHDR(const_cast<msghdr*>(msg), c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t bytes = c->cmsg_len - CMSG_LEN(0);
    const auto* fds = reinterpret_cast<const int*>(CMSG_DATA(c));
    for (std::size_t i = 0; i < bytes / sizeof(int); ++i) {
      g_plain.clear(fds[i]);
      if (e != nullptr) e->forget(fds[i]);
    }
  }
}

void before_other_send(int fd) noexcept {
  if (disabled()) return;
  const Reentry guard;
  if (!guard.outermost()) return;
  // No engine yet: nothing in this process turned a flag on.  (A socket
  // inherited with the flag on is left as it is until the first sendfile
  // builds the engine.)
  if (Engine* e = g_engine.get()) e->before_other_send(fd);
}

}  // namespace zctls::shim
