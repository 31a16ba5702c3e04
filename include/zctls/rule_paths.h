// Rules whose literal directories pass through a symbolic link on this
// system.  zctls matches the path the kernel gives an open file
// (readlink of /proc/self/fd/N), which is the resolved one, so such a rule
// never matches: a Capistrano-style /var/www/current -> releases/N.
// `zctls check` prints these warnings, and the engine logs them when it
// loads or reloads a config.
#pragma once

#include <string>
#include <vector>

#include "zctls/config.h"

namespace zctls {

// One "ORIGIN: KIND..." line per rule whose literal start (the directories
// before its first wildcard) passes through a symbolic link (KIND:
// "warning: " for `zctls check`, "" for the log): it names the link, where
// it points now, and the rule written for that.
// Reads the filesystem (lstat, readlink, realpath); rules without an
// absolute literal start, or whose start does not exist, give none.
std::vector<std::string> rules_through_symlinks(const Config& config, const char* kind);

}  // namespace zctls
