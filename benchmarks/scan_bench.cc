// Item 5, the part that needs only the core library: SegmentReader::Scan
// with kTake over N counters and the Commit of every reading, the
// collector's read and settling of the segment without measurements, JSON or
// gzip. A steady-state scan (entries already validated by an earlier scan of
// the same reader) and a first scan (a new reader, which validates every
// entry: the collector's start-up).

#include <benchmark/benchmark.h>

#include <chrono>
#include <vector>

#include "collector_fixture.h"
#include "spectator/internal/reader.h"

namespace spectator::bench {
namespace {

void SizeArgs(benchmark::internal::Benchmark* b) {
  b->Arg(1000)->Arg(10'000)->Arg(100'000)->Arg(1'000'000);
  b->Unit(benchmark::kMillisecond);
}

void BM_ScanTake(benchmark::State& state) {
  CounterSegment& s = CountersSegment(static_cast<std::uint32_t>(state.range(0)));
  CollectorLock lock(s.segment.registry().segment_name());  // a take needs it
  SegmentReader reader(s.segment.registry(), lock);
  // A take journals what it read until Commit (docs/segment_format.md, "The
  // pending journal"); the collector commits each batch's run of readings
  // once the batch is settled, so the scan's cost includes the commits.
  // Without them, every take would return the same counts again and the
  // check below would be meaningless.
  std::size_t seen = 0;
  std::uint32_t end = 0;
  auto visit = [&](const MeterReading& r) {
    seen += r.count > 0;
    end = r.position + 1;
  };
  auto scan = [&] {
    seen = 0;
    reader.Scan(SegmentReader::Mode::kTake, std::chrono::system_clock::now(), visit);
    reader.Commit(0, end);
  };
  scan();  // validates every entry and settles whatever an earlier run left
  for (auto _ : state) {
    state.PauseTiming();
    s.Touch();
    state.ResumeTiming();
    scan();
  }
  // The collector benchmark's self-metrics live in the same segment: >=.
  if (seen < s.meters) state.SkipWithError("the scan did not take every meter");
  state.counters["ops_per_iter"] = s.meters;  // figures are per meter
}
BENCHMARK(BM_ScanTake)->Apply(SizeArgs);

void BM_ScanFirst(benchmark::State& state) {
  CounterSegment& s = CountersSegment(static_cast<std::uint32_t>(state.range(0)));
  for (auto _ : state) {
    SegmentReader reader(s.segment.registry());
    const auto stats = reader.Scan(SegmentReader::Mode::kPeek, std::chrono::system_clock::now(),
                                   [](const MeterReading& r) { benchmark::DoNotOptimize(r); });
    // >=: the collector benchmark's self-metrics live in the same segment.
    if (stats.meters < s.meters) state.SkipWithError("the scan missed meters");
  }
  state.counters["ops_per_iter"] = s.meters;
}
BENCHMARK(BM_ScanFirst)->Apply(SizeArgs);

}  // namespace
}  // namespace spectator::bench
