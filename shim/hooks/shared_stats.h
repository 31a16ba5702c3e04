// The process side of `zctls stats`: this process's counters in a file of
// the stats directory, mapped shared, and the node_exporter textfile kept
// current from all such files.  Called from the runtime only.
#pragma once

#include <cstdint>

#include "zctls/config.h"
#include "zctls/stats.h"

namespace zctls::shim {

// Creates (or, after exec, reopens) this process's stats file in `dir` and
// maps it.  nullptr if `dir` is empty or anything fails (logged once);
// counters then stay in process memory.
Counters* share_counters(const StatsConfig& stats) noexcept;

// Rewrites the textfile if `interval` has passed since the last time this
// process did (one thread at a time; others skip).
void maybe_write_textfile(const StatsConfig& stats, std::int64_t now_ns) noexcept;
// Unconditionally (the shim's destructor: a process's last word).
void write_textfile_now(const StatsConfig& stats) noexcept;

}  // namespace zctls::shim
