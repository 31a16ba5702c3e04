#include "explain.h"

namespace zctls::cli {

std::string format_check(const std::string& source, const ConfigResult& result) {
  if (!result.config) {
    std::string out;
    for (const ConfigError& e : result.errors) out += e.to_string() + "\n";
    return out;
  }
  const Config& c = *result.config;
  return source + ": ok: " + std::to_string(c.rules.size()) + " rule" +
         (c.rules.size() == 1 ? "" : "s") + ", default " +
         (c.default_zerocopy ? "zerocopy" : "copy") + ", on_change " +
         std::string(to_string(c.integrity.on_change)) + ", kernel_quirks " +
         std::string(to_string(c.integrity.kernel_quirks)) + "\n";
}

std::string explain_path(const Config& config, const std::string& path) {
  const Decision d = config.decide(path);
  const std::string what = d.zerocopy ? "zerocopy" : "copy";
  if (d.rule < 0) return path + ": " + what + " by default (no rule matches)\n";
  const Rule& rule = config.rules[static_cast<std::size_t>(d.rule)];
  return path + ": " + what + " by rule " + std::to_string(d.rule + 1) + " (" + rule.origin +
         ", path \"" + rule.glob.pattern() + "\")\n";
}

}  // namespace zctls::cli
