// Meter semantics, through the public API on a real segment: update with a
// handle, take with the reader, compare with what Spectator publishes.
#include <gtest/gtest.h>

#include <cmath>

#include "spectator/internal/reader.h"
#include "support/collector_reader.h"
#include "spectator/spectator.h"
#include "support/readings.h"
#include "support/temp_segment.h"

namespace spectator {
namespace {

using namespace std::chrono_literals;
using spectator::testing::Peek;
using spectator::testing::Take;
using spectator::testing::TempSegment;
using Clock = std::chrono::system_clock;

class Meters : public ::testing::Test {
 protected:
  TempSegment segment_;
  Registry registry_{segment_.options()};
  testing::CollectorReader reader_{registry_};
  const Clock::time_point t0_ = Clock::time_point(std::chrono::seconds(1700000000));
};

TEST_F(Meters, CounterSumsDeltasAndResetsEachTake) {
  Counter c = registry_.GetCounter("c", {{"k", "v"}});
  ASSERT_TRUE(c.IsLive());
  c.Increment();
  c.Add(2);
  c.Add(0.5);
  EXPECT_DOUBLE_EQ(Take(reader_).at("c,k=v").count, 3.5);
  EXPECT_DOUBLE_EQ(Take(reader_).at("c,k=v").count, 0);
}

TEST_F(Meters, CounterIgnoresNonPositiveAndNonFiniteDeltas) {
  Counter c = registry_.GetCounter("c");
  c.Add(-1);
  c.Add(0);
  c.Add(NAN);
  c.Add(INFINITY);
  c.Add(-INFINITY);
  EXPECT_EQ(Take(reader_).at("c").count, 0);
}

TEST_F(Meters, CounterWholeDeltasAreExactBeyondDoublePrecisionOfSums) {
  Counter c = registry_.GetCounter("c");
  c.Add(4503599627370496.0);  // 2^52
  for (int i = 0; i < 10; ++i) c.Increment();
  EXPECT_EQ(Take(reader_).at("c").count, 4503599627370506.0);
}

TEST_F(Meters, SameIdFromTwoGetsIsOneMeter) {
  registry_.GetCounter("c", {{"a", "1"}, {"b", "2"}}).Increment();
  registry_.GetCounter("c", {{"b", "2"}, {"a", "1"}}).Increment();
  const auto r = Take(reader_);
  EXPECT_EQ(r.size(), 1u);
  EXPECT_EQ(r.at("c,a=1,b=2").count, 2);
}

TEST_F(Meters, TagsVectorAndBracedListNameTheSameMeter) {
  const Tags tags{{"status", "200"}, {"method", "GET"}};
  registry_.GetCounter("c", tags).Increment();
  registry_.GetCounter("c", {{"method", "GET"}, {"status", "200"}}).Increment();
  std::string dynamic = "GET";
  registry_.GetCounter("c", {{"method", dynamic}, {"status", std::to_string(200)}}).Increment();
  EXPECT_EQ(Take(reader_).at("c,method=GET,status=200").count, 3);
}

TEST_F(Meters, TimerPublishesSecondsAndSquares) {
  Timer t = registry_.GetTimer("t");
  t.Record(100ms);
  t.Record(300ms);
  t.Record(-1ms);  // ignored
  t.Record(std::chrono::microseconds(500));
  const auto r = Take(reader_).at("t");
  EXPECT_EQ(r.count, 3);
  EXPECT_DOUBLE_EQ(r.total, 0.4005);
  EXPECT_NEAR(r.total_of_squares, 0.01 + 0.09 + 0.00000025, 1e-12);
  EXPECT_DOUBLE_EQ(r.max, 0.3);
  const auto again = Take(reader_).at("t");
  EXPECT_EQ(again.count, 0);
  EXPECT_EQ(again.max, 0);
}

TEST_F(Meters, DistributionSummaryIgnoresNegativeAndNaN) {
  DistributionSummary d = registry_.GetDistributionSummary("d");
  d.Record(10);
  d.Record(2.5);
  d.Record(-3);
  d.Record(NAN);
  d.Record(-0.0);
  const auto r = Take(reader_).at("d");
  EXPECT_EQ(r.count, 3);
  EXPECT_DOUBLE_EQ(r.total, 12.5);
  EXPECT_DOUBLE_EQ(r.total_of_squares, 106.25);
  EXPECT_DOUBLE_EQ(r.max, 10);
}

TEST_F(Meters, GaugeKeepsLastValueUntilTtl) {
  Gauge g = registry_.GetGauge("g");
  EXPECT_TRUE(std::isnan(Take(reader_, t0_).at("g").value)) << "never set";
  g.Set(42);
  EXPECT_EQ(Take(reader_, t0_).at("g").value, 42);
  EXPECT_EQ(Take(reader_, t0_ + 14min).at("g").value, 42) << "gauges are not reset";
  EXPECT_TRUE(std::isnan(Take(reader_, t0_ + 15min + 1s).at("g").value)) << "expired";
  g.Set(7);
  EXPECT_EQ(Take(reader_, t0_ + 16min).at("g").value, 7) << "set again: alive again";
}

TEST_F(Meters, GaugeTtlRestartsOnEverySetEvenWithTheSameValue) {
  Gauge g = registry_.GetGauge("g");
  g.Set(1);
  Take(reader_, t0_);
  g.Set(1);
  Take(reader_, t0_ + 10min);
  EXPECT_EQ(Take(reader_, t0_ + 20min).at("g").value, 1);
}

TEST_F(Meters, GaugeTtlSurvivesANewReader) {
  Gauge g = registry_.GetGauge("g");
  g.Set(5);
  Take(reader_, t0_);
  testing::CollectorReader restarted(registry_);  // a new collector process
  EXPECT_TRUE(std::isnan(Take(restarted, t0_ + 16min).at("g").value));
}

TEST_F(Meters, GaugeNaNClearsAtOnce) {
  Gauge g = registry_.GetGauge("g");
  g.Set(3);
  g.Set(NAN);
  EXPECT_TRUE(std::isnan(Take(reader_, t0_).at("g").value));
}

TEST_F(Meters, MaxGaugeKeepsTheStepMaximumAndResets) {
  MaxGauge m = registry_.GetMaxGauge("m");
  EXPECT_TRUE(std::isnan(Take(reader_).at("m").max));
  m.Set(-5);
  m.Set(-7);
  EXPECT_EQ(Take(reader_).at("m").max, -5);
  m.Set(3);
  m.Set(9);
  m.Set(NAN);
  m.Set(1);
  EXPECT_EQ(Take(reader_).at("m").max, 9);
  EXPECT_TRUE(std::isnan(Take(reader_).at("m").max));
}

TEST_F(Meters, AgeGaugeReportsSecondsSinceTheStoredTime) {
  const auto before = std::chrono::system_clock::now();
  AgeGauge a = registry_.GetAgeGauge("a");
  const auto after = std::chrono::system_clock::now();
  const double since = std::chrono::duration<double>(after - before).count();
  EXPECT_LE(Take(reader_, after).at("a").value, since) << "starts at registration";
  EXPECT_NEAR(Take(reader_, before + 30s).at("a").value, 30, since);
  EXPECT_EQ(Take(reader_, before - 30s).at("a").value, 0) << "a clock behind: 0, not negative";
  a.Set(t0_ - 90s);
  EXPECT_DOUBLE_EQ(Take(reader_, t0_).at("a").value, 90);
  EXPECT_DOUBLE_EQ(Take(reader_, t0_ + 10s).at("a").value, 100) << "not reset by a take";
  a.Reset();
  EXPECT_LT(Take(reader_).at("a").value, 60);
}

TEST_F(Meters, MonotonicCounterPublishesIncreasesOnly) {
  MonotonicCounter m = registry_.GetMonotonicCounter("m");
  EXPECT_TRUE(std::isnan(Take(reader_).at("m").count)) << "never set";
  m.Set(100);
  EXPECT_TRUE(std::isnan(Take(reader_).at("m").count)) << "first sample";
  m.Set(130);
  EXPECT_EQ(Take(reader_).at("m").count, 30);
  EXPECT_EQ(Take(reader_).at("m").count, 0) << "no change";
  m.Set(20);
  EXPECT_TRUE(std::isnan(Take(reader_).at("m").count)) << "a decrease (restart) publishes nothing";
  m.Set(25);
  EXPECT_EQ(Take(reader_).at("m").count, 5);
}

TEST_F(Meters, PercentileTimerFillsBucketsClampedToItsRange) {
  PercentileTimer p = registry_.GetPercentileTimer("p", {}, 10ms, 60s);
  p.Record(1ms);  // clamped up to 10 ms
  p.Record(50ms);
  p.Record(50ms);
  p.Record(2h);  // clamped down to 60 s
  const auto r = Take(reader_).at("p");
  EXPECT_EQ(r.type, MeterType::kPercentileTimer);
  EXPECT_EQ(r.count, 4);
  EXPECT_DOUBLE_EQ(r.max, 7200);
  ASSERT_EQ(r.buckets.size(), kPercentileBucketCount);
  EXPECT_EQ(r.buckets[PercentileBucketIndex(10000000)], 1u);
  EXPECT_EQ(r.buckets[PercentileBucketIndex(50000000)], 2u);
  EXPECT_EQ(r.buckets[PercentileBucketIndex(60000000000)], 1u);
  std::uint64_t sum = 0;
  for (auto b : r.buckets) sum += b;
  EXPECT_EQ(sum, 4u);
  const auto again = Take(reader_).at("p");
  for (auto b : again.buckets) ASSERT_EQ(b, 0u);
}

TEST_F(Meters, PercentileRangeIsFixedByTheFirstRegistration) {
  PercentileDistributionSummary first =
      registry_.GetPercentileDistributionSummary("p", {}, 100, 1000);
  PercentileDistributionSummary second = registry_.GetPercentileDistributionSummary("p", {}, 0, 5);
  second.Record(5000);  // clamped to the registered max, 1000
  second.Record(1);     // clamped to the registered min, 100
  const auto r = Take(reader_).at("p");
  EXPECT_EQ(r.buckets[PercentileBucketIndex(1000)], 1u);
  EXPECT_EQ(r.buckets[PercentileBucketIndex(100)], 1u);
  EXPECT_DOUBLE_EQ(r.total, 5001);
  (void)first;
}

TEST_F(Meters, EmptyPercentileRangeIsANoop) {
  EXPECT_FALSE(registry_.GetPercentileTimer("p", {}, 2s, 1s).IsLive());
  EXPECT_FALSE(registry_.GetPercentileDistributionSummary("p", {}, -1, 5).IsLive());
}

TEST_F(Meters, InvalidIdGivesANoopAndCountsIt) {
  std::vector<std::string> logged;
  SegmentOptions o = segment_.options();
  o.logger = [&](LogLevel, std::string_view m) { logged.emplace_back(m); };
  Registry registry(o);
  Counter c = registry.GetCounter("");
  EXPECT_FALSE(c.IsLive());
  c.Increment();  // harmless
  EXPECT_FALSE(registry.GetCounter(std::string(10240, 'x')).IsLive());
  EXPECT_FALSE(registry.GetTimer("t", {{"statistic", "x"}}).IsLive());
  EXPECT_EQ(registry.Info().invalid_ids, 3u);
  ASSERT_EQ(logged.size(), 3u);
  EXPECT_NE(logged[0].find("empty name"), std::string::npos) << logged[0];
}

TEST_F(Meters, TypeMismatchGivesANoopAndCountsIt) {
  std::vector<std::string> logged;
  SegmentOptions o = segment_.options();
  o.logger = [&](LogLevel, std::string_view m) { logged.emplace_back(m); };
  Registry registry(o);
  ASSERT_TRUE(registry.GetCounter("m").IsLive());
  Gauge g = registry.GetGauge("m");
  EXPECT_FALSE(g.IsLive());
  g.Set(1);
  EXPECT_EQ(registry.Info().type_mismatches, 1u);
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_NE(logged[0].find("is a counter, not a gauge"), std::string::npos) << logged[0];
}

// Past capacity, a new Id counts in the overflow series of its name; past
// the reserve of those (16 here), in the per-type series. Nothing is lost.
TEST_F(Meters, FullSegmentSendsNewIdsToOverflowMetersAndExistingMetersKeepWorking) {
  TempSegment small;
  SegmentOptions o = small.options(/*max_meters=*/4);
  o.logger = [](LogLevel, std::string_view) {};
  Registry registry(o);
  testing::CollectorReader reader(registry);
  std::vector<Counter> live;
  for (int i = 0; i < 4; ++i) live.push_back(registry.GetCounter("c" + std::to_string(i)));
  for (int i = 0; i < 10; ++i) registry.GetCounter("c0", {{"more", std::to_string(i)}}).Add(2);
  for (int i = 0; i < 100; ++i) {
    Counter extra = registry.GetCounter("extra" + std::to_string(i), {{"k", "v"}});
    EXPECT_TRUE(extra.IsLive());
    extra.Increment();
  }
  for (auto& c : live) c.Increment();
  EXPECT_EQ(registry.Info().overflow, 110u) << "one per registration without a place";
  const auto r = Take(reader);
  std::string ids;
  for (const auto& [id, reading] : r) ids += id + " ";
  const auto count = [&](const std::string& id) {
    const auto it = r.find(id);
    return it == r.end() ? -1.0 : it->second.count;
  };
  for (int i = 0; i < 4; ++i) EXPECT_EQ(count("c" + std::to_string(i)), 1) << i;
  EXPECT_EQ(count("c0,spectator.overflow=true"), 20) << "c0's own overflow series: " << ids;
  int name_level = 0;
  for (int i = 0; i < 100; ++i) {
    const auto it = r.find("extra" + std::to_string(i) + ",spectator.overflow=true");
    if (it != r.end()) {
      EXPECT_EQ(it->second.count, 1);
      ++name_level;
    }
  }
  EXPECT_EQ(name_level, 15) << "16 reserved, one taken by c0";
  EXPECT_EQ(count("spectator.overflowed,spectator.overflow=true,type=counter"), 100 - 15) << ids;
  EXPECT_EQ(registry.Info().overflow_meters, 17u);
}

TEST_F(Meters, DefaultConstructedHandlesAreHarmlessNoops) {
  Counter c;
  Timer t;
  PercentileTimer p;
  PercentileDistributionSummary pd;
  Gauge g;
  c.Increment();
  t.Record(1s);
  p.Record(1s);
  pd.Record(1e300);
  g.Set(1);
  EXPECT_FALSE(c.IsLive() || t.IsLive() || p.IsLive() || pd.IsLive() || g.IsLive());
}

TEST_F(Meters, PeekChangesNothing) {
  Counter c = registry_.GetCounter("c");
  MonotonicCounter m = registry_.GetMonotonicCounter("m");
  c.Add(5);
  m.Set(1);
  Take(reader_);
  m.Set(4);
  EXPECT_EQ(Peek(reader_).at("c").count, 0);
  c.Add(2);
  EXPECT_EQ(Peek(reader_).at("c").count, 2);
  EXPECT_EQ(Peek(reader_).at("m").count, 3);
  EXPECT_EQ(Take(reader_).at("c").count, 2);
  EXPECT_EQ(
      reader_.Scan(SegmentReader::Mode::kTake, Clock::now(), [](const MeterReading&) {}).meters,
      2u);
}

// What a collector does when Atlas is down: take, settle nothing but the
// buckets (Restore), and take again next step.
TEST_F(Meters, UnsettledTakeComesBackMergedWithTheNextStep) {
  Counter c = registry_.GetCounter("c");
  Timer t = registry_.GetTimer("t");
  PercentileTimer p = registry_.GetPercentileTimer("p");
  MonotonicCounter m = registry_.GetMonotonicCounter("m");
  MaxGauge g = registry_.GetMaxGauge("g");
  m.Set(10);
  Take(reader_);
  c.Add(3);
  t.Record(1500ms);
  p.Record(20ms);
  m.Set(15);
  g.Set(8);
  std::vector<std::vector<std::uint64_t>> keep;
  reader_.Scan(SegmentReader::Mode::kTake, Clock::now(), [&](const MeterReading& r) {
    MeterReading copy = r;
    if (r.buckets != nullptr) {
      keep.emplace_back(r.buckets, r.buckets + kPercentileBucketCount);
      copy.buckets = keep.back().data();
    }
    reader_.Restore(copy);
  });
  c.Add(1);
  t.Record(500ms);
  g.Set(2);
  m.Set(16);
  const auto r = Take(reader_);
  EXPECT_EQ(r.at("c").count, 4);
  EXPECT_EQ(r.at("t").count, 2);
  EXPECT_DOUBLE_EQ(r.at("t").total, 2.0);
  EXPECT_DOUBLE_EQ(r.at("t").max, 1.5);
  EXPECT_EQ(r.at("p").count, 1);
  EXPECT_EQ(r.at("p").buckets[PercentileBucketIndex(20000000)], 1u);
  EXPECT_EQ(r.at("m").count, 6);
  EXPECT_EQ(r.at("g").max, 8);
}

TEST_F(Meters, CommitSettlesATakeSoItIsNotReturnedAgain) {
  Counter c = registry_.GetCounter("c");
  DistributionSummary d = registry_.GetDistributionSummary("d");
  MaxGauge g = registry_.GetMaxGauge("g");
  c.Add(2.5);
  d.Record(4);
  g.Set(7);
  EXPECT_EQ(Take(reader_).at("c").count, 2.5);  // Take commits
  const auto r = Take(reader_);
  EXPECT_EQ(r.at("c").count, 0);
  EXPECT_EQ(r.at("d").count, 0);
  EXPECT_EQ(r.at("d").max, 0);
  EXPECT_TRUE(std::isnan(r.at("g").max));
}

// A collector killed between its take and its publish: the next collector
// (another reader, as after a restart) gets the taken values again.
TEST_F(Meters, ATakeThatWasNeverSettledIsTakenAgainByTheNextCollector) {
  Counter c = registry_.GetCounter("c");
  Timer t = registry_.GetTimer("t");
  MonotonicCounter m = registry_.GetMonotonicCounter("m");
  MaxGauge g = registry_.GetMaxGauge("g");
  m.Set(1);
  Take(reader_);
  c.Add(5);
  t.Record(2s);
  m.Set(4);
  g.Set(3);
  {
    testing::CollectorReader crashed(registry_);
    crashed.Scan(SegmentReader::Mode::kTake, Clock::now(), [](const MeterReading&) {});
  }
  c.Add(1);
  EXPECT_EQ(Peek(reader_).at("c").count, 6) << "peek shows pending + live";
  testing::CollectorReader next(registry_);
  const auto r = Take(next);
  EXPECT_EQ(r.at("c").count, 6);
  EXPECT_EQ(r.at("t").count, 1);
  EXPECT_DOUBLE_EQ(r.at("t").total, 2.0);
  EXPECT_EQ(r.at("m").count, 3);
  EXPECT_EQ(r.at("g").max, 3);
}

// The cumulative totals (what a Prometheus scrape reads) include the live
// step, never go down, and do not depend on what became of a publish:
// committed, kept pending by an outage, or restored.
TEST_F(Meters, CumulativeTotalsAreCurrentAndNeverDecreaseWhateverBecomesOfThePublish) {
  Counter c = registry_.GetCounter("c");
  Timer t = registry_.GetTimer("t");
  DistributionSummary d = registry_.GetDistributionSummary("d");
  MonotonicCounter m = registry_.GetMonotonicCounter("m");
  PercentileTimer p = registry_.GetPercentileTimer("p");
  c.Add(3);
  c.Add(0.5);
  t.Record(2s);
  d.Record(7);
  m.Set(100);
  p.Record(20ms);
  auto peek = Peek(reader_);
  EXPECT_EQ(peek.at("c").cumulative_count, 3.5) << "the live step counts at once";
  EXPECT_EQ(peek.at("t").cumulative_count, 1);
  EXPECT_EQ(peek.at("t").cumulative_total, 2);
  EXPECT_EQ(peek.at("d").cumulative_total, 7);
  EXPECT_EQ(peek.at("m").cumulative_count, 0) << "the first sample is a base, not an increase";
  const std::size_t bucket = PercentileBucketIndex(20000000);
  EXPECT_EQ(peek.at("p").cumulative_buckets[bucket], 1u);

  // A take whose publish fails: nothing is committed, buckets are restored.
  reader_.Scan(SegmentReader::Mode::kTake, t0_, [&](const MeterReading& r) {
    EXPECT_GE(r.cumulative_count, peek.at(std::string(r.id)).cumulative_count);
    reader_.Restore(r);
  });
  peek = Peek(reader_);
  EXPECT_EQ(peek.at("c").cumulative_count, 3.5);
  EXPECT_EQ(peek.at("p").cumulative_buckets[bucket], 1u) << "restored: not counted twice";
  EXPECT_EQ(peek.at("p").cumulative_count, 1);

  // More updates, then a take that succeeds.
  c.Increment();
  t.Record(1s);
  m.Set(130);
  p.Record(20ms);
  const auto taken = Take(reader_, t0_ + 5s);
  EXPECT_EQ(taken.at("c").cumulative_count, 4.5);
  EXPECT_EQ(taken.at("c").count, 4.5) << "the Atlas step: what was pending plus the new";
  EXPECT_EQ(taken.at("t").cumulative_total, 3);
  EXPECT_EQ(taken.at("m").cumulative_count, 30);
  EXPECT_EQ(taken.at("p").cumulative_buckets[bucket], 2u);
  // Committed and idle: the Atlas step is empty, the cumulative totals stay.
  const auto idle = Take(reader_, t0_ + 10s);
  EXPECT_EQ(idle.at("c").count, 0);
  EXPECT_EQ(idle.at("c").cumulative_count, 4.5);
  EXPECT_EQ(idle.at("t").cumulative_count, 2);
  EXPECT_EQ(idle.at("p").cumulative_count, 2);
  EXPECT_EQ(idle.at("m").cumulative_count, 30);
  m.Set(10);  // the source restarted: no increase, and no step back
  EXPECT_EQ(Take(reader_, t0_ + 15s).at("m").cumulative_count, 30);
}

}  // namespace
}  // namespace spectator
