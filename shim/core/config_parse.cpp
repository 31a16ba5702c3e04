// Config files: TOML (toml++, header-only, without exceptions) to Config,
// every error positioned as file:line:col.
#include <algorithm>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "config_names.h"
#include "unicode_shelter.h"
#include "zctls/config.h"

// Header-only and without exceptions: no runtime dependency on libtomlplusplus
// and nothing thrown through the C callers the shim lives under.
#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 0
#include <toml++/toml.h>

namespace zctls {
namespace {

using namespace config_names;

class Parser {
 public:
  Parser(std::string_view source, const UnicodeShelter& shelter, std::vector<ConfigError>& errors)
      : source_(source), shelter_(shelter), errors_(errors) {}

  void error(const toml::source_region& at, const std::string& message) {
    errors_.push_back({std::string(source_), static_cast<int>(at.begin.line),
                       static_cast<int>(at.begin.column), shelter_.restore(message)});
  }

  template <typename T>
  std::optional<T> value(const toml::node& node, const char* what) {
    if (auto v = node.value_exact<T>()) {
      if constexpr (std::is_same_v<T, std::string>) *v = shelter_.restore(*v);
      return v;
    }
    error(node.source(),
          std::string(what) + " must be a " + type_name<T>() + ", not " + kind_of(node));
    return std::nullopt;
  }

  void unknown_key(const toml::key& key, std::string_view where) {
    error(key.source(), "unknown key '" + std::string(key.str()) + "' in " + std::string(where));
  }

  void parse_root(const toml::table& root, Config& config) {
    for (const auto& [key, node] : root) {
      if (key == "default") {
        if (auto v = value<bool>(node, "'default'")) config.default_zerocopy = *v;
      } else if (key == "app_flag") {
        choose(node, "app_flag", kAppFlagNames, config.app_flag);
      } else if (key == "rule") {
        parse_rules(node, config);
      } else if (key == "log") {
        parse_log(node, config);
      } else if (key == "integrity") {
        parse_integrity(node, config.integrity);
      } else if (key == "stats") {
        parse_stats(node, config.stats);
      } else if (key == "kernel") {
        parse_kernel(node, config.kernel);
      } else {
        unknown_key(key, "the top level");
      }
    }
  }

 private:
  static std::string kind_of(const toml::node& node) {
    switch (node.type()) {
      case toml::node_type::table:
        return "a table";
      case toml::node_type::array:
        return "an array";
      case toml::node_type::string:
        return "a string";
      case toml::node_type::integer:
        return "an integer";
      case toml::node_type::floating_point:
        return "a float";
      case toml::node_type::boolean:
        return "a boolean";
      case toml::node_type::date:
      case toml::node_type::time:
      case toml::node_type::date_time:
        return "a date/time";
      default:
        return "nothing";
    }
  }

  template <typename T>
  static const char* type_name() {
    if constexpr (std::is_same_v<T, bool>) return "boolean";
    return "string";
  }

  void parse_rules(const toml::node& node, Config& config) {
    const toml::array* rules = node.as_array();
    if (rules == nullptr || !rules->is_array_of_tables()) {
      error(node.source(), "'rule' must be an array of tables: write [[rule]]");
      return;
    }
    int index = 0;
    for (const toml::node& item : *rules) {
      ++index;
      const toml::table& table = *item.as_table();
      const std::string where = "[[rule]] #" + std::to_string(index);
      std::optional<std::string> path;
      std::optional<bool> zerocopy;
      const toml::node* path_node = nullptr;
      for (const auto& [key, field] : table) {
        if (key == "path") {
          path = value<std::string>(field, "'path'");
          path_node = &field;
        } else if (key == "zerocopy") {
          zerocopy = value<bool>(field, "'zerocopy'");
        } else {
          unknown_key(key, where);
        }
      }
      if (path_node == nullptr) error(table.source(), where + " has no 'path'");
      if (!table.contains("zerocopy")) error(table.source(), where + " has no 'zerocopy'");
      if (!path || !zerocopy) continue;
      Rule rule;
      std::string message;
      int column = 0;
      if (!Glob::compile(*path, &rule.glob, &message, &column)) {
        // Point at the character inside the string: +1 for the opening quote.
        toml::source_region at = path_node->source();
        at.begin.column += static_cast<toml::source_index>(column);
        error(at, "invalid glob in 'path': " + message);
        continue;
      }
      rule.zerocopy = *zerocopy;
      const auto& begin = table.source().begin;
      rule.origin = std::string(source_) + ":" + std::to_string(begin.line) + ":" +
                    std::to_string(begin.column);
      config.rules.push_back(std::move(rule));
    }
  }

