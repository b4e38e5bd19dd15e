// Item 4: getting a meter by Id, the path a server takes when it does not
// cache handles (registry.GetCounter(name, tags).Increment() per request), at
// 10% and 90% fill of a 100k-meter table; registering a new Id; and the same
// two operations on an in-process mutex + unordered_map client that builds
// the same canonical Id, the baseline.
//
// Item 7: bytes of segment per meter at the default capacity.

#include <benchmark/benchmark.h>

#include <malloc.h>
#include <sys/resource.h>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench_util.h"
#include "segment_layout.h"
#include "spectator/registry.h"

namespace spectator::bench {
namespace {

constexpr std::uint32_t kMaxMeters = 100'000;
constexpr std::int64_t kRegistrations = 20'000;  // new Ids per registration run

// A pseudo-random sample of `n` of the first `fill` Ids, so lookups do not
// walk the table in order.
std::vector<IdSpec> SampleIds(std::uint32_t fill, std::size_t n) {
  std::vector<IdSpec> ids;
  ids.reserve(n);
  std::uint64_t x = 0x2545F4914F6CDD1DULL;
  for (std::size_t k = 0; k < n; ++k) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    ids.push_back(MakeId(static_cast<std::uint32_t>(x % fill)));
  }
  return ids;
}

SegmentOptions TableOptions() {
  SegmentOptions options;
  options.max_meters = kMaxMeters;
  options.value_words = std::uint64_t{kMaxMeters} * 8;
  return options;
}

// A 100k-meter segment filled with `fill` counters, one per fill level,
// created on first use and kept for the run.
Registry& FilledRegistry(std::uint32_t percent) {
  static std::map<std::uint32_t, std::unique_ptr<BenchSegment>> segments;
  auto& segment = segments[percent];
  if (!segment) {
    segment = std::make_unique<BenchSegment>("lookup" + std::to_string(percent), TableOptions());
    const std::uint32_t fill = kMaxMeters / 100 * percent;
    for (std::uint32_t i = 0; i < fill; ++i) {
      const IdSpec id = MakeId(i);
      segment->registry().GetCounter(id.name, id.tags);
    }
  }
  return segment->registry();
}

// The in-process alternative: the same canonical Id (spectator's own
// CanonicalizeId, so both sides pay for the same sorting and sanitising),
// then a mutex and a hash map.
class MutexMapRegistry {
 public:
  double* GetCounter(std::string_view name, const Tags& tags) {
    std::string id;
    if (CanonicalizeId(name, tags, &id) != IdError::kOk) return nullptr;
    std::lock_guard<std::mutex> lock(mu_);
    return &values_[std::move(id)];
  }
  std::size_t size() const { return values_.size(); }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, double> values_;
};

MutexMapRegistry& FilledMap(std::uint32_t percent) {
  static std::map<std::uint32_t, std::unique_ptr<MutexMapRegistry>> maps;
  auto& m = maps[percent];
  if (!m) {
    m = std::make_unique<MutexMapRegistry>();
    const std::uint32_t fill = kMaxMeters / 100 * percent;
    for (std::uint32_t i = 0; i < fill; ++i) {
      const IdSpec id = MakeId(i);
      m->GetCounter(id.name, id.tags);
    }
  }
  return *m;
}

// Arguments: fill percent, number of distinct Ids cycled through. 4096 Ids
// spread over a 128 MiB table do not fit in the caches (each lookup touches
// two lines of a 512-byte entry on a random page): the cold case, bounded by
// memory and TLB latency. 64 Ids stay in cache: a server asking again and
// again for its few hot meters.
void LookupArgs(benchmark::internal::Benchmark* b) {
  b->Args({10, 4096})->Args({90, 4096})->Args({90, 64});
}

void BM_LookupExisting(benchmark::State& state) {
  const auto percent = static_cast<std::uint32_t>(state.range(0));
  const auto set = static_cast<std::size_t>(state.range(1));  // a power of two
  Registry& registry = FilledRegistry(percent);
  const std::vector<IdSpec> ids = SampleIds(kMaxMeters / 100 * percent, set);
  std::size_t i = 0;
  for (auto _ : state) {
    Counter c = registry.GetCounter(ids[i].name, ids[i].tags);
    benchmark::DoNotOptimize(c);
    i = (i + 1) & (set - 1);
  }
  if (registry.Info().meters != kMaxMeters / 100 * percent) {
    state.SkipWithError("a lookup registered a new meter");
  }
}
BENCHMARK(BM_LookupExisting)->Apply(LookupArgs);

// The call as a server writes it: name and tag keys are literals, values are
// strings it has at hand; TagList views them without building a Tags vector.
void BM_LookupLiteralTags(benchmark::State& state) {
  const auto percent = static_cast<std::uint32_t>(state.range(0));
  const auto set = static_cast<std::size_t>(state.range(1));
  Registry& registry = FilledRegistry(percent);
  const std::vector<IdSpec> ids = SampleIds(kMaxMeters / 100 * percent, set);
  std::size_t i = 0;
  for (auto _ : state) {
    const Tags& t = ids[i].tags;
    Counter c = registry.GetCounter(
        "server.requestCount",
        {{"method", t[0].second}, {"status", t[1].second}, {"uri", t[2].second}});
    benchmark::DoNotOptimize(c);
    i = (i + 1) & (set - 1);
  }
}
BENCHMARK(BM_LookupLiteralTags)->Apply(LookupArgs);

void BM_MapLookupExisting(benchmark::State& state) {
  const auto percent = static_cast<std::uint32_t>(state.range(0));
  const auto set = static_cast<std::size_t>(state.range(1));
  MutexMapRegistry& map = FilledMap(percent);
  const std::vector<IdSpec> ids = SampleIds(kMaxMeters / 100 * percent, set);
  std::size_t i = 0;
  for (auto _ : state) {
    double* v = map.GetCounter(ids[i].name, ids[i].tags);
    benchmark::DoNotOptimize(v);
    i = (i + 1) & (set - 1);
  }
}
BENCHMARK(BM_MapLookupExisting)->Apply(LookupArgs);

// Registering kRegistrations new Ids into a table already at 10% fill (so
// the run ends at 30%). Each repetition needs Ids never seen before, hence a
// fresh segment per repetition, built before the timed loop.
void BM_RegisterNew(benchmark::State& state) {
  BenchSegment segment("register", TableOptions());
  const std::uint32_t base = kMaxMeters / 10;
  for (std::uint32_t i = 0; i < base; ++i) {
    const IdSpec id = MakeId(i);
    segment.registry().GetCounter(id.name, id.tags);
  }
  std::vector<IdSpec> ids;
  ids.reserve(kRegistrations);
  for (std::int64_t k = 0; k < kRegistrations; ++k) {
    ids.push_back(MakeId(base + static_cast<std::uint32_t>(k)));
  }
  std::size_t i = 0;
  // Minor page faults: a new entry usually lands on a page of the table no
  // process has touched yet, and tmpfs allocates and zeroes it then.
  rusage before{};
  ::getrusage(RUSAGE_SELF, &before);
  for (auto _ : state) {
    Counter c = segment.registry().GetCounter(ids[i].name, ids[i].tags);
    benchmark::DoNotOptimize(c);
    ++i;
  }
  rusage after{};
  ::getrusage(RUSAGE_SELF, &after);
  state.counters["faults_per_reg"] =
      static_cast<double>(after.ru_minflt - before.ru_minflt) / static_cast<double>(i);
  if (segment.registry().Info().meters != base + kRegistrations) {
    state.SkipWithError("not every registration created a meter");
  }
}
BENCHMARK(BM_RegisterNew)->Iterations(kRegistrations);

void BM_MapRegisterNew(benchmark::State& state) {
  MutexMapRegistry map;
  const std::uint32_t base = kMaxMeters / 10;
  for (std::uint32_t i = 0; i < base; ++i) {
    const IdSpec id = MakeId(i);
    map.GetCounter(id.name, id.tags);
  }
  std::vector<IdSpec> ids;
  ids.reserve(kRegistrations);
  for (std::int64_t k = 0; k < kRegistrations; ++k) {
    ids.push_back(MakeId(base + static_cast<std::uint32_t>(k)));
  }
  std::size_t i = 0;
  for (auto _ : state) {
    double* v = map.GetCounter(ids[i].name, ids[i].tags);
    benchmark::DoNotOptimize(v);
    ++i;
  }
}
BENCHMARK(BM_MapRegisterNew)->Iterations(kRegistrations);

// ---- Item 7: memory per meter ----------------------------------------------
//
// "provisioned": segment bytes per meter of capacity, i.e. what the file size
// costs each meter slot: header/max_meters + entry * table_slots/max_meters
// + the meter's value block. "resident": /dev/shm pages actually allocated
// after filling the default capacity with that meter type, per meter (tmpfs
// allocates a page when first touched; the table is sparse, so this is what
// the machine really pays). The baseline is the heap an in-process
// unordered_map<string, double> entry takes for the same Id (mallinfo2).

// Fills a default segment to capacity: max_meters counters, or as many
// percentile timers as the default value area holds (576 words each).
void MemoryCounters(benchmark::State& state, bool percentile) {
  for (auto _ : state) {
    BenchSegment segment(percentile ? "mem-pct" : "mem-counter");
    const SegmentOptions defaults;
    const auto meters =
        static_cast<std::uint32_t>(percentile ? defaults.value_words / 576 : defaults.max_meters);
    const SegmentInfo before = segment.registry().Info();
    const std::uint64_t resident_before = segment.ResidentBytes();
    for (std::uint32_t i = 0; i < meters; ++i) {
      const IdSpec id = MakeId(i);
      if (percentile) {
        segment.registry().GetPercentileTimer(id.name, id.tags);
      } else {
        segment.registry().GetCounter(id.name, id.tags);
      }
    }
    const SegmentInfo info = segment.registry().Info();
    const double block =
        static_cast<double>(info.value_words_used - before.value_words_used) * 8 / meters;
    // The table (own and reserve entries) and header shared out over the
    // meters the segment is made for; the value block and Id bytes each uses.
    const double entries =
        static_cast<double>(sizeof(internal::Entry)) * info.table_slots / info.max_meters;
    const double header = static_cast<double>(sizeof(internal::SegmentHeader)) / info.max_meters;
    const double id_bytes =
        static_cast<double>(info.id_bytes_used - before.id_bytes_used) / meters;
    state.counters["provisioned_B"] = header + entries + block + id_bytes;
    state.counters["value_block_B"] = block;
    state.counters["entry_share_B"] = entries;
    state.counters["id_B"] = id_bytes;
    state.counters["resident_B"] =
        static_cast<double>(segment.ResidentBytes() - resident_before) / meters;
    state.counters["segment_MiB"] = static_cast<double>(info.size_bytes) / (1 << 20);
    state.counters["meters"] = meters;
  }
}

void BM_MemoryCounter(benchmark::State& state) { MemoryCounters(state, false); }
BENCHMARK(BM_MemoryCounter)->Iterations(1);

void BM_MemoryPercentileTimer(benchmark::State& state) { MemoryCounters(state, true); }
BENCHMARK(BM_MemoryPercentileTimer)->Iterations(1);

void BM_MemoryMapEntry(benchmark::State& state) {
  const std::uint32_t meters = SegmentOptions().max_meters;
  for (auto _ : state) {
    const auto before = ::mallinfo2().uordblks;
    {
      MutexMapRegistry map;
      for (std::uint32_t i = 0; i < meters; ++i) {
        const IdSpec id = MakeId(i);
        map.GetCounter(id.name, id.tags);
      }
      const auto after = ::mallinfo2().uordblks;
      state.counters["heap_B"] = static_cast<double>(after - before) / meters;
    }
  }
}
BENCHMARK(BM_MemoryMapEntry)->Iterations(1);

}  // namespace
}  // namespace spectator::bench
