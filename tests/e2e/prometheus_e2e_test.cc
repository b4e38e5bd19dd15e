// End to end with a real Prometheus server (Debian's 2.42): prefork-server
// records into a segment, spectator-collector serves it on
// --prometheus-listen, and Prometheus scrapes the collector every second.
// Across two collector kill -9s (each new collector on a new port, which
// Prometheus follows through file_sd), what Prometheus stores is exact, and
// histogram_quantile over the percentile timer's buckets lands in the
// Spectator bucket that holds the true 99th percentile. Two small tests
// follow: one scrape linted by `promtool check metrics` and checked against
// the endpoint's rules (names, types, labels, the 276 + 1 buckets), and the
// SPECTATOR_PROMETHEUS_LISTEN fallback.
//
//   ctest --test-dir out/ci -R 'Prometheus(E2e|Scrape)Test'
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "spectator/percentile_buckets.h"
#include "spectator/registry.h"
#include "support/atlas_payload.h"
#include "support/collector_process.h"
#include "support/fake_atlas.h"
#include "support/http_get.h"
#include "support/prefork_server.h"
#include "support/prometheus_server.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"
#include "support/temp_segment.h"

namespace spectator::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Json = nlohmann::json;

constexpr const char* kPromtoolPath = "/usr/bin/promtool";
// Any one wait of the test: generous for a machine shared with other builds.
constexpr milliseconds kWait = seconds(30);

// The Prometheus names of the meters the tests look at, by the endpoint's
// naming rule (collector/prometheus.h, PrometheusName): the Atlas name with
// every character outside [A-Za-z0-9_] replaced by '_', camelCase turned
// into snake_case and all lower case, a '_' in front of a leading digit;
// counters get _total, timers _seconds; tag keys become label names the
// same way.
const std::string kRequestCount = "server_request_count_total";        // counter
const std::string kRequestLatency = "server_request_latency_seconds";  // timer
const std::string kResponseSize = "server_response_size";              // distribution summary
const std::string kConnectionDuration = "server_connection_duration_seconds";  // percentile timer
const std::string kWorkers = "server_workers";                                 // gauge
const std::string kRegistrySize = "spectator_registry_size";  // gauge (self-metric)
const std::string kOddCounter = "_1st_meter_x_total";         // counter "1st-meter~x"
const std::string kOddLabel = "my_key";                       // its tag key "my-key"
const std::string kAppLabel = "nf_app";                       // common tag nf.app

// ---------------------------------------------------------------------------
// The binaries under test.

/// Starts spectator-collector with `args` (CollectorArgs) and waits for the
/// line it must print on stderr whatever the log level,
/// `prometheus endpoint listening on http://127.0.0.1:PORT/metrics`; *port is
/// that PORT, 0 if it printed none.
std::unique_ptr<Subprocess> StartCollectorProcess(const std::vector<std::string>& args,
                                                  std::uint16_t* port) {
  auto c = std::make_unique<Subprocess>(DiesWithTheTest(args));
  const std::string prefix = "prometheus endpoint listening on http://127.0.0.1:";
  *port = 0;
  const auto deadline = Clock::now() + kCollectorDeadline;
  while (Clock::now() < deadline && c->Wait(milliseconds(10)) < 0) {
    const std::size_t at = c->err().find(prefix);
    if (at == std::string::npos) continue;
    const std::size_t end = c->err().find('\n', at);
    if (end == std::string::npos) continue;  // the line is not complete yet
    const std::string rest = c->err().substr(at + prefix.size(), end - at - prefix.size());
    const int p = std::atoi(rest.c_str());
    if (rest.find("/metrics") == std::string::npos || p <= 0 || p > 65535) break;
    *port = static_cast<std::uint16_t>(p);
    break;
  }
  EXPECT_NE(*port, 0) << "no '" << prefix << "PORT/metrics' line from the collector; stderr:\n"
                      << c->err();
  return c;
}

