// The collector's step, in process: the measurement rules for every meter
// type (with an injected clock), the exact payload, and what each answer of
// the publish endpoint does to the values in the segment.
#include "collector.h"
#include "support/collector_reader.h"
#include "dump.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gzip.h"
#include "line_sink.h"
#include "log.h"
#include "payload.h"
#include "spectator/spectator.h"
#include "support/atlas_payload.h"
#include "support/fake_http_server.h"
#include "support/temp_segment.h"

namespace spectator::collector {
namespace {

using namespace std::chrono_literals;
using spectator::testing::DecodePayload;
using spectator::testing::DecodeRequests;
using spectator::testing::FakeHttpServer;
using spectator::testing::HttpReply;
using spectator::testing::HttpRequest;
using spectator::testing::Reply;
using spectator::testing::Sum;
using spectator::testing::TempSegment;
using Clock = std::chrono::system_clock;


class CollectorTest : public ::testing::Test {
 protected:
  void SetUp() override { SetLogLevel(LogLevel::kError); }
  void TearDown() override { SetLogLevel(LogLevel::kWarning); }

  std::vector<std::string> StepLines(Clock::time_point now) {
    sink_.lines.clear();
    collector_.Step(now);
    return sink_.UserLines();
  }

  TempSegment segment_;
  Registry registry_{segment_.options()};
  CollectorOptions options_;
  LineSink sink_;
  Collector collector_{registry_, options_, sink_};
  const Clock::time_point t0_ = Clock::time_point(std::chrono::seconds(1700000000));
};

using Lines = std::vector<std::string>;

TEST_F(CollectorTest, CounterPublishesTheStepSumAndNothingWhenIdle) {
  Counter c = registry_.GetCounter("server.requestCount", {{"status", "200"}, {"method", "GET"}});
  c.Increment();
  c.Add(41);
  c.Add(-5);  // ignored
  EXPECT_EQ(StepLines(t0_), Lines{"server.requestCount{method=GET,statistic=count,status=200} 42"});
  EXPECT_EQ(StepLines(t0_ + 5s), Lines{});
}

TEST_F(CollectorTest, TimerPublishesCountTotalSquaresAndMaxInSeconds) {
  Timer t = registry_.GetTimer("t");
  t.Record(500ms);
  t.Record(1500ms);
  EXPECT_EQ(StepLines(t0_), (Lines{"t{statistic=count} 2", "t{statistic=max} 1.5",
                                   "t{statistic=totalOfSquares} 2.5", "t{statistic=totalTime} 2"}));
  EXPECT_EQ(StepLines(t0_ + 5s), Lines{}) << "an idle timer says nothing, not even max 0";
}

TEST_F(CollectorTest, DistributionSummaryPublishesTotalAmount) {
  DistributionSummary d = registry_.GetDistributionSummary("d");
  d.Record(3);
  d.Record(4);
  EXPECT_EQ(StepLines(t0_),
            (Lines{"d{statistic=count} 2", "d{statistic=max} 4", "d{statistic=totalAmount} 7",
                   "d{statistic=totalOfSquares} 25"}));
}

TEST_F(CollectorTest, GaugeIsPublishedUntilFifteenMinutesAfterItsLastSet) {
  Gauge g = registry_.GetGauge("g");
  g.Set(3.5);
  EXPECT_EQ(StepLines(t0_), Lines{"g{statistic=gauge} 3.5"});
  EXPECT_EQ(StepLines(t0_ + 14min), Lines{"g{statistic=gauge} 3.5"}) << "not reset by a step";
  EXPECT_EQ(StepLines(t0_ + 15min + 1s), Lines{}) << "expired";
  g.Set(1);
  EXPECT_EQ(StepLines(t0_ + 16min), Lines{"g{statistic=gauge} 1"});
  g.Set(NAN);
  EXPECT_EQ(StepLines(t0_ + 17min), Lines{}) << "NaN clears";
}

TEST_F(CollectorTest, MaxGaugePublishesTheStepMaximumThenNothing) {
  MaxGauge g = registry_.GetMaxGauge("m");
  g.Set(2);
  g.Set(7);
  g.Set(5);
  EXPECT_EQ(StepLines(t0_), Lines{"m{statistic=max} 7"});
  EXPECT_EQ(StepLines(t0_ + 5s), Lines{});
}

TEST_F(CollectorTest, AgeGaugePublishesSecondsSinceTheStoredTime) {
  AgeGauge a = registry_.GetAgeGauge("age");
  a.Set(t0_ - 90s);
  EXPECT_EQ(StepLines(t0_), Lines{"age{statistic=gauge} 90"});
  EXPECT_EQ(StepLines(t0_ + 10s), Lines{"age{statistic=gauge} 100"});
}

TEST_F(CollectorTest, MonotonicCounterPublishesIncreasesOnly) {
  MonotonicCounter m = registry_.GetMonotonicCounter("mono");
  m.Set(100);
  EXPECT_EQ(StepLines(t0_), Lines{}) << "first sample";
  m.Set(130);
  EXPECT_EQ(StepLines(t0_ + 5s), Lines{"mono{statistic=count} 30"});
  m.Set(10);
  EXPECT_EQ(StepLines(t0_ + 10s), Lines{}) << "a decrease (restart) publishes nothing";
  m.Set(12);
  EXPECT_EQ(StepLines(t0_ + 15s), Lines{"mono{statistic=count} 2"});
}

TEST_F(CollectorTest, PercentileMetersAddOneCounterPerNonEmptyBucket) {
  PercentileTimer t = registry_.GetPercentileTimer("pt");
  t.Record(50ms);
  t.Record(50ms);
  PercentileDistributionSummary d = registry_.GetPercentileDistributionSummary("pd", {}, 0, 1000);
  d.Record(4096);  // clamped to 1000
  const auto lines = StepLines(t0_);
  char timer_tag[8], summary_tag[8];
  std::snprintf(timer_tag, sizeof timer_tag, "T%04zX", PercentileBucketIndex(50000000));
  std::snprintf(summary_tag, sizeof summary_tag, "D%04zX", PercentileBucketIndex(1000));
  EXPECT_TRUE(sink_.Has("pt{percentile=" + std::string(timer_tag) + ",statistic=percentile} 2"));
  EXPECT_TRUE(sink_.Has("pd{percentile=" + std::string(summary_tag) + ",statistic=percentile} 1"));
  EXPECT_TRUE(sink_.Has("pt{statistic=count} 2"));
  EXPECT_TRUE(sink_.Has("pd{statistic=max} 4096")) << "max is the amount, not the clamped one";
  EXPECT_EQ(lines.size(), 4u + 1 + 4 + 1);
}

TEST_F(CollectorTest, CommonTagsAreAddedAndAMetersOwnTagWins) {
  options_.common_tags = {{"nf.app", "demo"}, {"status", "common"}};
  Collector collector(registry_, options_, sink_);
  registry_.GetCounter("c", {{"status", "own"}}).Increment();
  collector.Step(t0_);
  EXPECT_TRUE(sink_.Has("c{nf.app=demo,statistic=count,status=own} 1"));
}

TEST_F(CollectorTest, SelfMetricsCountWhatWasSentAndTheSegmentState) {
  registry_.GetCounter("a").Increment();
  registry_.GetCounter("b").Increment();
  collector_.Step(t0_);  // sends a and b, plus the self gauges
  collector_.Step(t0_ + 5s);
  EXPECT_TRUE(sink_.Has("spectator.measurements{id=sent,statistic=count} 4"))
      << "a, b, registrySize and corruptEntries";
  const auto size =
      "spectator.registrySize{statistic=gauge} " + std::to_string(registry_.Info().meters);
  EXPECT_TRUE(sink_.Has(size));
  EXPECT_TRUE(sink_.Has("spectator.corruptEntries{statistic=gauge} 0"));
}

TEST_F(CollectorTest, OverflowIsPublishedAsASelfMetric) {
  TempSegment tiny;
  Registry small(tiny.options(16));
  Collector collector(small, options_, sink_);  // its self-metrics take 9 of the 16
  collector.Step(t0_);
  for (int i = 0; i < 20; ++i) small.GetCounter("c" + std::to_string(i)).Increment();
  const auto overflow = small.Info().overflow;
  ASSERT_GT(overflow, 0u);
  collector.Step(t0_ + 5s);
  EXPECT_TRUE(sink_.Has("spectator.overflow{statistic=count} " + std::to_string(overflow)));
}

TEST_F(CollectorTest, ASinkThatIsDownKeepsEverythingForTheNextStep) {
  Counter c = registry_.GetCounter("c");
  Timer t = registry_.GetTimer("t");
  PercentileTimer p = registry_.GetPercentileTimer("p");
  c.Add(3);
  t.Record(1s);
  p.Record(20ms);
  sink_.down = true;
  const StepStats down = collector_.Step(t0_);
  EXPECT_GT(down.retained, 0u);
  EXPECT_EQ(down.sent, 0u);
  EXPECT_EQ(sink_.batches, 1) << "after one failed batch the rest of the step waits";
  c.Add(4);
  t.Record(2s);
  sink_.down = false;
  const auto lines = StepLines(t0_ + 5s);
  EXPECT_TRUE(sink_.Has("c{statistic=count} 7"));
  EXPECT_TRUE(sink_.Has("t{statistic=count} 2"));
  EXPECT_TRUE(sink_.Has("t{statistic=max} 2"));
  EXPECT_TRUE(sink_.Has("p{statistic=count} 1"));
  char tag[8];
  std::snprintf(tag, sizeof tag, "T%04zX", PercentileBucketIndex(20000000));
  EXPECT_TRUE(sink_.Has("p{percentile=" + std::string(tag) + ",statistic=percentile} 1"));
  EXPECT_EQ(StepLines(t0_ + 10s), Lines{}) << "settled: not published twice";
}

TEST_F(CollectorTest, BatchesNeverSplitAMeter) {
  // Records which meters each batch held.
  struct BatchSink : Sink {
    BatchOutcome Publish(const CommonTags&, const Measurement* begin, const Measurement* end,
                         Deadline) override {
      batches.emplace_back();
      for (const Measurement* m = begin; m != end; ++m) batches.back().emplace_back(m->id);
      BatchOutcome out;
      out.kind = BatchOutcome::Kind::kAccepted;
      out.sent = static_cast<std::size_t>(end - begin);
      return out;
    }
    std::vector<std::vector<std::string>> batches;
  } sink;
  options_.batch_size = 3;
  Collector collector(registry_, options_, sink);
  for (int i = 0; i < 4; ++i) registry_.GetCounter("c" + std::to_string(i)).Increment();
  registry_.GetTimer("t").Record(1s);  // 4 measurements: more than a batch
  const StepStats s = collector.Step(t0_);
  EXPECT_EQ(s.measurements, 10u) << "2 self gauges, 4 counters, 4 timer statistics";
  EXPECT_EQ(s.sent, 10u);
  std::map<std::string, int> batches_of;
  for (const auto& batch : sink.batches) {
    const std::set<std::string> ids(batch.begin(), batch.end());
    EXPECT_TRUE(batch.size() <= 3 || ids.size() == 1) << "only a lone meter may exceed the size";
    for (const auto& id : ids) ++batches_of[id];
  }
  EXPECT_EQ(batches_of.size(), 7u);
  for (const auto& [id, n] : batches_of) EXPECT_EQ(n, 1) << id << " was split";
}

TEST_F(CollectorTest, AStepThatOverrunsLeavesTheRestForTheNextStep) {
  options_.batch_size = 1;
  options_.step = std::chrono::nanoseconds(1);  // every batch overruns it
  Collector slow(registry_, options_, sink_);
  for (int i = 0; i < 3; ++i) registry_.GetCounter("c" + std::to_string(i)).Add(i + 1);
  const StepStats first = slow.Step(t0_);
  EXPECT_EQ(first.batches, 1u);
  EXPECT_EQ(first.sent + first.retained, first.measurements);
  EXPECT_EQ(sink_.lines.size(), 1u);
  collector_.Step(t0_ + 5s);  // a collector with the default step
  EXPECT_TRUE(sink_.Has("c0{statistic=count} 1"));
  EXPECT_TRUE(sink_.Has("c1{statistic=count} 2"));
  EXPECT_TRUE(sink_.Has("c2{statistic=count} 3"));
}

// A Record adds its count, then its total: a take between the two sends the
// count with one step and the total with the next, which has a count of 0.
// That total must be published, not dropped with "a step without records".
TEST(Measurements, ARecordStraddlingATakePublishesItsTotalWithTheNextStep) {
  for (const MeterType type : {MeterType::kTimer, MeterType::kDistributionSummary}) {
    MeterReading r;
    r.type = type;
    r.count = 0;
    r.total = 5e-6;
    r.total_of_squares = 2.5e-11;
    r.max = 5e-6;
    std::vector<Measurement> ms;
    AppendMeasurements(r, "t", &ms);
    std::vector<std::string> stats;
    for (const Measurement& m : ms) stats.emplace_back(m.statistic);
    const std::string total = type == MeterType::kTimer ? "totalTime" : "totalAmount";
    EXPECT_EQ(stats, (std::vector<std::string>{total, "totalOfSquares", "max"})) << ToString(type);
    ASSERT_EQ(ms.size(), 3u);
    EXPECT_EQ(ms[0].value, 5e-6);
  }
  MeterReading idle;
  idle.type = MeterType::kTimer;
  std::vector<Measurement> ms;
  AppendMeasurements(idle, "t", &ms);
  EXPECT_TRUE(ms.empty()) << "a step without anything publishes nothing, not even max 0";
}

TEST(Payload, MatchesTheProtocolExampleExactly) {
  TempSegment segment;
  Registry registry(segment.options());
  testing::CollectorReader reader(registry);
  registry.GetCounter("server.requestCount", {{"status", "200"}}).Add(3);
  std::vector<Measurement> ms;
  std::string id;
  reader.Scan(SegmentReader::Mode::kTake, Clock::now(), [&](const MeterReading& r) {
    id = std::string(r.id);
    AppendMeasurements(r, id, &ms);
  });
  ASSERT_EQ(ms.size(), 1u);
  const CommonTags common = {{"nf.app", "demo"}};
  EXPECT_EQ(BuildPayload(common, ms.data(), ms.data() + ms.size()),
            R"([8,"200","count","demo","name","nf.app","server.requestCount","statistic",)"
            R"("status",4,4,2,6,1,7,0,3,5,0,3.0])");
}

TEST(Payload, SharesStringsAcrossMeasurementsAndDecodesBack) {
  const std::string a = "a,k=v", b = "b,k=w";
  const std::vector<Measurement> ms = {{a, "count", "", Op::kAdd, 1},
                                       {b, "max", "", Op::kMax, 0.25},
                                       {b, "percentile", "T0042", Op::kAdd, 2}};
  const std::string json = BuildPayload({}, ms.data(), ms.data() + ms.size());
  const auto decoded = DecodePayload(json);  // strict: sorted, unique, in range
  ASSERT_EQ(decoded.size(), 3u);
  EXPECT_EQ(decoded[1].name, "b");
  EXPECT_EQ(decoded[1].op, 10);
  EXPECT_EQ(decoded[1].value, 0.25);
  EXPECT_EQ(decoded[2].tags.at("percentile"), "T0042");
  EXPECT_EQ(decoded[2].tags.at("k"), "w");
  EXPECT_EQ(json.rfind(R"([11,"T0042","a","b","count","k","max","name","percentile","statistic",)"
                       R"("v","w",)",
                       0),
            0u)
      << json;
}

// Against an HTTP endpoint: what each answer does to the segment's values.
class AtlasTest : public CollectorTest {
 protected:
  AtlasTest() {
    options_.uri = server_.url();
    RetryPolicy retry;
    retry.delay = 1ms;
    retry.sleep = [](std::chrono::milliseconds) {};
    HttpOptions http;
    http.total_timeout = 500ms;
    atlas_ = std::make_unique<AtlasSink>(server_.url(), http, retry);
    collector_ = std::make_unique<Collector>(registry_, options_, *atlas_);
  }
  double Published(const std::string& name, const std::string& statistic) {
    return Sum(DecodeRequests(server_.requests()), name, statistic);
  }

