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

}  // namespace zctls::cli
