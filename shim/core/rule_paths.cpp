// Rules that the filesystem keeps from matching: see rule_paths.h.
#include "zctls/rule_paths.h"

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

namespace zctls {
namespace {

std::string rule_name(const Config& config, std::size_t i) {
  return "rule " + std::to_string(i + 1) + " (path \"" + config.rules[i].glob.pattern() + "\")";
}

}  // namespace

std::vector<std::string> rules_through_symlinks(const Config& config, const char* kind) {
  std::vector<std::string> warnings;
  for (std::size_t i = 0; i < config.rules.size(); ++i) {
    const Rule& rule = config.rules[i];
    const std::string start = rule.glob.prefix(rule.glob.literal_segments());
    if (start.empty() || start[0] != '/') continue;
    // Each directory of the literal start, from the top: the first link.
    for (std::size_t end = start.find('/', 1);; end = start.find('/', end + 1)) {
      const std::string dir = start.substr(0, end);
      struct stat st {};
      if (lstat(dir.c_str(), &st) != 0) break;
      if (S_ISLNK(st.st_mode)) {
        // Heap buffers: this runs in a server's hook too, on its stack.
        std::string target(PATH_MAX, '\0');
        const ssize_t n = readlink(dir.c_str(), target.data(), target.size() - 1);
        target.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
        std::string instead = "(it does not resolve now)";
        if (char* resolved = realpath(dir.c_str(), nullptr)) {
          instead = "\"" + std::string(resolved) + rule.glob.pattern().substr(dir.size()) + "\"";
          std::free(resolved);
        }
        warnings.push_back(rule.origin + ": " + kind + rule_name(config, i) +
                           " never matches: " + dir + " is a symbolic link (to " + target +
                           "), and zctls matches the resolved path of the file a server opened; "
                           "write the path it resolves to, " +
                           instead +
                           ", or a glob that covers every target (and check again after a "
                           "deploy switches the link)");
        break;
      }
      if (end == std::string::npos) break;
    }
  }
  return warnings;
}

}  // namespace zctls
