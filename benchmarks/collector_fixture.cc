#include "collector_fixture.h"

#include <map>
#include <memory>
#include <string>

namespace spectator::bench {
SegmentOptions CounterSegmentOptions(std::uint32_t meters) {
  // The collector's self-metrics are ~10 meters of one cache line (8 words)
  // each; 64 leaves room for its http.req.complete timers too.
  constexpr std::uint32_t kSelfMetrics = 64;
  SegmentOptions options;
  options.max_meters = meters + kSelfMetrics;
  options.value_words = std::uint64_t{meters + kSelfMetrics} * 8;
  return options;
}

CounterSegment::CounterSegment(std::uint32_t n)
    : meters(n), segment("collect" + std::to_string(n), CounterSegmentOptions(n)) {
  counters.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    const IdSpec id = MakeId(i);
    counters.push_back(segment.registry().GetCounter(id.name, id.tags));
  }
}

void CounterSegment::Touch() {
  for (Counter& c : counters) c.Increment();
}

CounterSegment& CountersSegment(std::uint32_t meters) {
  // Kept for the run: building 1M meters takes seconds, and repetitions of
  // the same size are interleaved with other benchmarks.
  static std::map<std::uint32_t, std::unique_ptr<CounterSegment>> segments;
  auto& s = segments[meters];
  if (!s) s = std::make_unique<CounterSegment>(meters);
  return *s;
}

}  // namespace spectator::bench
