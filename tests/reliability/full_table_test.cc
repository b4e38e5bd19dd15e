// Fault 6: a full table or value area under load. Forked workers register
// far more distinct Ids than fit: nobody crashes or blocks, Info().overflow
// counts every refusal exactly (attempts - accepted), and meters registered
// before the flood keep counting exactly.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "reliability_support.h"
#include "spectator/snapshot.h"
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
constexpr int kAttempts = 600;  // per worker
constexpr int kSharedIds = 100;

// Worker w's i-th registration: mostly its own Id, sometimes one every
// worker also tries. Percentile timers (288 words) exhaust a small value
// area long before counters (8 words) would.
struct Attempt {
  std::string name;
  std::string tag;
  bool shared;
  bool percentile;
};
Attempt AttemptOf(int w, int i) {
  const bool shared = i % 10 < 3;
  const bool percentile = i % 4 == 0;
  std::string tag =
      shared ? std::to_string(i % kSharedIds) : std::to_string(w) + "-" + std::to_string(i);
  return {
      percentile ? (shared ? "flood.shared.pt" : "flood.pt") : (shared ? "flood.shared" : "flood"),
      std::move(tag), shared, percentile};
}

struct FloodResult {
  std::uint64_t attempts = 0, accepted = 0;
  std::map<std::string, double> counts;  // by Id, summed over every take
  std::vector<int> codes;
};

// Runs the flood against `registry`; each accepted meter is updated once.
// `before` and `before_timer` (registered before the flood) get one update
// per attempt. The parent takes step values all along, as a collector would.
FloodResult Flood(Registry& registry, Counter before, Timer before_timer) {
  SharedWords report(2 * kWorkers + 2 * kSharedIds);
  // report[2w], report[2w+1]: attempts and accepted of worker w;
  // report[2 kWorkers + 2 j (+1)]: how often shared counter / timer j was live.
  Barrier start;
  std::vector<pid_t> pids;
  for (int w = 0; w < kWorkers; ++w) {
    pids.push_back(ForkChild([&, w] {
      start.Wait();
      for (int i = 0; i < kAttempts; ++i) {
        const Attempt a = AttemptOf(w, i);
        bool live = false;
        if (a.percentile) {
          PercentileTimer pt = registry.GetPercentileTimer(a.name, {{"i", a.tag}});
          live = pt.IsLive();
          pt.Record(20ms);
        } else {
          Counter c = registry.GetCounter(a.name, {{"i", a.tag}});
          live = c.IsLive();
          c.Increment();
        }
        before.Increment();
        before_timer.Record(1us);
        // relaxed, all: read by the parent after waitpid.
        report[2 * static_cast<std::size_t>(w)].fetch_add(1, std::memory_order_relaxed);
        if (live) {
          report[2 * static_cast<std::size_t>(w) + 1].fetch_add(1, std::memory_order_relaxed);
          if (a.shared) {
            const std::size_t j = 2 * kWorkers + 2 * static_cast<std::size_t>(i % kSharedIds) +
                                  (a.percentile ? 1 : 0);
            report[j].fetch_add(1, std::memory_order_relaxed);
          }
        }
      }
      return 0;
    }));
  }
  SegmentReader reader(registry);
  FloodResult out;
  auto take = [&] {
    reader.Scan(SegmentReader::Mode::kTake, std::chrono::system_clock::now(),
                [&](const MeterReading& r) {
                  out.counts[std::string(r.id)] += r.count;
                  reader.Commit(r);
                });
  };
  start.Release();
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  for (pid_t pid : pids) {
    take();
    out.codes.push_back(WaitChildFor(pid, deadline));
  }
  take();
  for (int w = 0; w < kWorkers; ++w) {
    out.attempts += report[2 * static_cast<std::size_t>(w)].load();
    out.accepted += report[2 * static_cast<std::size_t>(w) + 1].load();
  }
  // Every live shared meter was incremented once per worker that got it live.
  for (int j = 0; j < kSharedIds; ++j) {
    for (int p = 0; p < 2; ++p) {
      const double live = static_cast<double>(
          report[2 * kWorkers + 2 * static_cast<std::size_t>(j) + static_cast<std::size_t>(p)]
              .load());
      const std::string id =
          std::string(p ? "flood.shared.pt" : "flood.shared") + ",i=" + std::to_string(j);
      const auto it = out.counts.find(id);
      EXPECT_EQ(it == out.counts.end() ? 0.0 : it->second, live) << id;
    }
  }
  return out;
}

void CheckFlood(Registry& registry, const FloodResult& f, std::uint64_t overflow_before) {
  for (int code : f.codes) EXPECT_EQ(code, 0) << "a worker crashed or blocked";
  EXPECT_EQ(f.attempts, std::uint64_t{kWorkers} * kAttempts);
  EXPECT_LT(f.accepted, f.attempts) << "the flood should overflow the segment";
  EXPECT_EQ(registry.Info().overflow - overflow_before, f.attempts - f.accepted);
  EXPECT_EQ(f.counts.at("before"), double{kWorkers} * kAttempts);
  EXPECT_EQ(f.counts.at("before.timer"), double{kWorkers} * kAttempts);
  // Own Ids were live for exactly one worker: counted once.
  for (const auto& [id, count] : f.counts) {
    if (id.rfind("flood,", 0) == 0 || id.rfind("flood.pt,", 0) == 0) {
      EXPECT_EQ(count, 1) << id;
    }
  }
  SegmentReader reader(registry);
  const ScanResult peek = ScanSegment(reader, SegmentReader::Mode::kPeek);
  EXPECT_EQ(peek.stats.corrupt, 0u);
  EXPECT_EQ(peek.Duplicates(), 0);
}

TEST(FullTable, FloodPastTheTableCountsEveryRefusalAndKeepsOldMetersExact) {
  TempSegment seg;
  SegmentOptions o = seg.options(/*max_meters=*/256, /*value_words=*/std::uint64_t{1} << 20);
  o.logger = &Quiet;
  Registry registry(o);
  Counter before = registry.GetCounter("before");
  Timer before_timer = registry.GetTimer("before.timer");
  const FloodResult f = Flood(registry, before, before_timer);
  CheckFlood(registry, f, 0);
  const SegmentInfo info = registry.Info();
  EXPECT_EQ(info.meters, 256u) << "the table fills up to max_meters";
  // After the flood: known Ids still work, new ones are refused and counted.
  EXPECT_TRUE(registry.GetCounter("before").IsLive());
  EXPECT_FALSE(registry.GetCounter("one.more").IsLive());
  EXPECT_EQ(registry.Info().overflow, info.overflow + 1);
}

TEST(FullTable, FloodPastTheValueAreaCountsEveryRefusalAndKeepsOldMetersExact) {
  TempSegment seg;
  // Room for 4096 entries but only ~40 percentile timers' worth of values.
  SegmentOptions o = seg.options(/*max_meters=*/4096, /*value_words=*/12 * 1024);
  o.logger = &Quiet;
  Registry registry(o);
  Counter before = registry.GetCounter("before");
  Timer before_timer = registry.GetTimer("before.timer");
  const FloodResult f = Flood(registry, before, before_timer);
  CheckFlood(registry, f, 0);
  const SegmentInfo info = registry.Info();
  EXPECT_LE(info.value_words_used, info.value_words);
  EXPECT_GT(info.value_words_used + 288, info.value_words) << "the value area should be full";
  EXPECT_TRUE(registry.GetCounter("before").IsLive());
}

}  // namespace
}  // namespace spectator::reliability
