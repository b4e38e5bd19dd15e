// Item 1 and 3b: the cost of one update through a handle, against a bare
// relaxed fetch_add on a word of a MAP_SHARED /dev/shm mapping (the floor any
// shared-memory design can reach), and against an in-process registry that
// locks a mutex and looks the Id up in a hash map on every update (what a
// user would write instead).

#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "bench_util.h"
#include "spectator/registry.h"

namespace spectator::bench {
namespace {

// Handles on one segment with default options, shared by every update
// benchmark: taking them is not what is measured here.
struct UpdateFixture {
  BenchSegment segment{"update"};
  Counter counter =
      segment.registry().GetCounter("server.requestCount", {{"method", "GET"}, {"status", "200"}});
  Timer timer = segment.registry().GetTimer("server.requestLatency");
  DistributionSummary summary = segment.registry().GetDistributionSummary("server.responseSize");
  Gauge gauge = segment.registry().GetGauge("server.queueLength");
  MaxGauge max_gauge = segment.registry().GetMaxGauge("server.maxQueueLength");
  PercentileTimer percentile_timer =
      segment.registry().GetPercentileTimer("server.requestLatencyPct");
  ShmWords bare{64};
};

UpdateFixture& Fixture() {
  // Leaked on purpose: the segment is removed by the cleanup list at the end
  // of main, and benchmarks may run in any order (random interleaving).
  static auto* fixture = new UpdateFixture();
  return *fixture;
}

// Durations and amounts a server would record: log-uniform over 1 ms .. 1 s
// (inside the percentile timer's default 10 ms .. 60 s clamp for most), so the
// bucket index and the max CAS see varied inputs rather than one constant the
// compiler or the branch predictor could fold. Cycled with a mask; the load
// costs the same in every benchmark that uses it.
constexpr std::size_t kSamples = 256;
const std::array<std::int64_t, kSamples>& SampleNanos() {
  static const auto samples = [] {
    std::array<std::int64_t, kSamples> a{};
    std::uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (auto& v : a) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;  // xorshift: reproducible
      const double u = static_cast<double>(x >> 11) / 9007199254740992.0;
      v = static_cast<std::int64_t>(1e6 * std::pow(1000.0, u));
    }
    return a;
  }();
  return samples;
}

// The floor: one relaxed fetch_add on an uncontended word of a shared mapping.
void BM_BareAtomic(benchmark::State& state) {
  std::atomic<std::uint64_t>* word = Fixture().bare.word(0);
  for (auto _ : state) word->fetch_add(1, std::memory_order_relaxed);
  benchmark::DoNotOptimize(word->load(std::memory_order_relaxed));
}
BENCHMARK(BM_BareAtomic);

// A compare-exchange loop adding a double: the floor for the fractional
// counter Add and for the double sums of timers and summaries. Informational.
void BM_BareAtomicDoubleAdd(benchmark::State& state) {
  std::atomic<std::uint64_t>* word = Fixture().bare.word(8);
  double delta = 0.5;
  for (auto _ : state) {
    benchmark::DoNotOptimize(delta);
    detail::AddDouble(*word, delta);
  }
}
BENCHMARK(BM_BareAtomicDoubleAdd);

void BM_CounterIncrement(benchmark::State& state) {
  Counter counter = Fixture().counter;
  for (auto _ : state) counter.Increment();
}
BENCHMARK(BM_CounterIncrement);

// The delta passes through DoNotOptimize so that the finite/whole checks are
// really evaluated, as they are for a delta computed at run time.
void BM_CounterAddWhole(benchmark::State& state) {
  Counter counter = Fixture().counter;
  double delta = 3.0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(delta);
    counter.Add(delta);
  }
}
BENCHMARK(BM_CounterAddWhole);

void BM_CounterAddFraction(benchmark::State& state) {
  Counter counter = Fixture().counter;
  double delta = 0.25;
  for (auto _ : state) {
    benchmark::DoNotOptimize(delta);
    counter.Add(delta);
  }
}
BENCHMARK(BM_CounterAddFraction);

void BM_TimerRecord(benchmark::State& state) {
  Timer timer = Fixture().timer;
  const auto& samples = SampleNanos();
  std::size_t i = 0;
  for (auto _ : state) {
    timer.Record(std::chrono::nanoseconds(samples[i]));
    i = (i + 1) & (kSamples - 1);
  }
}
BENCHMARK(BM_TimerRecord);

void BM_DistributionSummaryRecord(benchmark::State& state) {
  DistributionSummary summary = Fixture().summary;
  const auto& samples = SampleNanos();
  std::size_t i = 0;
  for (auto _ : state) {
    summary.Record(static_cast<double>(samples[i]) / 1000.0);  // "bytes"
    i = (i + 1) & (kSamples - 1);
  }
}
BENCHMARK(BM_DistributionSummaryRecord);

void BM_GaugeSet(benchmark::State& state) {
  Gauge gauge = Fixture().gauge;
  const auto& samples = SampleNanos();
  std::size_t i = 0;
  for (auto _ : state) {
    gauge.Set(static_cast<double>(samples[i]));
    i = (i + 1) & (kSamples - 1);
  }
}
BENCHMARK(BM_GaugeSet);

// Steady state of a max gauge within a step: most values are not a new
// maximum, so a Set is a load and a compare (the CAS happens a few times per
// step, after the collector's reset).
void BM_MaxGaugeSet(benchmark::State& state) {
  MaxGauge max_gauge = Fixture().max_gauge;
  const auto& samples = SampleNanos();
  std::size_t i = 0;
  for (auto _ : state) {
    max_gauge.Set(static_cast<double>(samples[i]));
    i = (i + 1) & (kSamples - 1);
  }
}
BENCHMARK(BM_MaxGaugeSet);

void BM_PercentileTimerRecord(benchmark::State& state) {
  PercentileTimer timer = Fixture().percentile_timer;
  const auto& samples = SampleNanos();
  std::size_t i = 0;
  for (auto _ : state) {
    timer.Record(std::chrono::nanoseconds(samples[i]));
    i = (i + 1) & (kSamples - 1);
  }
}
BENCHMARK(BM_PercentileTimerRecord);

// What a user would otherwise write in-process: a map from Id to value under
// a mutex, looked up on every update. The key is built once (a server would
// keep it in a constant); 1000 other Ids make the map a realistic size.
// (Not fork-safe, which is the point of the library, but the cost to beat.)
class MutexMapClient {
 public:
  void Add(const std::string& id, double delta) {
    std::lock_guard<std::mutex> lock(mu_);
    values_[id] += delta;
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, double> values_;
};

void BM_MutexMapAdd(benchmark::State& state) {
  static auto* client = [] {
    auto* c = new MutexMapClient();
    for (int i = 0; i < 1000; ++i) c->Add("server.other,id=" + std::to_string(i), 1);
    return c;
  }();
  const std::string id = "server.requestCount,method=GET,status=200";
  for (auto _ : state) client->Add(id, 1.0);
}
BENCHMARK(BM_MutexMapAdd);

}  // namespace
}  // namespace spectator::bench
