// `zctls check`'s warnings: rules that are valid but can never decide
// anything.  Warnings only; the config still loads.
#pragma once

#include <string>
#include <vector>

#include "zctls/config.h"

namespace zctls::cli {

// One "ORIGIN: warning: ..." line per rule that
//  - can match no path (a class such as [z-a] that matches no character), or
//  - is shadowed: an earlier rule matches every path it matches (first
//    match wins), found when the earlier one is the same glob or a whole
//    subtree (/srv/www/**) that the later one's literal start lies below.
// Shadowing is found conservatively: a warning is always true, but not
// every shadowed rule is found.  Linear in the number of rules (times
// their depth): 10 000 rules take milliseconds.
std::vector<std::string> lint_rules(const Config& config);
// (Rules through symbolic links: zctls/rule_paths.h, which the engine
// logs at load too.)

}  // namespace zctls::cli
