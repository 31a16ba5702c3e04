// `zctls check` and `zctls explain`: what a config says, without running
// anything.  Pure formatting over parsed configs, unit-tested.
#pragma once

#include <string>
#include <vector>

#include "zctls/config.h"

namespace zctls::cli {

// "zctls.toml: ok: 3 rules, default copy" or one "file:line:col: message"
// per error.
std::string format_check(const std::string& source, const ConfigResult& result);

// One line per path: the decision and the rule that made it:
//   /srv/www/app.js: zerocopy by rule 2 (zctls.toml:7:1, path "/srv/www/**")
//   /srv/www/up/x: copy by rule 1 (zctls.toml:3:1, path "/srv/www/up/**")
//   /etc/passwd: copy by default (no rule matches)
std::string explain_path(const Config& config, const std::string& path);

// What the shim sees besides the path, for a file that exists: its link
// count and its other names under other mounts of its filesystem (here:
// the mount namespace `zctls explain` runs in).
struct FileNames {
  bool exists = false;
  unsigned long links = 1;
  std::vector<std::string> other_names;  // under other mounts
};
FileNames file_names(const std::string& path);

// explain_path with what file_names found: a file the rules send
// zerocopy goes by copy if it has other hard links (hard_links = "copy")
// or another name under a rule that says copy, as in the shim.
std::string explain_file(const Config& config, const std::string& path, const FileNames& names);

}  // namespace zctls::cli
