// Reliability of the collector half (docs/reliability.md, "Collector and
// publishing"): the real spectator-collector binary, built with the same
// sanitizers as this test, against a fake Atlas, with fork()ed workers
// updating the segment meanwhile. Each fault ends in a check of what Atlas
// accepted against what the workers did.
//
// The long variants (hundreds of kill rounds, one-minute outages) are in
// collector_soak_test.cc; SPECTATOR_RELIABILITY_ROUNDS scales the rounds of
// both.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <chrono>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "segment_layout.h"
#include "spectator/internal/reader.h"
#include "spectator/spectator.h"
#include "collector_faults.h"
#include "support/collector_process.h"
#include "support/endless_workers.h"
#include "support/env_count.h"
#include "support/fake_atlas.h"
#include "support/fake_http_server.h"
#include "support/fork_helpers.h"
#include "support/subprocess.h"
#include "support/temp_segment.h"
#include "support/segment_holder.h"

namespace spectator::testing {
namespace {

using namespace std::chrono_literals;

constexpr auto kDeadline = kCollectorDeadline;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// --- 1. Collector deaths ----------------------------------------------------

TEST(CollectorKills, KilledAtRandomInstantsAndRestartedLosesNothing) {
  RunCollectorKillRounds(static_cast<int>(EnvCount("SPECTATOR_RELIABILITY_ROUNDS", 20)), 0xC0111u);
}

// --- 2. Atlas outages --------------------------------------------------------

class CollectorRetryableOutage : public ::testing::TestWithParam<RetryableFault> {};

TEST_P(CollectorRetryableOutage, KeepsSteppingStaysSmallAndPublishesExactlyAfterRecovery) {
  // Long enough for at least one whole step of retries (about 2.1 s).
  RunRetryableOutage(GetParam(), 3000ms);
}

INSTANTIATE_TEST_SUITE_P(Faults, CollectorRetryableOutage,
                         ::testing::Values(RetryableFault::k503, RetryableFault::k429,
                                           RetryableFault::kReset, RetryableFault::kStall),
                         [](const ::testing::TestParamInfo<RetryableFault>& p) {
                           return std::string("Answer") + FaultName(p.param);
                         });

// Atlas answers `bad` (an answer the collector must not retry) for a while
// while workers update, then 200 again; the collector is stopped with
// SIGTERM once the workers have stopped.
struct DroppingRun {
  std::uint64_t done = 0;
  Heartbeats beats;
  std::size_t bad_answers = 0;
};

DroppingRun RunWithAnswer(Atlas& atlas, const HttpReply& bad, std::chrono::milliseconds duration) {
  DroppingRun run;
  TempSegment seg;
  Registry registry(seg.options());
  EndlessWorkers workers(registry, 2);
  EXPECT_TRUE(workers.WaitUntilRegistered(kDeadline));
  auto collector = StartCollector(seg.name(), atlas.url(), "0.05", {"--timeout", "1"});
  EXPECT_TRUE(atlas.WaitForStatus(200, 1, kDeadline));
  atlas.Answer(bad);
  EXPECT_TRUE(atlas.WaitForStatus(bad.status, 1, kDeadline));
  run.beats = WatchHeartbeat(registry, *collector, duration);
  EXPECT_FALSE(run.beats.exited) << collector->err();
  atlas.Answer(200);
  const std::size_t ok = atlas.Count(Answered::kAccepted);
  EXPECT_TRUE(atlas.WaitForAnswered(Answered::kAccepted, ok + 1, kDeadline)) << "recovered";
  run.done = workers.StopAndCount();
  collector->Signal(SIGTERM);
  EXPECT_EQ(collector->Wait(kDeadline), 0) << collector->err();
  EXPECT_TRUE(atlas.WaitUntilHandled(kDeadline));
  EXPECT_TRUE(atlas.DecodeErrors().empty());
  for (const auto& r : atlas.Requests()) {
    run.bad_answers += r.action == HttpReply::Action::kRespond && r.status == bad.status;
  }
  // Nothing to retry, so no back-off: the collector steps at its rate.
  EXPECT_LE(run.beats.longest, 1000ms);
  EXPECT_GE(run.beats.beats, duration / 200ms);
  return run;
}

TEST(CollectorOutage, PartialSuccessIsCountedAsValidationDropsAndNotRetried) {
  Atlas atlas;
  HttpReply partial;
  partial.status = 202;
  partial.body = R"({"type":"partial","errorCount":1,"message":["fake rejection"]})";
  const DroppingRun run = RunWithAnswer(atlas, partial, 1500ms);
  const double n = static_cast<double>(run.done);
  ASSERT_GE(run.bad_answers, 2u);
  // The fake keeps every measurement of a 202 (it cannot say which one it
  // "rejected"), so a retried batch would show up as a duplicate.
  EXPECT_EQ(atlas.Accepted("work.done", "count"), n);
  EXPECT_EQ(atlas.Accepted("work.latency", "count"), n);
  EXPECT_EQ(atlas.Accepted("work.percentiles", "percentile"), n);
  // One validation drop per 202, published by the following steps.
  EXPECT_EQ(atlas.Sum(Answered::kAny, "spectator.measurements", "count",
                      {{"id", "dropped"}, {"error", "validation"}}),
            static_cast<double>(run.bad_answers));
  // One attempt per 202: never retried.
  EXPECT_EQ(atlas.Sum(Answered::kAny, "http.req.complete", "count", {{"statusCode", "202"}}),
            static_cast<double>(run.bad_answers));
}

TEST(CollectorOutage, BadRequestIsDroppedCountedAndNotRetried) {
  Atlas atlas;
  HttpReply bad;
  bad.status = 400;
  bad.body = "bad request";
  const DroppingRun run = RunWithAnswer(atlas, bad, 1500ms);
  const double n = static_cast<double>(run.done);
  ASSERT_GE(run.bad_answers, 2u);
  // Every increment went out exactly once: accepted, or in a 400'd batch
  // dropped for good (not retried, so not accepted later as well).
  const double rejected = atlas.Sum(Answered::kRejected, "work.done", "count");
  EXPECT_GT(rejected, 0);
  EXPECT_EQ(atlas.Accepted("work.done", "count") + rejected, n);
  EXPECT_EQ(atlas.Accepted("work.latency", "count") +
                atlas.Sum(Answered::kRejected, "work.latency", "count"),
            n);
  EXPECT_EQ(atlas.Accepted("work.percentiles", "percentile") +
                atlas.Sum(Answered::kRejected, "work.percentiles", "percentile"),
            n);
  // Each rejected measurement counted once as dropped{error=http-error}.
  double rejected_measurements = 0;
  for (const auto& r : atlas.Requests()) {
    if (r.kind() == Answered::kRejected)
      rejected_measurements += static_cast<double>(r.measurements);
  }
  EXPECT_EQ(atlas.Sum(Answered::kAny, "spectator.measurements", "count",
                      {{"id", "dropped"}, {"error", "http-error"}}),
            rejected_measurements);
  EXPECT_EQ(atlas.Sum(Answered::kAny, "http.req.complete", "count", {{"statusCode", "400"}}),
            static_cast<double>(run.bad_answers));
}

// Atlas is never reachable (nothing listens on its port). SIGTERM still ends
// the collector promptly with 0: the step in progress and the final one each
// spend at most one step's worth of attempts. The values stay in the
// segment, and a later collector with a working endpoint publishes them.
TEST(CollectorOutage, AtlasDownForTheWholeRunThenSigtermExitsInTimeAndKeepsTheValues) {
  std::string dead_url;
  {
    FakeHttpServer gone;
    dead_url = gone.url();
  }
  TempSegment seg;
  Registry registry(seg.options());
  EndlessWorkers workers(registry, 2);
  ASSERT_TRUE(workers.WaitUntilRegistered(kDeadline));
  auto collector = StartCollector(seg.name(), dead_url, "0.1", {"--timeout", "0.2"});
  // Two heartbeats: the first step began, then ended after its failed
  // attempts (a whole step on a dead endpoint).
  int beats = 0;
  for (const auto deadline = std::chrono::steady_clock::now() + kDeadline;
       beats < 2 && std::chrono::steady_clock::now() < deadline;) {
    const Heartbeats h = WatchHeartbeat(registry, *collector, 100ms);
    ASSERT_FALSE(h.exited) << collector->err();
    beats += h.beats;
  }
  ASSERT_GE(beats, 2);
  const std::uint64_t done = workers.StopAndCount();

  const auto stop = std::chrono::steady_clock::now();
  collector->Signal(SIGTERM);
  EXPECT_EQ(collector->Wait(kDeadline), 0) << collector->err();
  const auto took = std::chrono::steady_clock::now() - stop;
  // Two steps of at most 3 × 0.2 s of attempts, with a wide margin for
  // sanitizers on a loaded machine.
  EXPECT_LT(took, 9s);
  EXPECT_NE(collector->err().find("kept in the segment"), std::string::npos) << collector->err();

  // Still all there (pending + live), percentile buckets included.
  double count = 0, buckets = 0, timer = 0;
  SegmentReader reader(registry);
  reader.Scan(SegmentReader::Mode::kPeek, std::chrono::system_clock::now(),
              [&](const MeterReading& r) {
                if (r.id == "work.done,kind=exact") count = r.count;
                if (r.id == "work.latency") timer = r.count;
                if (r.id == "work.percentiles") {
                  for (std::size_t b = 0; b < kPercentileBucketCount; ++b) {
                    buckets += static_cast<double>(r.buckets[b]);
                  }
                }
              });
  const double n = static_cast<double>(done);
  EXPECT_EQ(count, n);
  EXPECT_EQ(timer, n);
  EXPECT_EQ(buckets, n);

  Atlas atlas;
  Subprocess once(CollectorArgs({"--segment", seg.name(), "--uri", atlas.url(), "--once"}));
  ASSERT_EQ(once.Wait(kDeadline), 0) << once.err();
  EXPECT_EQ(atlas.Accepted("work.done", "count"), n);
  EXPECT_EQ(atlas.Accepted("work.latency", "count"), n);
  EXPECT_EQ(atlas.Accepted("work.percentiles", "count"), n);
  EXPECT_EQ(atlas.Accepted("work.percentiles", "percentile"), n);
  EXPECT_NEAR(atlas.Accepted("work.latency", "totalTime"),
              static_cast<double>(workers.totals().timer_ns) / 1e9, 1e-6);
}

// --- 3. Hostile segments -----------------------------------------------------

// Refused with exit 1 and one error naming the segment, for --dump and for a
// collector; the file is left as it was.
void ExpectRefused(const std::string& segment, const std::string& path) {
  const std::string before = ReadFile(path);
  for (const char* mode : {"--dump", "--once"}) {
    Subprocess c(CollectorArgs({"--segment", segment, mode}));
    EXPECT_EQ(c.Wait(kDeadline), 1) << mode << ": " << c.err();
    EXPECT_NE(c.err().find("ERROR"), std::string::npos) << mode << ": " << c.err();
    EXPECT_NE(c.err().find("'" + segment + "'"), std::string::npos) << mode << ": " << c.err();
    EXPECT_EQ(c.out(), "") << mode;
  }
  EXPECT_EQ(ReadFile(path), before) << "left untouched";
}

TEST(CollectorHostileSegment, RandomBytesAreRefusedAndLeftUntouched) {
  TempSegment seg;
  std::mt19937 rng(0xBAD5EED);
  for (std::size_t size : {std::size_t{4096}, std::size_t{1} << 20}) {
    std::string garbage(size, '\0');
    for (char& c : garbage) c = static_cast<char>(rng());
    {
      std::ofstream out(seg.path(), std::ios::binary | std::ios::trunc);
      out << garbage;
    }
    ::chmod(seg.path().c_str(), 0600);
    ExpectRefused(seg.name(), seg.path());
  }
}

TEST(CollectorHostileSegment, TruncatedSegmentIsRefused) {
  TempSegment seg;
  {
    Registry registry(seg.options());
    registry.GetCounter("c").Add(3);
  }
  struct stat st {};
  ASSERT_EQ(::stat(seg.path().c_str(), &st), 0);
  for (off_t size : {st.st_size - 8, st.st_size / 2, off_t{300}, off_t{100}}) {
    ASSERT_EQ(::truncate(seg.path().c_str(), size), 0);
    // Held, as by a live process of another build; unheld it would be
    // replaced (CollectorStaleSegment.*).
    SegmentHolder holder(seg.path());
    ExpectRefused(seg.name(), seg.path());
    struct stat after {};
    ASSERT_EQ(::stat(seg.path().c_str(), &after), 0);
    EXPECT_EQ(after.st_size, size) << "never extended or rewritten";
  }
}

// After an upgrade to another layout version, the old segment heals itself
// once its last user is gone: the collector starts, replaces it and publishes.
TEST(CollectorStaleSegment, AnotherLayoutVersionWithNoUsersIsReplacedAndPublished) {
  TempSegment seg;
  {
    Registry old(seg.options());
    old.GetCounter("old").Add(3);
  }
  {
    const int fd = ::open(seg.path().c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    const std::uint32_t version = 1;
    ASSERT_EQ(::pwrite(fd, &version, sizeof version, 8), 4);
    ::close(fd);
  }
  Subprocess c(CollectorArgs({"--segment", seg.name(), "--once"}));
  EXPECT_EQ(c.Wait(kDeadline), 0) << c.err();
  EXPECT_NE(c.err().find("replaced stale segment '" + seg.name() + "'"), std::string::npos)
      << c.err();
  EXPECT_NE(c.out().find("spectator.registrySize{statistic=gauge}"), std::string::npos)
      << "publishes from the fresh segment: " << c.out();
  EXPECT_EQ(c.out().find("old{"), std::string::npos) << "the old segment's meters are gone";
  // The same with a live holder: refused, the file left alone.
  {
    const int fd = ::open(seg.path().c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    const std::uint32_t version = 1;
    ASSERT_EQ(::pwrite(fd, &version, sizeof version, 8), 4);
    ::close(fd);
  }
  SegmentHolder holder(seg.path());
  ExpectRefused(seg.name(), seg.path());
}

// A /dev/shm too small for the segment (a container's 64 MiB): the collector
// that would create it exits 1 with one line naming the space, and leaves no
// file. Runs under unshare(1) with an 8 MiB tmpfs on /dev/shm.
TEST(CollectorShmSpace, ASegmentThatDoesNotFitIsRefusedWithOneLine) {
  const char* unshare = "/usr/bin/unshare";
  Subprocess probe({unshare, "-m", "/bin/true"});
  if (::access(unshare, X_OK) != 0 || probe.Wait(kDeadline) != 0) {
    GTEST_SKIP() << "needs root and unshare -m to mount a small /dev/shm";
  }
  Subprocess c({unshare, "-m", "--propagation", "private", "/bin/sh", "-c",
                "mount -t tmpfs -o size=8m tmpfs /dev/shm && \"$0\" \"$@\"; rc=$?; "
                "ls -A /dev/shm; exit $rc",
                CollectorArgs({})[0], "--segment", "too-big", "--max-meters", "100000",
                "--once"});
  EXPECT_EQ(c.Wait(kDeadline), 1) << c.err();
  EXPECT_NE(c.err().find("ERROR segment 'too-big'"), std::string::npos) << c.err();
  EXPECT_NE(c.err().find("but /dev/shm has only"), std::string::npos) << c.err();
  EXPECT_EQ(std::count(c.err().begin(), c.err().end(), '\n'), 1) << "one line: " << c.err();
  EXPECT_EQ(c.out(), "") << "a file was left in /dev/shm";
}

TEST(CollectorHostileSegment, SymlinkInPlaceOfTheSegmentIsRefused) {
  TempSegment target;
  {
    Registry registry(target.options());
    registry.GetCounter("c").Add(3);
  }
  const std::string target_bytes = ReadFile(target.path());
  TempSegment seg;
  ASSERT_EQ(::symlink(target.path().c_str(), seg.path().c_str()), 0);
  ExpectRefused(seg.name(), seg.path());
  struct stat st {};
  ASSERT_EQ(::lstat(seg.path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode)) << "the link is left in place";
  EXPECT_EQ(ReadFile(target.path()), target_bytes) << "and its target untouched";
}

// A valid segment whose entries were partly overwritten with garbage by a
// stray process: --dump and the collector skip and count them, and publish
// every good meter exactly.
TEST(CollectorHostileSegment, GarbageEntriesAreSkippedCountedAndGoodMetersPublishedExactly) {
  TempSegment seg;
  constexpr int kVictims = 8;
  {
    Registry registry(seg.options());
    registry.GetCounter("good.counter", {{"k", "v"}}).Add(7);
    registry.GetTimer("good.timer").Record(2s);
    PercentileTimer p = registry.GetPercentileTimer("good.percentiles");
    p.Record(20ms);
    p.Record(40ms);
    for (int i = 0; i < kVictims; ++i) {
      registry.GetCounter("victim", {{"n", std::to_string(i)}}).Add(100);
    }
  }
  {
    // Scribble through a plain mapping, as any process that can open the
    // segment could.
    const int fd = ::open(seg.path().c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    struct stat st {};
    ASSERT_EQ(::fstat(fd, &st), 0);
    const auto size = static_cast<std::size_t>(st.st_size);
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    ASSERT_NE(p, MAP_FAILED);
    auto* base = static_cast<char*>(p);
    auto& h = *reinterpret_cast<internal::SegmentHeader*>(base);
    auto* entries = reinterpret_cast<internal::Entry*>(base + h.entries_offset);
    std::mt19937 rng(0x5C81B);
    int victim = 0;
    for (std::uint32_t s = 0; s < h.table_slots; ++s) {
      internal::Entry& e = entries[s];
      char* id = base + h.ids_offset + std::size_t{e.id_offset} * 8;
      if (e.state.load() == 0 || std::string_view(id, e.id_len).rfind("victim,", 0) != 0) continue;
      switch (victim++) {
        case 0: {  // everything but the state word: random bytes
          auto* bytes = reinterpret_cast<unsigned char*>(&e) + sizeof(e.state);
          for (std::size_t b = 0; b < sizeof(e) - sizeof(e.state); ++b) {
            bytes[b] = static_cast<unsigned char>(rng());
          }
          break;
        }
        case 1:
          e.value_line = 1U << 31;  // far outside the mapping
          break;
        case 2:
          e.value_line = static_cast<std::uint32_t>((h.value_words + h.reserve_words) / 8);  // at the end
          break;
        case 3:
          e.id_len = 0xFFFF;  // longer than an Id can be
          break;
        case 4:
          e.type = 0xEE;
          break;
        case 5:  // READY's kind bits with garbage below
          e.state.store(internal::kReadyState | 0x123456789ULL, std::memory_order_relaxed);
          break;
        case 6:
          std::memset(id, '!', e.id_len);  // not a canonical Id any more
          break;
        case 7:
          e.value_words = 7;  // not the size of a counter's block
          break;
      }
    }
    ::munmap(p, size);
    ASSERT_EQ(victim, kVictims);
  }

  for (int i = 0; i < 2; ++i) {  // twice: --dump resets nothing
    Subprocess dump(CollectorArgs({"--segment", seg.name(), "--dump"}));
    EXPECT_EQ(dump.Wait(kDeadline), 0) << dump.err();
    EXPECT_NE(dump.out().find("corrupt entries skipped: " + std::to_string(kVictims) + "\n"),
              std::string::npos)
        << dump.out();
    EXPECT_NE(dump.out().find("counter good.counter{k=v} count=7\n"), std::string::npos)
        << dump.out();
    EXPECT_NE(dump.out().find("timer good.timer count=1 totalTime=2 "), std::string::npos)
        << dump.out();
    EXPECT_NE(dump.out().find("percentile-timer good.percentiles count=2 "), std::string::npos)
        << dump.out();
    EXPECT_EQ(dump.out().find("victim"), std::string::npos) << dump.out();
  }

  Atlas atlas;
  Subprocess once(CollectorArgs({"--segment", seg.name(), "--uri", atlas.url(), "--once"}));
  ASSERT_EQ(once.Wait(kDeadline), 0) << once.err();
  EXPECT_TRUE(atlas.DecodeErrors().empty());
  EXPECT_EQ(atlas.Accepted("good.counter", "count"), 7);
  EXPECT_EQ(atlas.Accepted("good.timer", "count"), 1);
  EXPECT_EQ(atlas.Accepted("good.timer", "totalTime"), 2);
  EXPECT_EQ(atlas.Accepted("good.percentiles", "count"), 2);
  EXPECT_EQ(atlas.Accepted("good.percentiles", "percentile"), 2);
  EXPECT_EQ(atlas.Accepted("victim", "count"), 0);
  EXPECT_EQ(atlas.Accepted("spectator.corruptEntries", "gauge"), kVictims)
      << "the one step publishes what its own scan skipped";
}

// --- 4. Full table under load ------------------------------------------------

// Forked workers register thousands of distinct Ids into a 64-meter segment
// while the collector publishes it: no crash, every refusal counted in the
// header and published as spectator.overflow, and a counter registered before
// the flood published exactly.
TEST(CollectorFullTable, FloodPastCapacityIsPublishedInOverflowSeriesAndOldMetersStayExact) {
  constexpr std::uint32_t kCapacity = 64;
  constexpr int kWorkers = 4;
  constexpr std::uint64_t kMinIdsPerWorker = 2000;
  TempSegment seg;
  Atlas atlas;
  SegmentOptions options = seg.options(kCapacity);
  options.logger = [](LogLevel, std::string_view) {};  // a refusal per attempt: too many lines
  Registry registry(options);
  Counter before = registry.GetCounter("before.flood");
  ASSERT_TRUE(before.IsLive());
  auto collector = StartCollector(seg.name(), atlas.url(), "0.05");
  // The collector's own meters exist before the flood (its http.req.complete
  // timer is registered once its first attempt is answered), so none of its
  // registrations is refused after its last publish.
  ASSERT_TRUE(atlas.WaitForAnswered(Answered::kAccepted, 2, kDeadline));
  const std::uint64_t overflow_before = registry.Info().overflow;

  struct Shared {
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> attempts[kWorkers];
    std::atomic<std::uint64_t> live[kWorkers];
  };
  void* mem =
      ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* shared = new (mem) Shared();
  std::vector<pid_t> pids;
  for (int w = 0; w < kWorkers; ++w) {
    pids.push_back(ForkChild([&registry, &before, shared, w] {
      std::uint64_t i = 0, live = 0;
      // At least kMinIdsPerWorker new Ids, then on until the parent has seen
      // the collector publish during the flood. relaxed: a stop request.
      for (; i < kMinIdsPerWorker || !shared->stop.load(std::memory_order_relaxed); ++i) {
        Counter c =
            registry.GetCounter("flood", {{"w", std::to_string(w)}, {"i", std::to_string(i)}});
        if (c.IsLive()) {
          c.Increment();
          ++live;
        }
        before.Increment();
      }
      // relaxed: read by the parent after reaping this child.
      shared->attempts[w].store(i, std::memory_order_relaxed);
      shared->live[w].store(live, std::memory_order_relaxed);
      return 0;
    }));
  }
  // Three publishes while the table is full and the flood goes on.
  const std::size_t seen = atlas.Count(Answered::kAccepted);
  EXPECT_TRUE(atlas.WaitForAnswered(Answered::kAccepted, seen + 3, kDeadline));
  shared->stop.store(true, std::memory_order_relaxed);
  std::uint64_t attempts = 0, live = 0;
  for (int w = 0; w < kWorkers; ++w) {
    EXPECT_EQ(WaitChild(pids[static_cast<std::size_t>(w)]), 0) << "worker " << w;
    attempts += shared->attempts[w].load(std::memory_order_relaxed);
    live += shared->live[w].load(std::memory_order_relaxed);
  }
  ::munmap(mem, sizeof(Shared));
  collector->Signal(SIGTERM);
  ASSERT_EQ(collector->Wait(kDeadline), 0) << collector->err();
  ASSERT_TRUE(atlas.WaitUntilHandled(kDeadline));
  EXPECT_TRUE(atlas.DecodeErrors().empty());

  const SegmentInfo info = registry.Info();
  std::cout << "[collector full table] attempts=" << attempts << " live=" << live
            << " overflow=" << info.overflow << " meters=" << info.meters << std::endl;
  EXPECT_GE(attempts, kWorkers * kMinIdsPerWorker);
  EXPECT_EQ(live, attempts) << "past capacity an Id gets its name's overflow meter, not a no-op";
  EXPECT_GT(info.overflow, overflow_before);
  EXPECT_EQ(atlas.Accepted("spectator.overflow", "count"),
            static_cast<double>(info.overflow - overflow_before));
  EXPECT_EQ(atlas.Accepted("before.flood", "count"), static_cast<double>(attempts));
  EXPECT_EQ(atlas.Accepted("flood", "count"), static_cast<double>(attempts))
      << "every increment published, in its own series or flood{spectator.overflow=true}";
  EXPECT_LE(info.meters, kCapacity);
}

}  // namespace
}  // namespace spectator::testing
