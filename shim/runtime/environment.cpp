#include "environment.h"

#include <atomic>

#include "log.h"

namespace zctls::runtime {
namespace {

// Built when the engine attaches, never destroyed: other threads may still
// be in a hook while exit() runs static destructors.
std::atomic<const Environment*> g_environment{nullptr};
const Environment kNothing{};

// A variable naming one of an enum's values: set `out`, or say why not.
template <typename Enum>
void choice(const char* name, const char* v,
            std::optional<Enum> (*parse)(std::string_view) noexcept, const char* choices,
            std::optional<Enum>& out) {
  if (v == nullptr) return;
  out = parse(v);
  if (!out) log(LogLevel::warn, "%s=%s is not %s; ignored", name, v, choices);
}

}  // namespace

const Environment& environment() noexcept {
  const Environment* e = g_environment.load(std::memory_order_acquire);
  return e != nullptr ? *e : kNothing;
}

bool capture_environment(const char* const values[ZCTLS_ENV_COUNT]) noexcept {
  try {
    auto* e = new Environment;
    if (const char* v = values[ZCTLS_ENV_CONFIG]) {
      e->have_config_path = true;
      e->config_path = v;
    }
    if (const char* v = values[ZCTLS_ENV_RULES]) {
      e->have_rules = true;
      e->rules = v;
    }
    if (const char* v = values[ZCTLS_ENV_LOG_LEVEL]) {
      if (auto level = parse_log_level(v)) {
        e->have_log_level = true;
        e->log_level = *level;
        set_log_level(*level);
      } else {
        log(LogLevel::warn, "ZCTLS_LOG_LEVEL=%s is not error, warn, notice, info or debug; ignored",
            v);
      }
    }
    choice("ZCTLS_APP_FLAG", values[ZCTLS_ENV_APP_FLAG], parse_app_flag, "respect or govern",
           e->app_flag);
    choice("ZCTLS_OFFLOAD", values[ZCTLS_ENV_OFFLOAD], parse_offload, "auto or assume", e->offload);
    // A second attach (after one that ran out of memory) replaces the
    // first's; the first is leaked, as a reader may hold it.
    g_environment.store(e, std::memory_order_release);
    return true;
  } catch (...) {
    return false;  // out of memory: attach fails, and is asked again later
  }
}

}  // namespace zctls::runtime
