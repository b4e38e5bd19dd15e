#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "spectator/internal/reader.h"

namespace spectator::testing {

/// A copy of a MeterReading that outlives the scan (buckets included).
struct Reading {
  MeterType type;
  double count, total, total_of_squares, max, value;
  std::vector<std::uint64_t> buckets;
};

/// Scans and returns the readings by canonical Id. With `commit`, every
/// reading of a take is settled as published (SegmentReader::Commit).
inline std::map<std::string, Reading> ScanAll(
    SegmentReader& reader, SegmentReader::Mode mode,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now(),
    SegmentReader::ScanStats* stats = nullptr, bool commit = false) {
  std::map<std::string, Reading> out;
  const auto s = reader.Scan(mode, now, [&](const MeterReading& r) {
    Reading copy{r.type, r.count, r.total, r.total_of_squares, r.max, r.value, {}};
    if (r.buckets != nullptr) copy.buckets.assign(r.buckets, r.buckets + kPercentileBucketCount);
    out[std::string(r.id)] = copy;
    if (commit) reader.Commit(r);
  });
  if (stats != nullptr) *stats = s;
  return out;
}

/// Takes and commits every reading, as a collector whose publish succeeded.
inline std::map<std::string, Reading> Take(
    SegmentReader& reader,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
  return ScanAll(reader, SegmentReader::Mode::kTake, now, nullptr, /*commit=*/true);
}

inline std::map<std::string, Reading> Peek(
    SegmentReader& reader,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
  return ScanAll(reader, SegmentReader::Mode::kPeek, now);
}

}  // namespace spectator::testing