/// Starts spectator-collector serving `segment` on a port of its choice
/// (--prometheus-listen 127.0.0.1:0), with a 1 s step; also publishing to
/// `uri` when not empty. *port is the port it logged, 0 if none.
std::unique_ptr<Subprocess> StartPrometheusCollector(const std::string& segment,
                                                     const std::string& uri,
                                                     const std::vector<std::string>& extra,
                                                     std::uint16_t* port) {
  // --log-level debug: the end of each Atlas step is logged ("step: ..."),
  // which tells the test when a kill cannot land inside it (KillCollector).
  std::vector<std::string> args = {"--segment", segment, "--prometheus-listen", "127.0.0.1:0",
                                   "--step",    "1",     "--log-level",         "debug"};
  if (!uri.empty()) {
    args.push_back("--uri");
    args.push_back(uri);
  }
  args.insert(args.end(), extra.begin(), extra.end());
  return StartCollectorProcess(CollectorArgs(args), port);
}

std::size_t Occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

/// kill -9 of the collector. With an Atlas sink, between two steps: right
/// after it logged the end of a step ("step: ..." at --log-level debug), so
/// with a 1 s step the kill lands in the ~1 s it sleeps. A kill inside an
/// Atlas step is a documented window (docs/collector.md, "What can be lost":
/// a batch Atlas accepted just before the kill is published again by the
/// next collector); this test is about the totals across restarts, not about
/// that window, so it stays out of it. Without a sink (Prometheus only) a
/// step is a take and a commit with no I/O between them and logs nothing, so
/// the kill lands wherever it falls: the only loss window is the two
/// instructions between a word's exchange and its journal store.
void KillCollector(Subprocess& collector, bool between_steps) {
  if (between_steps) {
    const std::size_t steps = Occurrences(collector.err(), "step: ");
    const auto deadline = Clock::now() + kWait;
    while (Clock::now() < deadline && collector.Wait(milliseconds(5)) < 0 &&
           Occurrences(collector.err(), "step: ") == steps) {
    }
    EXPECT_GT(Occurrences(collector.err(), "step: "), steps)
        << "no end-of-step log line within the deadline: killing at any instant";
  }
  collector.Signal(SIGKILL);
  EXPECT_EQ(collector.Wait(kWait), 128 + SIGKILL);
}

/// `n` GETs, each on its own connection closed after the answer; returns
/// how many were answered 200 "ok\n".
int ServeRequests(std::uint16_t port, int n, const std::string& path) {
  int ok = 0;
  for (int i = 0; i < n; ++i) {
    const HttpResponse r =
        HttpGet("http://127.0.0.1:" + std::to_string(port) + path + std::to_string(i), true);
    ok += r.status == 200 && r.body == "ok\n" ? 1 : 0;
  }
  return ok;
}

