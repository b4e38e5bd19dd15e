// Registration across pid namespaces (the sidecar pattern: a collector or
// workers in another container sharing /dev/shm). A claim is proven alive by
// a file lock its claimer holds, not by a pid that another namespace cannot
// see: workers in a new pid namespace (unshare -p -f --mount-proc) recover
// the claims of dead workers outside it, and wait for (never steal) the
// claim of a live one. Skipped, with a message, without root and unshare.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "spectator/internal/reader.h"
#include "spectator/spectator.h"
#include "support/subprocess.h"
#include "support/temp_segment.h"

#ifndef SPECTATOR_CLAIM_WORKER_PATH
#error "SPECTATOR_CLAIM_WORKER_PATH must name the claim_worker binary"
#endif

namespace spectator::reliability {
namespace {

using namespace std::chrono_literals;
using testing::Subprocess;
using testing::TempSegment;

constexpr auto kDeadline = 60s;
const char* const kUnshare = "/usr/bin/unshare";

bool CanUnsharePids() {
  if (::access(kUnshare, X_OK) != 0) return false;
  Subprocess probe({kUnshare, "-p", "-f", "--mount-proc", "/bin/true"});
  return probe.Wait(kDeadline) == 0;
}

std::vector<std::string> Worker(const std::string& segment, const std::string& mode,
                                const std::vector<std::string>& ids, bool new_pid_namespace) {
  std::vector<std::string> argv;
  if (new_pid_namespace) argv = {kUnshare, "-p", "-f", "--mount-proc"};
  argv.insert(argv.end(), {SPECTATOR_CLAIM_WORKER_PATH, segment, mode});
  argv.insert(argv.end(), ids.begin(), ids.end());
  return argv;
}

// Waits until the (direct child) process is stopped.
bool WaitStopped(pid_t pid) {
  int status = 0;
  return ::waitpid(pid, &status, WUNTRACED) == pid && WIFSTOPPED(status);
}

TEST(PidNamespace, ClaimsAreJudgedByTheirLockNotByAPidTheNamespaceCannotSee) {
  if (!CanUnsharePids()) GTEST_SKIP() << "needs root and unshare -p -f --mount-proc";
  TempSegment seg;
  SegmentOptions options = seg.options(1024, 1 << 16);
  Registry registry(options);

  // Four workers of this namespace die inside their claims.
  std::vector<std::string> victims;
  for (int i = 0; i < 4; ++i) {
    victims.push_back("victim." + std::to_string(i));
    Subprocess victim(Worker(seg.name(), "stall", {victims.back()}, false));
    ASSERT_TRUE(victim.WaitForOutput(
        [](const std::string& out) { return out.find("claimed") != std::string::npos; },
        kDeadline));
    victim.Signal(SIGKILL);
    ASSERT_EQ(victim.Wait(kDeadline), 128 + SIGKILL);
  }
  // One worker of this namespace is alive, stopped inside the claim of "live".
  Subprocess staller(Worker(seg.name(), "stall", {"live"}, false));
  ASSERT_TRUE(WaitStopped(staller.pid()));

  // Workers in a new pid namespace and in this one register the victims' Ids,
  // a shared set, and "live", at the same time.
  std::vector<std::string> ids = victims;
  for (int i = 0; i < 200; ++i) ids.push_back("shared." + std::to_string(i));
  Subprocess outside(Worker(seg.name(), "register", ids, false));
  ids.push_back("live");
  Subprocess inside(Worker(seg.name(), "register", ids, true));
  EXPECT_EQ(outside.Wait(kDeadline), 0) << outside.err();
  // "live" times out as a no-op (its claimer is alive); everything else is live.
  EXPECT_EQ(inside.Wait(kDeadline), 10 + 1) << inside.err();

  staller.Signal(SIGCONT);
  EXPECT_EQ(staller.Wait(kDeadline), 0) << "the live claimer finishes its claim";

  std::map<std::string, int> readings;
  std::map<std::string, double> counts;
  SegmentReader reader(registry);
  const auto stats = reader.Scan(SegmentReader::Mode::kPeek, std::chrono::system_clock::now(),
                                 [&](const MeterReading& r) {
                                   ++readings[std::string(r.id)];
                                   counts[std::string(r.id)] = r.count;
                                 });
  EXPECT_EQ(stats.corrupt, 0u);
  for (const auto& [id, n] : readings) EXPECT_EQ(n, 1) << id << " registered twice";
  for (const auto& v : victims) EXPECT_EQ(counts[v], 2) << v;
  for (int i = 0; i < 200; ++i) EXPECT_EQ(counts["shared." + std::to_string(i)], 2) << i;
  EXPECT_EQ(counts["live"], 1) << "stolen from its live claimer, or lost";
  EXPECT_EQ(registry.Info().recovered_claims, 4u);
}

#ifdef SPECTATOR_COLLECTOR_PATH
// The sidecar pattern: the collector in a pid namespace of its own publishes
// exactly what workers outside it counted, and its own registrations do not
// take a live worker's claim for dead.
TEST(PidNamespace, ACollectorInAnotherPidNamespacePublishesExactly) {
  if (!CanUnsharePids()) GTEST_SKIP() << "needs root and unshare -p -f --mount-proc";
  TempSegment seg;
  Registry registry(seg.options(1024, 1 << 16));
  std::vector<std::string> ids;
  for (int i = 0; i < 50; ++i) ids.push_back("served." + std::to_string(i));
  for (int w = 0; w < 3; ++w) {
    Subprocess worker(Worker(seg.name(), "register", ids, false));
    ASSERT_EQ(worker.Wait(kDeadline), 0) << worker.err();
  }
  Subprocess staller(Worker(seg.name(), "stall", {"in.progress"}, false));
  ASSERT_TRUE(WaitStopped(staller.pid()));
  Subprocess collector({kUnshare, "-p", "-f", "--mount-proc", SPECTATOR_COLLECTOR_PATH,
                        "--segment", seg.name(), "--once"});
  EXPECT_EQ(collector.Wait(kDeadline), 0) << collector.err();
  for (const auto& id : ids) {
    EXPECT_NE(collector.out().find(id + "{statistic=count} 3\n"), std::string::npos) << id;
  }
  staller.Signal(SIGCONT);
  EXPECT_EQ(staller.Wait(kDeadline), 0);
  SegmentReader reader(registry);
  std::map<std::string, int> seen;
  reader.Scan(SegmentReader::Mode::kPeek, std::chrono::system_clock::now(),
              [&](const MeterReading& r) { ++seen[std::string(r.id)]; });
  EXPECT_EQ(seen["in.progress"], 1) << "the live claim was stolen";
  EXPECT_EQ(registry.Info().recovered_claims, 0u);
}
#endif

}  // namespace
}  // namespace spectator::reliability
