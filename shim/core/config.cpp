#include "zctls/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <type_traits>
#include <unordered_map>

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
constexpr NamedValue<HardLinks> kHardLinksNames[] = {{"copy", HardLinks::copy},
                                                     {"by_path", HardLinks::by_path}};

template <typename Enum, std::size_t N>
std::string_view name_of(const NamedValue<Enum> (&names)[N], Enum value) noexcept {
  for (const auto& named : names)
    if (named.value == value) return named.name;
  return "?";
}

// Config files are small; anything larger is a mistake, not a config.
constexpr std::size_t kMaxConfigBytes = 1 << 20;

// toml++ 3.3 (Debian 12) reaches __builtin_unreachable, i.e. undefined
// behaviour, when it asks whether certain non-ASCII code points are
// whitespace (marzer/tomlplusplus#190 and #295, fixed upstream in 2026):
// those whose (c - 0xA0) / 0x3FA is 0, 11 or 63, except the three real
// whitespace characters among them.  It asks wherever it scans for the end
// of a token, which can run over quotes and into what looks like a string,
// so no lexing of ours can tell where that is safe.  Instead, before
// toml++ sees the text, every such code point is swapped for a private-use
// one (U+E000 + n), which toml++ classifies correctly, and every string
// that comes out (values, keys, messages) gets the originals back.  A
// private-use code point already in the text is swapped too, so the
// mapping stays one to one.  Columns count code points, so positions in
// messages do not move.
class UnicodeShelter {
 public:
  static constexpr char32_t kFirstPlaceholder = 0xE000, kLastPlaceholder = 0xF8FF;

  // False if the text holds more distinct such code points than there are
  // placeholders (6400): no config does.
  bool shelter(std::string_view in) {
    text_.clear();
    text_.reserve(in.size());
    for (std::size_t i = 0; i < in.size();) {
      char32_t c = 0;
      const std::size_t n = decode(in, i, &c);
      if (n == 0 || !needs_shelter(c)) {
        text_.append(in.substr(i, n == 0 ? 1 : n));  // ASCII, safe, or not UTF-8 (toml++'s error)
        i += n == 0 ? 1 : n;
        continue;
      }
      auto [it, added] = placeholder_of_.try_emplace(c, 0);
      if (added) {
        if (originals_.size() > kLastPlaceholder - kFirstPlaceholder) return false;
        it->second = kFirstPlaceholder + static_cast<char32_t>(originals_.size());
        originals_.push_back(c);
      }
      encode(it->second, text_);
      i += n;
    }
    return true;
  }

  std::string_view text() const noexcept { return text_; }

  // `s` with the original code points back in place of the placeholders.
  std::string restore(std::string_view s) const {
    if (originals_.empty()) return std::string(s);
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
      char32_t c = 0;
      const std::size_t n = decode(s, i, &c);
      if (n != 0 && c >= kFirstPlaceholder && c - kFirstPlaceholder < originals_.size()) {
        encode(originals_[c - kFirstPlaceholder], out);
      } else {
        out.append(s.substr(i, n == 0 ? 1 : n));
      }
      i += n == 0 ? 1 : n;
    }
    return out;
  }

 private:
  static bool needs_shelter(char32_t c) noexcept {
    if (c >= kFirstPlaceholder && c <= kLastPlaceholder) return true;
    if (c < 0xA0 || c > 0xFEFF || c == 0xA0 || c == 0x3000 || c == 0xFEFF) return false;
    const char32_t index = (c - 0xA0) / 0x3FA;
    return index == 0 || index == 11 || index == 63;
  }

  // Length of the well-formed UTF-8 sequence at s[i] (and its code point),
  // or 0 if it is ASCII or not well formed.
  static std::size_t decode(std::string_view s, std::size_t i, char32_t* c) noexcept {
    const auto b0 = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    char32_t min = 0;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      n = 2, min = 0x80, *c = b0 & 0x1Fu;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      n = 3, min = 0x800, *c = b0 & 0x0Fu;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      n = 4, min = 0x10000, *c = b0 & 0x07u;
    } else {
      return 0;
    }
    if (i + n > s.size()) return 0;
    for (std::size_t k = 1; k < n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return 0;
      *c = (*c << 6) | (b & 0x3Fu);
    }
    if (*c < min || *c > 0x10FFFF || (*c >= 0xD800 && *c <= 0xDFFF)) return 0;
    return n;
  }

  static void encode(char32_t c, std::string& out) {
    if (c < 0x800) {
      out += static_cast<char>(0xC0 | (c >> 6));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xE0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    }
    out += static_cast<char>(0x80 | (c & 0x3F));
  }

  std::string text_;
  std::vector<char32_t> originals_;
  std::unordered_map<char32_t, char32_t> placeholder_of_;
};

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

std::optional<LogLevel> parse_log_level(std::string_view text) noexcept {
  if (text == "error") return LogLevel::error;
  if (text == "warn" || text == "warning") return LogLevel::warn;
  if (text == "notice") return LogLevel::notice;
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
    case LogLevel::notice:
      return "notice";
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

std::string_view to_string(HardLinks mode) noexcept { return name_of(kHardLinksNames, mode); }

std::string ConfigError::to_string() const {
  if (line == 0) return source + ": " + message;
  return source + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

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

std::string config_trust_problem(unsigned owner_uid, unsigned group_gid, unsigned mode,
                                 unsigned euid) {
  if (euid != 0) return "";
  char octal[8];
  std::snprintf(octal, sizeof octal, "%04o", mode & 07777);
  if ((mode & S_IWOTH) != 0)
    return std::string("refusing it as root: any user can write it (mode ") + octal +
           "); chmod o-w it";
  if ((mode & S_IWGRP) != 0 && group_gid != 0)
    return "refusing it as root: group " + std::to_string(group_gid) + " can write it (mode " +
           octal + "); chmod g-w it or chgrp root it";
  if (owner_uid != 0)
    return "refusing it as root: it belongs to uid " + std::to_string(owner_uid) +
           ", not root; chown root it";
  return "";
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
  if (const std::string why = config_trust_problem(st.st_uid, st.st_gid, st.st_mode, geteuid());
      !why.empty()) {
    close(fd);
    return fail(why);
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