/// A connection to prefork-server that never sends a byte: the worker closes
/// it after --idle-timeout, measured from its accept(), and records that as
/// its server.connectionDuration.
class IdleConnection {
 public:
  explicit IdleConnection(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~IdleConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  IdleConnection(const IdleConnection&) = delete;
  IdleConnection& operator=(const IdleConnection&) = delete;

  /// Waits until the server closes the connection (end of file); false on
  /// timeout, data or an error. The worker records the duration before it
  /// closes, so after this the record is in the segment.
  bool WaitClosedByServer(milliseconds timeout) {
    if (!connected_) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
    char c;
    return ::recv(fd_, &c, 1, 0) == 0;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// ---------------------------------------------------------------------------
// Percentile buckets (docs/protocol.md): bucket i holds values up to bound i
// nanoseconds; the endpoint's `le` is that bound in seconds.

double UpperSeconds(std::size_t i) { return static_cast<double>(kPercentileBucketBounds[i]) / 1e9; }
double LowerSeconds(std::size_t i) { return i == 0 ? 0.0 : UpperSeconds(i - 1); }

/// The bucket of the 99th percentile: the first whose cumulative count
/// reaches 99% of all (the rank Prometheus' histogram_quantile looks for).
std::size_t P99Bucket(const std::array<double, kPercentileBucketCount>& counts) {
  double total = 0;
  for (const double c : counts) total += c;
  double cumulative = 0;
  for (std::size_t i = 0; i < kPercentileBucketCount; ++i) {
    cumulative += counts[i];
    if (cumulative > 0 && cumulative * 100 >= total * 99) return i;
  }
  return kPercentileBucketCount - 1;
}

/// The exact bucket counts of the percentile timer `name` as published to
/// Atlas: the sum of its `statistic=percentile,percentile=T%04X` measurements
/// over every payload.
std::array<double, kPercentileBucketCount> AtlasBuckets(const std::vector<PublishedMeasurement>& ms,
                                                        const std::string& name) {
  std::array<double, kPercentileBucketCount> counts{};
  for (const PublishedMeasurement& m : ms) {
    const auto stat = m.tags.find("statistic");
    const auto pct = m.tags.find("percentile");
    if (m.name != name || stat == m.tags.end() || stat->second != "percentile" ||
        pct == m.tags.end() || pct->second.size() != 5 || pct->second[0] != 'T') {
      continue;
    }
    const std::size_t i = std::stoul(pct->second.substr(1), nullptr, 16);
    if (i < kPercentileBucketCount) counts[i] += m.value;
  }
  return counts;
}

/// `sum by (le) (..._bucket)` as le → cumulative count; le "+Inf" is
/// infinity. Empty on error (*why says).
std::map<double, double> PrometheusBuckets(PrometheusServer& prom, const std::string& metric,
                                           std::string* why) {
  std::map<double, double> out;
  const std::optional<Json> v = prom.QueryVector("sum by (le) (" + metric + ")", why);
  if (!v.has_value()) return out;
  for (const Json& s : *v) {
    const std::string le = s["metric"].value("le", "");
    out[le == "+Inf" ? INFINITY : std::stod(le)] = std::stod(s["value"][1].get<std::string>());
  }
  return out;
}

/// The cumulative count at the `le` equal to `upper` (parsed from the text,
/// so compared with a relative tolerance for its decimal rounding); -1 if
/// there is no such le.
double CumulativeAt(const std::map<double, double>& buckets, double upper) {
  for (const auto& [le, count] : buckets) {
    if (std::fabs(le - upper) <= 1e-12 * upper) return count;
  }
  return -1;
}

// ---------------------------------------------------------------------------
// The scenario.

// N = 300 GETs in three phases of 100, one collector per phase: the first
// two are killed with SIGKILL after their phase, and a new one (on a new
// port) takes over the same segment. Each phase also holds two connections
// idle until prefork-server's idle timeout closes them.
constexpr int kPhases = 3;
constexpr int kRequestsPerPhase = 100;
constexpr int kIdlePerPhase = 2;
constexpr int kRequests = kPhases * kRequestsPerPhase;
constexpr int kConnections = kPhases * (kRequestsPerPhase + kIdlePerPhase);
// How we know the true p99 of server.connectionDuration, by construction:
// the 300 request connections are local round trips of a few milliseconds
// (clamped up to the percentile timer's 10 ms minimum: bucket 100, bound
// 11.18 ms), while each idle connection lasts the idle timeout, 1.5 s,
// measured by the worker from accept() to the ppoll() timeout (which never
// expires early), plus a little scheduling delay. 1.5 s sits in bucket
// (1.431655765 s, 1.789569706 s], 289 ms below its top. With 306 durations,
// histogram_quantile's rank for 0.99 is 302.94, above the 300 short ones, so
// the p99 is in the idle connections' bucket. The test checks the premise
// in what Prometheus stored (exactly 300 at or below 1.431655765 s, all 306
// at or below 1.789569706 s), and in the Atlas scenario it takes the exact
// bucket counts the collector published to the fake Atlas as the truth
// instead (they come from the segment through the Atlas sink, independent
// of the Prometheus rendering), computes the p99 bucket from them and checks
// that they and the design agree. (`--dump` cannot serve: it only peeks the
// values not yet taken by a step, and prints how many buckets are used, not
// their counts.)
constexpr double kIdleTimeoutSeconds = 1.5;

class PrometheusE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kPrometheusPath, X_OK) != 0) {
      GTEST_SKIP() << kPrometheusPath
                   << " is missing: install Debian's prometheus package (scripts/install-deps)";
    }
  }

  // The whole scenario; with `atlas`, the collectors also publish to the
  // fake Atlas, which must then total N as well.
  void Run(bool with_atlas) {
    if (with_atlas) atlas_ = std::make_unique<Atlas>();
    const std::string uri = with_atlas ? atlas_->url() : "";

    const std::uint16_t port = StartPreforkServer(
        DiesWithTheTest(PreforkServerArgs(segment_.name(),
                                          {"--idle-timeout", std::to_string(kIdleTimeoutSeconds)})),
        kWait, &server_);
    ASSERT_NE(port, 0);
    std::uint16_t collector_port = 0;
    collectors_.push_back(StartPrometheusCollector(segment_.name(), uri, {}, &collector_port));
    ASSERT_NE(collector_port, 0);
    prometheus_ = std::make_unique<PrometheusServer>();
    ASSERT_TRUE(prometheus_->ready()) << "Prometheus did not become ready:\n" << prometheus_->log();
    prometheus_->SetTarget(collector_port);
    PrometheusServer& prom = *prometheus_;

    for (int phase = 0; phase < kPhases; ++phase) {
      if (phase > 0) {
        KillCollector(*collectors_.back(), /*between_steps=*/with_atlas);
        collectors_.push_back(StartPrometheusCollector(segment_.name(), uri, {}, &collector_port));
        ASSERT_NE(collector_port, 0);
        prom.SetTarget(collector_port);
      }
      // The requests of this phase while Prometheus picks up the target.
      std::vector<std::unique_ptr<IdleConnection>> idle;
      for (int i = 0; i < kIdlePerPhase; ++i)
        idle.push_back(std::make_unique<IdleConnection>(port));
      ASSERT_EQ(ServeRequests(port, kRequestsPerPhase, "/prom/" + std::to_string(phase) + "/"),
                kRequestsPerPhase);
      for (auto& c : idle) ASSERT_TRUE(c->WaitClosedByServer(seconds(20)));

      std::string why;
      ASSERT_TRUE(prom.WaitForTarget(collector_port, &why)) << why;
      // Every answered request of every phase so far, through this phase's
      // collector: the totals must survive the kills exactly.
      const double requests = (phase + 1) * kRequestsPerPhase;
      const double connections = (phase + 1) * (kRequestsPerPhase + kIdlePerPhase);
      EXPECT_EQ(prom.WaitForValue("sum(" + kRequestCount + ")", requests, &why), requests)
          << "phase " << phase << ": " << why << Diagnose(kRequestCount);
      EXPECT_EQ(prom.WaitForValue("sum(" + kConnectionDuration + "_count)", connections, &why),
                connections)
          << "phase " << phase << ": " << why << Diagnose(kConnectionDuration + "_count");
      if (HasFailure()) return;
    }

    // Final: the values are in; two more scrapes must not change them.
    ASSERT_TRUE(prom.WaitForScrapes(2));
    std::string why;
    const std::optional<double> count = prom.Query("sum(" + kRequestCount + ")", &why);
    EXPECT_EQ(count, std::optional<double>(kRequests)) << why;
    const std::optional<double> latency_count =
        prom.Query("sum(" + kRequestLatency + "_count)", &why);
    EXPECT_EQ(latency_count, std::optional<double>(kRequests)) << why;
    const std::optional<double> size_count = prom.Query("sum(" + kResponseSize + "_count)", &why);
    EXPECT_EQ(size_count, std::optional<double>(kRequests)) << why;
    const std::optional<double> get_200 =
        prom.Query("sum(" + kRequestCount + "{method=\"GET\",status=\"200\"})", &why);
    EXPECT_EQ(get_200, std::optional<double>(kRequests)) << why;
    const std::optional<double> conn_count =
        prom.Query("sum(" + kConnectionDuration + "_count)", &why);
    EXPECT_EQ(conn_count, std::optional<double>(kConnections)) << why;
    const std::optional<double> workers = prom.Query(kWorkers, &why);
    EXPECT_EQ(workers, std::optional<double>(4)) << why;

    // The bucket of the true p99: by design, and from the Atlas counts.
    const std::size_t idle_bucket =
        PercentileBucketIndex(static_cast<std::int64_t>(kIdleTimeoutSeconds * 1e9));
    ASSERT_LT(LowerSeconds(idle_bucket), kIdleTimeoutSeconds);
    ASSERT_GT(UpperSeconds(idle_bucket), kIdleTimeoutSeconds + 0.25);
    std::size_t truth = idle_bucket;
    std::map<double, double> buckets =
        PrometheusBuckets(prom, kConnectionDuration + "_bucket", &why);
    EXPECT_EQ(buckets.size(), kPercentileBucketCount + 1) << why;
    EXPECT_EQ(CumulativeAt(buckets, LowerSeconds(idle_bucket)), kRequests)
        << "the premise: every request connection shorter than " << LowerSeconds(idle_bucket)
        << " s";
    EXPECT_EQ(CumulativeAt(buckets, UpperSeconds(idle_bucket)), kConnections)
        << "the premise: every idle connection at most " << UpperSeconds(idle_bucket) << " s";
    EXPECT_EQ(buckets.empty() ? -1 : buckets.rbegin()->second, kConnections);

    if (with_atlas) {
      // The last collector publishes its last step; the fake then holds all.
      const auto deadline = Clock::now() + kWait;
      while (Clock::now() < deadline &&
             atlas_->Accepted("server.connectionDuration", "count") < kConnections) {
        collectors_.back()->Wait(milliseconds(50));
      }
      ASSERT_TRUE(atlas_->WaitUntilHandled(kWait));
      EXPECT_TRUE(atlas_->DecodeErrors().empty());
      EXPECT_EQ(atlas_->Accepted("server.requestCount", "count"), kRequests);
      EXPECT_EQ(atlas_->Accepted("server.requestLatency", "count"), kRequests);
      EXPECT_EQ(atlas_->Accepted("server.connectionDuration", "count"), kConnections);
      // The sums, in the same units on both sides (seconds for timers,
      // bytes for the summary); only the order of the additions differs.
      const std::pair<std::string, std::pair<const char*, const char*>> sums[] = {
          {kRequestLatency + "_sum", {"server.requestLatency", "totalTime"}},
          {kResponseSize + "_sum", {"server.responseSize", "totalAmount"}},
          {kConnectionDuration + "_sum", {"server.connectionDuration", "totalTime"}},
      };
      for (const auto& [prom_name, atlas_name] : sums) {
        const std::optional<double> p = prom.Query("sum(" + prom_name + ")", &why);
        const double a = atlas_->Accepted(atlas_name.first, atlas_name.second);
        ASSERT_TRUE(p.has_value()) << why;
        EXPECT_NEAR(*p, a, 1e-9 * a)
            << prom_name << " and Atlas " << atlas_name.first << " " << atlas_name.second;
      }
      const std::array<double, kPercentileBucketCount> exact =
          AtlasBuckets(DecodeRequests(atlas_->server().requests()), "server.connectionDuration");
      truth = P99Bucket(exact);
      EXPECT_EQ(truth, idle_bucket) << "the Atlas counts and the design disagree";
      // Every cumulative count Prometheus holds is the Atlas counts' sum.
      double cumulative = 0;
      for (std::size_t i = 0; i < kPercentileBucketCount; ++i) {
        cumulative += exact[i];
        EXPECT_EQ(CumulativeAt(buckets, UpperSeconds(i)), cumulative) << "le " << UpperSeconds(i);
      }
    }

    const std::string quantile =
        "histogram_quantile(0.99, sum by (le) (" + kConnectionDuration + "_bucket))";
    const std::optional<double> p99 = prom.Query(quantile, &why);
    ASSERT_TRUE(p99.has_value()) << why;
    EXPECT_GT(*p99, LowerSeconds(truth)) << quantile;
    EXPECT_LE(*p99, UpperSeconds(truth) * (1 + 1e-12)) << quantile;

    std::printf(
        "Prometheus: sum(%s) = %g, sum(%s_count) = %g, %s = %.9g (true p99 bucket %zu: "
        "(%.9g, %.9g] s)%s\n",
        kRequestCount.c_str(), count.value_or(-1), kRequestLatency.c_str(),
        latency_count.value_or(-1), quantile.c_str(), *p99, truth, LowerSeconds(truth),
        UpperSeconds(truth),
        with_atlas ? (", Atlas server.requestCount = " +
                      std::to_string(atlas_->Accepted("server.requestCount", "count")))
                         .c_str()
                   : "");
    std::fflush(stdout);

    // Without --uri there is no stdout sink: the collectors printed nothing.
    if (!with_atlas) {
      for (const auto& c : collectors_) {
        c->Wait(milliseconds(1));
        EXPECT_EQ(c->out(), "") << "stdout of a Prometheus-only collector";
      }
    }
  }

  // What Prometheus holds of `metric` over the test (for a failure message):
  // its samples per series, counter resets included.
  std::string Diagnose(const std::string& metric) {
    std::string why;
    std::string out = "\nper series, max over the test: ";
    if (const auto v = prometheus_->QueryVector("max_over_time(" + metric + "[5m])", &why)) {
      out += v->dump();
    }
    out += "\nresets: ";
    if (const auto v = prometheus_->QueryVector("resets(" + metric + "[5m])", &why)) {
      out += v->dump();
    }
    // A name that is not there: which names are.
    out += "\nthe names Prometheus has from the collector:";
    if (const auto v =
            prometheus_->QueryVector("count by (__name__) ({job=\"spectator\"})", &why)) {
      for (const Json& series : *v) out += " " + series["metric"].value("__name__", "?");
    }
    return out + "\n" + why;
  }

  void TearDown() override {
    // Server first (its last records land in the segment), then the
    // collector, then Prometheus; the destructors SIGKILL whatever is left.
    if (server_ != nullptr) {
      server_->Signal(SIGTERM);
      EXPECT_EQ(server_->Wait(kWait), 0) << "prefork-server: " << server_->err();
    }
    if (!collectors_.empty() && collectors_.back()->Wait(milliseconds(1)) < 0) {
      collectors_.back()->Signal(SIGTERM);
      EXPECT_EQ(collectors_.back()->Wait(kWait), 0)
          << "spectator-collector: " << collectors_.back()->err();
    }
    if (HasFailure()) {
      for (const auto& c : collectors_)
        std::fprintf(stderr, "collector stderr:\n%s\n", c->err().c_str());
      if (prometheus_ != nullptr)
        std::fprintf(stderr, "prometheus log:\n%s\n", prometheus_->log().c_str());
    }
  }

  // Destroyed in reverse: collectors, server, Prometheus, Atlas, segment.
  TempSegment segment_;
  std::unique_ptr<Atlas> atlas_;
  std::unique_ptr<PrometheusServer> prometheus_;
  std::unique_ptr<Subprocess> server_;
  std::vector<std::unique_ptr<Subprocess>> collectors_;
};

