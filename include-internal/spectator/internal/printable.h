#pragma once

// Text from outside (a meter name a caller passed, an HTTP error body) made
// safe for one log line. Internal: shared by the library and the collector,
// never installed.

#include <cstddef>
#include <string>
#include <string_view>

namespace spectator::internal {

/// At most `limit` characters of `text`, each control or non-ASCII byte
/// replaced by '?'; a longer text ends in "...", followed by its length
/// ("...(N bytes)") when `with_length` is set.
inline std::string Printable(std::string_view text, std::size_t limit = 200,
                             bool with_length = false) {
  std::string out;
  const std::size_t n = text.size() < limit ? text.size() : limit;
  out.reserve(n + 3);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    out += c < 0x20 || c >= 0x7f ? '?' : static_cast<char>(c);
  }
  if (text.size() > limit) {
    out += "...";
    if (with_length) out += "(" + std::to_string(text.size()) + " bytes)";
  }
  return out;
}

}  // namespace spectator::internal
