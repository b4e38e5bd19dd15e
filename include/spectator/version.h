#pragma once

#include <cstdint>

namespace spectator {

/// Version of this library (semantic versioning).
inline constexpr const char* kVersion = "0.1.0";

/// Version of the shared-memory layout. Bumped on ANY change to the bytes of
/// the segment (header, entry, value words, hash function, Id encoding); a
/// segment of another version is refused, never reinterpreted.
/// See docs/segment_format.md for the history.
inline constexpr std::uint32_t kLayoutVersion = 1;

}  // namespace spectator
