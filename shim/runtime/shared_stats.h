// The process side of `zctls stats`: this process's counters in a file of
// the stats directory, mapped shared.  Called from the runtime only.  (The
// node_exporter textfile is written by `zctls stats --textfile`, never
// from a server's process.)
#pragma once

#include <cstdint>

#include "zctls/config.h"
#include "zctls/stats.h"

namespace zctls::runtime {

// Creates (or, after exec, reopens) this process's stats file in `dir` and
// maps it.  nullptr if `dir` is empty or anything fails (logged once);
// counters then stay in process memory.
Counters* share_counters(const StatsConfig& stats) noexcept;

}  // namespace zctls::runtime
