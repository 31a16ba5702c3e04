// A workaround for a toml++ 3.3 bug, used by config_parse.cpp only.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace zctls {

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

}  // namespace zctls