TEST_F(PrometheusE2eTest, TotalsAreExactAcrossCollectorKills) { Run(/*with_atlas=*/false); }

TEST_F(PrometheusE2eTest, TotalsAreExactAcrossCollectorKillsWithAtlasToo) {
  Run(/*with_atlas=*/true);
}

// ---------------------------------------------------------------------------
// One scrape, linted by promtool and checked against the endpoint's rules.

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

/// The text exposition format, strictly enough for these checks: samples
/// `name{k="v",...} value [timestamp]` and `# TYPE name type` lines; lines it
/// cannot read go to *errors.
std::vector<Sample> ParseExposition(const std::string& text,
                                    std::map<std::string, std::string>* types,
                                    std::vector<std::string>* errors) {
  std::vector<Sample> samples;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    if (line[0] == '#') {
      if (line.rfind("# TYPE ", 0) == 0) {
        const std::size_t sp = line.find(' ', 7);
        if (sp == std::string::npos) {
          errors->push_back(line);
        } else {
          (*types)[line.substr(7, sp - 7)] = line.substr(sp + 1);
        }
      }
      continue;
    }
    Sample s;
    std::size_t i = line.find_first_of("{ ");
    if (i == std::string::npos) {
      errors->push_back(line);
      continue;
    }
    s.name = line.substr(0, i);
    bool ok = true;
    if (line[i] == '{') {
      ++i;
      while (ok && i < line.size() && line[i] != '}') {
        const std::size_t eq = line.find("=\"", i);
        if (eq == std::string::npos) {
          ok = false;
          break;
        }
        const std::string key = line.substr(i, eq - i);
        std::string value;
        std::size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) {
            ++j;
            value += line[j] == 'n' ? '\n' : line[j];
          } else {
            value += line[j];
          }
        }
        if (j >= line.size()) {
          ok = false;
          break;
        }
        s.labels[key] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      ok = ok && i < line.size() && line[i] == '}';
      ++i;
    }
    if (!ok || i >= line.size() || line[i] != ' ') {
      errors->push_back(line);
      continue;
    }
    try {
      s.value = std::stod(line.substr(i + 1));
    } catch (const std::exception&) {
      errors->push_back(line);
      continue;
    }
    samples.push_back(std::move(s));
  }
  return samples;
}

