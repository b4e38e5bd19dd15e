#pragma once

// Randomised corruption of a small valid segment (every meter type), read
// back by SegmentReader (peek and take), Info() and the worker side; and
// random or mutated canonical Id strings fed to ParseCanonicalId. Fixed
// seeds, so a failure reproduces. Shared by the fast and the long binaries.

#include <cstdint>

namespace spectator::reliability {

/// Which bytes a segment fuzz round may corrupt, after the segment was
/// attached and validated.
enum class FuzzTarget {
  kEntriesAndValues,  // the id table and the value area
  kHeaderCounters,    // header words written after creation (meters, overflow, ...)
  kHeaderGeometry,    // header words fixed at creation (table_slots, value_words, ...)
};

/// Restores the pristine segment, applies 1..8 random corruptions to
/// `target`, then scans (peek, take with commit and restore), calls Info()
/// and registers and updates meters. Reports broken expectations via gtest.
void FuzzSegment(FuzzTarget target, long iterations, std::uint64_t seed);

/// Corrupts the segment file itself (anywhere but the magic and ready words,
/// which only make the attacher wait) and attaches a new Registry: it either
/// refuses with an Error naming the segment and leaves the file untouched,
/// or attaches and then scans and registers without crashing.
void FuzzAttach(long iterations, std::uint64_t seed);

/// ParseCanonicalId on random strings and on mutations of valid canonical
/// Ids: it never crashes, and when it accepts a string, CanonicalizeId of
/// the parts gives back exactly that string. Valid canonical Ids are always
/// accepted.
void FuzzCanonicalId(long iterations, std::uint64_t seed);

}  // namespace spectator::reliability
