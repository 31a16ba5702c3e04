#include "runtime.h"

#define UNW_LOCAL_ONLY
#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <libunwind.h>
#include <linux/close_range.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <string>

#include "engine.h"
#include "log.h"
#include "real_calls.h"
#include "shared_stats.h"
#include "zctls/config.h"
#include "zctls/ktls.h"
#include "zctls/version.h"

namespace zctls::shim {
namespace {

constexpr const char* kDefaultConfigPath = "/etc/zctls.toml";

// libunwind is opened on the first backtrace (an integrity event at debug
// level), not linked: linking would map it and liblzma into every process
// the library is preloaded into, for a feature most never use.  The symbol
// names are libunwind.h's macros spelled out (_ULx86_64_step, ...).
#define ZCTLS_SYMBOL_NAME(macro) ZCTLS_STRINGIFY(macro)
#define ZCTLS_STRINGIFY(name) #name
struct Unwinder {
  int (*getcontext)(unw_context_t*);
  int (*init_local)(unw_cursor_t*, unw_context_t*);
  int (*step)(unw_cursor_t*);
  int (*get_reg)(unw_cursor_t*, unw_regnum_t, unw_word_t*);
  int (*get_proc_name)(unw_cursor_t*, char*, std::size_t, unw_word_t*);
};
const char* g_unwinder_error = "";  // why unwinder() is null; set once, inside it

template <typename Fn>
bool bind_symbol(void* lib, const char* name, Fn*& fn) noexcept {
  fn = reinterpret_cast<Fn*>(dlsym(lib, name));
  return fn != nullptr;
}

const Unwinder* unwinder() noexcept {
  // A function-local static: one thread loads, concurrent callers wait.
  static const Unwinder* const loaded = []() noexcept -> const Unwinder* {
    static Unwinder u;
    void* lib = dlopen(ZCTLS_LIBUNWIND_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      g_unwinder_error = "cannot load " ZCTLS_LIBUNWIND_SONAME;
      return nullptr;
    }
    if (!bind_symbol(lib, ZCTLS_SYMBOL_NAME(unw_tdep_getcontext), u.getcontext) ||
        !bind_symbol(lib, ZCTLS_SYMBOL_NAME(unw_init_local), u.init_local) ||
        !bind_symbol(lib, ZCTLS_SYMBOL_NAME(unw_step), u.step) ||
        !bind_symbol(lib, ZCTLS_SYMBOL_NAME(unw_get_reg), u.get_reg) ||
        !bind_symbol(lib, ZCTLS_SYMBOL_NAME(unw_get_proc_name), u.get_proc_name)) {
      g_unwinder_error = ZCTLS_LIBUNWIND_SONAME " lacks a libunwind function";
      return nullptr;
    }
    return &u;
  }();
  return loaded;
}

// ZCTLS_* variables, read once when the library is loaded: nginx clears
// the environment of its workers, which inherit this copy across fork.
struct Environment {
  bool disabled = false;
  bool have_config_path = false;
  bool have_rules = false;
  bool have_log_level = false;
  std::string config_path;
  std::string rules;
  LogLevel log_level = LogLevel::warn;
};

// The shim's state is never destroyed: a server's other threads may still
// be inside sendfile while exit() runs static destructors, and the hooks
// must find it intact until the process is gone.
Environment& environment() {
  static Environment& env = *new Environment;
  return env;
}

thread_local int t_depth __attribute__((tls_model("initial-exec"))) = 0;

// Marks the shim's own work on this thread; hooks reached from inside it
// (a libc function calling close, say) just pass through.
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

const kernel::SockoptCalls& real_sockopt_calls() noexcept {
  static const kernel::SockoptCalls calls{real::setsockopt, real::getsockopt};
  return calls;
}

class LibcKernel final : public KernelPort {
 public:
  // The fstat syscall itself: glibc 2.33+ implements fstat() as
  // newfstatat(fd, "", AT_EMPTY_PATH), which kernels before 6.11 treat as
  // a path lookup (copying and allocating the empty name).  This runs
  // twice per zerocopy send.
  int stat_fd(int fd, struct stat* st) noexcept override {
    return syscall(SYS_fstat, fd, st) == 0 ? 0 : errno;
  }
  ssize_t fd_path(int fd, char* buf, std::size_t size) noexcept override {
    char link[32];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    const ssize_t n = readlink(link, buf, size);
    return n > 0 && static_cast<std::size_t>(n) < size ? n : -1;
  }
  kernel::TxKind query_tx(int fd) noexcept override {
    return kernel::query_tx(fd, real_sockopt_calls());
  }
  kernel::FlagState get_zerocopy(int fd) noexcept override {
    return kernel::get_tx_zerocopy(fd, real_sockopt_calls());
  }
  int set_zerocopy(int fd, bool on) noexcept override {
    return kernel::set_tx_zerocopy(fd, on, real_sockopt_calls());
  }
  // Coarse clocks: read from the vDSO, no syscall; a few ms of resolution
  // is plenty for a settle window of seconds.
  std::int64_t realtime_ns() noexcept override { return now(CLOCK_REALTIME_COARSE); }
  std::int64_t monotonic_ns() noexcept override { return now(CLOCK_MONOTONIC_COARSE); }
  void peer_name(int fd, char* buf, std::size_t size) noexcept override {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      if (addr.ss_family == AF_INET) {
        const auto* in4 = reinterpret_cast<const sockaddr_in*>(&addr);
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
        port = ntohs(in4->sin_port);
      } else if (addr.ss_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
      }
    }
    std::snprintf(buf, size, addr.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host, port);
  }
  off_t file_position(int fd) noexcept override { return lseek(fd, 0, SEEK_CUR); }
  kernel::KernelIdentity kernel_identity() noexcept override {
    return kernel::read_kernel_identity();
  }
  bool read_offset(const off_t* where, off_t* value) noexcept override {
    // The pointer comes from the application and is only checked by the
    // real sendfile (EFAULT): copy it through the kernel, which fails
    // instead of faulting.
    if (where == nullptr) return false;
    iovec local{value, sizeof *value};
    iovec remote{const_cast<off_t*>(where), sizeof *where};
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) ==
           static_cast<ssize_t>(sizeof *value);
  }
  void shutdown_socket(int fd) noexcept override { shutdown(fd, SHUT_RDWR); }
  bool tcp_progress(int fd, kernel::TcpProgress* out) noexcept override {
    return kernel::tcp_progress(fd, real_sockopt_calls(), out);
  }
  void backtrace(char* buf, std::size_t size) noexcept override {
    // libunwind, local unwinding: the frames above the hook, named by
    // unw_get_proc_name.  Stripped binaries only have dynamic symbols, which
    // would misname a frame far from its symbol: those are shown as
    // "module+0xOFFSET" instead, to symbolize offline (addr2line -e module).
    unw_context_t context;
    unw_cursor_t cursor;
    std::size_t used = 0;
    buf[0] = '\0';
    const Unwinder* unw = unwinder();
    if (unw == nullptr) {
      std::snprintf(buf, size, "(no backtrace: %s)", g_unwinder_error);
      return;
    }
    if (unw->getcontext(&context) != 0 || unw->init_local(&cursor, &context) != 0) return;
    for (int frame = 0; frame < 40 && unw->step(&cursor) > 0 && used + 8 < size; ++frame) {
      char name[160];
      unw_word_t offset = 0;
      unw_word_t ip = 0;
      unw->get_reg(&cursor, UNW_REG_IP, &ip);
      const bool named = unw->get_proc_name(&cursor, name, sizeof name, &offset) == 0;
      if (named && std::strncmp(name, "_ZN5zctls", 9) == 0) continue;  // the shim itself
      if (!named || offset > 0x1000) {
        Dl_info info{};
        if (dladdr(reinterpret_cast<void*>(ip), &info) != 0 && info.dli_fname != nullptr) {
          const char* slash = std::strrchr(info.dli_fname, '/');
          std::snprintf(
              name, sizeof name, "%s+0x%lx", slash != nullptr ? slash + 1 : info.dli_fname,
              static_cast<unsigned long>(ip - reinterpret_cast<unw_word_t>(info.dli_fbase)));
        } else {
          std::snprintf(name, sizeof name, "0x%lx", static_cast<unsigned long>(ip));
        }
      }
      const int n = std::snprintf(buf + used, size - used, "%s%s", used == 0 ? "" : " <- ", name);
      if (n < 0) break;
      used += static_cast<std::size_t>(n);
    }
  }

