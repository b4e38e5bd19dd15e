// The spectator-collector binary as operators run it: a separate process next
// to fork()ed workers, publishing to a fake Atlas endpoint; killed, restarted
// and stopped with signals. Exactness is checked against what the workers did.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "spectator/spectator.h"
#include "support/collector_process.h"
#include "support/collector_reader.h"
#include "support/endless_workers.h"
#include "support/fake_atlas.h"
#include "support/fork_helpers.h"
#include "support/subprocess.h"
#include "support/temp_segment.h"

namespace spectator {
namespace {

using namespace std::chrono_literals;
using testing::Atlas;
using testing::CollectorArgs;
using testing::EndlessWorkers;
using testing::ForkChild;
using testing::StartCollector;
using testing::Subprocess;
using testing::TempSegment;
using testing::WaitChild;

constexpr auto kDeadline = testing::kCollectorDeadline;

TEST(CollectorProcess, BadFlagIsOneLineOnStderrAndExitCodeTwo) {
  Subprocess c(CollectorArgs({"--step", "-1"}));
  EXPECT_EQ(c.Wait(kDeadline), 2);
  EXPECT_EQ(c.err(),
            "spectator-collector: --step must be a number of seconds in [0.01, 3600], "
            "got '-1'\n");
}

// A port another process holds: one line naming the address, exit 1, before
// any step (nothing printed on stdout, which the endpoint alone never uses).
TEST(CollectorProcess, APrometheusPortInUseIsOneLineAndExitCodeOne) {
  TempSegment seg;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string port = std::to_string(ntohs(a.sin_port));
  Subprocess c(CollectorArgs({"--segment", seg.name(), "--prometheus-listen", port}));
  EXPECT_EQ(c.Wait(kDeadline), 1);
  ::close(fd);
  EXPECT_NE(c.err().find(" ERROR --prometheus-listen 127.0.0.1:" + port +
                         ": cannot listen: Address already in use\n"),
            std::string::npos)
      << c.err();
  EXPECT_EQ(c.out(), "");
}

TEST(CollectorProcess, HelpAndVersionExitZero) {
  Subprocess help(CollectorArgs({"--help"}));
  EXPECT_EQ(help.Wait(kDeadline), 0);
  EXPECT_NE(help.out().find("--segment NAME"), std::string::npos);
  Subprocess version(CollectorArgs({"--version"}));
  EXPECT_EQ(version.Wait(kDeadline), 0);
  EXPECT_EQ(version.out().rfind("spectator-collector ", 0), 0u);
}

TEST(CollectorProcess, ForeignSegmentIsRefusedAndLeftUntouched) {
  TempSegment seg;
  std::string garbage(8192, '\0');
  std::mt19937 rng(7);
  for (char& c : garbage) c = static_cast<char>(rng());
  { std::ofstream(seg.path(), std::ios::binary) << garbage; }
  Subprocess c(CollectorArgs({"--segment", seg.name(), "--once"}));
  EXPECT_EQ(c.Wait(kDeadline), 1);
  EXPECT_NE(c.err().find(seg.name()), std::string::npos) << c.err();
  EXPECT_NE(c.err().find("ERROR"), std::string::npos) << c.err();
  std::ifstream in(seg.path(), std::ios::binary);
  const std::string after((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(after, garbage);
}

TEST(CollectorProcess, CreatesTheSegmentWhenFirstAndDumpsWithoutResetting) {
  TempSegment seg;
  {
    Subprocess missing(CollectorArgs({"--segment", seg.name(), "--dump"}));
    EXPECT_EQ(missing.Wait(kDeadline), 1) << "--dump never creates a segment";
  }
  Subprocess first(CollectorArgs({"--segment", seg.name(), "--once"}));
  EXPECT_EQ(first.Wait(kDeadline), 0) << first.err();
  struct stat st {};
  ASSERT_EQ(::stat(seg.path().c_str(), &st), 0) << "the collector created it";
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  Registry registry(seg.options());
  registry.GetCounter("requests", {{"status", "200"}}).Add(3);
  for (int i = 0; i < 2; ++i) {
    Subprocess dump(CollectorArgs({"--segment", seg.name(), "--dump"}));
    EXPECT_EQ(dump.Wait(kDeadline), 0);
    EXPECT_NE(dump.out().find("counter requests{status=200} count=3\n"), std::string::npos)
        << dump.out();
  }
  Subprocess once(CollectorArgs({"--segment", seg.name(), "--once"}));
  EXPECT_EQ(once.Wait(kDeadline), 0);
  EXPECT_NE(once.out().find("requests{statistic=count,status=200} 3\n"), std::string::npos)
      << once.out();
}

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// --dump promises only to read: not a byte of the segment file may change,
// neither on a segment no collector has seen (no self-metric registered, no
// heartbeat, no gauge or monotonic bookkeeping) nor on one with a collector's
// heartbeat and pending values in its header and journal.
TEST(CollectorProcess, DumpLeavesEveryByteOfTheSegmentUnchanged) {
  TempSegment seg;
  Registry registry(seg.options());
  registry.GetCounter("requests", {{"status", "200"}}).Add(3);
  registry.GetTimer("latency").Record(2ms);
  registry.GetPercentileTimer("latency.percentiles").Record(20ms);
  registry.GetGauge("busy").Set(2);
  registry.GetMaxGauge("queue").Set(5);
  registry.GetMonotonicCounter("bytes").Set(100);
  registry.GetAgeGauge("last.success").Set(std::chrono::system_clock::now());
  registry.GetCounter("bad id", {{"k", ""}}).Increment();  // counted in the header

  const auto dump_keeps_bytes = [&](const char* when, const std::string& line) {
    const std::string before = FileBytes(seg.path());
    ASSERT_FALSE(before.empty()) << when;
    Subprocess dump(CollectorArgs({"--segment", seg.name(), "--dump"}));
    EXPECT_EQ(dump.Wait(kDeadline), 0) << when << ": " << dump.err();
    EXPECT_NE(dump.out().find(line), std::string::npos)
        << when << ": " << dump.out();
    EXPECT_TRUE(FileBytes(seg.path()) == before) << when << ": --dump changed the segment";
  };
  dump_keeps_bytes("before any collector", "counter requests{status=200} count=3\n");
  EXPECT_EQ(registry.Info().collector_pid, 0) << "--dump announced itself";

  // A collector whose publish fails (nothing listens on that port) leaves
  // a heartbeat and everything pending in the journal.
  Subprocess once(CollectorArgs({"--segment", seg.name(), "--once", "--uri",
                                 "http://127.0.0.1:1/api/v1/publish", "--timeout", "1"}));
  EXPECT_EQ(once.Wait(kDeadline), 0) << once.err();
  ASSERT_NE(registry.Info().collector_heartbeat_unix_ns, 0u);
  registry.GetCounter("requests", {{"status", "200"}}).Add(4);  // live on top of pending
  registry.GetMonotonicCounter("bytes").Set(150);
  dump_keeps_bytes("after a collector", "counter requests{status=200} count=7\n");
}

TEST(CollectorProcess, ASecondCollectorForTheSameSegmentIsRefused) {
  TempSegment seg;
  Atlas atlas;
  auto first = StartCollector(seg.name(), atlas.url(), "60");
  Subprocess second(CollectorArgs({"--segment", seg.name(), "--uri", atlas.url()}));
  EXPECT_EQ(second.Wait(kDeadline), 1);
  EXPECT_NE(second.err().find("another spectator-collector is already publishing segment '" +
                              seg.name() + "'"),
            std::string::npos)
      << second.err();
  first->Signal(SIGTERM);
  EXPECT_EQ(first->Wait(kDeadline), 0);
}

// The collector lock is what grants a take: while this test process holds
// it (a reader that takes), the binary is refused, and after, it runs.
TEST(CollectorProcess, ATakingReaderInAnotherProcessKeepsTheCollectorOut) {
  TempSegment seg;
  Registry registry(seg.options());
  registry.GetCounter("requests").Add(2);
  {
    testing::CollectorReader reader(registry);
    Subprocess refused(CollectorArgs({"--segment", seg.name(), "--once"}));
    EXPECT_EQ(refused.Wait(kDeadline), 1);
    EXPECT_NE(refused.err().find("another spectator-collector is already publishing segment '" +
                                 seg.name() + "'"),
              std::string::npos)
        << refused.err();
  }
  Subprocess once(CollectorArgs({"--segment", seg.name(), "--once"}));
  EXPECT_EQ(once.Wait(kDeadline), 0) << once.err();
  EXPECT_NE(once.out().find("requests{statistic=count} 2\n"), std::string::npos) << once.out();
}

TEST(CollectorProcess, SigtermPublishesWhatWasAddedJustBefore) {
  TempSegment seg;
  Atlas atlas;
  Registry registry(seg.options());
  auto collector = StartCollector(seg.name(), atlas.url(), "3600");  // no regular step
  registry.GetCounter("last.words").Add(42);
  registry.GetTimer("last.timer").Record(2s);
  collector->Signal(SIGTERM);
  EXPECT_EQ(collector->Wait(kDeadline), 0) << collector->err();
  EXPECT_EQ(atlas.Accepted("last.words", "count"), 42);
  EXPECT_EQ(atlas.Accepted("last.timer", "totalTime"), 2);
}

// Forked workers increment while the collector publishes every 100 ms.
void RunWorkers(Registry& registry, int workers, int increments, std::vector<pid_t>* pids) {
  for (int w = 0; w < workers; ++w) {
    pids->push_back(ForkChild([&registry, increments] {
      Counter c = registry.GetCounter("work.done", {{"kind", "exact"}});
      Timer t = registry.GetTimer("work.latency");
      if (!c.IsLive() || !t.IsLive()) return 2;
      for (int i = 0; i < increments; ++i) {
        c.Increment();
        t.Record(1us);
      }
      return 0;
    }));
  }
}

TEST(CollectorProcess, ForkedWorkersArePublishedExactlyOverManySteps) {
  TempSegment seg;
  Atlas atlas;
  Registry registry(seg.options());
  auto collector = StartCollector(seg.name(), atlas.url(), "0.1");
  constexpr int kWorkers = 4, kIncrements = 50000;
  std::vector<pid_t> pids;
  RunWorkers(registry, kWorkers, kIncrements, &pids);
  for (pid_t pid : pids) EXPECT_EQ(WaitChild(pid), 0);
  EXPECT_TRUE(atlas.server().WaitForRequests(2, kDeadline)) << "several steps published";
  collector->Signal(SIGTERM);
  EXPECT_EQ(collector->Wait(kDeadline), 0) << collector->err();
  EXPECT_EQ(atlas.Accepted("work.done", "count"), kWorkers * kIncrements);
  EXPECT_EQ(atlas.Accepted("work.latency", "count"), kWorkers * kIncrements);
  EXPECT_NEAR(atlas.Accepted("work.latency", "totalTime"), kWorkers * kIncrements * 1e-6, 1e-6);
}

// The collector is SIGKILLed while a publish is in flight (the endpoint holds
// the request: values taken, not yet accepted), over several rounds while the
// workers keep going; each restarted collector must publish what the dead one
// had taken. Atlas' accepted totals must equal the workers' work exactly.
TEST(CollectorProcess, CollectorKilledMidPublishAndRestartedLosesNothing) {
  TempSegment seg;
  Atlas atlas;
  Registry registry(seg.options());
  constexpr int kRounds = 4;
  EndlessWorkers workers(registry, 2);
  for (int round = 0; round < kRounds; ++round) {
    auto collector = StartCollector(seg.name(), atlas.url(), "0.05");
    const std::size_t seen = atlas.server().request_count();
    ASSERT_TRUE(atlas.server().WaitForRequests(seen + 1, kDeadline)) << "one accepted publish";
    atlas.Stall(true);
    ASSERT_TRUE(atlas.WaitForStalledRequest(kDeadline)) << "a publish in flight";
    collector->Signal(SIGKILL);
    EXPECT_EQ(collector->Wait(kDeadline), 128 + SIGKILL);
    atlas.Stall(false);
  }
  const std::uint64_t done = workers.StopAndCount();
  EXPECT_GT(done, 0u);
  auto last = StartCollector(seg.name(), atlas.url(), "0.05");
  last->Signal(SIGTERM);
  EXPECT_EQ(last->Wait(kDeadline), 0) << last->err();
  EXPECT_EQ(atlas.Accepted("work.done", "count"), static_cast<double>(done));
  EXPECT_EQ(atlas.Accepted("work.latency", "count"), static_cast<double>(done));
}

}  // namespace
}  // namespace spectator
