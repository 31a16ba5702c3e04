#include "config_adoption.h"

#include <atomic>
#include <new>
#include <string>

#include "config_source.h"
#include "environment.h"
#include "fork_safe.h"
#include "log.h"
#include "runtime.h"
#include "shared_stats.h"
#include "zctls/rule_paths.h"
#include "zctls/version.h"

namespace zctls::runtime {
namespace {

// The log target in force; only the thread that loads or reloads touches
// it (the engine lets one at a time).  Its path belongs to a published
// config, which is never freed: log_to_file keeps the pointer.
const LogTargetConfig* g_log_target = nullptr;

void apply_log_target(const LogTargetConfig& target) {
  if (g_log_target != nullptr && g_log_target->kind == target.kind &&
      g_log_target->path == target.path)
    return;
  switch (target.kind) {
    case LogTargetConfig::Kind::stderr_stream:
      log_to_stderr();
      break;
    case LogTargetConfig::Kind::syslog:
      log_to_syslog();
      break;
    case LogTargetConfig::Kind::file:
      log_to_file(target.path.c_str());
      break;
  }
  g_log_target = &target;
}

// Makes `config` the one to decide with: kept for the life of the process
// (hooks on other threads may still hold the previous one), with its log
// settings and what it says about itself.
const Config* publish(Config config, const char* how) {
  const Config* published = new (std::nothrow) Config(std::move(config));
  if (published == nullptr) return nullptr;
  if (!environment().have_log_level) set_log_level(published->log_level);
  apply_log_target(published->log_target);
  log(LogLevel::info, "zctls %s: %s config %s: %zu rules, default %s", kVersion, how,
      published->source.c_str(), published->rules.size(),
      published->default_zerocopy ? "zerocopy" : "copy");
  // Rules that cannot match here (a deploy's symlinked path): said at each
  // load, with the path to write instead.
  for (const std::string& w : rules_through_symlinks(*published, ""))
    log(LogLevel::warn, "%s", w.c_str());
  if (!published->stats.textfile_dir.empty())
    log(LogLevel::notice,
        "%s: [stats] textfile_dir is ignored: the library writes no textfile (no file I/O "
        "in a server's sendfile); `zctls stats --textfile %s` from a timer does",
        published->source.c_str(), published->stats.textfile_dir.c_str());
  return published;
}

// A fork child's counters, until its first counting call gives it a stats
// file of its own: the parent's mapping is shared with it.
Counters g_child_counters;
std::atomic<bool> g_reshare_counters{false};
// Held while a child's counts are carried over: its other threads (nginx's
// aio pool) must not count into the private block meanwhile.
SpinLock g_reshare_lock;

}  // namespace

const Config* adopt_first_config() noexcept {
  Engine* e = engine();
  ConfigRead read = read_config();
  // The counters' home before anything is counted.
  if (Counters* shared = share_counters(read.config ? read.config->stats : StatsConfig{}))
    e->use_counters(shared);
  if (read.broken) e->counters().add(Counter::config_errors);
  if (!read.config) return nullptr;
  e->counters().add(Counter::config_loads);
  try {
    return publish(std::move(*read.config), "loaded");
  } catch (...) {
  }
  log(LogLevel::error, "cannot load the config (out of memory?); passing everything through");
  return nullptr;
}

const Config* adopt_reread_config() noexcept {
  Engine* e = engine();
  ConfigRead read = reread_config(e->current_config());
  if (read.broken) e->counters().add(Counter::config_errors);
  if (!read.config) return nullptr;
  // Counters stay where this process started counting (config_source.cpp
  // says so when the [stats] dir changed).
  e->counters().add(Counter::config_loads);
  e->counters().add(Counter::config_reloads);
  try {
    return publish(std::move(*read.config), "reloaded");
  } catch (...) {
    return nullptr;
  }
}

void counters_after_fork(Engine& e) noexcept {
  for (auto& shard : g_child_counters.shards)
    for (auto& v : shard.values) v.store(0, std::memory_order_relaxed);
  e.use_counters(&g_child_counters);
  g_reshare_counters.store(true, std::memory_order_relaxed);
}

// A fork child's own stats file is made where the config it inherited says
// ([stats] dir; "" keeps the counters private, and no file is made).  A
// child whose parent never loaded a config (nginx's master) has nothing to
// do here: its first config load places the counters.  Making the file
// before any config is known would leave a stray one in the default
// directory.
void settle_counters(Engine& e) noexcept {
  if (!g_reshare_counters.load(std::memory_order_acquire)) return;
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

}  // namespace zctls::runtime
