// The Prometheus exposition (collector/prometheus.h): names, labels,
// families, values of every meter type, read from a real segment; totals that
// stay exact and never go back while steps take, fail and restore; and the
// text checked by promtool.
#include "prometheus.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "collector.h"
#include "gzip.h"
#include "support/gunzip.h"
#include "line_sink.h"
#include "log.h"
#include "prometheus_endpoint.h"
#include "spectator/percentile_buckets.h"
#include "spectator/spectator.h"
#include "support/temp_segment.h"

namespace spectator::collector {
namespace {

using namespace std::chrono_literals;
using spectator::testing::TempSegment;

// A scrape's text, parsed: every sample by its line's left side, and the
// families in order with their types.
struct Exposition {
  std::map<std::string, double> samples;  // `name{labels}` → value
  std::vector<std::pair<std::string, std::string>> types;  // family → type, in order
  std::map<std::string, std::string> help;
  std::string error;  // the first rule the text breaks, if any

  explicit Exposition(const std::string& text) {
    std::size_t pos = 0;
    std::string family;  // of the last TYPE line
    std::set<std::string> closed;
    while (pos < text.size()) {
      const std::size_t nl = text.find('\n', pos);
      if (nl == std::string::npos) {
        Fail("the text does not end with a newline");
        break;
      }
      const std::string line = text.substr(pos, nl - pos);
      pos = nl + 1;
      if (line.rfind("# HELP ", 0) == 0) {
        const std::string rest = line.substr(7);
        help[rest.substr(0, rest.find(' '))] = rest.substr(rest.find(' ') + 1);
        continue;
      }
      if (line.rfind("# TYPE ", 0) == 0) {
        const std::string rest = line.substr(7);
        if (!family.empty()) closed.insert(family);
        family = rest.substr(0, rest.find(' '));
        if (closed.count(family) != 0) Fail("family " + family + " appears twice");
        if (help.count(family) == 0) Fail("no HELP before TYPE " + family);
        types.emplace_back(family, rest.substr(rest.find(' ') + 1));
        continue;
      }
      const std::size_t space = line.rfind(' ');
      const std::string key = line.substr(0, space);
      const std::string name = key.substr(0, key.find('{'));
      if (name.rfind(family, 0) != 0) Fail("sample " + name + " outside its family " + family);
      if (!samples.emplace(key, std::stod(line.substr(space + 1))).second) {
        Fail("repeated series " + key);
      }
    }
  }
  void Fail(const std::string& why) {
    if (error.empty()) error = why;
  }
  std::string TypeOf(const std::string& family) const {
    for (const auto& [f, t] : types) {
      if (f == family) return t;
    }
    return "";
  }
  // The value of a series, NaN when absent.
  double operator[](const std::string& key) const {
    const auto it = samples.find(key);
    return it == samples.end() ? std::nan("") : it->second;
  }
  bool Has(const std::string& key) const { return samples.count(key) != 0; }
};

class PrometheusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogLevel(LogLevel::kError);
    Restart();
  }
  void TearDown() override { SetLogLevel(LogLevel::kWarning); }

  // A collector stepping the segment, as after a restart, and a scraper
  // serialised with it.
  void Restart() {
    scraper_.reset();
    collector_.reset();
    collector_.emplace(registry_, CollectorOptions{}, sink_);
    scraper_.emplace(registry_, common_, *collector_);
  }

  Exposition Scrape(std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
    const std::string text = scraper_->ScrapeText(now);
    Exposition e(text);
    EXPECT_EQ(e.error, "") << text;
    return e;
  }

  TempSegment segment_;
  Registry registry_{segment_.options(512, std::uint64_t{1} << 18)};
  CommonTags common_{{"nf.app", "demo"}, {"nf.region", "eu-west-1"}};
  LineSink sink_;
  std::optional<Collector> collector_;
  std::optional<PrometheusScraper> scraper_;
};

