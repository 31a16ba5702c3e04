// The ZCTLS_* environment, as the hook library captured it at load (nginx
// clears its workers' environment, and they inherit that copy across fork;
// secure_getenv there: setuid, setgid and file-capability programs ignore
// all of it, as jemalloc does with MALLOC_CONF), parsed when the engine
// attaches.  ZCTLS_DISABLE is the hook library's: with it the engine is
// never loaded.
#pragma once

#include <optional>
#include <string>

#include "engine_abi.h"
#include "zctls/config.h"

namespace zctls::runtime {

struct Environment {
  bool have_config_path = false;
  bool have_rules = false;
  bool have_log_level = false;
  std::string config_path;  // ZCTLS_CONFIG
  std::string rules;        // ZCTLS_RULES
  LogLevel log_level = LogLevel::notice;
  std::optional<AppFlag> app_flag;  // ZCTLS_APP_FLAG: over the file's app_flag
  std::optional<Offload> offload;   // ZCTLS_OFFLOAD: over the file's [kernel] offload
};

// The variables as parsed when the engine attached.
const Environment& environment() noexcept;
// Parses the captured values (engine_abi.h's order, nullptr = unset) and
// logs the ones it ignores; called when the engine attaches.  False when
// memory ran out (attach then fails and is tried again later).
bool capture_environment(const char* const values[ZCTLS_ENV_COUNT]) noexcept;

}  // namespace zctls::runtime
