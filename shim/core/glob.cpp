#include "zctls/glob.h"

#include <cstddef>

namespace zctls {
namespace {

constexpr std::string_view kGlobstar = "**";

// Length of the class starting at pat[i] == '[' (through its ']'), or 0 if
// it is not closed.  A ']' right after '[' or '[!' is a member, as in bash.
std::size_t class_length(std::string_view pat, std::size_t i) {
  std::size_t j = i + 1;
  if (j < pat.size() && (pat[j] == '!' || pat[j] == '^')) ++j;
  if (j < pat.size() && pat[j] == ']') ++j;
  while (j < pat.size() && pat[j] != ']') {
    if (pat[j] == '\\') ++j;
    ++j;
  }
  return j < pat.size() ? j - i + 1 : 0;
}

bool class_matches(std::string_view cls, char c) {
  // cls is "[...]" including brackets.
  std::size_t j = 1;
  bool negate = false;
  if (cls[j] == '!' || cls[j] == '^') {
    negate = true;
    ++j;
  }
  bool hit = false;
  const std::size_t end = cls.size() - 1;
  bool first = true;
  while (j < end && (first || cls[j] != ']')) {
    first = false;
    char lo = cls[j];
    if (lo == '\\' && j + 1 < end) lo = cls[++j];
    char hi = lo;
    if (j + 2 < end && cls[j + 1] == '-') {
      hi = cls[j + 2];
      if (hi == '\\' && j + 3 < end) hi = cls[j + 3], ++j;
      j += 2;
    }
    if (lo <= c && c <= hi) hit = true;
    ++j;
  }
  return hit != negate;
}

// One pattern element at pat[pi] against c; sets *width to its length.
bool element_matches(std::string_view pat, std::size_t pi, char c, std::size_t* width) {
  switch (pat[pi]) {
    case '?':
      *width = 1;
      return true;
    case '[': {
      const std::size_t len = class_length(pat, pi);
      *width = len;
      return class_matches(pat.substr(pi, len), c);
    }
    case '\\':
      *width = 2;
      return pat[pi + 1] == c;
    default:
      *width = 1;
      return pat[pi] == c;
  }
}

// Wildcard match of one path segment (no '/').  Greedy with a single
// backtrack point, the last '*': O(|pat| x |text|) worst case.
bool segment_matches(std::string_view pat, std::string_view text) {
  std::size_t pi = 0, ti = 0;
  std::size_t star_pi = std::string_view::npos, star_ti = 0;
  while (ti < text.size()) {
    std::size_t width = 0;
    if (pi < pat.size() && pat[pi] == '*') {
      star_pi = ++pi;
      star_ti = ti;
    } else if (pi < pat.size() && element_matches(pat, pi, text[ti], &width)) {
      pi += width;
      ++ti;
    } else if (star_pi != std::string_view::npos) {
      pi = star_pi;
      ti = ++star_ti;
    } else {
      return false;
    }
  }
  while (pi < pat.size() && pat[pi] == '*') ++pi;
  return pi == pat.size();
}

std::vector<std::string_view> split(std::string_view s) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == '/') {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

}  // namespace

bool Glob::compile(std::string_view pattern, Glob* out, std::string* error, int* column) {
  auto fail = [&](std::size_t at, const char* what) {
    *error = what;
    *column = static_cast<int>(at) + 1;
    return false;
  };
  if (pattern.empty()) return fail(0, "empty glob");
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\0') return fail(i, "NUL character in glob");
    if (c == '\\') {
      if (i + 1 == pattern.size()) return fail(i, "glob ends with an escape '\\'");
      if (pattern[i + 1] == '/') return fail(i, "'/' cannot be escaped");
      ++i;
    } else if (c == '[') {
      const std::size_t len = class_length(pattern, i);
      if (len == 0) return fail(i, "unclosed '[' in glob");
      const std::string_view cls = pattern.substr(i, len);
      if (cls.find('/') != std::string_view::npos) return fail(i, "'/' inside a [...] class");
      i += len - 1;
    } else if (c == '*' && i + 1 < pattern.size() && pattern[i + 1] == '*') {
      const bool starts = i == 0 || pattern[i - 1] == '/';
      const bool ends = i + 2 == pattern.size() || pattern[i + 2] == '/';
      if (!starts || !ends)
        return fail(i, "'**' must be a whole path segment (use '*' within a name)");
      ++i;
    }
  }
  Glob g;
  g.pattern_ = pattern;
  for (const std::string_view seg : split(pattern)) {
    // Consecutive globstars mean the same as one.
    if (seg == kGlobstar && !g.segments_.empty() && g.segments_.back() == kGlobstar) continue;
    g.segments_.emplace_back(seg);
  }
  // A trailing "**" covers what is below the directory, not the directory
  // itself (gitignore): it stands for "**/*".
  if (g.segments_.size() > 1 && g.segments_.back() == kGlobstar) g.segments_.emplace_back("*");
  *out = std::move(g);
  return true;
}

// Segment-level wildcard match, "**" being the star: the same single
// backtrack-point algorithm as within a segment, so the total cost stays
// O(|pattern| x |path|).  Path segments are walked by offset: no allocation.
bool Glob::matches(std::string_view path) const noexcept {
  const std::size_t end = path.size() + 1;  // offset past the last segment
  auto next = [&](std::size_t start) {
    const std::size_t slash = path.find('/', start);
    return slash == std::string_view::npos ? end : slash + 1;
  };
  auto segment = [&](std::size_t start) { return path.substr(start, next(start) - 1 - start); };
  std::size_t pi = 0, ti = 0;
  std::size_t star_pi = std::string_view::npos, star_ti = 0;
  while (ti < end) {
    if (pi < segments_.size() && segments_[pi] == kGlobstar) {
      star_pi = ++pi;
      star_ti = ti;
    } else if (pi < segments_.size() && segment_matches(segments_[pi], segment(ti))) {
      ++pi;
      ti = next(ti);
    } else if (star_pi != std::string_view::npos) {
      pi = star_pi;
      star_ti = next(star_ti);
      ti = star_ti;
    } else {
      return false;
    }
  }
  while (pi < segments_.size() && segments_[pi] == kGlobstar) ++pi;
  return pi == segments_.size();
}

std::string Glob::never_matches() const {
  for (std::size_t i = 0; i < pattern_.size(); ++i) {
    if (pattern_[i] == '\\') {
      ++i;
      continue;
    }
    if (pattern_[i] != '[') continue;
    const std::size_t len = class_length(pattern_, i);
    if (len == 0) break;  // compile() refused those
    const std::string_view cls = std::string_view(pattern_).substr(i, len);
    bool any = false;
    for (int c = 1; c < 256 && !any; ++c)
      any = c != '/' && class_matches(cls, static_cast<char>(c));
    if (!any)
      return "the class " + std::string(cls) + " at column " + std::to_string(i + 1) +
             " matches no character";
    i += len - 1;
  }
  return "";
}

std::size_t Glob::literal_segments() const noexcept {
  std::size_t n = 0;
  while (n < segments_.size() && segments_[n].find_first_of("*?[\\") == std::string::npos) ++n;
  return n;
}

bool Glob::is_subtree() const noexcept {
  // A trailing "**" was compiled as "**" followed by "*".
  const std::size_t n = literal_segments();
  return segments_.size() == n + 2 && segments_[n] == kGlobstar && segments_[n + 1] == "*";
}

std::string Glob::prefix(std::size_t n) const {
  std::string out;
  for (std::size_t i = 0; i < n && i < segments_.size(); ++i) {
    if (i > 0) out += '/';
    out += segments_[i];
  }
  return out;
}

}  // namespace zctls
