// The spectator-collector binary against what production does to it: the
// wall clock stepped under it (libfaketime), run by systemd (a fake
// NOTIFY_SOCKET), restarted after an absence, sharing a segment with a group.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <optional>
#include <fstream>
#include <string>
#include <vector>

#include "spectator/internal/reader.h"
#include "spectator/spectator.h"
#include "notify_listener.h"
#include "support/collector_process.h"
#include "support/collector_reader.h"
#include "support/fake_atlas.h"
#include "support/fork_helpers.h"
#include "support/subprocess.h"
#include "support/temp_segment.h"

namespace spectator {
namespace {

using namespace std::chrono_literals;
using testing::Answered;
using testing::Atlas;
using testing::CollectorArgs;
using testing::NotifyListener;
using testing::Subprocess;
using testing::TempSegment;

constexpr auto kDeadline = testing::kCollectorDeadline;

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

// Starts `argv` (a collector command line, maybe behind /usr/bin/env) and
// waits until it logs that it is publishing (its lock is taken).
std::unique_ptr<Subprocess> StartAndWaitUp(const std::vector<std::string>& argv) {
  auto c = std::make_unique<Subprocess>(argv);
  bool up = false;
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (!up && std::chrono::steady_clock::now() < deadline && c->Wait(10ms) < 0) {
    up = c->err().find("publishing segment") != std::string::npos;
  }
  EXPECT_TRUE(up) << c->err();
  return c;
}

// ---------------------------------------------------------------------------
// Wall-clock steps, with libfaketime.

constexpr const char* kFaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

// A libfaketime timestamp file: the collector reads it at every clock call
// (FAKETIME_NO_CACHE=1), so rewriting it steps the collector's wall clock.
class FaketimeFile {
 public:
  FaketimeFile() {
    static int counter = 0;
    path_ = "/tmp/spectator-faketime-" + std::to_string(::getpid()) + "-" +
            std::to_string(counter++);
    Set("+0");
  }
  ~FaketimeFile() {
    std::remove(path_.c_str());
    std::remove((path_ + ".new").c_str());
  }
  // Atomically: a reader never sees a half-written offset.
  void Set(const std::string& offset) {
    { std::ofstream(path_ + ".new") << offset << "\n"; }
    ASSERT_EQ(std::rename((path_ + ".new").c_str(), path_.c_str()), 0);
  }
  // The environment of a process whose CLOCK_REALTIME follows the file while
  // CLOCK_MONOTONIC stays real: what a clock step (NTP, date -s) does.
  std::vector<std::string> Env() const {
    std::vector<std::string> env = {"/usr/bin/env",
                                    std::string("LD_PRELOAD=") + kFaketime,
                                    "FAKETIME_TIMESTAMP_FILE=" + path_,
                                    "FAKETIME_NO_CACHE=1",
                                    "FAKETIME_DONT_FAKE_MONOTONIC=1"};
#if defined(__SANITIZE_ADDRESS__)
    // The preload comes before the ASan runtime; ASan refuses that unless told.
    const char* asan = std::getenv("ASAN_OPTIONS");
    env.push_back(std::string("ASAN_OPTIONS=") + (asan != nullptr ? asan : "") +
                  ":verify_asan_link_order=0");
#endif
    return env;
  }

