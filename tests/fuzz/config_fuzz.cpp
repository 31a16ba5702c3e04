// libFuzzer target: the config parser and validator, and ZCTLS_RULES.
//
// Whatever the bytes, parse_config must return either a config or errors
// (never both, never neither), every error must carry a message, and a
// config it accepts must be usable: decide() on any path, explain-style
// origins on every rule.  ASan/UBSan (scripts/fuzz) catch the rest.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "zctls/config.h"

namespace {

void require(bool condition) {
  if (!condition) std::abort();  // libFuzzer reports it as a crash, with the input
}

void check_result(const zctls::ConfigResult& result) {
  require(result.config.has_value() != !result.errors.empty());
  for (const zctls::ConfigError& e : result.errors) {
    require(!e.message.empty());
    require(e.line >= 0 && e.column >= 0);
    require(!e.to_string().empty());
  }
  if (!result.config) return;
  for (const zctls::Rule& rule : result.config->rules) require(!rule.origin.empty());
  const zctls::Config& config = *result.config;
  for (std::string_view path : {"/", "/srv/www/index.html", "/var/www/.well-known/a/b.js", ""}) {
    const zctls::Decision d = config.decide(path);
    require(d.rule >= -1 && d.rule < static_cast<int>(config.rules.size()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_result(zctls::parse_config(text, "fuzz.toml"));

  // The same bytes as ZCTLS_RULES, on top of an empty config.
  zctls::Config config;
  std::vector<zctls::ConfigError> errors;
  const bool ok = zctls::apply_rules_env(text, config, errors);
  require(ok == errors.empty());
  for (const zctls::ConfigError& e : errors) require(!e.message.empty() && e.column >= 1);
  if (ok) (void)config.decide("/srv/www/a.css");
  return 0;
}
