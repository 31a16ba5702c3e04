// Config parsing: rules in order, defaults, env rules, and every error
// with its file:line:col.
#include "zctls/config.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace {

using zctls::Config;
using zctls::ConfigResult;
using zctls::parse_config;

std::string first_error(const ConfigResult& r) {
  return r.errors.empty() ? std::string("(no error)") : r.errors.front().to_string();
}

TEST(Config, RulesFirstMatchWins) {
  const ConfigResult r = parse_config(R"(
default = false
[[rule]]
path = "/var/www/uploads/**"
zerocopy = false
[[rule]]
path = "/var/www/**"
zerocopy = true
)",
                                      "t.toml");
  ASSERT_TRUE(r.config) << first_error(r);
  const Config& c = *r.config;
  ASSERT_EQ(c.rules.size(), 2U);
  EXPECT_EQ(c.rules[0].origin, "t.toml:3:1");
  EXPECT_FALSE(c.decide("/var/www/uploads/a.png").zerocopy);
  EXPECT_EQ(c.decide("/var/www/uploads/a.png").rule, 0);
  EXPECT_TRUE(c.decide("/var/www/app.js").zerocopy);
  EXPECT_EQ(c.decide("/var/www/app.js").rule, 1);
  EXPECT_FALSE(c.decide("/etc/passwd").zerocopy);
  EXPECT_EQ(c.decide("/etc/passwd").rule, -1);
}

TEST(Config, OrderMattersTheOtherWayRound) {
  const ConfigResult r = parse_config(R"(
[[rule]]
path = "/var/www/**"
zerocopy = true
[[rule]]
path = "/var/www/uploads/**"
zerocopy = false
)",
                                      "t.toml");
  ASSERT_TRUE(r.config);
  EXPECT_TRUE(r.config->decide("/var/www/uploads/a.png").zerocopy);
}

TEST(Config, DefaultsWhenEmpty) {
  const ConfigResult r = parse_config("", "empty.toml");
  ASSERT_TRUE(r.config) << first_error(r);
  EXPECT_TRUE(r.config->rules.empty());
  EXPECT_FALSE(r.config->default_zerocopy);
  EXPECT_EQ(r.config->log_level, zctls::LogLevel::notice);
  EXPECT_FALSE(r.config->decide("/x").zerocopy);
  EXPECT_EQ(r.config->app_flag, zctls::AppFlag::govern);  // the config governs (issue 30)
}

TEST(Config, AppFlag) {
  const ConfigResult r = parse_config("app_flag = \"govern\"\n", "a.toml");
  ASSERT_TRUE(r.config) << first_error(r);
  EXPECT_EQ(r.config->app_flag, zctls::AppFlag::govern);
  EXPECT_EQ(zctls::parse_app_flag("respect"), zctls::AppFlag::respect);
  EXPECT_EQ(zctls::parse_app_flag("Govern"), std::nullopt);
  EXPECT_EQ(zctls::to_string(zctls::AppFlag::govern), "govern");
}

TEST(Config, DefaultTrueAndLogLevel) {
  const ConfigResult r = parse_config("default = true\n[log]\nlevel = \"debug\"\n", "t.toml");
  ASSERT_TRUE(r.config) << first_error(r);
  EXPECT_TRUE(r.config->decide("/anything").zerocopy);
  EXPECT_EQ(r.config->log_level, zctls::LogLevel::debug);
}

struct ErrorCase {
  const char* name;
  const char* text;
  const char* expected;  // the full "file:line:col: message" prefix
};