 private:
  std::string path_;
};

// Whether the main thread of `pid` is blocked in sigtimedwait, i.e. the
// collector waits between steps (/proc/PID/syscall: the syscall number
// first; needs ptrace access, which the test has as the same user or root).
bool WaitingBetweenSteps(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/syscall");
  long nr = -1;
  in >> nr;
  return nr == SYS_rt_sigtimedwait;
}

TEST(CollectorClock, KeepsPublishingAfterTheWallClockStepsBackAnHourAndForwardAgain) {
  if (::access(kFaketime, R_OK) != 0) GTEST_SKIP() << "libfaketime not installed: " << kFaketime;
  TempSegment seg;
  Atlas atlas;
  Registry registry(seg.options());
  Counter work = registry.GetCounter("clock.work");
  FaketimeFile faketime;
  std::vector<std::string> argv = faketime.Env();
  for (const std::string& a : CollectorArgs({"--segment", seg.name(), "--uri", atlas.url(),
                                             "--step", "0.2", "--log-level", "info"})) {
    argv.push_back(a);
  }
  auto collector = StartAndWaitUp(argv);
  if (collector->err().find("ASan runtime does not come first") != std::string::npos) {
    GTEST_SKIP() << "ASan refuses the libfaketime preload: " << collector->err();
  }
  if (!std::ifstream("/proc/" + std::to_string(collector->pid()) + "/syscall")) {
    GTEST_SKIP() << "/proc/PID/syscall is not readable here";
  }
  ASSERT_TRUE(atlas.WaitForAnswered(Answered::kAccepted, 2, kDeadline)) << collector->err();

  // Each clock step lands while the collector waits between steps, just
  // after a publish (a step in the clock during a step of the collector was
  // harmless even before this fix, which waited for the wall clock to come
  // back when the step fell into the wait: an hour).
  auto step_the_clock_in_the_wait = [&](const char* offset) {
    const std::size_t seen = atlas.Count(Answered::kAccepted);
    ASSERT_TRUE(atlas.WaitForAnswered(Answered::kAccepted, seen + 1, kDeadline));
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (!WaitingBetweenSteps(collector->pid())) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "never seen waiting";
      ASSERT_LT(collector->Wait(1ms), 0) << collector->err();  // a poll interval
    }
    faketime.Set(offset);
  };
  // After each step of the clock, three more steps must arrive promptly.
  double added = 0;
  auto three_more_steps = [&](const char* what) {
    work.Add(7);
    added += 7;
    const std::size_t before = atlas.Count(Answered::kAccepted);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(atlas.WaitForAnswered(Answered::kAccepted, before + 3, 20s))
        << what << ": publishing stopped; " << collector->err();
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    std::cout << "[collector clock] " << what << ": 3 steps of 0.2 s published in "
              << took.count() << " ms" << std::endl;
    ::testing::Test::RecordProperty(std::string(what) + "_3_steps_ms",
                                    static_cast<int>(took.count()));
  };
  step_the_clock_in_the_wait("-3600");
  three_more_steps("back_1h");
  step_the_clock_in_the_wait("+0");
  three_more_steps("forward_1h");

  collector->Signal(SIGTERM);
  ASSERT_EQ(collector->Wait(kDeadline), 0) << collector->err();
  EXPECT_EQ(atlas.Accepted("clock.work", "count"), added) << "nothing lost, nothing twice";
  EXPECT_EQ(Count(collector->err(), "the wall clock jumped back by 3600."), 1) << collector->err();
  EXPECT_EQ(Count(collector->err(), "the wall clock jumped forward by 3600."), 1)
      << collector->err();
}

// ---------------------------------------------------------------------------
// systemd: a fake NOTIFY_SOCKET.

// `env` (NAME=VALUE...) then the collector's command line.
std::vector<std::string> WithEnv(std::vector<std::string> env,
                                 const std::vector<std::string>& args) {
  env.insert(env.begin(), "/usr/bin/env");
  for (const std::string& a : CollectorArgs(args)) env.push_back(a);
  return env;
}

// The next datagram, draining the collector's output meanwhile (so that it
// never blocks on a full pipe).
std::optional<std::string> Next(NotifyListener& listener, Subprocess& collector,
                                std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto m = listener.Receive(10ms)) return m;
    collector.Wait(0ms);
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
  }
}

