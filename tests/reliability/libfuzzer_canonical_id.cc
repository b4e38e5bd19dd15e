// libFuzzer target (clang builds only; see CMakeLists.txt): Id
// canonicalisation and parsing on arbitrary bytes. Aborts when ParseCanonicalId
// accepts a string that does not round-trip through CanonicalizeId, or
// refuses a string CanonicalizeId produced.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "spectator/id.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace spectator;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // The bytes as a canonical Id read from a segment.
  IdView view;
  if (ParseCanonicalId(input, &view)) {
    Tags tags;
    for (const auto& [k, v] : view.tags) tags.emplace_back(std::string(k), std::string(v));
    std::string again;
    if (CanonicalizeId(view.name, tags, &again) != IdError::kOk || again != input) std::abort();
  }

  // The same bytes as a caller's Id: name, key, value, key, value, ... split
  // at each \x01 (NUL stays inside the parts, as callers may pass it).
  std::string_view parts[1 + 2 * 100];
  std::size_t n = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= size && n < sizeof parts / sizeof parts[0]; ++i) {
    if (i == size || input[i] == '\x01') {
      parts[n++] = input.substr(start, i - start);
      start = i + 1;
    }
  }
  Tags tags;
  for (std::size_t i = 1; i + 1 < n; i += 2) tags.emplace_back(parts[i], parts[i + 1]);
  std::string canonical;
  if (CanonicalizeId(parts[0], tags, &canonical) == IdError::kOk) {
    IdView parsed;
    if (!ParseCanonicalId(canonical, &parsed)) std::abort();
  }
  return 0;
}
