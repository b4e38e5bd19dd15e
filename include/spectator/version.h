#pragma once

#include <cstdint>

namespace spectator {

/// Version of this library (semantic versioning).
inline constexpr const char* kVersion = "0.1.0";

/// Version of the shared-memory layout. Bumped on ANY change to the bytes of
/// the segment (header, entry, value words, hash function, Id encoding, claim
/// protocol); a segment of another version is never reinterpreted: it is
/// replaced when no process has it open, refused otherwise.
/// See docs/segment_format.md for the history.
inline constexpr std::uint32_t kLayoutVersion = 2;

}  // namespace spectator
