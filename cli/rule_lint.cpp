#include "rule_lint.h"

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

}  // namespace zctls::cli
