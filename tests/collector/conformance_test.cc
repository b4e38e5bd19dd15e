// Conformance with the classic Spectator clients, end to end: values recorded
// through the public API, taken by the collector, published as an Atlas
// payload to the fake endpoint and decoded from the wire.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "collector.h"
#include "log.h"
#include "spectator/spectator.h"
#include "support/atlas_payload.h"
#include "support/fake_http_server.h"
#include "support/temp_segment.h"

namespace spectator::collector {
namespace {

using namespace std::chrono_literals;
using spectator::testing::DecodeRequests;
using spectator::testing::FakeHttpServer;
using spectator::testing::PublishedMeasurement;
using spectator::testing::TempSegment;
using Clock = std::chrono::system_clock;

class ConformanceTest : public ::testing::Test {
 protected:
  void SetUp() override { SetLogLevel(LogLevel::kError); }
  void TearDown() override { SetLogLevel(LogLevel::kWarning); }

  // One step at `now`, published to the fake Atlas; the measurements of `name`.
  std::vector<PublishedMeasurement> Publish(Clock::time_point now, const std::string& name) {
    const std::size_t before = server_.request_count();
    collector_.Step(now);
    auto requests = server_.requests();
    requests.erase(requests.begin(), requests.begin() + static_cast<std::ptrdiff_t>(before));
    std::vector<PublishedMeasurement> out;
    for (auto& m : DecodeRequests(requests)) {
      if (m.name == name) out.push_back(std::move(m));
    }
    return out;
  }

  // statistic (or percentile tag for statistic=percentile) -> value.
  static std::map<std::string, double> ByStatistic(const std::vector<PublishedMeasurement>& ms) {
    std::map<std::string, double> out;
    for (const auto& m : ms) {
      const std::string& stat = m.tags.at("statistic");
      const std::string key = stat == "percentile" ? m.tags.at("percentile") : stat;
      EXPECT_EQ(out.count(key), 0u) << "published twice: " << key;
      out[key] = m.value;
      const bool add = stat == "count" || stat == "totalTime" || stat == "totalAmount" ||
                       stat == "totalOfSquares" || stat == "percentile";
      EXPECT_EQ(m.op, add ? 0 : 10) << key;
    }
    return out;
  }

  TempSegment segment_;
  Registry registry_{segment_.options()};
  FakeHttpServer server_;
  CollectorOptions options_ = [this] {
    CollectorOptions o;
    o.uri = server_.url();
    return o;
  }();
  AtlasSink atlas_{server_.url(), HttpOptions{}, RetryPolicy{}};
  Collector collector_{registry_, options_, atlas_};
  const Clock::time_point t0_ = Clock::time_point(std::chrono::seconds(1700000000));
};

// The values the classic Python client (a port of Java's PercentileBuckets)
// puts in buckets D0000, D0001, D0005, D0019, D0039 and D0083; the former
// "first bound >= v" rule put 1 in D0000 and 5 in D0004.
TEST_F(ConformanceTest, PercentileDistributionSummaryBucketsMatchSpectator) {
  PercentileDistributionSummary d = registry_.GetPercentileDistributionSummary("sizes");
  for (const double v : {0.0, 1.0, 5.0, 100.0, 12345.0, 1e9}) d.Record(v);
  const auto got = ByStatistic(Publish(t0_, "sizes"));
  ASSERT_EQ(got.size(), 6u + 4u) << ::testing::PrintToString(got);
  for (const char* bucket : {"D0000", "D0001", "D0005", "D0019", "D0039", "D0083"}) {
    EXPECT_EQ(got.count(bucket) == 1 ? got.at(bucket) : 0, 1) << bucket;
  }
  EXPECT_EQ(got.at("count"), 6);
  EXPECT_EQ(got.at("totalAmount"), 1000012451);
  EXPECT_DOUBLE_EQ(got.at("totalOfSquares"), 1.0 + 25.0 + 10000.0 + 152399025.0 + 1e18);
  EXPECT_EQ(got.at("max"), 1e9);
}

// 1 ms is clamped to the default minimum of 10 ms and 75 s to the maximum of
// 60 s for the bucket (not for the statistics).
TEST_F(ConformanceTest, PercentileTimerBucketsMatchSpectator) {
  PercentileTimer t = registry_.GetPercentileTimer("latency");
  for (const auto d : {1ms, 12ms, 250ms, 250ms, 1700ms, 75000ms}) t.Record(d);
  const auto got = ByStatistic(Publish(t0_, "latency"));
  ASSERT_EQ(got.size(), 5u + 4u) << ::testing::PrintToString(got);
  EXPECT_EQ(got.at("T0064"), 1);
  EXPECT_EQ(got.at("T0065"), 1);
  EXPECT_EQ(got.at("T007A"), 2);
  EXPECT_EQ(got.at("T0085"), 1);
  EXPECT_EQ(got.at("T009D"), 1);
  EXPECT_EQ(got.at("count"), 6);
  EXPECT_DOUBLE_EQ(got.at("totalTime"), 77.213);
  EXPECT_DOUBLE_EQ(got.at("totalOfSquares"),
                   0.001 * 0.001 + 0.012 * 0.012 + 2 * 0.25 * 0.25 + 1.7 * 1.7 + 75.0 * 75.0);
  EXPECT_EQ(got.at("max"), 75);
}

// "The starting value of the gauge is zero": a registered age gauge publishes
// 0 at once and then the seconds since its registration.
TEST_F(ConformanceTest, AnAgeGaugeNeverResetPublishesTheTimeSinceItWasRegistered) {
  const auto before = Clock::now();
  registry_.GetAgeGauge("last_success", {{"id", "cache_refresh"}});
  const auto after = Clock::now();
  const auto first = ByStatistic(Publish(after, "last_success"));
  ASSERT_EQ(first.count("gauge"), 1u) << "published before any Set or Reset";
  EXPECT_GE(first.at("gauge"), 0);
  EXPECT_LE(first.at("gauge"), std::chrono::duration<double>(after - before).count());
  const auto later = ByStatistic(Publish(before + 60s, "last_success"));
  EXPECT_NEAR(later.at("gauge"), 60, std::chrono::duration<double>(after - before).count());
}

}  // namespace
}  // namespace spectator::collector
