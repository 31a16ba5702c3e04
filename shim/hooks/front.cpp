// The hook library's side of zctls (front.h): the plain-fd bitmap, the
// ZCTLS_* environment captured at load, and the engine, loaded by the first
// hook that meets a kTLS TX socket.  Built without a C++ runtime: no new,
// no exceptions, no function-local static built at run time.
#include "front.h"

#include <linux/close_range.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "engine_loader.h"
#include "plain_fds.h"
#include "real_calls.h"
#include "kernel/ktls.h"

namespace zctls::hooks {
namespace {

// Built with -fno-zero-initialized-in-bss: the small variables of this
// library sit in .data, on the one writable page the loader dirties anyway
// (relocations), and a process that never meets kTLS touches no other.
// The large arrays (here and in engine_loader.cpp) go to a .bss section of
// their own (ZCTLS_LARGE): their pages cost memory only once written.
#define ZCTLS_LARGE __attribute__((section(".bss.zctls_large")))

std::atomic<bool> g_disabled{false};  // ZCTLS_DISABLE: every hook passes through
ZCTLS_LARGE PlainFds g_plain;         // plain fds learnt before there is an engine

// --- the environment, as it was at load ---------------------------------

// The captured values (hook_side().env), copied: nginx moves its
// environment's strings (its setproctitle) and replaces environ in its
// workers.  A process that sets none of them touches none of this page.
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
  zctls_hook_side& side = hook_side();
  size_t used = 0;
  for (int i = 0; i < ZCTLS_ENV_COUNT; ++i) {
    const char* v = secure_getenv(kNames[i]);
    if (v == nullptr) continue;
    // A relative ZCTLS_CONFIG names a file in the working directory of
    // now: servers chdir (nginx to /, lighttpd into its chroot) before
    // their first kTLS socket, when the engine reads it.
    if (i == ZCTLS_ENV_CONFIG && v[0] != '/' && v[0] != '\0' &&
        getcwd(g_env_text + used, sizeof g_env_text - used) != nullptr) {
      const size_t dir = strlen(g_env_text + used), n = strlen(v) + 1;
      if (dir + 1 + n <= sizeof g_env_text - used) {
        g_env_text[used + dir] = '/';
        memcpy(g_env_text + used + dir + 1, v, n);
        side.env[i] = g_env_text + used;
        used += dir + 1 + n;
        continue;
      }
    }
    const size_t n = strlen(v) + 1;
    if (n <= sizeof g_env_text - used) {
      side.env[i] = static_cast<const char*>(memcpy(g_env_text + used, v, n));
      used += n;
    } else {
      // A long ZCTLS_RULES: load time, not a signal handler, so malloc
      // is allowed; never freed (the engine may read it at any time).
      side.env[i] = strdup(v);
      if (side.env[i] == nullptr) {  // out of memory: stay out of the way
        g_disabled.store(true, std::memory_order_relaxed);
        return;
      }
    }
  }
}

void child_after_fork() noexcept {
  if (const zctls_engine_ops* e = engine_after_fork_in_child()) e->child_after_fork();
}

__attribute__((constructor)) void load_time() {
  // Two copies in one process (two builds preloaded from two
  // directories): the first acts; this one, whose hooks are the first's
  // real calls, must not take the first's flag for the application's.
  if (another_copy_first()) {
    g_disabled.store(true, std::memory_order_relaxed);
    return;
  }
  capture_environment();
  if (g_disabled.load(std::memory_order_relaxed)) return;
  remember_lib_path();
  pthread_atfork(nullptr, nullptr, child_after_fork);
}

}  // namespace

bool known_plain(int fd) noexcept {
  if (g_plain.test(fd)) return true;
  const zctls_engine_ops* e = attached_engine();
  return e != nullptr && e->known_plain(fd) != 0;
}

void before_send(Ticket& ticket, int out_fd, int in_fd, const off_t* offset) noexcept {
  ticket.counted = false;
  if (g_disabled.load(std::memory_order_relaxed)) return;
  const zctls_engine_ops* e = attached_engine();
  if (e == nullptr) {
    if (engine_failed()) return;
    // No kTLS socket yet in this process: classify this one without the
    // engine; only a kTLS one brings it.  The bit goes in
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
  if (!ticket.counted) return;  // not a kTLS TX socket: no work, no errno save
  attached_engine()->after_send(ticket.bytes, result, offset);  // loaded: the ticket came from it
}

void after_setsockopt(int fd, int level, int optname, const void* value,
                      socklen_t length) noexcept {
  if (g_disabled.load(std::memory_order_relaxed)) return;
  const kernel::AppSockopt what = kernel::classify_sockopt(level, optname);
  if (what == kernel::AppSockopt::other) return;
  g_plain.clear(fd);  // a ULP or a key: not the plain socket it may have been
  // TCP_ULP alone makes no kTLS TX socket: the engine waits for a key or
  // the application's flag (or a send that finds one).
  const zctls_engine_ops* e = what == kernel::AppSockopt::ulp ? attached_engine() : load_engine();
  if (e != nullptr) e->after_setsockopt(fd, level, optname, value, length);
}

// The fd hooks below run inside close() and dup2(), which must stay
// async-signal-safe: they never load the engine (no engine, no state to
// forget) and never allocate.
std::uint32_t before_close(int fd) noexcept {
  g_plain.clear(fd);
  const zctls_engine_ops* e = attached_engine();
  if (e == nullptr) return kNoEpoch;
  return e->before_close(fd);
}

void after_close(int fd, std::uint32_t epoch) noexcept {
  g_plain.clear(fd);
  if (const zctls_engine_ops* e = attached_engine()) e->after_close(fd, epoch);
}

void after_close_range(unsigned first, unsigned last, int flags) noexcept {
  if ((flags & CLOSE_RANGE_CLOEXEC) != 0) return;
  g_plain.clear_range(first, last);
  if (const zctls_engine_ops* e = attached_engine()) e->after_close_range(first, last);
}

void after_dup(int oldfd, int newfd) noexcept {
  if (oldfd == newfd) return;
  g_plain.clear(newfd);
  if (const zctls_engine_ops* e = attached_engine()) e->after_dup(newfd);
}

void after_new_fd(int fd) noexcept {
  g_plain.clear(fd);
  if (const zctls_engine_ops* e = attached_engine()) e->forget(fd);
}

void after_new_fds(const int* fds, int n) noexcept {
  const zctls_engine_ops* e = attached_engine();
  for (int i = 0; i < n; ++i) {
    g_plain.clear(fds[i]);
    if (e != nullptr) e->forget(fds[i]);
  }
}

void after_received_fds(const msghdr* msg) noexcept {
  if (msg == nullptr || msg->msg_control == nullptr || msg->msg_controllen == 0) return;
  for (cmsghdr* c = CMSG_FIRSTHDR(msg); c != nullptr;
       c = CMSG_NXTHDR(const_cast<msghdr*>(msg), c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t bytes = c->cmsg_len - CMSG_LEN(0);
    after_new_fds(reinterpret_cast<const int*>(CMSG_DATA(c)),
                  static_cast<int>(bytes / sizeof(int)));
  }
}

void before_other_send(int fd) noexcept {
  // No engine yet: nothing in this process turned a flag on.  (A socket
  // inherited with the flag on is left as it is until the first sendfile
  // loads the engine.)
  if (const zctls_engine_ops* e = attached_engine()) e->before_other_send(fd);
}

}  // namespace zctls::hooks
