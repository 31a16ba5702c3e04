// The glob table: gitignore / bash-globstar semantics (see zctls/glob.h).
#include "zctls/glob.h"

#include <gtest/gtest.h>

#include <string>

namespace {

struct Case {
  const char* pattern;
  const char* path;
  bool match;
};

// clang-format off
const Case kCases[] = {
    // literals and '*' / '?' stay within a segment
    {"/var/www/index.html", "/var/www/index.html", true},
    {"/var/www/index.html", "/var/www/index.htm", false},
    {"/var/www/*.html", "/var/www/index.html", true},
    {"/var/www/*.html", "/var/www/a/index.html", false},
    {"/var/www/*", "/var/www/a/b", false},
    {"/var/*/x", "/var/www/x", true},
    {"/var/*/x", "/var/a/b/x", false},
    {"/var/www/?.js", "/var/www/a.js", true},
    {"/var/www/?.js", "/var/www/ab.js", false},
    {"/var/w?w/a", "/var/w/w/a", false},
    {"/var/www/*", "/var/www/", true},
    {"*", "/x", false},
    // '**' at the start
    {"**/*.js", "/var/www/x.js", true},
    {"**/*.js", "x.js", true},
    {"**/x.js", "/x.js", true},
    {"**/assets/*", "/srv/site/assets/app.css", true},
    {"**/assets/*", "/srv/site/assets/sub/app.css", false},
    // '**' in the middle, including zero directories
    {"/var/www/**/*.js", "/var/www/x.js", true},
    {"/var/www/**/*.js", "/var/www/a/x.js", true},
    {"/var/www/**/*.js", "/var/www/a/b/c/x.js", true},
    {"/var/www/**/*.js", "/var/www/a/b/x.css", false},
    {"/var/www/**/*.js", "/var/wwwx/a.js", false},
    {"/a/**/b/**/c", "/a/b/c", true},
    {"/a/**/b/**/c", "/a/x/b/y/z/c", true},
    {"/a/**/b/**/c", "/a/x/y/c", false},
    {"/a/**/**/b", "/a/b", true},
    // '**' at the end: everything below, not the directory itself
    {"/var/www/**", "/var/www/a", true},
    {"/var/www/**", "/var/www/a/b/c.txt", true},
    {"/var/www/**", "/var/www", false},
    {"/var/www/**", "/var/wwwx/a", false},
    {"**", "/anything/at/all", true},
    // dotfiles are ordinary names (gitignore, not bash without dotglob)
    {"/var/www/*", "/var/www/.htaccess", true},
    {"/var/www/**/*.js", "/var/www/.cache/x.js", true},
    {"/var/www/.well-known/**", "/var/www/.well-known/acme/t", true},
    {"/var/www/?htaccess", "/var/www/.htaccess", true},
    // character classes
    {"/img/[abc].png", "/img/b.png", true},
    {"/img/[abc].png", "/img/d.png", false},
    {"/img/[a-c].png", "/img/c.png", true},
    {"/img/[!a-c].png", "/img/d.png", true},
    {"/img/[!a-c].png", "/img/a.png", false},
    {"/img/[^a-c].png", "/img/a.png", false},
    {"/img/[]x].png", "/img/].png", true},
    {"/img/[!]].png", "/img/x.png", true},
    {"/img/v[0-9][0-9]/*", "/img/v42/a", true},
    {"/img/v[0-9][0-9]/*", "/img/v4x/a", false},
    {"/a[-]b", "/a-b", true},
    // escapes
    {"/a/\\*.txt", "/a/*.txt", true},
    {"/a/\\*.txt", "/a/x.txt", false},
    {"/a/\\[x]", "/a/[x]", true},
    // stars that need backtracking
    {"/a/*a*a*b", "/a/aaaaaaaab", true},
    {"/a/*a*a*b", "/a/aaaaaaaac", false},
    {"/a/*.tar.gz", "/a/x.tar.tar.gz", true},
    {"/*/*/x", "/a/b/x", true},
};
// clang-format on

struct Compiled {
  bool ok;
  zctls::Glob glob;
  std::string error;
  int column = 0;
};

Compiled compile(std::string_view pattern) {
  Compiled c{};
  c.ok = zctls::Glob::compile(pattern, &c.glob, &c.error, &c.column);
  return c;
}

class GlobTable : public ::testing::TestWithParam<Case> {};

TEST_P(GlobTable, Matches) {
  const Case& c = GetParam();
  const Compiled g = compile(c.pattern);
  ASSERT_TRUE(g.ok) << c.pattern << ": " << g.error;
  EXPECT_EQ(g.glob.matches(c.path), c.match) << c.pattern << " vs " << c.path;
}

INSTANTIATE_TEST_SUITE_P(Table, GlobTable, ::testing::ValuesIn(kCases));

struct BadCase {
  const char* pattern;
  int column;
  const char* message_part;
};

const BadCase kBad[] = {
    {"", 1, "empty"},
    {"/a/[abc", 4, "unclosed '['"},
    {"/a/b\\", 5, "escape"},
    {"/a/x**", 5, "whole path segment"},
    {"/a/**x/b", 4, "whole path segment"},
    {"/a/[a/b]", 4, "'/' inside"},
    {"/a\\/b", 3, "cannot be escaped"},
};

class GlobErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(GlobErrors, ReportColumnAndReason) {
  const BadCase& c = GetParam();
  const Compiled g = compile(c.pattern);
  EXPECT_FALSE(g.ok) << c.pattern;
  EXPECT_EQ(g.column, c.column) << c.pattern << ": " << g.error;
  EXPECT_NE(g.error.find(c.message_part), std::string::npos) << g.error;
}

INSTANTIATE_TEST_SUITE_P(Table, GlobErrors, ::testing::ValuesIn(kBad));

TEST(Glob, NulIsAnError) {
  const Compiled g = compile(std::string_view("/a\0b", 4));
  EXPECT_FALSE(g.ok);
  EXPECT_EQ(g.column, 3);
}

TEST(Glob, PathologicalPatternStaysPolynomial) {
  // Exponential backtracking would take years here; the single-backtrack
  // algorithm does about |pattern| x |path| steps.  (Correctness check
  // only: timing belongs to the benchmarks.)
  std::string pattern;
  for (int i = 0; i < 30; ++i) pattern += "**/";
  for (int i = 0; i < 30; ++i) pattern += "*a";
  pattern += "*b";
  std::string path;
  for (int i = 0; i < 30; ++i) path += "/aaaaaaaaaaaaaaaa";
  const Compiled compiled = compile(pattern);
  ASSERT_TRUE(compiled.ok) << compiled.error;
  const zctls::Glob& g = compiled.glob;
  EXPECT_FALSE(g.matches(path));
  // The last segment needs 30 a's then a b.
  EXPECT_TRUE(g.matches(path + "/" + std::string(40, 'a') + "b"));
  EXPECT_FALSE(g.matches(path + "/" + std::string(29, 'a') + "b"));
}

}  // namespace
