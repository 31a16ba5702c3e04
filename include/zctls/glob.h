// Path globs with gitignore / bash-globstar semantics, for config rules.
//
//   *       any run of characters except '/' (leading dots included, as in
//           gitignore: /var/www/** must cover /var/www/.well-known/x)
//   ?       one character except '/'
//   [...]   one character from a class: ranges a-z, negation [!...] or
//           [^...]; never matches '/'
//   **      as a whole path segment: any number of directories, including
//           none (/var/www/**/*.js matches /var/www/x.js); at the end
//           (/var/www/**) everything below the directory
//   \c      the character c literally
//
// Matching takes O(pattern x path) time whatever the pattern: no
// backtracking blow-up on inputs such as **/**/**/*a*a*a*b.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace zctls {

class Glob {
 public:
  // Parses `pattern`; on error returns false and sets *error to a message
  // and *column to the 1-based column of the offending character.
  static bool compile(std::string_view pattern, Glob* out, std::string* error, int* column);

  bool matches(std::string_view path) const noexcept;
  const std::string& pattern() const noexcept { return pattern_; }

  // For `zctls check` (warnings, never errors):
  // why no path can ever match (a class such as [z-a] that matches no
  // character), or "" if some can.
  std::string never_matches() const;
  // How many leading segments are plain text (no wildcard, no escape),
  // and whether the glob is exactly those followed by "/**": everything
  // below a directory.
  std::size_t literal_segments() const noexcept;
  std::size_t segment_count() const noexcept { return segments_.size(); }
  bool is_subtree() const noexcept;
  // The first `n` segments joined by '/' ("" + "srv" = "/srv").
  std::string prefix(std::size_t n) const;

 private:
  std::string pattern_;
  std::vector<std::string> segments_;  // split on '/'; "**" marks a globstar
};

}  // namespace zctls
