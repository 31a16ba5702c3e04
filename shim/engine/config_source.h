// Where the process's config comes from ($ZCTLS_CONFIG or /etc/zctls.toml,
// plus $ZCTLS_RULES), and the engine's loader and reloader for it.
#pragma once

#include "zctls/config.h"

namespace zctls::shim {

// The engine's ConfigLoader: the first kTLS send's config, or nullptr to
// pass everything through (no config; or a broken one, logged as
// FILE:LINE:COL).  Shares the process's counters first (shared_stats.h).
// Never throws.
const Config* load_config() noexcept;
// The engine's ConfigReloader, at most once a second: one stat(2) of the
// file; a new config once two checks find the file changed and then the
// same, else nullptr.  Never throws.
const Config* reload_config() noexcept;
// In a fork child: if a parent thread was loading or reloading at the fork,
// the next load starts from a fresh source (the copied one may be torn).
void config_source_after_fork() noexcept;

}  // namespace zctls::shim
