// `zctls stats` as a table (the default) and as JSON (--json): every
// process file of the stats directory, alive, exited and retired, and their
// totals.
#pragma once

#include <string>
#include <vector>

#include "stats_dir.h"
#include "zctls/stats.h"

namespace zctls::cli {

std::string stats_json(const std::vector<ProcessStats>& all);
std::string stats_table(const std::vector<ProcessStats>& all);

}  // namespace zctls::cli
