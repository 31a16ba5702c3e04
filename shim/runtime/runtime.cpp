// The engine library's entry point and the runtime calls behind the hooks
// (engine_abi.h): the Engine instance, the re-entry guard, and what a fork
// child must redo.  Each call is noexcept, keeps errno, and does nothing
// when called from inside zctls itself (a thread-local guard).
#include "runtime.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <new>
#include <type_traits>

#include "clock.h"
#include "config_adoption.h"
#include "config_source.h"
#include "environment.h"
#include "fork_safe.h"
#include "libc_kernel.h"
#include "log.h"
#include "real_calls.h"

namespace zctls::runtime {
namespace {

// initial-exec: no __tls_get_addr (which may allocate on a thread's first
// touch) inside close(); dlopen puts it in glibc's static TLS surplus.
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

// Built when the hooks attach (at the first kTLS TX socket), never
// destroyed: a server's other threads may still be in a hook while exit()
// runs static destructors.
BuiltOnce<Engine> g_engine;
zctls_hook_side g_side{};

// The process whose state the engine holds: set at attach and in each
// fork child (the atfork handler below).
std::atomic<long> g_pid{0};

long this_pid() noexcept { return syscall(SYS_getpid); }  // raw: glibc caches no pid since 2.25

// Whether this call comes from a child that shares the process's memory
// without being the process: a vfork child (CPython's subprocess runs
// close_range there before exec) or clone(CLONE_VM) without CLONE_THREAD.
// Its fd table is its own: a socket it closes or replaces is still open in
// the parent, whose entry must stay as it is.  One getpid, asked only for a
// kTLS socket's entry (once per kTLS connection's close in the process
// itself).  A child made by _Fork or a raw clone (no atfork handlers, its
// own memory) is taken for one as well: its closes of kTLS sockets the
// parent had are not seen (ARCHITECTURE.md).
bool in_a_memory_sharing_child() noexcept {
  return this_pid() != g_pid.load(std::memory_order_relaxed);
}

// Whether a close or new fd on [first, last] must leave the engine alone:
// it holds a kTLS socket there and the caller is such a child.
bool leave_alone(const Engine& e, unsigned first, unsigned last) noexcept {
  return e.holds_tls_in(first, last) && in_a_memory_sharing_child();
}
bool leave_alone(const Engine& e, int fd) noexcept {
  return fd >= 0 && leave_alone(e, static_cast<unsigned>(fd), static_cast<unsigned>(fd));
}

// before_close's answer for a call whose after_close must change nothing.
constexpr std::uint32_t kLeaveAlone = ZCTLS_NO_EPOCH - 1;  // epochs have 22 bits

void op_child_after_fork() noexcept {
  // First: every SpinLock another thread of the parent held is free now.
  note_fork_in_child();
  g_pid.store(this_pid(), std::memory_order_relaxed);
  config_source_after_fork();
  if (Engine* e = g_engine.get()) counters_after_fork(*e);
}

// The engine, for a call that may count (a send, a TX key, a socket
// classified): a fork child first moves to a stats file of its own.
Engine* counting_engine() noexcept {
  Engine* e = g_engine.get();
  settle_counters(*e);
  return e;
}

// --- the calls behind the hooks (zctls_engine_ops) -----------------------

static_assert(sizeof(SendTicket) <= ZCTLS_TICKET_BYTES && alignof(SendTicket) <= 16,
              "SendTicket outgrew the hooks' ticket buffer (engine_abi.h)");
static_assert(std::is_trivially_destructible_v<SendTicket>, "tickets are never destroyed");

int op_known_plain(int fd) noexcept { return g_engine.get()->known_plain(fd) ? 1 : 0; }

int op_before_send(void* ticket, int out_fd, int in_fd, const off_t* offset) noexcept {
  auto* t = new (ticket) SendTicket{};
  const Reentry guard;
  if (!guard.outermost()) return 0;
  *t = counting_engine()->before_send(out_fd, in_fd, offset);
  return t->counted() ? 1 : 0;
}

void op_after_send(const void* ticket, ssize_t result, const off_t* offset) noexcept {
  const Reentry guard;
  if (!guard.outermost()) return;
  // No file I/O here: the node_exporter textfile is the CLI's job
  // (`zctls stats --textfile`, from the shipped timer), not a worker's
  // inside sendfile.
  g_engine.get()->after_send(*static_cast<const SendTicket*>(ticket), result, offset);
}

void op_after_setsockopt(int fd, int level, int optname, const void* value,
                         socklen_t length) noexcept {
  const Reentry guard;
  if (!guard.outermost()) return;
  // A TX key loads the config and is counted (ktls_tx_sockets): file I/O,
  // after which the application still sees the errno its setsockopt left
  // (the guard restores it).
  counting_engine()->after_app_setsockopt(fd, level, optname, value, length);
}

// The fd calls below run inside close() and dup2(), which must stay
// async-signal-safe: atomics only, no allocation.
std::uint32_t op_before_close(int fd) noexcept {
  Engine* e = g_engine.get();
  if (leave_alone(*e, fd)) return kLeaveAlone;
  const Reentry guard;
  if (guard.outermost()) e->before_close(fd);
  return e->close_epoch(fd);
}

void op_after_close(int fd, std::uint32_t epoch) noexcept {
  Engine* e = g_engine.get();
  if (epoch == kLeaveAlone) return;
  if (epoch == ZCTLS_NO_EPOCH) {
    // (pclose, freopen: no before_close was asked)
    if (leave_alone(*e, fd)) return;
    e->after_close(fd);
  } else {
    e->after_close_since(fd, epoch);
  }
}

void op_after_close_range(unsigned first, unsigned last) noexcept {
  Engine* e = g_engine.get();
  if (leave_alone(*e, first, last)) return;
  e->after_close_range(first, last);
}

void op_after_dup(int newfd) noexcept {
  Engine* e = g_engine.get();
  if (leave_alone(*e, newfd)) return;
  e->after_dup(newfd);
}

void op_forget(int fd) noexcept {
  Engine* e = g_engine.get();
  if (leave_alone(*e, fd)) return;
  e->forget(fd);
}

void op_before_other_send(int fd) noexcept {
  const Reentry guard;
  if (!guard.outermost()) return;
  counting_engine()->before_other_send(fd);  // may classify, and count, a socket
}

// What another build's hooks get: abi 0 (never an ABI), nothing callable.
// A ticket buffer too small for this engine's SendTicket counts as another
// build.
constexpr zctls_engine_ops kRefusal{};  // abi 0

#define ZCTLS_ENGINE_OP_ENTRY(ret, name, params) op_##name,
constexpr zctls_engine_ops kOps{ZCTLS_ENGINE_ABI, ZCTLS_ENGINE_OPS(ZCTLS_ENGINE_OP_ENTRY)};
#undef ZCTLS_ENGINE_OP_ENTRY

}  // namespace

Engine* engine() noexcept { return g_engine.get(); }

const zctls_hook_side& hook_side() noexcept { return g_side; }

}  // namespace zctls::runtime

// The engine library's one export (engine_abi.h): called once per process,
// by the hook that met the first kTLS TX socket.
extern "C" __attribute__((visibility("default"))) const zctls_engine_ops* zctls_engine_attach(
    const zctls_hook_side* side) noexcept {
  using namespace zctls;
  using namespace zctls::runtime;
  // Another build's hooks: refused by them on seeing this table's abi.
  if (side->abi != ZCTLS_ENGINE_ABI || side->ticket_bytes < sizeof(SendTicket)) return &kRefusal;
  g_side = *side;
  g_pid.store(this_pid(), std::memory_order_relaxed);
  // The kernel's clock, not an interposed one (clock.h).
  if (const ClockGettime fn = real::libc_clock_gettime()) use_clock(fn);
  capture_log_environment(side->env[ZCTLS_ENV_JOURNAL_STREAM]);  // first: the next may log
  if (!capture_environment(side->env)) return nullptr;           // out of memory: asked again later
  Engine* e = g_engine.get_or_build([]() noexcept {
    return new (std::nothrow) Engine(libc_kernel(), adopt_first_config, adopt_reread_config);
  });
  return e != nullptr ? &kOps : nullptr;
}