/// The samples called `name` that have every label of `labels`.
std::vector<Sample> Find(const std::vector<Sample>& samples, const std::string& name,
                         const std::map<std::string, std::string>& labels = {}) {
  std::vector<Sample> out;
  for (const Sample& s : samples) {
    bool match = s.name == name;
    for (const auto& [k, v] : labels) {
      const auto it = s.labels.find(k);
      match = match && it != s.labels.end() && it->second == v;
    }
    if (match) out.push_back(s);
  }
  return out;
}

bool ValidPrometheusName(const std::string& name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (const char c : name) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      return false;
    }
  }
  return true;
}

class PrometheusScrapeTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (server_ != nullptr) {
      server_->Signal(SIGTERM);
      server_->Wait(kWait);
    }
    if (collector_ != nullptr) {
      collector_->Signal(SIGTERM);
      EXPECT_EQ(collector_->Wait(kWait), 0) << "spectator-collector: " << collector_->err();
    }
  }

  TempSegment segment_;
  TempDir dir_{"spectator-prom"};
  std::unique_ptr<Subprocess> server_;
  std::unique_ptr<Subprocess> collector_;
};

// The prefork meters after 20 requests, plus one meter of the test's own
// whose name starts with a digit and has characters Prometheus does not
// allow, and a common tag (--tag nf.app=prom-e2e) that must become a label.
TEST_F(PrometheusScrapeTest, ScrapePassesPromtoolAndFollowsTheNamingRules) {
  if (::access(kPromtoolPath, X_OK) != 0) {
    GTEST_SKIP() << kPromtoolPath
                 << " is missing: install Debian's prometheus package (scripts/install-deps)";
  }
  constexpr int kN = 20;
  const std::uint16_t port =
      StartPreforkServer(DiesWithTheTest(PreforkServerArgs(segment_.name(), {})), kWait, &server_);
  ASSERT_NE(port, 0);
  {
    SegmentOptions options;
    options.name = segment_.name();
    options.create_if_missing = false;
    Registry registry(options);
    registry.GetCounter("1st-meter~x", {{"my-key", "v"}}).Add(7);
  }
  std::uint16_t metrics_port = 0;
  collector_ =
      StartPrometheusCollector(segment_.name(), "", {"--tag", "nf.app=prom-e2e"}, &metrics_port);
  ASSERT_NE(metrics_port, 0);
  ASSERT_EQ(ServeRequests(port, kN, "/scrape/"), kN);

  // Scrape until the step that took the requests is in.
  const std::string url = "http://127.0.0.1:" + std::to_string(metrics_port) + "/metrics";
  const std::map<std::string, std::string> get200 = {
      {"method", "GET"}, {"status", "200"}, {kAppLabel, "prom-e2e"}};
  HttpResponse scrape;
  std::vector<Sample> samples;
  std::map<std::string, std::string> types;
  std::vector<std::string> errors;
  const auto deadline = Clock::now() + kWait;
  while (Clock::now() < deadline) {
    scrape = HttpGet(url);
    types.clear();
    errors.clear();
    samples = ParseExposition(scrape.body, &types, &errors);
    const auto count = Find(samples, kRequestCount, get200);
    const auto connections = Find(samples, kConnectionDuration + "_count");
    if (count.size() == 1 && count[0].value == kN && connections.size() == 1 &&
        connections[0].value == kN) {
      break;
    }
    collector_->Wait(milliseconds(50));
  }
  ASSERT_EQ(scrape.status, 200) << scrape.error;
  EXPECT_EQ(scrape.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_TRUE(errors.empty()) << "unreadable lines, the first: " << errors[0];

  // promtool: a parse error (exit 1) fails, and so does any lint problem
  // (exit 3): the names are snake_case and every family has HELP.
  const std::string file = dir_.path() + "/scrape.txt";
  WriteFileAtomically(file, scrape.body);
  Subprocess promtool(
      {"/bin/sh", "-c", std::string("exec ") + kPromtoolPath + " check metrics < \"$0\"", file});
  const int rc = promtool.Wait(kWait);
  EXPECT_EQ(rc, 0) << "promtool check metrics exited " << rc << ":\n"
                   << promtool.err() << "\nthe scrape:\n"
                   << scrape.body;
  std::printf("promtool check metrics: exit %d, %zu bytes of output\n", rc, promtool.err().size());

  // Names, types and labels.
  const std::map<std::string, std::string> want_types = {
      {kRequestCount, "counter"},
      {kRequestLatency, "summary"},
      {kRequestLatency + "_max", "gauge"},
      {kResponseSize, "summary"},
      {kResponseSize + "_max", "gauge"},
      {kWorkers, "gauge"},
      {kConnectionDuration, "histogram"},
      {kConnectionDuration + "_max", "gauge"},
      {kOddCounter, "counter"},
  };
  for (const auto& [name, type] : want_types) {
    EXPECT_EQ(types.count(name) == 1 ? types[name] : "(no TYPE line)", type) << name;
  }
  for (const Sample& s : samples) {
    EXPECT_TRUE(ValidPrometheusName(s.name)) << s.name;
    for (const auto& [k, v] : s.labels) EXPECT_TRUE(ValidPrometheusName(k)) << s.name << " " << k;
    EXPECT_EQ(s.labels.count(kAppLabel), 1u) << s.name << ": the common tag nf.app";
  }
  auto one = [&](const std::string& name, const std::map<std::string, std::string>& labels) {
    const std::vector<Sample> found = Find(samples, name, labels);
    EXPECT_EQ(found.size(), 1u) << name;
    return found.size() == 1 ? found[0].value : NAN;
  };
  // A maximum is the step's (Spectator's max gauge): its value depends on
  // when the scrape falls, so only that it is there and not negative.
  EXPECT_EQ(one(kRequestCount, get200), kN);
  EXPECT_EQ(one(kRequestLatency + "_count", get200), kN);
  EXPECT_GT(one(kRequestLatency + "_sum", get200), 0);
  EXPECT_GE(one(kRequestLatency + "_max", get200), 0);
  EXPECT_EQ(one(kResponseSize + "_count", get200), kN);
  EXPECT_GT(one(kResponseSize + "_sum", get200), 0);
  EXPECT_GE(one(kResponseSize + "_max", get200), 0);
  EXPECT_EQ(one(kWorkers, {}), 4);
  EXPECT_EQ(one(kOddCounter, {{kOddLabel, "v"}}), 7);
  EXPECT_EQ(one(kConnectionDuration + "_count", {}), kN);
  EXPECT_GT(one(kConnectionDuration + "_sum", {}), 0);
  EXPECT_GE(one(kConnectionDuration + "_max", {}), 0);

  // The 276 Spectator bounds in seconds, in order, then +Inf; cumulative.
  const std::vector<Sample> buckets = Find(samples, kConnectionDuration + "_bucket");
  ASSERT_EQ(buckets.size(), kPercentileBucketCount + 1);
  double previous = 0;
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    const std::string le = buckets[i].labels.count("le") ? buckets[i].labels.at("le") : "";
    if (i == kPercentileBucketCount) {
      EXPECT_EQ(le, "+Inf");
    } else {
      const double upper = UpperSeconds(i);
      EXPECT_NEAR(std::strtod(le.c_str(), nullptr), upper, upper * 1e-12)
          << "bucket " << i << " le=\"" << le << "\"";
    }
    EXPECT_GE(buckets[i].value, previous) << "le=\"" << le << "\"";
    previous = buckets[i].value;
  }
  EXPECT_EQ(previous, kN);
  EXPECT_EQ(collector_->out(), "") << "stdout of a collector without --uri";
}