const ErrorCase kErrors[] = {
    {"Syntax", "default = \n", "c.toml:1:11: "},
    {"UnknownTopKey", "defualt = true\n", "c.toml:1:1: unknown key 'defualt' in the top level"},
    {"UnknownRuleKey", "[[rule]]\npath = \"/a\"\nzerocopy = true\npth = 1\n",
     "c.toml:4:1: unknown key 'pth' in [[rule]] #1"},
    {"WrongTypeDefault", "default = \"yes\"\n",
     "c.toml:1:11: 'default' must be a boolean, not a string"},
    {"WrongTypeZerocopy", "[[rule]]\npath = \"/a\"\nzerocopy = 1\n",
     "c.toml:3:12: 'zerocopy' must be a boolean, not an integer"},
    {"WrongTypePath", "[[rule]]\npath = 5\nzerocopy = true\n",
     "c.toml:2:8: 'path' must be a string, not an integer"},
    {"MissingPath", "[[rule]]\nzerocopy = true\n", "c.toml:1:1: [[rule]] #1 has no 'path'"},
    {"MissingZerocopy", "[[rule]]\npath = \"/a\"\n", "c.toml:1:1: [[rule]] #1 has no 'zerocopy'"},
    {"RuleNotArray", "[rule]\npath = \"/a\"\n", "c.toml:1:1: 'rule' must be an array of tables"},
    {"BadGlob", "[[rule]]\npath = \"/a/[bc\"\nzerocopy = true\n",
     "c.toml:2:12: invalid glob in 'path': unclosed '['"},
    {"BadGlobStar", "[[rule]]\npath = \"/a/x**\"\nzerocopy = true\n",
     "c.toml:2:13: invalid glob in 'path': '**' must be a whole path segment"},
    {"BadLogLevel", "[log]\nlevel = \"loud\"\n", "c.toml:2:9: 'log.level' must be error, warn"},
    {"UnknownLogKey", "[log]\ncolor = \"x\"\n", "c.toml:2:1: unknown key 'color' in [log]"},
    {"LogNotTable", "log = 1\n", "c.toml:1:7: 'log' must be a table"},
    {"LogTarget", "[log]\ntarget = \"file:relative.log\"\n",
     "c.toml:2:10: 'log.target' must be \"stderr\", \"syslog\" or \"file:/absolute/path\""},
    {"SettleType", "[integrity]\nsettle = \"2s\"\n",
     "c.toml:2:10: 'integrity.settle' must be a number of seconds, not a string"},
    {"SettleRange", "[integrity]\nsettle = -1\n",
     "c.toml:2:10: 'integrity.settle' must be between"},
    {"OnChangeValue", "[integrity]\non_change = \"panic\"\n",
     "c.toml:2:13: 'integrity.on_change' must be log, quarantine or abort, not 'panic'"},
    {"KernelQuirksValue", "[integrity]\nkernel_quirks = true\n",
     "c.toml:2:17: 'integrity.kernel_quirks' must be a string"},
    {"KernelQuirksChoice", "[integrity]\nkernel_quirks = \"yes\"\n",
     "c.toml:2:17: 'integrity.kernel_quirks' must be auto, on or off, not 'yes'"},
    {"HardLinksChoice", "[integrity]\nhard_links = \"follow\"\n",
     "c.toml:2:14: 'integrity.hard_links' must be copy or by_path, not 'follow'"},
    {"WritebackType", "[integrity]\nwriteback = \"yes\"\n",
     "c.toml:2:13: 'integrity.writeback' must be a boolean, not a string"},
    {"LogLevelChoice", "[log]\nlevel = \"loud\"\n",
     "c.toml:2:9: 'log.level' must be error, warn, notice, info or debug, not 'loud'"},
    {"AppFlagChoice", "app_flag = \"obey\"\n",
     "c.toml:1:12: 'app_flag' must be respect or govern, not 'obey'"},
    {"AppFlagType", "app_flag = true\n", "c.toml:1:12: 'app_flag' must be a string"},
    {"UnknownIntegrityKey", "[integrity]\nsettel = 1\n",
     "c.toml:2:1: unknown key 'settel' in [integrity]"},
};

class ConfigErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ConfigErrors, NamePositionAndProblem) {
  const ConfigResult r = parse_config(GetParam().text, "c.toml");
  EXPECT_FALSE(r.config);
  ASSERT_FALSE(r.errors.empty());
  EXPECT_EQ(first_error(r).rfind(GetParam().expected, 0), 0U) << first_error(r);
}