  FakeHttpServer server_;
  std::unique_ptr<AtlasSink> atlas_;
  std::unique_ptr<Collector> collector_;
};

TEST_F(AtlasTest, OutageThenRecoveryPublishesEverythingOnce) {
  Counter c = registry_.GetCounter("c");
  server_.SetHandler([](const HttpRequest&) { return Reply(503); });
  c.Add(5);
  EXPECT_GT(collector_->Step(t0_).retained, 0u);
  c.Add(2);
  EXPECT_GT(collector_->Step(t0_ + 5s).retained, 0u);
  const std::size_t failed = server_.request_count();
  EXPECT_EQ(failed, 6u) << "3 attempts per step, one batch per step";
  server_.SetHandler({});  // 200
  c.Add(1);
  EXPECT_EQ(collector_->Step(t0_ + 10s).retained, 0u);
  collector_->Step(t0_ + 15s);
  auto requests = server_.requests();
  requests.erase(requests.begin(), requests.begin() + static_cast<std::ptrdiff_t>(failed));
  EXPECT_EQ(Sum(DecodeRequests(requests), "c", "count"), 8);
}

TEST_F(AtlasTest, RejectedBatchIsDroppedAndCounted) {
  registry_.GetCounter("c").Add(5);
  server_.SetHandler([](const HttpRequest&) { return Reply(400, "bad"); });
  const StepStats s = collector_->Step(t0_);
  EXPECT_EQ(s.dropped, s.measurements);
  EXPECT_EQ(server_.request_count(), 1u) << "4xx is not retried";
  server_.SetHandler({});
  collector_->Step(t0_ + 5s);
  const auto ms = DecodeRequests({server_.requests().back()});
  EXPECT_EQ(Sum(ms, "c", "count"), 0) << "dropped for good";
  EXPECT_EQ(Sum(ms, "spectator.measurements", "count"), 3)  // dropped{http-error}
      << "the 3 dropped (c, registrySize, corruptEntries)";
}

TEST_F(AtlasTest, PartialSuccessCountsValidationDrops) {
  registry_.GetCounter("c").Add(5);
  server_.SetHandler([](const HttpRequest&) {
    return Reply(202, R"({"type":"partial","errorCount":1,"message":["bad value"]})");
  });
  const StepStats s = collector_->Step(t0_);
  EXPECT_EQ(s.dropped, 1u);
  EXPECT_EQ(s.sent, s.measurements - 1);
  server_.SetHandler({});
  collector_->Step(t0_ + 5s);
  bool found = false;
  for (const auto& m : DecodeRequests({server_.requests().back()})) {
    if (m.name == "spectator.measurements" && m.tags.count("error") &&
        m.tags.at("error") == "validation") {
      EXPECT_EQ(m.value, 1);
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(AtlasTest, StallingEndpointIsBoundedByTheTimeoutAndRetried) {
  registry_.GetCounter("c").Add(5);
  server_.SetHandler([](const HttpRequest&) {
    HttpReply stall;
    stall.action = HttpReply::Action::kStall;
    return stall;
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_GT(collector_->Step(t0_).retained, 0u);
  // 3 attempts × 500 ms; the bound is a safety net against hanging forever.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  server_.SetHandler({});
  collector_->Step(t0_ + 5s);
  EXPECT_EQ(Sum(DecodeRequests({server_.requests().back()}), "c", "count"), 5);
}

TEST_F(AtlasTest, HttpSelfMetricRecordsEachAttempt) {
  int calls = 0;
  server_.SetHandler([&calls](const HttpRequest&) { return Reply(++calls == 1 ? 503 : 200); });
  registry_.GetCounter("c").Increment();
  collector_->Step(t0_);
  collector_->Step(t0_ + 5s);
  const auto ms = DecodeRequests({server_.requests().back()});
  double ok = 0, unavailable = 0;
  for (const auto& m : ms) {
    if (m.name != "http.req.complete" || m.tags.at("statistic") != "count") continue;
    EXPECT_EQ(m.tags.at("client"), "spectator-collector");
    EXPECT_EQ(m.tags.at("method"), "POST");
    if (m.tags.at("statusCode") == "200") ok += m.value;
    if (m.tags.at("statusCode") == "503") {
      unavailable += m.value;
      EXPECT_EQ(m.tags.at("status"), "5xx");
    }
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(unavailable, 1);
}

TEST_F(CollectorTest, DumpShowsValuesWithoutResettingThem) {
  registry_.GetCounter("c", {{"k", "v"}}).Add(2);
  registry_.GetGauge("g").Set(1.5);
  char* buf = nullptr;
  std::size_t len = 0;
  std::FILE* out = open_memstream(&buf, &len);
  SegmentReader reader(registry_);  // peek only, as --dump
  Dump(reader, out, t0_);
  std::fclose(out);
  const std::string text(buf, len);
  std::free(buf);
  EXPECT_NE(text.find("segment " + segment_.name() + ": layout " + std::to_string(kLayoutVersion)), std::string::npos) << text;
  EXPECT_NE(text.find("counter c{k=v} count=2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("gauge g value=1.5\n"), std::string::npos) << text;
  EXPECT_EQ(StepLines(t0_), (Lines{"c{k=v,statistic=count} 2", "g{statistic=gauge} 1.5"}));
}

}  // namespace
}  // namespace spectator::collector
