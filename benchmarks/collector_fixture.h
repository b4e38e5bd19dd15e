#pragma once

// Segments of N counters for the collector benchmarks (items 5 and 6), built
// once per run and removed at its end.

#include <cstdint>
#include <vector>

#include "bench_util.h"
#include "spectator/registry.h"

namespace spectator::bench {

struct CounterSegment {
  explicit CounterSegment(std::uint32_t meters);

  /// Gives every counter a non-zero step value again (the collector's take
  /// reset them), so each measured cycle publishes all N meters.
  void Touch();

  std::uint32_t meters;
  BenchSegment segment;
  std::vector<Counter> counters;
};

/// Options for a segment of `meters` counters: room for exactly them plus the
/// collector's own self-metrics (a few counters and gauges), which a
/// Collector registers in the segment it collects.
SegmentOptions CounterSegmentOptions(std::uint32_t meters);

/// The segment of `meters` counters (MakeId(0..meters-1)), sized by
/// CounterSegmentOptions. Built once per run and shared by the scan and
/// collector benchmarks; both settle every take (Commit), so either leaves the
/// segment with nothing pending.
CounterSegment& CountersSegment(std::uint32_t meters);

}  // namespace spectator::bench