TEST(PrometheusNames, AtlasNamesBecomeSnakeCaseMetricNames) {
  EXPECT_EQ(PrometheusName("server.requestCount"), "server_request_count");
  EXPECT_EQ(PrometheusName("HTTPServer.latency"), "http_server_latency");
  EXPECT_EQ(PrometheusName("getHTTPResponseCode"), "get_http_response_code");
  EXPECT_EQ(PrometheusName("v2Api"), "v2_api");
  EXPECT_EQ(PrometheusName("already_snake"), "already_snake");
  EXPECT_EQ(PrometheusName("ABC"), "abc");
  EXPECT_EQ(PrometheusName("a-b~c^d.e"), "a_b_c_d_e");
  EXPECT_EQ(PrometheusName("9lives"), "_9lives");
  EXPECT_EQ(PrometheusName("a:b"), "a_b") << "colons are for recording rules";
}

TEST(PrometheusNames, TagKeysBecomeLabelNamesAndReservedOnesMove) {
  EXPECT_EQ(PrometheusLabelName("nf.app"), "nf_app");
  EXPECT_EQ(PrometheusLabelName("statusCode"), "status_code");
  EXPECT_EQ(PrometheusLabelName("le"), "tag_le");
  EXPECT_EQ(PrometheusLabelName("quantile"), "tag_quantile");
  EXPECT_EQ(PrometheusLabelName("__name__"), "tag___name__");
  EXPECT_EQ(PrometheusLabelName("_x"), "_x");
  EXPECT_EQ(PrometheusLabelName("0day"), "_0day");
}

TEST(PrometheusNames, LabelValuesAndSampleValuesAreWrittenAsTheFormatSays) {
  std::string out;
  AppendLabelValue("a\\b\"c\nd~", &out);
  EXPECT_EQ(out, "a\\\\b\\\"c\\nd~");
  const auto value = [](double v) {
    std::string s;
    AppendSampleValue(v, &s);
    return s;
  };
  EXPECT_EQ(value(42), "42");
  EXPECT_EQ(value(0.5), "0.5");
  EXPECT_EQ(value(1e21), "1e+21");
  EXPECT_EQ(value(std::nan("")), "NaN");
  EXPECT_EQ(value(INFINITY), "+Inf");
  EXPECT_EQ(value(-INFINITY), "-Inf");
}

