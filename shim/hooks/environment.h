// The ZCTLS_* environment, read once when the library is loaded: nginx
// clears its workers' environment, and they inherit this copy across fork.
// secure_getenv: setuid, setgid and file-capability programs ignore all of
// it (as jemalloc does with MALLOC_CONF).
#pragma once

#include <optional>
#include <string>

#include "zctls/config.h"

namespace zctls::shim {

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

// ZCTLS_DISABLE, or no memory for the rest at load time: every hook makes
// the real call and nothing else.  One relaxed load.
bool disabled() noexcept;
// The variables as captured at load time (empty if capture failed, which
// also sets disabled()).
const Environment& environment() noexcept;
// Reads them; called once by the library's constructor, before any hook.
void capture_environment() noexcept;

}  // namespace zctls::shim
