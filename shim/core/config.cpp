#include "zctls/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

// Header-only and without exceptions: no runtime dependency on libtomlplusplus
// and nothing thrown through the C callers the shim lives under.
#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 0
#include <toml++/toml.h>

namespace zctls {
namespace {

template <typename Enum>
struct NamedValue {
  std::string_view name;
  Enum value;
};

constexpr NamedValue<OnChange> kOnChangeNames[] = {
    {"log", OnChange::log}, {"quarantine", OnChange::quarantine}, {"abort", OnChange::abort}};
constexpr NamedValue<KernelQuirks> kKernelQuirksNames[] = {
    {"auto", KernelQuirks::automatic}, {"on", KernelQuirks::on}, {"off", KernelQuirks::off}};

template <typename Enum, std::size_t N>
std::string_view name_of(const NamedValue<Enum> (&names)[N], Enum value) noexcept {
  for (const auto& named : names)
    if (named.value == value) return named.name;
  return "?";
}

// Config files are small; anything larger is a mistake, not a config.
constexpr std::size_t kMaxConfigBytes = 1 << 20;

class Parser {
 public:
  Parser(std::string_view source, std::vector<ConfigError>& errors)
      : source_(source), errors_(errors) {}

  void error(const toml::source_region& at, std::string message) {
    errors_.push_back({std::string(source_), static_cast<int>(at.begin.line),
                       static_cast<int>(at.begin.column), std::move(message)});
  }

  template <typename T>
  std::optional<T> value(const toml::node& node, const char* what) {
    if (auto v = node.value_exact<T>()) return v;
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
      } else if (key == "rule") {
        parse_rules(node, config);
      } else if (key == "log") {
        parse_log(node, config);
      } else if (key == "integrity") {
        parse_integrity(node, config.integrity);
      } else if (key == "stats") {
        parse_stats(node, config.stats);
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
                  "'log.level' must be error, warn, info or debug, not '" + *text + "'");
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
        if (auto ns = seconds(field, "'stats.textfile_interval'")) {
          if (*ns < 1'000'000'000) {
            error(field.source(), "'stats.textfile_interval' must be at least 1 second");
          } else {
            stats.textfile_interval_ns = *ns;
          }
        }
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
      } else {
        unknown_key(key, "[integrity]");
      }
    }
  }

  std::string_view source_;
  std::vector<ConfigError>& errors_;
};

}  // namespace

std::optional<LogLevel> parse_log_level(std::string_view text) noexcept {
  if (text == "error") return LogLevel::error;
  if (text == "warn" || text == "warning") return LogLevel::warn;
  if (text == "info") return LogLevel::info;
  if (text == "debug") return LogLevel::debug;
  return std::nullopt;
}

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::error:
      return "error";
    case LogLevel::warn:
      return "warn";
    case LogLevel::info:
      return "info";
    case LogLevel::debug:
      return "debug";
  }
  return "?";
}

Decision Config::decide(std::string_view path) const noexcept {
  for (std::size_t i = 0; i < rules.size(); ++i)
    if (rules[i].glob.matches(path)) return {rules[i].zerocopy, static_cast<int>(i)};
  return {default_zerocopy, -1};
}

std::string_view to_string(OnChange action) noexcept { return name_of(kOnChangeNames, action); }

std::string_view to_string(KernelQuirks mode) noexcept { return name_of(kKernelQuirksNames, mode); }

std::string ConfigError::to_string() const {
  if (line == 0) return source + ": " + message;
  return source + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

ConfigResult parse_config(std::string_view toml_text, std::string_view source) {
  ConfigResult result;
  if (toml_text.find('\0') != std::string_view::npos) {
    result.errors.push_back({std::string(source), 0, 0, "contains a NUL byte; not a TOML file"});
    return result;
  }
  toml::parse_result parsed = toml::parse(toml_text, source);
  if (!parsed) {
    const toml::parse_error& err = parsed.error();
    result.errors.push_back({std::string(source), static_cast<int>(err.source().begin.line),
                             static_cast<int>(err.source().begin.column),
                             std::string(err.description())});
    return result;
  }
  Config config;
  config.source = source;
  Parser parser(source, result.errors);
  parser.parse_root(parsed.table(), config);
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

ConfigResult load_config_file(const std::string& path) {
  ConfigResult result;
  auto fail = [&](const std::string& why) {
    result.errors.push_back({path, 0, 0, why});
    return result;
  };
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  std::string text;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return fail("not a regular file");
  }
  if (static_cast<std::size_t>(st.st_size) > kMaxConfigBytes) {
    close(fd);
    return fail("larger than 1 MiB; not a zctls config");
  }
  text.resize(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  close(fd);
  text.resize(got);
  return parse_config(text, path);
}

bool apply_rules_env(std::string_view text, Config& config, std::vector<ConfigError>& errors) {
  std::vector<Rule> rules;
  const std::size_t errors_before = errors.size();
  int index = 0;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(';', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view item = text.substr(start, end - start);
    const int column = static_cast<int>(start) + 1;
    start = end + 1;
    if (item.empty()) continue;
    ++index;
    if (item == "default=+" || item == "default=-") {
      config.default_zerocopy = item.back() == '+';
      continue;
    }
    if (item[0] != '+' && item[0] != '-') {
      errors.push_back({"ZCTLS_RULES", 1, column,
                        "item '" + std::string(item) +
                            "' must start with + (zerocopy) or - (copy), or be default=+/-"});
      continue;
    }
    Rule rule;
    std::string message;
    int glob_column = 0;
    if (!Glob::compile(item.substr(1), &rule.glob, &message, &glob_column)) {
      errors.push_back({"ZCTLS_RULES", 1, column + glob_column, "invalid glob: " + message});
      continue;
    }
    rule.zerocopy = item[0] == '+';
    rule.origin = "ZCTLS_RULES #" + std::to_string(index);
    rules.push_back(std::move(rule));
  }
  if (errors.size() != errors_before) return false;
  // Environment rules come first: first match wins, so they override.
  rules.insert(rules.end(), std::make_move_iterator(config.rules.begin()),
               std::make_move_iterator(config.rules.end()));
  config.rules = std::move(rules);
  return true;
}

}  // namespace zctls
