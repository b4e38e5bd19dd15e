// Fault 6: a full table, value area or Id arena under load. Forked workers
// register four times more distinct Ids than fit, of a few names: nobody
// crashes or blocks, every update lands in a series of its name (its own, or
// the name's overflow series spectator.overflow=true, or the per-type one),
// so that for every name the published sum equals what was recorded,
// exactly, and meters registered before the flood keep counting exactly.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "reliability_support.h"
#include "spectator/internal/reader.h"
#include "support/collector_reader.h"
#include "spectator/spectator.h"
#include "support/fork_helpers.h"
#include "support/temp_segment.h"

namespace spectator::reliability {
namespace {

using namespace std::chrono_literals;
using testing::Barrier;
using testing::ForkChild;
using testing::TempSegment;

void Quiet(LogLevel, std::string_view) {}

constexpr int kWorkers = 8;

// What worker w records for its i-th Id of each name; the parent computes
// the same sums.
double CounterDelta(int i) { return i % 7 + 1; }
std::chrono::nanoseconds Duration(int i) { return std::chrono::microseconds(i % 5 + 1); }
double Amount(int i) { return i % 9 + 1; }

// The name of a canonical Id ("flood.count,i=3-7" -> "flood.count"); the
// per-type overflow series counts under its type (e.g. "[timer]").
std::string NameOf(std::string_view id) {
  std::string name(id.substr(0, id.find(',')));
  if (name == "spectator.overflowed") return "[" + std::string(id.substr(id.rfind('=') + 1)) + "]";
  return name;
}

struct Sums {
  std::map<std::string, double> count;  // by name (see NameOf)
  std::map<std::string, std::uint64_t> total_ns;
  std::map<std::string, double> total;
  std::map<std::string, std::uint64_t> buckets;
  std::map<std::string, int> overflow_series;
  std::map<std::string, int> deliveries;  // by Id, per take
  int duplicates = 0;
};

struct Flood {
  int ids_per_worker;  // of each name
  bool percentile;     // flood.time is a percentile timer
};

// Runs the flood; the parent takes (and commits) step values all along, as
// a collector would, and sums them by name.
Sums RunFlood(Registry& registry, const Flood& flood, Counter before, Timer before_timer,
              std::vector<int>* codes) {
  Barrier start;
  std::vector<pid_t> pids;
  for (int w = 0; w < kWorkers; ++w) {
    pids.push_back(ForkChild([&, w] {
      start.Wait();
      int dead = 0;
      for (int i = 0; i < flood.ids_per_worker; ++i) {
        const std::string tag = std::to_string(w) + "-" + std::to_string(i);
        Counter c = registry.GetCounter("flood.count", {{"i", tag}});
        c.Add(CounterDelta(i));
        if (flood.percentile) {
          PercentileTimer t = registry.GetPercentileTimer("flood.time", {{"i", tag}});
          t.Record(Duration(i));
          dead += !t.IsLive();
        } else {
          Timer t = registry.GetTimer("flood.time", {{"i", tag}});
          t.Record(Duration(i));
          dead += !t.IsLive();
        }
        DistributionSummary d = registry.GetDistributionSummary("flood.size", {{"i", tag}});
        d.Record(Amount(i));
        // Ids every worker asks for too.
        registry.GetCounter("flood.shared", {{"j", std::to_string(i % 50)}}).Increment();
        before.Increment();
        before_timer.Record(1us);
        dead += !c.IsLive() + !d.IsLive();
      }
      return dead == 0 ? 0 : 1;  // every registration gives a live meter
    }));
  }
  testing::CollectorReader reader(registry);
  Sums sums;
  auto take = [&] {
    std::map<std::string, int> seen;
    reader.Scan(SegmentReader::Mode::kTake, std::chrono::system_clock::now(),
                [&](const MeterReading& r) {
                  const std::string name = NameOf(r.id);
                  if (++seen[std::string(r.id)] > 1) ++sums.duplicates;
                  sums.count[name] += r.count;
                  if (r.type == MeterType::kTimer || r.type == MeterType::kPercentileTimer) {
                    sums.total_ns[name] += static_cast<std::uint64_t>(std::llround(r.total * 1e9));
                  } else {
                    sums.total[name] += r.total;
                  }
                  if (r.buckets != nullptr) {
                    for (std::size_t b = 0; b < kPercentileBucketCount; ++b) {
                      sums.buckets[name] += r.buckets[b];
                    }
                  }
                  reader.Commit(r);
                });
    for (const auto& [id, n] : seen) {
      if (id.find("spectator.overflow=true") != std::string::npos) {
        sums.overflow_series[NameOf(id)] = std::max(sums.overflow_series[NameOf(id)], 1);
      }
    }
  };
  start.Release();
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  for (pid_t pid : pids) {
    take();
    codes->push_back(WaitChildFor(pid, deadline));
  }
  take();
  return sums;
}

void ExpectExactPerName(const Sums& s, const Flood& flood) {
  double counts = 0, amounts = 0;
  std::uint64_t ns = 0;
  for (int i = 0; i < flood.ids_per_worker; ++i) {
    counts += CounterDelta(i);
    amounts += Amount(i);
    ns += static_cast<std::uint64_t>(Duration(i).count());
  }
  const auto at = [](const auto& map, const std::string& key) {
    const auto it = map.find(key);
    return it == map.end() ? typename std::decay_t<decltype(map)>::mapped_type{} : it->second;
  };
  // A timer or summary that found no place even in the reserve counts in the
  // per-type series of its type; the flood's counters share "[counter]".
  const std::string timer_type = flood.percentile ? "[percentile-timer]" : "[timer]";
  EXPECT_EQ(at(s.count, "flood.count") + at(s.count, "flood.shared") + at(s.count, "[counter]"),
            kWorkers * counts + kWorkers * flood.ids_per_worker);
  EXPECT_EQ(at(s.count, "flood.time") + at(s.count, timer_type), kWorkers * flood.ids_per_worker);
  EXPECT_EQ(at(s.total_ns, "flood.time") + at(s.total_ns, timer_type), kWorkers * ns);
  EXPECT_EQ(at(s.count, "flood.size") + at(s.count, "[distribution-summary]"),
            kWorkers * flood.ids_per_worker);
  EXPECT_EQ(at(s.total, "flood.size") + at(s.total, "[distribution-summary]"),
            kWorkers * amounts);
  if (flood.percentile) {
    EXPECT_EQ(at(s.buckets, "flood.time") + at(s.buckets, timer_type),
              std::uint64_t{kWorkers} * static_cast<std::uint64_t>(flood.ids_per_worker))
        << "every record in exactly one bucket";
  }
  EXPECT_EQ(at(s.count, "before"), double{kWorkers} * flood.ids_per_worker);
  EXPECT_EQ(at(s.count, "before.timer"), double{kWorkers} * flood.ids_per_worker);
  EXPECT_EQ(s.duplicates, 0);
}

// 8 workers x 128 Ids of each of three names against 256 entries: four
// times the table's capacity. Each name's totals are exact, overflow
// included, and the name has its own overflow series.
TEST(FullTable, FourTimesCapacityOfAFewNamesKeepsEveryNamesTotalExact) {
  TempSegment seg;
  SegmentOptions o = seg.options(/*max_meters=*/256, /*value_words=*/std::uint64_t{1} << 20);
  o.logger = &Quiet;
  Registry registry(o);
  Counter before = registry.GetCounter("before");
  Timer before_timer = registry.GetTimer("before.timer");
  const Flood flood{128, false};
  std::vector<int> codes;
  const Sums s = RunFlood(registry, flood, before, before_timer, &codes);
  for (int code : codes) EXPECT_EQ(code, 0) << "a worker crashed, blocked or got a no-op";
  ExpectExactPerName(s, flood);
  for (const char* name : {"flood.count", "flood.time", "flood.size"}) {
    EXPECT_EQ(s.overflow_series.count(name), 1u) << name << " has no overflow series";
  }
  const SegmentInfo info = registry.Info();
  EXPECT_EQ(info.meters, 256u) << "the table fills up to max_meters";
  EXPECT_GT(info.overflow, 0u);
  EXPECT_GE(info.overflow_meters, 3u);
  // After the flood: known Ids still work, new ones overflow and are counted.
  EXPECT_TRUE(registry.GetCounter("before").IsLive());
  EXPECT_TRUE(registry.GetCounter("one.more").IsLive());
  EXPECT_EQ(registry.Info().overflow, info.overflow + 1);
  testing::CollectorReader reader(registry);
  const ScanResult peek = ScanSegment(reader, SegmentReader::Mode::kPeek);
  EXPECT_EQ(peek.stats.corrupt, 0u);
  EXPECT_EQ(peek.Duplicates(), 0);
}

// Room for 4096 entries but only ~20 percentile timers' worth of values:
// the value area fills first; the percentile timers' totals and buckets stay
// exact through their overflow series.
TEST(FullTable, FullValueAreaKeepsEveryNamesTotalAndBucketsExact) {
  TempSegment seg;
  SegmentOptions o = seg.options(/*max_meters=*/4096, /*value_words=*/12 * 1024);
  o.logger = &Quiet;
  Registry registry(o);
  Counter before = registry.GetCounter("before");
  Timer before_timer = registry.GetTimer("before.timer");
  const Flood flood{100, true};
  std::vector<int> codes;
  const Sums s = RunFlood(registry, flood, before, before_timer, &codes);
  for (int code : codes) EXPECT_EQ(code, 0) << "a worker crashed, blocked or got a no-op";
  ExpectExactPerName(s, flood);
  const SegmentInfo info = registry.Info();
  EXPECT_LE(info.value_words_used, info.value_words);
  EXPECT_GT(info.value_words_used + 576, info.value_words) << "the value area should be full";
  EXPECT_TRUE(registry.GetCounter("before").IsLive());
}

}  // namespace
}  // namespace spectator::reliability
