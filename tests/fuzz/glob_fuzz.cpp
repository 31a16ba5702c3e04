// libFuzzer target: the glob compiler and matcher, checked against a
// second, deliberately naive implementation of the semantics glob.h
// documents (dynamic programming over pattern elements and path segments,
// no shared code).  Input: PATTERN '\n' PATH.
//
// A disagreement aborts, which libFuzzer reports with the input; so do
// ASan/UBSan errors.  Inputs too long for the reference (it is cubic) are
// only matched, which still checks memory safety and, through libFuzzer's
// -timeout, that no pattern makes matching blow up.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "zctls/glob.h"

namespace {

// One pattern element within a segment.
struct Element {
  enum Kind { star, any, set, literal };
  Element(Kind k, char ch = 0) : kind(k), c(ch) {}
  Kind kind;
  char c = 0;                                 // literal
  bool negate = false;                        // set
  std::vector<std::pair<char, char>> ranges;  // set
};

// Parses one segment; the pattern has been accepted by Glob::compile, so
// every '[' is closed and no escape dangles.
std::vector<Element> parse_segment(std::string_view s) {
  std::vector<Element> out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '*') {
      out.emplace_back(Element::star);
    } else if (s[i] == '?') {
      out.emplace_back(Element::any);
    } else if (s[i] == '\\') {
      out.emplace_back(Element::literal, s[++i]);
    } else if (s[i] == '[') {
      Element e(Element::set);
      std::size_t j = i + 1;
      if (s[j] == '!' || s[j] == '^') e.negate = true, ++j;
      // Members up to the closing ']'; a ']' first is a member.
      std::vector<char> members;
      std::vector<bool> escaped;
      bool first = true;
      while (first || s[j] != ']') {
        first = false;
        const bool escape = s[j] == '\\';
        if (escape) ++j;
        members.push_back(s[j]);
        escaped.push_back(escape);
        ++j;
      }
      for (std::size_t m = 0; m < members.size(); ++m) {
        if (m + 2 < members.size() && members[m + 1] == '-' && !escaped[m + 1]) {
          e.ranges.push_back({members[m], members[m + 2]});
          m += 2;
        } else {
          e.ranges.push_back({members[m], members[m]});
        }
      }
      out.push_back(e);
      i = j;
    } else {
      out.emplace_back(Element::literal, s[i]);
    }
  }
  return out;
}

bool element_matches(const Element& e, char c) {
  switch (e.kind) {
    case Element::any:
      return true;
    case Element::literal:
      return e.c == c;
    case Element::set: {
      bool hit = false;
      for (auto [lo, hi] : e.ranges) hit = hit || (lo <= c && c <= hi);
      return hit != e.negate;
    }
    case Element::star:
      break;
  }
  return false;
}

// dp[i][j]: elements i.. match text j..
bool segment_matches(const std::vector<Element>& pat, std::string_view text) {
  const std::size_t n = pat.size(), m = text.size();
  std::vector<std::vector<char>> dp(n + 1, std::vector<char>(m + 1, 0));
  dp[n][m] = 1;
  for (std::size_t i = n; i-- > 0;) {
    for (std::size_t j = m + 1; j-- > 0;) {
      if (pat[i].kind == Element::star)
        dp[i][j] = dp[i + 1][j] || (j < m && dp[i][j + 1]);
      else
        dp[i][j] = j < m && element_matches(pat[i], text[j]) && dp[i + 1][j + 1];
    }
  }
  return dp[0][0];
}

std::vector<std::string_view> split(std::string_view s) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = s.find('/', start);
    parts.push_back(s.substr(start, slash == std::string_view::npos ? s.npos : slash - start));
    if (slash == std::string_view::npos) return parts;
    start = slash + 1;
  }
}

bool reference_matches(std::string_view pattern, std::string_view path) {
  std::vector<std::string_view> segs = split(pattern);
  if (segs.size() > 1 && segs.back() == "**") segs.push_back("*");  // "dir/**" = below dir
  const std::vector<std::string_view> texts = split(path);
  const std::size_t n = segs.size(), m = texts.size();
  std::vector<std::vector<char>> dp(n + 1, std::vector<char>(m + 1, 0));
  dp[n][m] = 1;
  for (std::size_t i = n; i-- > 0;) {
    const bool globstar = segs[i] == "**";
    const std::vector<Element> elements = parse_segment(segs[i]);
    for (std::size_t j = m + 1; j-- > 0;) {
      if (globstar)
        dp[i][j] = dp[i + 1][j] || (j < m && dp[i][j + 1]);
      else
        dp[i][j] = j < m && segment_matches(elements, texts[j]) && dp[i + 1][j + 1];
    }
  }
  return dp[0][0];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  const std::string_view pattern = input.substr(0, newline);
  const std::string_view path =
      newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);
  zctls::Glob glob;
  std::string error;
  int column = 0;
  if (!zctls::Glob::compile(pattern, &glob, &error, &column)) {
    if (error.empty() || column < 1 || static_cast<std::size_t>(column) > pattern.size() + 1)
      std::abort();
    return 0;
  }
  const bool got = glob.matches(path);
  if (pattern.size() <= 64 && path.size() <= 256 && got != reference_matches(pattern, path))
    std::abort();
  return 0;
}
