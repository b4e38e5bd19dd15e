#pragma once

// Scans for assertions: every reading of one scan copied out (buckets
// included) by canonical Id, with how often each Id was delivered.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "spectator/internal/reader.h"

namespace spectator::testing {

/// A copy of a MeterReading that outlives the scan (buckets included).
struct Reading {
  MeterType type = MeterType::kCounter;
  double count = 0, total = 0, total_of_squares = 0, max = 0, value = 0;
  std::vector<std::uint64_t> buckets;  // kPercentileBucketCount counts, percentile meters only
  std::uint64_t buckets_sum = 0;
  double cumulative_count = 0, cumulative_total = 0;
  std::vector<std::uint64_t> cumulative_buckets;  // percentile meters only
};

/// Every reading of one scan, by canonical Id, plus how often each Id was
/// delivered (an Id delivered twice would be a duplicate entry).
struct ScanResult {
  std::map<std::string, Reading> by_id;
  std::map<std::string, int> deliveries;
  SegmentReader::ScanStats stats;

  /// The count read for `id`, or -1 when the scan did not deliver it.
  double Count(const std::string& id) const {
    const auto it = by_id.find(id);
    return it == by_id.end() ? -1 : it->second.count;
  }

  int Duplicates() const {
    int d = 0;
    for (const auto& [id, n] : deliveries) d += n > 1 ? n - 1 : 0;
    return d;
  }
};

/// The one scanning loop of the tests. With `commit`, every reading of a
/// take is settled as published (SegmentReader::Commit).
inline ScanResult ScanReadings(SegmentReader& reader, SegmentReader::Mode mode,
                               std::chrono::system_clock::time_point now, bool commit) {
  ScanResult out;
  out.stats = reader.Scan(mode, now, [&](const MeterReading& r) {
    const std::string id(r.id);
    ++out.deliveries[id];
    Reading& copy = out.by_id[id];
    copy = Reading{r.type, r.count, r.total, r.total_of_squares, r.max, r.value, {}, 0,
                   r.cumulative_count, r.cumulative_total, {}};
    if (r.buckets != nullptr) {
      copy.buckets.assign(r.buckets, r.buckets + kPercentileBucketCount);
      for (const std::uint64_t b : copy.buckets) copy.buckets_sum += b;
    }
    if (r.cumulative_buckets != nullptr) {
      copy.cumulative_buckets.assign(r.cumulative_buckets,
                                     r.cumulative_buckets + kPercentileBucketCount);
    }
    if (commit) reader.Commit(r);
  });
  return out;
}

/// Scans and returns the readings by canonical Id. With `commit`, every
/// reading of a take is settled as published (SegmentReader::Commit).
inline std::map<std::string, Reading> ScanAll(
    SegmentReader& reader, SegmentReader::Mode mode,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now(),
    SegmentReader::ScanStats* stats = nullptr, bool commit = false) {
  ScanResult r = ScanReadings(reader, mode, now, commit);
  if (stats != nullptr) *stats = r.stats;
  return std::move(r.by_id);
}

/// Scans with `mode`; with kTake, commits every reading (a publish that
/// succeeded), so values are settled and never returned twice.
inline ScanResult ScanSegment(SegmentReader& reader, SegmentReader::Mode mode) {
  return ScanReadings(reader, mode, std::chrono::system_clock::now(),
                      mode == SegmentReader::Mode::kTake);
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