TEST(CollectorSystemd, ReadyOnlyOnceTheSegmentIsOpenAndTheLockHeldStoppingOnSigterm) {
  TempSegment seg;
  Atlas atlas;
  NotifyListener listener;
  Subprocess collector(WithEnv({"NOTIFY_SOCKET=" + listener.address()},
                               {"--segment", seg.name(), "--uri", atlas.url(), "--step", "3600"}));
  const auto first = Next(listener, collector, kDeadline);
  ASSERT_EQ(first, std::optional<std::string>("READY=1")) << collector.err();
  // At READY the segment exists and the lock is held: our flock fails and a
  // second collector is refused.
  struct stat st {};
  ASSERT_EQ(::stat(seg.path().c_str(), &st), 0) << "the segment exists at READY";
  const int fd = ::open(seg.path().c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const int locked = ::flock(fd, LOCK_EX | LOCK_NB);
  const int err = errno;
  ::close(fd);
  EXPECT_EQ(locked, -1) << "the collector's lock is held at READY";
  EXPECT_EQ(err, EWOULDBLOCK);
  Subprocess second(CollectorArgs({"--segment", seg.name(), "--uri", atlas.url()}));
  EXPECT_EQ(second.Wait(kDeadline), 1);
  EXPECT_NE(second.err().find("another spectator-collector"), std::string::npos) << second.err();

  collector.Signal(SIGTERM);
  EXPECT_EQ(Next(listener, collector, kDeadline), std::optional<std::string>("STOPPING=1"));
  EXPECT_EQ(collector.Wait(kDeadline), 0) << collector.err();
  EXPECT_EQ(listener.Receive(0ms), std::nullopt) << "nothing else: no watchdog was asked for";
}

TEST(CollectorSystemd, RefusedCollectorNeverSignalsReady) {
  TempSegment seg;
  Atlas atlas;
  NotifyListener first_listener, second_listener;
  Subprocess first(WithEnv({"NOTIFY_SOCKET=" + first_listener.address()},
                           {"--segment", seg.name(), "--uri", atlas.url(), "--step", "3600"}));
  ASSERT_EQ(Next(first_listener, first, kDeadline), std::optional<std::string>("READY=1"));
  Subprocess second(WithEnv({"NOTIFY_SOCKET=" + second_listener.address()},
                            {"--segment", seg.name(), "--uri", atlas.url()}));
  EXPECT_EQ(second.Wait(kDeadline), 1);
  EXPECT_EQ(second_listener.Receive(0ms), std::nullopt) << "it exited without READY=1";
  first.Signal(SIGTERM);
  EXPECT_EQ(first.Wait(kDeadline), 0);
}

// The gaps between WATCHDOG=1 datagrams over `duration`, in ms.
std::vector<long> WatchdogGaps(NotifyListener& listener, Subprocess& collector,
                               std::chrono::milliseconds duration) {
  std::vector<long> gaps;
  const auto start = std::chrono::steady_clock::now();
  auto last = start;
  bool seen = false;
  while (std::chrono::steady_clock::now() - start < duration) {
    const auto m = Next(listener, collector, 100ms);
    if (!m) continue;
    EXPECT_EQ(*m, "WATCHDOG=1");
    const auto now = std::chrono::steady_clock::now();
    if (seen) {
      gaps.push_back(static_cast<long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(now - last).count()));
    }
    seen = true;
    last = now;
  }
  return gaps;
}

TEST(CollectorSystemd, WatchdogPingsAtHalfTheTimeoutAlsoBetweenSteps) {
  TempSegment seg;
  Atlas atlas;
  NotifyListener listener;
  // 400 ms: pings due every 200 ms; steps every 0.5 s in between.
  Subprocess collector(WithEnv({"NOTIFY_SOCKET=" + listener.address(), "WATCHDOG_USEC=400000"},
                               {"--segment", seg.name(), "--uri", atlas.url(), "--step", "0.5"}));
  ASSERT_EQ(Next(listener, collector, kDeadline), std::optional<std::string>("READY=1"));
  const std::vector<long> gaps = WatchdogGaps(listener, collector, 3s);
  ASSERT_FALSE(gaps.empty());
  const long longest = *std::max_element(gaps.begin(), gaps.end());
  std::cout << "[collector watchdog] WATCHDOG_USEC=400000: " << gaps.size() + 1
            << " pings in 3 s, longest gap " << longest << " ms" << std::endl;
  ::testing::Test::RecordProperty("watchdog_pings", static_cast<int>(gaps.size() + 1));
  ::testing::Test::RecordProperty("watchdog_longest_gap_ms", static_cast<int>(longest));
  EXPECT_GE(gaps.size() + 1, 10u) << "about 15 expected in 3 s";
  EXPECT_LT(longest, 400) << "systemd would have killed it";
  EXPECT_TRUE(atlas.server().WaitForRequests(2, kDeadline)) << "and it kept stepping";
  collector.Signal(SIGTERM);
  EXPECT_EQ(collector.Wait(kDeadline), 0) << collector.err();
}

