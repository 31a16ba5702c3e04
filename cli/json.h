// The one JSON string writer of zctls's --json outputs.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace zctls {

// `text` as a JSON string literal, quotes included.
inline std::string json_quote(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", c);
      out += esc;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace zctls