  void parse_log(const toml::node& node, Config& config) {
    const toml::table* log = node.as_table();
    if (log == nullptr) {
      error(node.source(), "'log' must be a table: write [log]");
      return;
    }
    for (const auto& [key, field] : *log) {
      if (key == "level") {
        if (auto text = value<std::string>(field, "'log.level'")) {
          if (auto level = parse_log_level(*text)) {
            config.log_level = *level;
          } else {
            error(field.source(),
                  "'log.level' must be error, warn, notice, info or debug, not '" + *text + "'");
          }
        }
      } else if (key == "target") {
        if (auto text = value<std::string>(field, "'log.target'")) {
          if (*text == "stderr") {
            config.log_target.kind = LogTargetConfig::Kind::stderr_stream;
          } else if (*text == "syslog") {
            config.log_target.kind = LogTargetConfig::Kind::syslog;
          } else if (text->starts_with("file:") && text->size() > 5 && (*text)[5] == '/') {
            config.log_target.kind = LogTargetConfig::Kind::file;
            config.log_target.path = text->substr(5);
          } else {
            error(field.source(),
                  "'log.target' must be \"stderr\", \"syslog\" or \"file:/absolute/path\", not '" +
                      *text + "'");
          }
        }
      } else {
        unknown_key(key, "[log]");
      }
    }
  }

  // An absolute directory path, or "" (off where allowed).
  std::optional<std::string> directory(const toml::node& node, const char* what) {
    auto text = value<std::string>(node, what);
    if (!text) return std::nullopt;
    if (!text->empty() && (*text)[0] != '/') {
      error(node.source(),
            std::string(what) + " must be an absolute path or \"\", not '" + *text + "'");
      return std::nullopt;
    }
    return text;
  }

  void parse_stats(const toml::node& node, StatsConfig& stats) {
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      error(node.source(), "'stats' must be a table: write [stats]");
      return;
    }
    for (const auto& [key, field] : *table) {
      if (key == "dir") {
        if (auto dir = directory(field, "'stats.dir'")) stats.dir = *dir;
      } else if (key == "textfile_dir") {
        if (auto dir = directory(field, "'stats.textfile_dir'")) stats.textfile_dir = *dir;
      } else if (key == "textfile_interval") {
        // Accepted and ignored, as textfile_dir is; still checked, so a
        // config that was wrong before is not taken now.
        if (auto ns = seconds(field, "'stats.textfile_interval'"); ns && *ns < 1'000'000'000)
          error(field.source(), "'stats.textfile_interval' must be at least 1 second");
      } else {
        unknown_key(key, "[stats]");
      }
    }
  }

  // A duration in seconds: an integer or a float, 0 to one day.
  std::optional<std::int64_t> seconds(const toml::node& node, const char* what) {
    double value = 0;
    if (auto i = node.value_exact<std::int64_t>()) {
      value = static_cast<double>(*i);
    } else if (auto f = node.value_exact<double>()) {
      value = *f;
    } else {
      error(node.source(),
            std::string(what) + " must be a number of seconds, not " + kind_of(node));
      return std::nullopt;
    }
    if (!(value >= 0 && value <= 86400)) {
      error(node.source(), std::string(what) + " must be between 0 and 86400 seconds");
      return std::nullopt;
    }
    return static_cast<std::int64_t>(value * 1e9);
  }

