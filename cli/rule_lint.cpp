#include "rule_lint.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <unordered_map>

namespace zctls::cli {
namespace {

std::string name_of(const Config& config, std::size_t i) {
  const Rule& r = config.rules[i];
  return "rule " + std::to_string(i + 1) + " (path \"" + r.glob.pattern() + "\")";
}

}  // namespace

std::vector<std::string> lint_rules(const Config& config) {
  std::vector<std::string> warnings;
  // The first rule with each glob, and the first whole-subtree rule for
  // each directory ("/srv/www" for "/srv/www/**").
  std::unordered_map<std::string, std::size_t> same, subtree;
  for (std::size_t i = 0; i < config.rules.size(); ++i) {
    const Rule& rule = config.rules[i];
    const Glob& g = rule.glob;
    const std::string head = rule.origin + ": warning: " + name_of(config, i);
    if (const std::string why = g.never_matches(); !why.empty()) {
      warnings.push_back(head + " can never match: " + why);
      continue;
    }
    std::size_t by = config.rules.size();
    if (auto it = same.find(g.pattern()); it != same.end()) by = it->second;
    // A subtree rule covers every path that starts with its directory and
    // has at least one more segment (a trailing ** is "everything below",
    // not the directory itself).  Any glob with segments after its first n
    // literal ones needs at least one more path segment: a ** inside is
    // always followed by another segment, a trailing one by an implied *.
    const std::size_t literal = g.literal_segments();
    for (std::size_t n = 0; n <= literal && n < g.segment_count() && by == config.rules.size();
         ++n) {
      if (auto it = subtree.find(g.prefix(n)); it != subtree.end() && it->second < i)
        by = it->second;
    }
    if (by < config.rules.size()) {
      warnings.push_back(head + " can never apply: " + name_of(config, by) + " (" +
                         config.rules[by].origin + ") comes first and matches every path it does");
      continue;
    }
    same.emplace(g.pattern(), i);
    if (g.is_subtree()) subtree.emplace(g.prefix(literal), i);
  }
  return warnings;
}

std::vector<std::string> lint_rule_symlinks(const Config& config) {
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
        char target[PATH_MAX], resolved[PATH_MAX];
        const ssize_t n = readlink(dir.c_str(), target, sizeof target - 1);
        target[n > 0 ? n : 0] = '\0';
        std::string instead = "(it does not resolve now)";
        if (realpath(dir.c_str(), resolved) != nullptr)
          instead = "\"" + std::string(resolved) + rule.glob.pattern().substr(dir.size()) + "\"";
        warnings.push_back(rule.origin + ": warning: " + name_of(config, i) +
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

}  // namespace zctls::cli