TEST(CollectorSystemd, WatchdogPingsStopWhileAStepIsStuck) {
  TempSegment seg;
  Atlas atlas;
  atlas.Stall(true);  // every publish hangs until --timeout
  NotifyListener listener;
  Subprocess collector(
      WithEnv({"NOTIFY_SOCKET=" + listener.address(), "WATCHDOG_USEC=200000"},
              {"--segment", seg.name(), "--uri", atlas.url(), "--step", "0.1", "--timeout", "1.5"}));
  ASSERT_EQ(Next(listener, collector, kDeadline), std::optional<std::string>("READY=1"));
  ASSERT_TRUE(atlas.WaitForStalledRequest(kDeadline));
  const std::vector<long> gaps = WatchdogGaps(listener, collector, 4s);
  ASSERT_FALSE(gaps.empty());
  const long longest = *std::max_element(gaps.begin(), gaps.end());
  std::cout << "[collector watchdog] stalled endpoint, --timeout 1.5: longest gap " << longest
            << " ms" << std::endl;
  ::testing::Test::RecordProperty("stuck_longest_gap_ms", static_cast<int>(longest));
  // No thread pings behind the stuck step's back: systemd sees it.
  EXPECT_GE(longest, 1000) << "pings continued during a 1.5 s stuck publish";
  atlas.Stall(false);
  collector.Signal(SIGTERM);
  EXPECT_EQ(collector.Wait(kDeadline), 0) << collector.err();
}

// ---------------------------------------------------------------------------
// Catch-up after an absence.

// The segment says its last step was an hour ago (what a collector stopped
// for an hour leaves behind); the next collector publishes what accumulated
// at once by default, or drops it with --max-catch-up 600.
TEST(CollectorCatchUp, AfterAnHourAwayEverythingIsPublishedAtOnceOrDroppedAsStale) {
  for (const bool limit : {false, true}) {
    SCOPED_TRACE(limit ? "--max-catch-up 600" : "no limit");
    TempSegment seg;
    Atlas atlas;
    Registry registry(seg.options());
    Counter work = registry.GetCounter("absent.work");
    work.Add(9);
    testing::CollectorReader(registry).Heartbeat(4242, std::chrono::system_clock::now() - 1h);
    std::vector<std::string> extra;
    if (limit) extra = {"--max-catch-up", "600"};
    auto collector = testing::StartCollector(seg.name(), atlas.url(), "0.2", extra);
    ASSERT_TRUE(atlas.WaitForAnswered(Answered::kAccepted, 1, kDeadline)) << collector->err();
    work.Add(4);  // after the first step: published normally
    const std::size_t seen = atlas.Count(Answered::kAccepted);
    ASSERT_TRUE(atlas.WaitForAnswered(Answered::kAccepted, seen + 1, kDeadline));
    collector->Signal(SIGTERM);
    ASSERT_EQ(collector->Wait(kDeadline), 0) << collector->err();
    const std::string& err = collector->err();
    EXPECT_NE(err.find("the last step of this segment was 3600."), std::string::npos) << err;
    EXPECT_NE(err.find("(collector pid 4242)"), std::string::npos) << err;
    const double stale = atlas.Sum(Answered::kAccepted, "spectator.measurements", "count",
                                   {{"id", "dropped"}, {"error", "stale"}});
    if (!limit) {
      EXPECT_EQ(atlas.Accepted("absent.work", "count"), 13) << "nothing lost by default";
      EXPECT_EQ(stale, 0);
      EXPECT_NE(err.find("WARN"), std::string::npos) << "an hour's spike is worth a warning";
    } else {
      EXPECT_EQ(atlas.Accepted("absent.work", "count"), 4) << "the 9 are dropped, the 4 are not";
      const auto at = err.find("more than --max-catch-up 600.0 s: dropping the ");
      ASSERT_NE(at, std::string::npos) << err;
      const double logged = std::strtod(err.c_str() + at + 47, nullptr);
      EXPECT_GE(logged, 1);
      EXPECT_EQ(stale, logged) << "every dropped measurement is counted: " << err;
    }
  }
}

// ---------------------------------------------------------------------------
// --mode and --group.