INSTANTIATE_TEST_SUITE_P(Table, ConfigErrors, ::testing::ValuesIn(kErrors),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(Config, LogTargets) {
  auto target = [](const char* text) {
    const ConfigResult r =
        parse_config(std::string("[log]\ntarget = \"") + text + "\"\n", "l.toml");
    EXPECT_TRUE(r.config) << first_error(r);
    return r.config ? r.config->log_target : zctls::LogTargetConfig{};
  };
  EXPECT_EQ(target("stderr").kind, zctls::LogTargetConfig::Kind::stderr_stream);
  EXPECT_EQ(target("syslog").kind, zctls::LogTargetConfig::Kind::syslog);
  EXPECT_EQ(target("file:/var/log/zctls.log").kind, zctls::LogTargetConfig::Kind::file);
  EXPECT_EQ(target("file:/var/log/zctls.log").path, "/var/log/zctls.log");
}

TEST(Config, IntegrityDefaultsAndValues) {
  const ConfigResult d = parse_config("", "d.toml");
  ASSERT_TRUE(d.config);
  EXPECT_EQ(d.config->integrity.settle_ns, 2'000'000'000);
  EXPECT_EQ(d.config->integrity.on_change, zctls::OnChange::quarantine);
  EXPECT_EQ(d.config->integrity.quarantine_ns, 60'000'000'000);
  EXPECT_EQ(d.config->integrity.kernel_quirks, zctls::KernelQuirks::automatic);
  EXPECT_EQ(d.config->integrity.hard_links, zctls::HardLinks::copy);
  EXPECT_FALSE(d.config->integrity.writeback);
  const ConfigResult r = parse_config(
      "[integrity]\nsettle = 0.5\non_change = \"abort\"\nquarantine = 300\n"
      "kernel_quirks = \"off\"\nhard_links = \"by_path\"\nwriteback = true\n",
      "i.toml");
  ASSERT_TRUE(r.config) << first_error(r);
  EXPECT_EQ(r.config->integrity.settle_ns, 500'000'000);
  EXPECT_EQ(r.config->integrity.on_change, zctls::OnChange::abort);
  EXPECT_EQ(r.config->integrity.quarantine_ns, 300'000'000'000);
  EXPECT_EQ(r.config->integrity.kernel_quirks, zctls::KernelQuirks::off);
  EXPECT_EQ(r.config->integrity.hard_links, zctls::HardLinks::by_path);
  EXPECT_TRUE(r.config->integrity.writeback);
}

TEST(Config, NulByteIsAnError) {
  const ConfigResult r = parse_config(std::string_view("default = true\0", 15), "n.toml");
  EXPECT_FALSE(r.config);
  EXPECT_NE(first_error(r).find("NUL"), std::string::npos);
}

TEST(ConfigFile, UnreadableAndMissingFiles) {
  const ConfigResult missing = zctls::load_config_file("/nonexistent/zctls.toml");
  EXPECT_FALSE(missing.config);
  EXPECT_EQ(first_error(missing),
            "/nonexistent/zctls.toml: cannot open: No such file or directory");
  const ConfigResult dir = zctls::load_config_file("/");
  EXPECT_FALSE(dir.config);
  EXPECT_EQ(first_error(dir), "/: not a regular file");
}

// No fd free is not a property of the file: the error says it may pass
// (the engine reads the file again; issue 31 #6).  A missing file is not.
TEST(ConfigFile, NoFreeFdIsATransientError) {
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  const int next = dup(0);
  ASSERT_GE(next, 0);
  close(next);
  rlimit none = saved;
  none.rlim_cur = static_cast<rlim_t>(next);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &none), 0);
  const ConfigResult short_of_fds = zctls::load_config_file(ZCTLS_EXAMPLE_CONFIG);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_FALSE(short_of_fds.config);
  ASSERT_EQ(short_of_fds.errors.size(), 1U);
  EXPECT_TRUE(short_of_fds.errors[0].transient);
  EXPECT_NE(first_error(short_of_fds).find("Too many open files"), std::string::npos);
  const ConfigResult missing = zctls::load_config_file("/nonexistent/zctls.toml");
  ASSERT_EQ(missing.errors.size(), 1U);
  EXPECT_FALSE(missing.errors[0].transient);
}

TEST(ConfigFile, ReadsAFile) {
  char path[] = "/tmp/zctls-config-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string text = "[[rule]]\npath = \"/srv/**\"\nzerocopy = true\n";
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  const ConfigResult r = zctls::load_config_file(path);
  unlink(path);
  ASSERT_TRUE(r.config) << first_error(r);
  EXPECT_TRUE(r.config->decide("/srv/a/b").zerocopy);
  EXPECT_EQ(r.config->rules[0].origin, std::string(path) + ":1:1");
}

TEST(ConfigFile, TheShippedExampleIsValid) {
  const ConfigResult r = zctls::load_config_file(ZCTLS_EXAMPLE_CONFIG);
  ASSERT_TRUE(r.config) << first_error(r);
  EXPECT_FALSE(r.config->decide("/var/www/uploads/a.jpg").zerocopy);
  EXPECT_TRUE(r.config->decide("/var/www/static/app.3f2a.js").zerocopy);
  EXPECT_FALSE(r.config->decide("/var/www/index.html").zerocopy);
}

// The Debian package's /etc/zctls.toml: valid, and nothing goes zerocopy
// until the admin adds rules.
TEST(Config, PackagedDefaultSendsNothingZerocopy) {
  if (access(ZCTLS_PACKAGED_CONFIG, F_OK) != 0)
    GTEST_SKIP() << "no debian/ in this tree (an upstream tarball)";
  const ConfigResult r = zctls::load_config_file(ZCTLS_PACKAGED_CONFIG);
  ASSERT_TRUE(r.config) << first_error(r);
  EXPECT_TRUE(r.config->rules.empty());
  EXPECT_FALSE(r.config->default_zerocopy);
  EXPECT_FALSE(r.config->decide("/var/www/html/index.html").zerocopy);
}

TEST(RulesEnv, PrependsAndSetsDefault) {
  ConfigResult r = parse_config("[[rule]]\npath = \"/srv/**\"\nzerocopy = true\n", "f.toml");
  ASSERT_TRUE(r.config);
  std::vector<zctls::ConfigError> errors;
  ASSERT_TRUE(zctls::apply_rules_env("-/srv/tmp/**;+/opt/**;default=+", *r.config, errors));
  const Config& c = *r.config;
  ASSERT_EQ(c.rules.size(), 3U);
  EXPECT_EQ(c.rules[0].origin, "ZCTLS_RULES #1");
  EXPECT_FALSE(c.decide("/srv/tmp/x").zerocopy);  // the env rule overrides the file's
  EXPECT_TRUE(c.decide("/srv/a").zerocopy);
  EXPECT_TRUE(c.decide("/opt/a").zerocopy);
  EXPECT_TRUE(c.decide("/elsewhere").zerocopy);  // default=+
}

TEST(RulesEnv, Errors) {
  Config c;
  std::vector<zctls::ConfigError> errors;
  EXPECT_FALSE(zctls::apply_rules_env("+/ok/**;/missing-sign", c, errors));
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].to_string().rfind("ZCTLS_RULES:1:9: item '/missing-sign' must start", 0), 0U)
      << errors[0].to_string();
  errors.clear();
  EXPECT_FALSE(zctls::apply_rules_env("+/a/[x", c, errors));
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].to_string(), "ZCTLS_RULES:1:5: invalid glob: unclosed '[' in glob");
  EXPECT_TRUE(c.rules.empty()) << "a broken ZCTLS_RULES adds nothing";
}

}  // namespace

