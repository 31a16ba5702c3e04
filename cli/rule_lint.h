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

// One "ORIGIN: warning: ..." line per rule whose literal start (the
// directories before its first wildcard) passes through a symbolic link
// on this system: zctls matches the path the kernel gives the open file
// (/proc/self/fd), which is the resolved one, so such a rule never
// matches (a Capistrano-style /var/www/current -> releases/N).  The line
// names the link, where it points now, and the rule written for that.
// Reads the filesystem (lstat, readlink, realpath); rules without an
// absolute literal start, or whose start does not exist, give none.
std::vector<std::string> lint_rule_symlinks(const Config& config);

}  // namespace zctls::cli
