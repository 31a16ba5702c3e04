// The one place where what the config says takes effect in this process:
// where the counters live (the config's [stats] dir), the log level and
// target, and the config the engine decides with.  At the first read, at
// each re-read, and in a fork child.  The reading itself is
// config_source.h's; everything below the runtime only receives.
#pragma once

#include "engine.h"

namespace zctls::runtime {

// The engine's ConfigLoader: reads the config, places the counters (the
// config's [stats] dir, or the default one when there is no usable config)
// before anything is counted, counts the load or the error, sets logging
// and returns the config to decide with (nullptr: pass everything
// through).  Never throws.
const Config* adopt_first_config() noexcept;
// The engine's ConfigReloader: a new config when the file changed and
// parses (counted, logging set again), else nullptr.  Never throws.
const Config* adopt_reread_config() noexcept;

// In a fork child (atfork handler; async-signal-safe): its counts go to a
// private block until its next counting call moves them to a stats file
// of its own (settle_counters).
void counters_after_fork(Engine& e) noexcept;
// Before a call that may count: in a fork child, the move above.  One
// acquire load when there is nothing to move.
void settle_counters(Engine& e) noexcept;

}  // namespace zctls::runtime