namespace {

std::string utf8(char32_t c) {
  std::string s;
  if (c < 0x80) {
    s += static_cast<char>(c);
  } else if (c < 0x800) {
    s += static_cast<char>(0xC0 | (c >> 6));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    s += static_cast<char>(0xE0 | (c >> 12));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (c >> 18));
    s += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  }
  return s;
}

}  // namespace

// Debian's toml++ 3.3 has undefined behaviour (unreachable code) for some
// non-ASCII characters where it looks for whitespace; found by
// tests/fuzz/config_fuzz.cpp.  Every BMP character in the places that
// reached it must give a plain error or parse; the ASan/UBSan build
// (scripts/sanitize) is what would report a regression.
TEST(Config, EveryNonAsciiCharacterWhereTomlppLooksForWhitespace) {
  int errors = 0, parsed = 0;
  for (char32_t c = 0x80; c <= 0xFFFF; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    const std::string ch = utf8(c);
    for (const std::string& text :
         {"default = false" + ch + "\n", ch + " = 1\n", "a = \"\"\"\\\n" + ch + "\"\"\"\n"}) {
      const ConfigResult r = parse_config(text, "t.toml");
      (r.config ? parsed : errors) += 1;
      if (!r.config) {
        ASSERT_EQ(r.errors.size(), 1U);
        ASSERT_GE(r.errors[0].line, 1) << r.errors[0].to_string();
      }
    }
  }
  EXPECT_GT(errors, 0);
}

TEST(Config, NonAsciiInStringsAndCommentsSurvivesIntact) {
  const std::string cafe = "caf" + utf8(0xE9), kana = utf8(0x30AB), pua = utf8(0xE001);
  const ConfigResult r =
      parse_config("# r" + utf8(0xE9) + "gles " + kana + "\n[[rule]]\npath = \"/srv/" + cafe + "/" +
                       kana + pua + "/**\"\nzerocopy = true\n",
                   "t.toml");
  ASSERT_TRUE(r.config) << first_error(r);
  EXPECT_EQ(r.config->rules[0].glob.pattern(), "/srv/" + cafe + "/" + kana + pua + "/**");
  EXPECT_TRUE(r.config->decide("/srv/" + cafe + "/" + kana + pua + "/x.js").zerocopy);
  EXPECT_FALSE(r.config->decide("/srv/cafe/" + kana + pua + "/x.js").zerocopy);
}

TEST(Config, NonAsciiOutsideStringsIsAPositionedError) {
  const ConfigResult r = parse_config("default = false\n  " + utf8(0xE9) + " = 1\n", "t.toml");
  ASSERT_FALSE(r.config);
  EXPECT_EQ(r.errors[0].line, 2);
  EXPECT_EQ(r.errors[0].column, 3);
  // The message quotes the character as written, not a placeholder.
  EXPECT_EQ(r.errors[0].message.find(utf8(0xE000)), std::string::npos) << r.errors[0].message;
}

TEST(Config, NulByteIsAPositionedError) {
  const ConfigResult r = parse_config(std::string("default = false\nab\0c = 1\n", 23), "t.toml");
  ASSERT_FALSE(r.config);
  EXPECT_EQ(first_error(r), "t.toml:2:3: NUL byte; not a TOML file");
}
