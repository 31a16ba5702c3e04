#include "config_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "environment.h"
#include "log.h"
#include "zctls/version.h"

namespace zctls::runtime {
namespace {

constexpr const char* kDefaultConfigPath = "/etc/zctls.toml";

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
};

// Only the thread that loads or reloads touches it (the engine lets one at
// a time).  A child forked while a parent thread was in the middle of that
// may find its strings torn: it starts from a fresh one (the old one leaks).
std::atomic<ConfigSource*> g_source{nullptr};
std::atomic<bool> g_source_busy{false}, g_source_torn{false};

std::string config_path() {
  const Environment& env = environment();
  return env.have_config_path ? env.config_path : kDefaultConfigPath;
}

ConfigSource* source() noexcept {
  ConfigSource* src = g_source.load(std::memory_order_acquire);
  if (src == nullptr || g_source_torn.exchange(false)) {
    src = new (std::nothrow) ConfigSource;
    // A child that takes over a torn source still knows its file: its
    // re-reads look at it, and find it unread (read again once two checks
    // agree).
    if (src != nullptr) {
      try {
        src->path = config_path();
      } catch (...) {  // out of memory: the first read sets it, re-reads find nothing
      }
    }
    g_source.store(src, std::memory_order_release);
  }
  return src;
}

// Marks the source as being worked on, for config_source_after_fork.
class Busy {
 public:
  Busy() noexcept { g_source_busy.store(true, std::memory_order_release); }
  ~Busy() { g_source_busy.store(false, std::memory_order_release); }
  Busy(const Busy&) = delete;
  Busy& operator=(const Busy&) = delete;
};


// Reads the file (if any) and ZCTLS_RULES into a config.  nullopt if there
// is nothing to load (`errors` empty) or it is broken (`errors` say why).
std::optional<Config> parse_sources(const std::string& path, bool file_exists,
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
  if (env.app_flag) config.app_flag = *env.app_flag;
  if (env.offload) config.kernel.offload = *env.offload;
  return config;
}

ConfigRead first_read(ConfigSource& src) {
  src.path = config_path();
  src.seen = identity_of(src.path);
  std::vector<ConfigError> errors;
  ConfigRead read;
  read.config = parse_sources(src.path, src.seen.exists, errors);
  if (read.config) return read;
  if (errors.empty()) {
    log(LogLevel::info, "zctls %s: no %s and no ZCTLS_RULES; passing everything through",
        kVersion, src.path.c_str());
    return read;
  }
  bool transient = false;
  for (const ConfigError& e : errors) transient = transient || e.transient;
  // A lack of fds or memory passes: the re-read check (once a second)
  // then sees a file it has not read, and reads it once two checks agree
  // (about 2 s).
  if (transient) src.seen = FileIdentity{};
  for (const ConfigError& e : errors)
    log(LogLevel::error, "zctls %s: %s; zctls passes everything through%s", kVersion,
        e.to_string().c_str(), transient ? " and reads it again in about 2 s" : "");
  read.broken = true;
  return read;
}

ConfigRead reread(ConfigSource& src, const Config* current) {
  ConfigRead read;
  const FileIdentity now = identity_of(src.path);
  if (now == src.seen) {
    src.changing.reset();
    return read;
  }
  // A file that changed since the last check may be half written: editors
  // and `printf ... > file` truncate before they write, and reading in
  // between would put an empty config in force.  It is read once two
  // checks (a second or more apart) find it the same.  No clock is
  // involved: timestamps from NFS or 9p come from another host's.
  if (!src.changing || !(now == *src.changing)) {
    src.changing = now;
    return read;
  }
  src.changing.reset();
  src.seen = now;
  std::vector<ConfigError> errors;
  read.config = parse_sources(src.path, now.exists, errors);
  if (!read.config) {
    bool transient = false;
    for (const ConfigError& e : errors) transient = transient || e.transient;
    if (transient) src.seen = FileIdentity{};  // read again in about 2 s
    for (const ConfigError& e : errors)
      log(LogLevel::error, "%s; keeping the current config%s", e.to_string().c_str(),
          transient ? " and reading it again in about 2 s" : "");
    if (errors.empty())
      log(LogLevel::warn, "%s is gone; keeping the current config", src.path.c_str());
    read.broken = true;
    return read;
  }
  // Counters stay where this process started counting: moving them would
  // make a reader see them vanish from one directory and appear whole in
  // another.  Its fork children, and processes started from now on, use
  // the new [stats] dir.
  if (current != nullptr && current->stats.dir != read.config->stats.dir)
    log(LogLevel::notice,
        "[stats] dir is now \"%s\": this process keeps its counters where it started (\"%s\"); "
        "processes started from now on use the new one",
        read.config->stats.dir.c_str(), current->stats.dir.c_str());
  return read;
}

}  // namespace

void config_source_after_fork() noexcept {
  if (g_source_busy.load(std::memory_order_acquire)) g_source_torn.store(true);
}

ConfigRead read_config() noexcept {
  const Busy busy;
  try {
    if (ConfigSource* src = source()) return first_read(*src);
  } catch (...) {
  }
  log(LogLevel::error, "cannot load the config (out of memory?); passing everything through");
  ConfigRead failed;
  failed.broken = true;
  return failed;
}

ConfigRead reread_config(const Config* current) noexcept {
  const Busy busy;
  try {
    if (ConfigSource* src = source()) return reread(*src, current);
  } catch (...) {
  }
  return {};
}

}  // namespace zctls::runtime