TEST(PrometheusEndpointHeaders, AcceptsGzipOnlyWhenAskedWithANonZeroQuality) {
  EXPECT_TRUE(AcceptsGzip("gzip"));
  EXPECT_TRUE(AcceptsGzip("deflate, gzip;q=0.5"));
  EXPECT_TRUE(AcceptsGzip(" * "));
  EXPECT_FALSE(AcceptsGzip(""));
  EXPECT_FALSE(AcceptsGzip("identity"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0"));
  EXPECT_FALSE(AcceptsGzip("gzip; q=0.000, br"));
  EXPECT_FALSE(AcceptsGzip("xgzip"));
}

TEST_F(PrometheusTest, EveryMeterTypeMapsToItsFamily) {
  registry_.GetCounter("server.requestCount", {{"status", "200"}}).Add(42);
  Timer timer = registry_.GetTimer("server.requestLatency");
  timer.Record(500ms);
  timer.Record(1500ms);
  DistributionSummary summary = registry_.GetDistributionSummary("server.responseSize");
  summary.Record(100);
  summary.Record(300);
  registry_.GetGauge("server.workers").Set(4);
  registry_.GetMaxGauge("queue.depth").Set(7);
  MonotonicCounter mono = registry_.GetMonotonicCounter("bytes.read");
  mono.Set(10);  // the first value is the baseline: its increases are counted
  registry_.GetAgeGauge("last.success").Set(std::chrono::system_clock::now() - 5s);
  registry_.GetGauge("never.set");  // no value: no sample
  // A step takes them all: what it took still counts (the maxima as the last
  // step's), and what comes after adds to it.
  collector_->Step(std::chrono::system_clock::now());
  mono.Set(25);

  const Exposition e = Scrape();
  const std::string tags = "nf_app=\"demo\",nf_region=\"eu-west-1\"";
  EXPECT_EQ(e["server_request_count_total{" + tags + ",status=\"200\"}"], 42);
  EXPECT_EQ(e.TypeOf("server_request_count_total"), "counter");

  EXPECT_EQ(e.TypeOf("server_request_latency_seconds"), "summary");
  EXPECT_EQ(e["server_request_latency_seconds_count{" + tags + "}"], 2);
  EXPECT_EQ(e["server_request_latency_seconds_sum{" + tags + "}"], 2.0);
  EXPECT_EQ(e.TypeOf("server_request_latency_seconds_max"), "gauge");
  EXPECT_EQ(e["server_request_latency_seconds_max{" + tags + "}"], 1.5);

  EXPECT_EQ(e.TypeOf("server_response_size"), "summary");
  EXPECT_EQ(e["server_response_size_count{" + tags + "}"], 2);
  EXPECT_EQ(e["server_response_size_sum{" + tags + "}"], 400);
  EXPECT_EQ(e["server_response_size_max{" + tags + "}"], 300);

  EXPECT_EQ(e.TypeOf("server_workers"), "gauge");
  EXPECT_EQ(e["server_workers{" + tags + "}"], 4);
  EXPECT_EQ(e["queue_depth{" + tags + "}"], 7);
  EXPECT_EQ(e.TypeOf("bytes_read_total"), "counter");
  EXPECT_EQ(e["bytes_read_total{" + tags + "}"], 15);
  EXPECT_EQ(e.TypeOf("last_success_seconds"), "gauge");
  EXPECT_NEAR(e["last_success_seconds{" + tags + "}"], 5, 2);
  EXPECT_FALSE(e.Has("never_set{" + tags + "}"));
  EXPECT_EQ(e.TypeOf("never_set"), "") << "a family without samples has no TYPE line";
  EXPECT_EQ(e.help.at("server_request_count_total"), "Atlas counter server.requestCount");
}

TEST_F(PrometheusTest, MaximaCoverTheLastStepAndTheRunningOne) {
  Timer t = registry_.GetTimer("t");
  MaxGauge g = registry_.GetMaxGauge("g");
  const std::string tags = "{nf_app=\"demo\",nf_region=\"eu-west-1\"}";
  auto now = std::chrono::system_clock::now();
  t.Record(2s);
  g.Set(5);
  EXPECT_EQ(Scrape()["t_seconds_max" + tags], 2) << "the running step";
  collector_->Step(now += 1s);
  t.Record(1s);
  g.Set(3);
  Exposition e = Scrape();
  EXPECT_EQ(e["t_seconds_max" + tags], 2) << "the last step's, larger than the running one's";
  EXPECT_EQ(e["g" + tags], 5);
  collector_->Step(now += 1s);
  e = Scrape();
  EXPECT_EQ(e["t_seconds_max" + tags], 1) << "the last step's";
  EXPECT_EQ(e["g" + tags], 3);
  collector_->Step(now += 1s);  // a step without records
  e = Scrape();
  EXPECT_EQ(e["t_seconds_max" + tags], 0) << "idle: 0";
  EXPECT_FALSE(e.Has("g" + tags)) << "a max gauge without values has no sample";
  EXPECT_EQ(e["t_seconds_count" + tags], 2) << "the count stays";
}

// As on Atlas: a gauge's sample goes 15 minutes after the step that saw its
// last Set, and comes back with the next Set.
TEST_F(PrometheusTest, AGaugeDisappearsWhenItExpiresAndComesBackWhenSet) {
  Gauge g = registry_.GetGauge("g");
  g.Set(3);
  const auto t0 = std::chrono::system_clock::now();
  collector_->Step(t0);  // sees the Set at t0
  const std::string key = "g{nf_app=\"demo\",nf_region=\"eu-west-1\"}";
  EXPECT_EQ(Scrape(t0 + 14min)[key], 3);
  EXPECT_FALSE(Scrape(t0 + 16min).Has(key));
  g.Set(4);
  EXPECT_EQ(Scrape(t0 + 16min)[key], 4);
  g.Set(NAN);
  EXPECT_FALSE(Scrape(t0 + 16min).Has(key)) << "NaN clears it";
}

TEST_F(PrometheusTest, PercentileMetersAreHistogramsWithCumulativeBuckets) {
  // A range that clamps none of the values (the default starts at 10 ms).
  PercentileTimer t = registry_.GetPercentileTimer("conn.duration", {}, 1ns, 60s);
  const std::vector<std::chrono::nanoseconds> values = {1ms, 1ms, 3ms, 50ms, 2s};
  for (auto v : values) t.Record(v);
  PercentileDistributionSummary s = registry_.GetPercentileDistributionSummary("payload.size");
  s.Record(10);
  s.Record(1000);

  const Exposition e = Scrape();
  const std::string tags = "nf_app=\"demo\",nf_region=\"eu-west-1\"";
  EXPECT_EQ(e.TypeOf("conn_duration_seconds"), "histogram");
  EXPECT_EQ(e["conn_duration_seconds_count{" + tags + "}"], 5);
  EXPECT_NEAR(e["conn_duration_seconds_sum{" + tags + "}"], 2.055, 1e-9);
  EXPECT_EQ(e["conn_duration_seconds_bucket{" + tags + ",le=\"+Inf\"}"], 5);
  EXPECT_EQ(e["conn_duration_seconds_max{" + tags + "}"], 2);
  // Every bucket, cumulative: at each bound, the values at or below it.
  std::size_t buckets = 0;
  for (std::size_t i = 0; i < kPercentileBucketCount; ++i) {
    const double bound_ns = static_cast<double>(kPercentileBucketBounds[i]);
    std::string le;
    AppendSampleValue(bound_ns / 1e9, &le);
    const std::string key = "conn_duration_seconds_bucket{" + tags + ",le=\"" + le + "\"}";
    ASSERT_TRUE(e.Has(key)) << key;
    ++buckets;
    double expected = 0;
    for (auto v : values) expected += PercentileBucketIndex(v.count()) <= i ? 1 : 0;
    EXPECT_EQ(e[key], expected) << key;
  }
  EXPECT_EQ(buckets, kPercentileBucketCount);

  EXPECT_EQ(e.TypeOf("payload_size"), "histogram");
  EXPECT_EQ(e["payload_size_count{" + tags + "}"], 2);
  EXPECT_EQ(e["payload_size_sum{" + tags + "}"], 1010);
  std::string le10;
  AppendSampleValue(static_cast<double>(kPercentileBucketBounds[PercentileBucketIndex(10)]), &le10);
  EXPECT_EQ(e["payload_size_bucket{" + tags + ",le=\"" + le10 + "\"}"], 1);
}

TEST_F(PrometheusTest, CollidingNamesGetSuffixesInRegistrationOrderStableAcrossScrapes) {
  registry_.GetCounter("a.b").Increment();
  registry_.GetCounter("a_b").Add(2);
  registry_.GetGauge("foo.count").Set(1);           // takes foo_count first
  registry_.GetDistributionSummary("foo").Record(5);  // would write foo_count
  registry_.GetTimer("lat").Record(1s);
  // Another type under the same name (other tags): a second lat_seconds family.
  registry_.GetPercentileTimer("lat", {{"kind", "percentile"}}).Record(2s);
  for (int scrape = 0; scrape < 2; ++scrape) {
    const Exposition e = Scrape();
    const std::string tags = "{nf_app=\"demo\",nf_region=\"eu-west-1\"}";
    EXPECT_EQ(e["a_b_total" + tags], 1);
    EXPECT_EQ(e["a_b_2_total" + tags], 2);
    EXPECT_EQ(e["foo_count" + tags], 1);
    EXPECT_EQ(e.TypeOf("foo_2"), "summary");
    EXPECT_EQ(e["foo_2_count" + tags], 1);
    EXPECT_EQ(e.TypeOf("lat_seconds"), "summary");
    EXPECT_EQ(e.TypeOf("lat_2_seconds"), "histogram");
    EXPECT_EQ(e["lat_2_seconds_count{kind=\"percentile\",nf_app=\"demo\",nf_region=\"eu-west-1\"}"],
              1);
  }
}

// Meters registered between scrapes join their families (a new family
// after the others), whatever positions they take in the reader.
TEST_F(PrometheusTest, MetersRegisteredBetweenScrapesJoinTheirFamilies) {
  registry_.GetCounter("a", {{"k", "1"}}).Add(1);
  registry_.GetGauge("g").Set(1);
  const std::string common = "nf_app=\"demo\",nf_region=\"eu-west-1\"";
  const Exposition first = Scrape();
  EXPECT_EQ(first["a_total{k=\"1\"," + common + "}"], 1);
  const auto families_before = first.types;
  for (int round = 2; round < 6; ++round) {
    registry_.GetCounter("a", {{"k", std::to_string(round)}}).Add(round);
    registry_.GetTimer("t" + std::to_string(round)).Record(std::chrono::seconds(round));
    const Exposition e = Scrape();  // its parser checks each family is in one piece
    for (int k = 1; k <= round; ++k) {
      EXPECT_EQ(e["a_total{k=\"" + std::to_string(k) + "\"," + common + "}"], k) << round;
    }
    EXPECT_EQ(e["t" + std::to_string(round) + "_seconds_sum{" + common + "}"], round);
    EXPECT_TRUE(std::equal(families_before.begin(), families_before.end(), e.types.begin()))
        << "the families seen before keep their order, new ones come after";
  }
}

TEST(GzipStream, PiecesMakeOneMemberOfTheirConcatenation) {
  std::string text;
  for (int i = 0; i < 200000; ++i) text += "line_total{k=\"" + std::to_string(i % 977) + "\"} 1\n";
  GzipStream stream;
  for (int round = 0; round < 2; ++round) {  // a stream is reused, scrape after scrape
    std::string z = "keep";
    stream.Begin(&z);
    for (std::size_t at = 0; at < text.size(); at += 100003) {
      stream.Append(std::string_view(text).substr(at, 100003));
    }
    stream.Finish();
    ASSERT_EQ(z.substr(0, 4), "keep") << "written after what *out held";
    ASSERT_EQ(static_cast<unsigned char>(z[4]), 0x1f);
    std::string back;
    ASSERT_TRUE(testing::Gunzip(std::string_view(z).substr(4), &back));
    EXPECT_EQ(back, text);
    EXPECT_LT(z.size(), text.size() / 5);
  }
  std::string empty;
  stream.Begin(&empty);
  stream.Finish();
  std::string back = "x";
  ASSERT_TRUE(testing::Gunzip(empty, &back));
  EXPECT_EQ(back, "");
}

TEST_F(PrometheusTest, ASeriesWhoseLabelsBecomeAnothersIsLeftOutAndCounted) {
  PrometheusText text({});
  registry_.GetCounter("x", {{"a.b", "1"}}).Add(1);
  registry_.GetCounter("x", {{"a_b", "1"}}).Add(2);
  registry_.GetCounter("y", {{"a.b", "1"}, {"a_b", "2"}}).Add(3);  // one meter, both keys
  SegmentReader reader(registry_);
  reader.Scan(SegmentReader::Mode::kPeek, std::chrono::system_clock::now(),
              [&](const MeterReading& r) { text.Add(r); });
  std::string out;
  text.Write([&out](std::string_view piece) { out.append(piece); });
  const Exposition e(out);
  EXPECT_EQ(e.error, "") << out;
  EXPECT_EQ(e["x_total{a_b=\"1\"}"], 1) << "the first registered keeps the series\n" << out;
  EXPECT_EQ(text.duplicates(), 1U);
  EXPECT_EQ(e["y_total{a_b=\"1\"}"], 3) << "in one meter the first key in order keeps the label";
}

TEST_F(PrometheusTest, AMetersOwnTagWinsOverACommonTag) {
  registry_.GetCounter("c", {{"nf.app", "own"}}).Increment();
  const Exposition e = Scrape();
  EXPECT_EQ(e["c_total{nf_app=\"own\",nf_region=\"eu-west-1\"}"], 1);
}

// Steps take (and sometimes fail and restore) while scrapes read: every
// scrape is exact at its moment and never less than the one before.
TEST_F(PrometheusTest, TotalsAreCurrentAndNeverGoBackAcrossStepsOutagesAndRestarts) {
  Counter c = registry_.GetCounter("c");
  PercentileTimer t = registry_.GetPercentileTimer("t");
  const std::string key = "c_total{nf_app=\"demo\",nf_region=\"eu-west-1\"}";
  const std::string count = "t_seconds_count{nf_app=\"demo\",nf_region=\"eu-west-1\"}";
  double expected = 0;
  auto now = std::chrono::system_clock::now();
  for (int restart = 0; restart < 2; ++restart) {
    Restart();  // a new collector: the cumulative words persist in the segment
    for (int step = 0; step < 6; ++step) {
      c.Add(step + 1);
      t.Record(std::chrono::milliseconds(step + 1));
      expected += step + 1;
      EXPECT_EQ(Scrape()[key], expected) << "before step " << step;
      sink_.down = step % 3 == 1;  // an outage: the batch is kept, buckets restored
      collector_->Step(now += 1s);
      const Exposition after = Scrape();
      EXPECT_EQ(after[key], expected) << "after step " << step;
      EXPECT_EQ(after[count], (restart * 6 + step + 1)) << "after step " << step;
    }
  }
}

// Forked workers increment while a thread steps (with outages) and the test
// scrapes as fast as it can: no scrape reads less than the one before, and the
// last reads exactly what the workers did. Without the take mutex a scrape
// can land between a take's exchange and its cumulative store.
TEST_F(PrometheusTest, ConcurrentScrapesNeverGoBackWhileWorkersUpdateAndStepsTake) {
  Counter c = registry_.GetCounter("c");
  PercentileTimer t = registry_.GetPercentileTimer("t");
  constexpr int kWorkers = 3;
  constexpr int kIncrements = 200000;
  std::vector<pid_t> children;
  for (int w = 0; w < kWorkers; ++w) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int i = 0; i < kIncrements; ++i) {
        c.Increment();
        t.Record(std::chrono::microseconds(i % 5000));
      }
      ::_exit(0);
    }
    children.push_back(pid);
  }
  std::atomic<bool> done{false};
  std::thread stepper([&] {
    auto now = std::chrono::system_clock::now();
    for (int step = 0; !done.load(); ++step) {
      sink_.down = step % 4 == 3;
      collector_->Step(now += 1s);
    }
  });
  const std::string key = "c_total{nf_app=\"demo\",nf_region=\"eu-west-1\"}";
  const std::string count = "t_seconds_count{nf_app=\"demo\",nf_region=\"eu-west-1\"}";
  double last = 0, last_count = 0;
  int scrapes = 0, running = kWorkers;
  while (running > 0) {
    const Exposition e = Scrape();
    ASSERT_GE(e[key], last) << "scrape " << scrapes;
    ASSERT_GE(e[count], last_count) << "scrape " << scrapes;
    last = e[key];
    last_count = e[count];
    ++scrapes;
    int status = 0;
    for (pid_t& pid : children) {
      if (pid != 0 && ::waitpid(pid, &status, WNOHANG) == pid) {
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        pid = 0;
        --running;
      }
    }
  }
  done = true;
  stepper.join();
  const Exposition e = Scrape();
  EXPECT_EQ(e[key], kWorkers * kIncrements);
  EXPECT_EQ(e[count], kWorkers * kIncrements);
  EXPECT_EQ(e["t_seconds_bucket{nf_app=\"demo\",nf_region=\"eu-west-1\",le=\"+Inf\"}"],
            kWorkers * kIncrements);
  EXPECT_GT(scrapes, 1);
}