TEST(CollectorSharing, ModeSetsTheBitsOfTheSegmentItCreatesAndBadValuesExitTwo) {
  TempSegment seg;
  Subprocess once(CollectorArgs({"--segment", seg.name(), "--once", "--mode", "0640"}));
  EXPECT_EQ(once.Wait(kDeadline), 0) << once.err();
  struct stat st {};
  ASSERT_EQ(::stat(seg.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);

  Subprocess mode(CollectorArgs({"--segment", seg.name(), "--mode", "0066"}));
  EXPECT_EQ(mode.Wait(kDeadline), 2);
  EXPECT_EQ(mode.err(),
            "spectator-collector: --mode must be octal permission bits within 0777 that include "
            "0600 (e.g. 0660), got '0066'\n");
  Subprocess group(CollectorArgs({"--segment", seg.name(), "--group", "no-such-group-spectator"}));
  EXPECT_EQ(group.Wait(kDeadline), 2);
  EXPECT_EQ(group.err(), "spectator-collector: --group 'no-such-group-spectator' names no group\n");
}

// Two users who share a group: the collector (uid 65533, in group 65534 as a
// supplementary group only) creates the segment 0660 for group 65534; a
// worker of another user (uid 65532, also in 65534) attaches and counts; the
// collector publishes it. A third user outside the group cannot attach.
constexpr uid_t kCollectorUid = 65533, kWorkerUid = 65532, kOutsiderUid = 65531;
constexpr gid_t kSharedGid = 65534;  // nogroup

// In a forked child: become `uid` with primary group `uid` and the given
// supplementary groups, then try to attach and count. Exit codes: 0 counted,
// 3 refused (an Error), 4 could not change user.
int CountAs(uid_t uid, const std::vector<gid_t>& groups, const std::string& segment) {
  if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(uid) != 0 ||
      ::setuid(uid) != 0) {
    return 4;
  }
  try {
    SegmentOptions o;
    o.name = segment;
    o.group = std::to_string(kSharedGid);
    o.create_if_missing = false;
    Registry registry(o);
    Counter c = registry.GetCounter("shared.work");
    if (!c.IsLive()) return 5;
    c.Add(5);
    return 0;
  } catch (const Error&) {
    return 3;
  }
}

// Whether the library applies SegmentOptions::group when creating a segment
// (it lands on main after this test was written).
bool LibraryAppliesGroup() {
  TempSegment probe;
  SegmentOptions o = probe.options();
  o.mode = 0660;
  o.group = std::to_string(kSharedGid);
  try {
    Registry registry(o);
  } catch (const Error&) {
    return false;
  }
  struct stat st {};
  return ::stat(probe.path().c_str(), &st) == 0 && st.st_gid == kSharedGid;
}

TEST(CollectorSharing, TwoUsersInOneGroupShareTheSegmentAnOutsiderCannot) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run the collector and workers as other users";
  if (!LibraryAppliesGroup()) {
    GTEST_SKIP() << "the library does not apply SegmentOptions::group yet (merge main)";
  }
  TempSegment seg;
  Atlas atlas;
  const std::vector<std::string> as_collector = {
      "/usr/bin/setpriv", "--reuid=" + std::to_string(kCollectorUid),
      "--regid=" + std::to_string(kCollectorUid), "--groups=" + std::to_string(kSharedGid)};
  std::vector<std::string> argv = as_collector;
  for (const std::string& a :
       CollectorArgs({"--segment", seg.name(), "--uri", atlas.url(), "--step", "3600",
                      "--log-level", "info", "--mode", "0660", "--group",
                      std::to_string(kSharedGid)})) {
    argv.push_back(a);
  }
  auto collector = StartAndWaitUp(argv);
  struct stat st {};
  ASSERT_EQ(::stat(seg.path().c_str(), &st), 0) << collector->err();
  EXPECT_EQ(st.st_uid, kCollectorUid);
  EXPECT_EQ(st.st_gid, kSharedGid) << "the group given, not the collector's primary group";
  EXPECT_EQ(st.st_mode & 07777, 0660u);

  const pid_t worker = testing::ForkChild(
      [&] { return CountAs(kWorkerUid, {kSharedGid}, seg.name()); });
  EXPECT_EQ(testing::WaitChild(worker), 0) << "a member of the group attaches and counts";
  const pid_t outsider =
      testing::ForkChild([&] { return CountAs(kOutsiderUid, {}, seg.name()); });
  EXPECT_EQ(testing::WaitChild(outsider), 3) << "a user outside the group is refused";

  collector->Signal(SIGTERM);
  ASSERT_EQ(collector->Wait(kDeadline), 0) << collector->err();
  EXPECT_EQ(atlas.Accepted("shared.work", "count"), 5);
}

}  // namespace
}  // namespace spectator
