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

/// The segment of `meters` counters (MakeId(0..meters-1)), sized exactly for
/// them: max_meters = meters, 8 value words each.
CounterSegment& CountersSegment(std::uint32_t meters);

}  // namespace spectator::bench
