// Where the process's config comes from ($ZCTLS_CONFIG or /etc/zctls.toml,
// plus $ZCTLS_RULES, $ZCTLS_APP_FLAG and $ZCTLS_OFFLOAD), read and re-read.
// Reading only: what a config then changes in the process (counters, log
// target, the engine's config) is config_adoption.cpp's.
#pragma once

#include <optional>

#include "zctls/config.h"

namespace zctls::runtime {

// What one read found.  `config` when a config parses; `broken` when a file
// or ZCTLS_RULES was there and did not (each error logged as
// FILE:LINE:COL), when a named file is gone, or when memory ran out;
// neither when there is nothing to read (first read: no file and no
// ZCTLS_RULES, logged) or nothing new (re-read).
struct ConfigRead {
  std::optional<Config> config;
  bool broken = false;
};

// The process's first read.  Never throws (out of memory: broken).
ConfigRead read_config() noexcept;
// At most once a second: one stat(2) of the file; a read once two checks
// find the file changed and then the same.  `current` (the config in
// force, or nullptr) is only compared with, for a notice when the new
// one's [stats] dir differs.  Never throws.
ConfigRead reread_config(const Config* current) noexcept;
// In a fork child: if a parent thread was reading at the fork, the next
// read starts from a fresh source (the copied one may be torn).
void config_source_after_fork() noexcept;

}  // namespace zctls::runtime