  // A string key with a fixed set of values: sets `out`, or reports the
  // value and the choices.
  template <typename Enum, std::size_t N>
  void choose(const toml::node& field, const char* key, const NamedValue<Enum> (&names)[N],
              Enum& out) {
    const std::string what = std::string("'") + key + "'";
    const auto text = value<std::string>(field, what.c_str());
    if (!text) return;
    std::string choices;  // "a, b or c"
    for (std::size_t i = 0; i < N; ++i) {
      if (*text == names[i].name) {
        out = names[i].value;
        return;
      }
      choices += (i == 0 ? "" : i + 1 == N ? " or " : ", ") + std::string(names[i].name);
    }
    error(field.source(), what + " must be " + choices + ", not '" + *text + "'");
  }

  void parse_kernel(const toml::node& node, KernelConfig& kernel) {
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      error(node.source(), "'kernel' must be a table: write [kernel]");
      return;
    }
    for (const auto& [key, field] : *table) {
      if (key == "offload") {
        choose(field, "kernel.offload", kOffloadNames, kernel.offload);
      } else {
        unknown_key(key, "[kernel]");
      }
    }
  }

  void parse_integrity(const toml::node& node, IntegrityConfig& integrity) {
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      error(node.source(), "'integrity' must be a table: write [integrity]");
      return;
    }
    for (const auto& [key, field] : *table) {
      if (key == "settle") {
        if (auto ns = seconds(field, "'integrity.settle'")) integrity.settle_ns = *ns;
      } else if (key == "quarantine") {
        if (auto ns = seconds(field, "'integrity.quarantine'")) integrity.quarantine_ns = *ns;
      } else if (key == "on_change") {
        choose(field, "integrity.on_change", kOnChangeNames, integrity.on_change);
      } else if (key == "kernel_quirks") {
        choose(field, "integrity.kernel_quirks", kKernelQuirksNames, integrity.kernel_quirks);
      } else if (key == "hard_links") {
        choose(field, "integrity.hard_links", kHardLinksNames, integrity.hard_links);
      } else if (key == "writeback") {
        if (auto v = value<bool>(field, "'integrity.writeback'")) integrity.writeback = *v;
      } else {
        unknown_key(key, "[integrity]");
      }
    }
  }

  std::string_view source_;
  const UnicodeShelter& shelter_;
  std::vector<ConfigError>& errors_;
};

}  // namespace

ConfigResult parse_config(std::string_view toml_text, std::string_view source) {
  ConfigResult result;
  if (toml_text.starts_with("\xFF\xFE") || toml_text.starts_with("\xFE\xFF")) {
    result.errors.push_back({std::string(source), 1, 1, "UTF-16 text; save the file as UTF-8"});
    return result;
  }
  if (const std::size_t nul = toml_text.find('\0'); nul != std::string_view::npos) {
    const std::string_view before = toml_text.substr(0, nul);
    const std::size_t line_start = before.rfind('\n') + 1;  // npos + 1 == 0
    result.errors.push_back({std::string(source),
                             static_cast<int>(std::count(before.begin(), before.end(), '\n')) + 1,
                             static_cast<int>(nul - line_start) + 1, "NUL byte; not a TOML file"});
    return result;
  }
  UnicodeShelter shelter;
  if (!shelter.shelter(toml_text)) {
    result.errors.push_back({std::string(source), 0, 0, "too many distinct non-ASCII characters"});
    return result;
  }
  toml::parse_result parsed = toml::parse(shelter.text(), source);
  if (!parsed) {
    const toml::parse_error& err = parsed.error();
    result.errors.push_back({std::string(source), static_cast<int>(err.source().begin.line),
                             static_cast<int>(err.source().begin.column),
                             shelter.restore(err.description())});
    return result;
  }
  Config config;
  config.source = source;
  Parser parser(source, shelter, result.errors);
  parser.parse_root(parsed.table(), config);
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

}  // namespace zctls