 private:
  static std::int64_t now(clockid_t clock) noexcept {
    timespec t{};
    clock_gettime(clock, &t);
    return t.tv_sec * 1'000'000'000LL + t.tv_nsec;
  }
};

void apply_log_target(const LogTargetConfig& target) {
  switch (target.kind) {
    case LogTargetConfig::Kind::stderr_stream:
      set_log_fd(2);
      break;
    case LogTargetConfig::Kind::syslog:
      set_log_syslog();
      break;
    case LogTargetConfig::Kind::file: {
      const int fd = open(target.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
      if (fd < 0) {
        log(LogLevel::error, "cannot open the log file %s: %s; logging to stderr",
            target.path.c_str(), std::strerror(errno));
      } else {
        set_log_fd(fd);
      }
      break;
    }
  }
}

Engine& engine();

// What the config file looked like when it was last read: a reload
// happens when any of this changes (including the file appearing or
// disappearing).
struct FileIdentity {
  bool exists = false;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  timespec mtime{}, ctime{};
  bool operator==(const FileIdentity& o) const noexcept {
    return exists == o.exists && dev == o.dev && ino == o.ino && size == o.size &&
           mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec &&
           ctime.tv_sec == o.ctime.tv_sec && ctime.tv_nsec == o.ctime.tv_nsec;
  }
};

FileIdentity identity_of(const std::string& path) noexcept {
  FileIdentity id;
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return id;
  id.exists = true;
  id.dev = st.st_dev;
  id.ino = st.st_ino;
  id.size = st.st_size;
  id.mtime = st.st_mtim;
  id.ctime = st.st_ctim;
  return id;
}

// State of the config source; touched only by the thread that loads or
// reloads (the engine lets one at a time do it).
struct ConfigSource {
  std::string path;
  FileIdentity seen;
  // What the last check found when it found the file unlike `seen`.
  std::optional<FileIdentity> changing;
  std::uint32_t generation = 0;
  LogTargetConfig log_target;
  bool log_target_applied = false;
  Counters private_counters;  // the child's after fork, until it shares its own
};

ConfigSource& source() {
  static ConfigSource& s = *new ConfigSource;  // never destroyed: see environment()
  return s;
}

std::string config_path() {
  const Environment& env = environment();
  return env.have_config_path ? env.config_path : kDefaultConfigPath;
}

// Reads the file (if any) and ZCTLS_RULES into a config.  nullopt if there
// is nothing to load (`errors` empty) or it is broken (`errors` say why).
std::optional<Config> read_config(const std::string& path, bool file_exists,
                                  std::vector<ConfigError>& errors) {
  const Environment& env = environment();
  Config config;
  const bool have_file = env.have_config_path || file_exists;
  if (have_file) {
    ConfigResult result = load_config_file(path);
    if (!result.config) {
      errors = std::move(result.errors);
      return std::nullopt;
    }
    config = std::move(*result.config);
  }
  if (env.have_rules) {
    if (!apply_rules_env(env.rules, config, errors)) return std::nullopt;
    if (!have_file) config.source = "ZCTLS_RULES";
  } else if (!have_file) {
    return std::nullopt;
  }
  return config;
}

// Makes `config` the one in force: log settings, a new generation, kept
// for the life of the process (hooks on other threads may hold it).
const Config* publish(Config config, const char* how) {
  ConfigSource& src = source();
  const Environment& env = environment();
  if (!env.have_log_level) set_log_level(config.log_level);
  if (!src.log_target_applied || config.log_target.kind != src.log_target.kind ||
      config.log_target.path != src.log_target.path) {
    apply_log_target(config.log_target);
    src.log_target = config.log_target;
    src.log_target_applied = true;
  }
  config.generation = ++src.generation;
  log(LogLevel::info, "zctls %s: %s config %s: %zu rules, default %s", kVersion, how,
      config.source.c_str(), config.rules.size(), config.default_zerocopy ? "zerocopy" : "copy");
  return new (std::nothrow) Config(std::move(config));
}

const Config* load_config_or_null() {
  ConfigSource& src = source();
  src.path = config_path();
  src.seen = identity_of(src.path);
  std::vector<ConfigError> errors;
  std::optional<Config> config = read_config(src.path, src.seen.exists, errors);
  // Share the counters before counting anything: the file's [stats] dir,
  // or the default one when there is no usable config.
  if (Counters* shared = share_counters(config ? config->stats : StatsConfig{}))
    engine().use_counters(shared);
  if (!config) {
    if (errors.empty()) {
      log(LogLevel::info, "zctls %s: no %s and no ZCTLS_RULES; passing everything through",
          kVersion, src.path.c_str());
    } else {
      for (const ConfigError& e : errors)
        log(LogLevel::error, "zctls %s: %s; zctls passes everything through", kVersion,
            e.to_string().c_str());
      engine().counters().add(Counter::config_errors);
    }
    return nullptr;
  }
  engine().counters().add(Counter::config_loads);
  return publish(std::move(*config), "loaded");
}

// The engine's loader: never throws into the hook that triggered it.
const Config* load_config() {
  try {
    return load_config_or_null();
  } catch (...) {
    log(LogLevel::error, "cannot load the config (out of memory?); passing everything through");
    return nullptr;
  }
}

// The engine's reloader, at most once a second: one stat(2) of the file.
const Config* reload_config() {
  try {
    ConfigSource& src = source();
    const FileIdentity now = identity_of(src.path);
    if (now == src.seen) {
      src.changing.reset();
      return nullptr;
    }
    // A file that changed since the last check may be half written:
    // editors and `printf ... > file` truncate before they write, and
    // reading in between would put an empty config in force.  It is read
    // once two checks (a second or more apart) find it the same.  No clock
    // is involved: timestamps from NFS or 9p come from another host's.
    if (!src.changing || !(now == *src.changing)) {
      src.changing = now;
      return nullptr;
    }
    src.changing.reset();
    src.seen = now;
    std::vector<ConfigError> errors;
    std::optional<Config> config = read_config(src.path, now.exists, errors);
    if (!config) {
      for (const ConfigError& e : errors)
        log(LogLevel::error, "%s; keeping the current config", e.to_string().c_str());
      if (errors.empty())
        log(LogLevel::warn, "%s is gone; keeping the current config", src.path.c_str());
      engine().counters().add(Counter::config_errors);
      return nullptr;
    }
    engine().counters().add(Counter::config_loads);
    engine().counters().add(Counter::config_reloads);
    return publish(std::move(*config), "reloaded");
  } catch (...) {
    return nullptr;
  }
}

// The engine once some hook needed it, else null: known_plain reads it
// without passing engine()'s init guard, and exit costs nothing when no
// hook ever did.
std::atomic<Engine*> g_engine{nullptr};

Engine& engine() {
  // Never destroyed: see environment().  Built once; g_engine is written
  // only then (a store on every call would bounce its cache line between
  // threads sending at once).
  static Engine& instance = []() -> Engine& {
    auto& kernel = *new LibcKernel;
    auto& built = *new Engine(kernel, load_config, reload_config);
    g_engine.store(&built, std::memory_order_release);
    return built;
  }();
  return instance;
}

std::atomic<bool> g_reshare_counters{false};

void child_after_fork() {
  engine().after_fork_reset_locks();
  engine().after_fork_in_child();
  // The parent's stats mapping is shared with this child: count privately
  // until the next send here gives the child a file of its own.
  for (auto& shard : source().private_counters.shards)
    for (auto& v : shard.values) v.store(0, std::memory_order_relaxed);
  engine().use_counters(&source().private_counters);
  g_reshare_counters.store(true, std::memory_order_relaxed);
}

void reshare_counters() noexcept {
  if (!g_reshare_counters.exchange(false)) return;
  const Config* cfg = engine().current_config();
  if (Counters* shared = share_counters(cfg != nullptr ? cfg->stats : StatsConfig{})) {
    for (int i = 0; i < kCounterCount; ++i)
      shared->add(static_cast<Counter>(i), source().private_counters.get(static_cast<Counter>(i)));
    engine().use_counters(shared);
  }
}

const char* env(const char* name) {
  // secure_getenv: ignore ZCTLS_* in setuid/setgid/capability processes.
  return secure_getenv(name);
}

__attribute__((constructor)) void capture_environment() {
  try {
    Environment& e = environment();
    if (const char* v = env("ZCTLS_DISABLE")) e.disabled = std::strcmp(v, "0") != 0 && *v != '\0';
    if (const char* v = env("ZCTLS_CONFIG")) {
      e.have_config_path = true;
      e.config_path = v;
    }
    if (const char* v = env("ZCTLS_RULES")) {
      e.have_rules = true;
      e.rules = v;
    }
    if (const char* v = env("ZCTLS_LOG_LEVEL")) {
      if (auto level = parse_log_level(v)) {
        e.have_log_level = true;
        e.log_level = *level;
        set_log_level(*level);
      } else {
        log(LogLevel::warn, "ZCTLS_LOG_LEVEL=%s is not error, warn, info or debug; using warn", v);
      }
    }
    pthread_atfork(nullptr, nullptr, child_after_fork);
  } catch (...) {
    environment().disabled = true;  // out of memory at load time: stay out of the way
  }
}

// A process that exits between two textfile intervals would leave its
// last sends out of zctls.prom until another process rewrites it: write
// it once more on the way out, if this process ever loaded a config that
// asks for it.
__attribute__((destructor)) void final_textfile() {
  if (g_engine.load(std::memory_order_acquire) == nullptr) return;
  const int saved = errno;
  if (const Config* cfg = engine().current_config();
      cfg != nullptr && !cfg->stats.textfile_dir.empty()) {
    const Reentry guard;
    if (guard.outermost()) write_textfile_now(cfg->stats);
  }
  errno = saved;
}

}  // namespace