/// Sets an environment variable for its lifetime (the collector inherits
/// the environment at its fork).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

// SPECTATOR_PROMETHEUS_LISTEN stands in for the flag; the listening line is
// printed even at --log-level error; without --uri nothing goes to stdout,
// and the steps still run (their self-metrics reach the endpoint).
TEST_F(PrometheusScrapeTest, EnvironmentListensWithoutTheFlag) {
  std::uint16_t port = 0;
  {
    ScopedEnv env("SPECTATOR_PROMETHEUS_LISTEN", "127.0.0.1:0");
    collector_ = StartCollectorProcess(
        CollectorArgs({"--segment", segment_.name(), "--step", "0.5", "--log-level", "error"}),
        &port);
  }
  ASSERT_NE(port, 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
  HttpResponse scrape;
  const auto deadline = Clock::now() + kWait;
  while (Clock::now() < deadline) {
    scrape = HttpGet(url);
    if (scrape.body.find("\n" + kRegistrySize) != std::string::npos) break;
    collector_->Wait(milliseconds(50));
  }
  EXPECT_EQ(scrape.status, 200) << scrape.error;
  EXPECT_NE(scrape.body.find("\n" + kRegistrySize), std::string::npos)
      << "no self-metric spectator.registrySize (a gauge) within the deadline:\n"
      << scrape.body;
  collector_->Wait(milliseconds(1));
  EXPECT_EQ(collector_->out(), "") << "stdout of a collector without --uri";
}

}  // namespace
}  // namespace spectator::testing
