// The config's parts that need no TOML: the rules' decision, names of
// settings, the file's trust and size checks, ZCTLS_RULES.  (config_parse.cpp:
// the TOML.)
#include "zctls/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include "config_names.h"

namespace zctls {
namespace {

using namespace config_names;

// Config files are small; anything larger is a mistake, not a config.
constexpr std::size_t kMaxConfigBytes = 1 << 20;

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
std::string_view to_string(AppFlag mode) noexcept { return name_of(kAppFlagNames, mode); }

std::optional<AppFlag> parse_app_flag(std::string_view text) noexcept {
  return value_of(kAppFlagNames, text);
}

std::string_view to_string(Offload mode) noexcept { return name_of(kOffloadNames, mode); }

std::optional<Offload> parse_offload(std::string_view text) noexcept {
  return value_of(kOffloadNames, text);
}

std::string ConfigError::to_string() const {
  if (line == 0) return source + ": " + message;
  return source + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
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
  if (fd < 0) {
    const int err = errno;
    fail(std::string("cannot open: ") + std::strerror(err));
    result.errors.back().transient = err == EMFILE || err == ENFILE || err == ENOMEM;
    return result;
  }
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