bool known_plain(int fd) noexcept {
  const Engine* e = g_engine.load(std::memory_order_acquire);
  return e != nullptr && e->known_plain(fd);
}

SendTicket before_send(int out_fd, int in_fd, const off_t* offset) noexcept {
  if (environment().disabled) return {};
  const Reentry guard;
  if (!guard.outermost()) return SendTicket{};
  if (g_reshare_counters.load(std::memory_order_relaxed)) reshare_counters();
  return engine().before_send(out_fd, in_fd, offset);
}

void after_send(const SendTicket& ticket, ssize_t result, const off_t* offset) noexcept {
  if (!ticket.counted) return;  // not a kTLS TX socket: no work, no errno save
  const Reentry guard;
  if (!guard.outermost()) return;
  engine().after_send(ticket, result, offset);
  if (const Config* cfg = engine().current_config();
      cfg != nullptr && !cfg->stats.textfile_dir.empty())
    maybe_write_textfile(cfg->stats, engine().monotonic_now());
}

void after_setsockopt(int fd, int level, int optname, const void* value,
                      socklen_t length) noexcept {
  if (environment().disabled) return;
  const Reentry guard;
  if (guard.outermost()) engine().after_app_setsockopt(fd, level, optname, value, length);
}

void before_close(int fd) noexcept {
  if (environment().disabled) return;
  const Reentry guard;
  if (guard.outermost()) engine().before_close(fd);
}

void after_close(int fd) noexcept {
  if (environment().disabled) return;
  engine().after_close(fd);
  forget_log_fd(fd);
}

void after_close_range(unsigned first, unsigned last, int flags) noexcept {
  if (environment().disabled || (flags & CLOSE_RANGE_CLOEXEC) != 0) return;
  engine().after_close_range(first, last);
  forget_log_fd_range(first, last);
}

void after_dup(int oldfd, int newfd) noexcept {
  if (environment().disabled || oldfd == newfd) return;
  engine().after_dup(newfd);
  forget_log_fd(newfd);
}

}  // namespace zctls::shim
