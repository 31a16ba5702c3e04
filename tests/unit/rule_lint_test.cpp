// `zctls check` warns about rules that can never decide anything.
#include "rule_lint.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>

#include "zctls/rule_paths.h"

namespace {

std::vector<std::string> lint(const std::string& toml) {
  auto r = zctls::parse_config(toml, "z.toml");
  EXPECT_TRUE(r.config);
  return r.config ? zctls::cli::lint_rules(*r.config) : std::vector<std::string>{};
}

std::string rule(const std::string& path, bool zerocopy) {
  return "[[rule]]\npath = \"" + path + "\"\nzerocopy = " + (zerocopy ? "true" : "false") + "\n";
}

TEST(RuleLint, AnEmptyRangeMatchesNothing) {
  const auto w = lint(rule("/srv/[z-a].js", true) + rule("/srv/[!]]x", true));
  ASSERT_EQ(w.size(), 1U);
  EXPECT_EQ(w[0],
            "z.toml:1:1: warning: rule 1 (path \"/srv/[z-a].js\") can never match: the class "
            "[z-a] at column 6 matches no character");
}

TEST(RuleLint, ShadowedBySameGlobOrAnEarlierSubtree) {
  const auto w = lint(rule("/srv/www/**", true) + rule("/srv/www/uploads/**", false) +
                      rule("/srv/www/*.js", false) + rule("/srv/www", false) +
                      rule("/srv/**", false) + rule("/srv/www/**", false));
  ASSERT_EQ(w.size(), 3U) << (w.empty() ? "" : w[0]);
  EXPECT_EQ(w[0],
            "z.toml:4:1: warning: rule 2 (path \"/srv/www/uploads/**\") can never apply: rule 1 "
            "(path \"/srv/www/**\") (z.toml:1:1) comes first and matches every path it does");
  EXPECT_NE(w[1].find("rule 3 (path \"/srv/www/*.js\") can never apply: rule 1"),
            std::string::npos);
  EXPECT_NE(w[2].find("rule 6 (path \"/srv/www/**\") can never apply: rule 1"), std::string::npos);
  // Rule 4 (the directory itself) and rule 5 (a wider tree, later) apply.
}

TEST(RuleLint, NothingToSayAboutAGoodConfig) {
  EXPECT_TRUE(lint(rule("/srv/www/uploads/**", false) + rule("/srv/www/**", true) +
                   rule("/srv/*/x", true) + rule("**/*.tmp", false))
                  .empty());
  // A wildcard before the subtree's directory ends: not provably shadowed.
  EXPECT_TRUE(lint(rule("/srv/www/**", true) + rule("/srv/*/uploads/**", false)).empty());
}

TEST(RuleLint, ManyRules) {
  std::string toml = rule("/srv/**", true);
  for (int i = 0; i < 10000; ++i) toml += rule("/data/d" + std::to_string(i) + "/**", i % 2 == 0);
  toml += rule("/srv/www/x", false);
  const auto w = lint(toml);
  ASSERT_EQ(w.size(), 1U);
  EXPECT_NE(w[0].find("rule 10002 (path \"/srv/www/x\") can never apply: rule 1"),
            std::string::npos);
}

// issue 31 #10: a rule written for a symlinked deploy path
// (/var/www/current -> releases/5) never matches: zctls matches resolved
// paths.  check says so, with the path to write.
TEST(RuleLint, ARuleThroughASymlinkSaysWhatToWriteInstead) {
  char top[] = "/tmp/zctls-lint-XXXXXX";
  ASSERT_NE(mkdtemp(top), nullptr);
  const std::string dir = top;
  ASSERT_EQ(
      std::system(("mkdir -p " + dir + "/releases/5/assets && ln -s releases/5 " + dir + "/current")
                      .c_str()),
      0);
  auto r = zctls::parse_config(rule(dir + "/current/assets/**", true) +
                                   rule(dir + "/releases/5/assets/*.js", true) +
                                   rule(dir + "/missing/**", true) + rule("**/*.tmp", false),
                               "z.toml");
  ASSERT_TRUE(r.config);
  const auto w = zctls::rules_through_symlinks(*r.config, "warning: ");
  std::system(("rm -rf " + dir).c_str());
  ASSERT_EQ(w.size(), 1U);
  EXPECT_EQ(w[0], "z.toml:1:1: warning: rule 1 (path \"" + dir +
                      "/current/assets/**\") never matches: " + dir +
                      "/current is a symbolic link (to releases/5), and zctls matches the "
                      "resolved path of the file a server opened; write the path it resolves "
                      "to, \"" +
                      dir +
                      "/releases/5/assets/**\", or a glob that covers every "
                      "target (and check again after a deploy switches the link)");
}

}  // namespace