// promtool (Debian's prometheus package) lints a scrape of every meter type
// with names and tags that need every mapping rule.
TEST_F(PrometheusTest, PromtoolAcceptsAScrapeOfEveryTypeWithHostileNames) {
  if (::access("/usr/bin/promtool", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/promtool";
  const Tags hostile = {{"statusCode", "5xx"}, {"le", "x"}, {"quantile", "q"},
                        {"__name__", "n"},     {"0day", "~^-."}, {"a.b", "1"}};
  registry_.GetCounter("9req.Count~x", hostile).Increment();
  registry_.GetCounter("HTTPServer.requests.total", hostile).Increment();
  registry_.GetTimer("api-latency^v2", hostile).Record(1ms);
  registry_.GetTimer("lat.seconds", hostile).Record(1ms);
  registry_.GetDistributionSummary("resp.Size", hostile).Record(3);
  registry_.GetGauge("resp.Size.count", hostile).Set(1);  // collides with the summary's _count
  registry_.GetMaxGauge("queue:depth", hostile).Set(2);
  registry_.GetAgeGauge("last.ok", hostile).Set(std::chrono::system_clock::now());
  registry_.GetMonotonicCounter("bytes", hostile).Set(3);
  registry_.GetPercentileTimer("conn.duration", hostile).Record(2ms);
  registry_.GetPercentileDistributionSummary("conn.bytes", hostile).Record(100);
  const std::string text = scraper_->ScrapeText();
  ASSERT_EQ(Exposition(text).error, "");
  char path[] = "/tmp/spectator-promtool-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
  const std::string command =
      std::string("/usr/bin/promtool check metrics < ") + path + " > " + path + ".out 2>&1";
  const int status = std::system(command.c_str());
  std::ifstream in(std::string(path) + ".out");
  const std::string said((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ::unlink(path);
  ::unlink((std::string(path) + ".out").c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << said << "\n" << text;
}

}  // namespace
}  // namespace spectator::collector
