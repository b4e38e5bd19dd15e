// Real multi-process behaviour: fork()ed workers update one segment while the
// parent takes step values. Children report through exit codes.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "id_table.h"
#include "spectator/internal/reader.h"
#include "support/collector_reader.h"
#include "spectator/spectator.h"
#include "support/fork_helpers.h"
#include "support/readings.h"
#include "support/temp_segment.h"

namespace spectator {
namespace {

using namespace std::chrono_literals;
using spectator::testing::Barrier;
using spectator::testing::ForkChild;
using spectator::testing::TempSegment;
using spectator::testing::WaitChild;

constexpr int kWorkers = 8;
constexpr int kIncrements = 100000;

struct Totals {
  double counter = 0;
  std::uint64_t timer_count = 0;
  std::uint64_t timer_ns = 0;
  std::uint64_t summary_count = 0;
  double summary_total = 0;
  double summary_squares = 0;
};

void Accumulate(SegmentReader& reader, Totals* t) {
  reader.Scan(SegmentReader::Mode::kTake, std::chrono::system_clock::now(),
              [&](const MeterReading& r) {
                if (r.id == "c") t->counter += r.count;
                if (r.id == "t") {
                  t->timer_count += static_cast<std::uint64_t>(r.count);
                  t->timer_ns += static_cast<std::uint64_t>(std::llround(r.total * 1e9));
                }
                if (r.id == "d") {
                  t->summary_count += static_cast<std::uint64_t>(r.count);
                  t->summary_total += r.total;
                  t->summary_squares += r.total_of_squares;
                }
                reader.Commit(r);
              });
}

TEST(Fork, TakesWhileEightWorkersUpdateLoseAndDuplicateNothing) {
  TempSegment seg;
  Registry registry(seg.options());
  testing::CollectorReader reader(registry);
  Barrier start;
  std::vector<pid_t> children;
  for (int w = 0; w < kWorkers; ++w) {
    children.push_back(ForkChild([&] {
      start.Wait();
      Counter c = registry.GetCounter("c");
      Timer t = registry.GetTimer("t");
      DistributionSummary d = registry.GetDistributionSummary("d");
      if (!c.IsLive() || !t.IsLive() || !d.IsLive()) return 2;
      for (int i = 0; i < kIncrements; ++i) {
        c.Increment();
        t.Record(std::chrono::nanoseconds(1000 + i % 7));
        d.Record(3);
      }
      return 0;
    }));
  }
  start.Release();
  // Take step values as fast as possible while the workers run.
  Totals totals;
  int takes = 0;
  std::size_t running = children.size();
  std::vector<int> codes;
  while (running > 0) {
    Accumulate(reader, &totals);
    ++takes;
    for (pid_t& pid : children) {
      int status;
      if (pid > 0 && ::waitpid(pid, &status, WNOHANG) == pid) {
        codes.push_back(WIFEXITED(status) ? WEXITSTATUS(status) : 128);
        pid = 0;
        --running;
      }
    }
  }
  Accumulate(reader, &totals);
  for (int code : codes) EXPECT_EQ(code, 0);
  std::uint64_t expected_ns = 0;
  for (int i = 0; i < kIncrements; ++i) expected_ns += 1000 + static_cast<std::uint64_t>(i % 7);
  EXPECT_EQ(totals.counter, double{kWorkers} * kIncrements);
  EXPECT_EQ(totals.timer_count, std::uint64_t{kWorkers} * kIncrements);
  EXPECT_EQ(totals.timer_ns, kWorkers * expected_ns);
  EXPECT_EQ(totals.summary_count, std::uint64_t{kWorkers} * kIncrements);
  EXPECT_EQ(totals.summary_total, 3.0 * kWorkers * kIncrements);
  EXPECT_EQ(totals.summary_squares, 9.0 * kWorkers * kIncrements);
  EXPECT_GT(takes, 1) << "the parent should have taken concurrently";
}

TEST(Fork, ConcurrentRegistrationOfHundredsOfIdsGivesOneEntryEach) {
  TempSegment seg;
  Registry registry(seg.options(/*max_meters=*/2048));
  constexpr int kShared = 300;
  constexpr int kOwn = 50;
  Barrier start;
  std::vector<pid_t> children;
  for (int w = 0; w < kWorkers; ++w) {
    children.push_back(ForkChild([&, w] {
      start.Wait();
      for (int i = 0; i < kShared; ++i) {
        const int id = (i * 37 + w * 101) % kShared;  // each worker in another order
        Counter c = registry.GetCounter("shared", {{"i", std::to_string(id)}});
        if (!c.IsLive()) return 2;
        c.Increment();
      }
      for (int i = 0; i < kOwn; ++i) {
        Counter c =
            registry.GetCounter("own", {{"w", std::to_string(w)}, {"i", std::to_string(i)}});
        if (!c.IsLive()) return 3;
        c.Increment();
      }
      return 0;
    }));
  }
  start.Release();
  for (pid_t pid : children) EXPECT_EQ(WaitChild(pid), 0);

  testing::CollectorReader reader(registry);
  std::multiset<std::string> ids;
  std::map<std::string, double> counts;
  reader.Scan(SegmentReader::Mode::kTake, std::chrono::system_clock::now(),
              [&](const MeterReading& r) {
                ids.emplace(r.id);
                counts[std::string(r.id)] += r.count;
              });
  EXPECT_EQ(ids.size(), std::size_t{kShared} + kWorkers * kOwn);
  EXPECT_EQ(counts.size(), ids.size()) << "an Id appears in two entries";
  for (const auto& [id, n] : counts) {
    EXPECT_EQ(n, id.rfind("shared", 0) == 0 ? kWorkers : 1) << id;
  }
  EXPECT_EQ(registry.Info().meters, ids.size());
}

// The claim hook stops a child in the middle of a registration: after it
// claimed an entry, before the entry is READY.
int g_hook_fd = -1;
void StopMidRegistration() {
  const char c = 'x';
  (void)::write(g_hook_fd, &c, 1);
  for (;;) ::pause();
}

TEST(Fork, WorkerKilledMidRegistrationBlocksNobody) {
  TempSegment seg;
  Registry registry(seg.options());
  Counter before = registry.GetCounter("before");
  before.Add(5);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t victim = ForkChild([&] {
    g_hook_fd = fds[1];
    internal::IdTable::SetClaimHookForTesting(&StopMidRegistration);
    registry.GetCounter("contended").Increment();
    return 4;  // never reached
  });
  ::close(fds[1]);
  char c;
  ASSERT_EQ(::read(fds[0], &c, 1), 1) << "the victim should reach the hook";
  ::close(fds[0]);
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  // Not reaped yet: the victim is a zombie, and must still count as dead.

  // Other workers register the same Id and others, and update, unblocked.
  Barrier start;
  std::vector<pid_t> workers;
  for (int w = 0; w < 4; ++w) {
    workers.push_back(ForkChild([&] {
      start.Wait();
      Counter contended = registry.GetCounter("contended");
      Counter other = registry.GetCounter("other");
      if (!contended.IsLive() || !other.IsLive()) return 2;
      for (int i = 0; i < 1000; ++i) {
        contended.Increment();
        other.Increment();
      }
      return 0;
    }));
  }
  start.Release();
  for (pid_t pid : workers) EXPECT_EQ(WaitChild(pid), 0);
  EXPECT_EQ(WaitChild(victim), 128 + SIGKILL);

  testing::CollectorReader reader(registry);
  const auto r = spectator::testing::Take(reader);
  EXPECT_EQ(r.at("contended").count, 4000);
  EXPECT_EQ(r.at("other").count, 4000);
  EXPECT_EQ(r.at("before").count, 5);
  EXPECT_EQ(r.size(), 3u);
  EXPECT_EQ(registry.Info().recovered_claims, 1u);
}

// A collector SIGKILLed after its take, before its publish settled: the
// next collector publishes those values (invariant 6).
TEST(Fork, CollectorKilledAfterTakingLosesNothing) {
  TempSegment seg;
  Registry registry(seg.options());
  Counter c = registry.GetCounter("c");
  Timer t = registry.GetTimer("t");
  c.Add(7);
  t.Record(3s);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t collector = ForkChild([&] {
    Registry own(seg.options());
    testing::CollectorReader reader(own);
    double taken = 0;
    reader.Scan(SegmentReader::Mode::kTake, std::chrono::system_clock::now(),
                [&](const MeterReading& r) { taken += r.count; });
    const char ok = taken == 8 ? 'y' : 'n';
    if (::write(fds[1], &ok, 1) != 1) return 3;
    ::pause();  // "publishing" when the kill arrives
    return 4;
  });
  ::close(fds[1]);
  char ok = 0;
  ASSERT_EQ(::read(fds[0], &ok, 1), 1);
  ::close(fds[0]);
  EXPECT_EQ(ok, 'y') << "the child should have taken both meters";
  ASSERT_EQ(::kill(collector, SIGKILL), 0);
  EXPECT_EQ(WaitChild(collector), 128 + SIGKILL);

  c.Add(1);
  testing::CollectorReader next(registry);
  const auto r = spectator::testing::Take(next);
  EXPECT_EQ(r.at("c").count, 8);
  EXPECT_EQ(r.at("t").count, 1);
  EXPECT_DOUBLE_EQ(r.at("t").total, 3.0);
  // The cumulative totals the dead collector advanced stay advanced, and
  // the next one counts only what is new.
  EXPECT_EQ(r.at("c").cumulative_count, 8);
  EXPECT_EQ(r.at("t").cumulative_count, 1);
  EXPECT_DOUBLE_EQ(r.at("t").cumulative_total, 3.0);
}

// What a Prometheus scrape reads never goes down, whatever collectors do:
// eight workers increment while collectors take, commit at random, and are
// SIGKILLed after their take, one after the other; every peek of the
// cumulative count in between is at least the one before, and the last is
// exactly what the workers did.
TEST(Fork, CumulativeCountsNeverGoBackwardsAcrossCollectorKills) {
  TempSegment seg;
  Registry registry(seg.options());
  Counter c = registry.GetCounter("c");
  SegmentReader peeker(registry);
  Barrier start;
  std::vector<pid_t> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.push_back(ForkChild([&] {
      start.Wait();
      for (int i = 0; i < 20000; ++i) c.Increment();
      return 0;
    }));
  }
  start.Release();
  double last = 0;
  auto check = [&] {
    const double now = testing::Peek(peeker).at("c").cumulative_count;
    EXPECT_GE(now, last) << "a scrape went backwards";
    last = now;
  };
  for (int round = 0; round < 12; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t collector = ForkChild([&] {
      Registry own(seg.options());
      testing::CollectorReader reader(own);
      reader.Scan(SegmentReader::Mode::kTake, std::chrono::system_clock::now(),
                  [&](const MeterReading& r) {
                    if (round % 2 == 0) reader.Commit(r);  // some publishes settle, some not
                  });
      if (::write(fds[1], "t", 1) != 1) return 3;
      ::pause();
      return 4;
    });
    ::close(fds[1]);
    char ok = 0;
    ASSERT_EQ(::read(fds[0], &ok, 1), 1);
    ::close(fds[0]);
    check();
    ASSERT_EQ(::kill(collector, SIGKILL), 0);
    EXPECT_EQ(WaitChild(collector), 128 + SIGKILL);
    check();
  }
  for (pid_t w : workers) ASSERT_EQ(WaitChild(w), 0);
  check();
  EXPECT_EQ(last, double{kWorkers} * 20000);
  testing::CollectorReader final_reader(registry);
  EXPECT_EQ(testing::Take(final_reader).at("c").cumulative_count, double{kWorkers} * 20000);
}

TEST(Fork, HandlesTakenBeforeForkWorkInChildren) {
  TempSegment seg;
  Registry registry(seg.options());
  Counter counter = registry.GetCounter("c");
  Timer timer = registry.GetTimer("t");
  PercentileTimer percentile = registry.GetPercentileTimer("p");
  Gauge gauge = registry.GetGauge("g");
  std::vector<pid_t> children;
  for (int w = 0; w < 4; ++w) {
    children.push_back(ForkChild([&] {
      for (int i = 0; i < 250; ++i) {
        counter.Increment();
        timer.Record(2ms);
        percentile.Record(20ms);
      }
      gauge.Set(7);
      return 0;
    }));
  }
  for (pid_t pid : children) EXPECT_EQ(WaitChild(pid), 0);
  testing::CollectorReader reader(registry);
  const auto r = spectator::testing::Take(reader);
  EXPECT_EQ(r.at("c").count, 1000);
  EXPECT_EQ(r.at("t").count, 1000);
  EXPECT_DOUBLE_EQ(r.at("t").total, 2.0);
  EXPECT_EQ(r.at("p").buckets[PercentileBucketIndex(20000000)], 1000u);
  EXPECT_EQ(r.at("g").value, 7);
}

TEST(Fork, ProcessesRacingToCreateTheSegmentShareOne) {
  for (int round = 0; round < 10; ++round) {
    TempSegment seg;
    Barrier start;
    std::vector<pid_t> children;
    for (int w = 0; w < kWorkers; ++w) {
      children.push_back(ForkChild([&] {
        start.Wait();
        Registry registry(seg.options());
        Counter c = registry.GetCounter("c");
        if (!c.IsLive()) return 2;
        c.Increment();
        return 0;
      }));
    }
    start.Release();
    for (pid_t pid : children) ASSERT_EQ(WaitChild(pid), 0) << "round " << round;
    Registry registry(seg.options());
    testing::CollectorReader reader(registry);
    ASSERT_EQ(spectator::testing::Take(reader).at("c").count, kWorkers) << "round " << round;
  }
}

}  // namespace
}  // namespace spectator

namespace spectator {
namespace {

// The classic client's age gauge starts at zero when it is created. Here it
// starts when the Id is first registered in the segment, by whichever worker
// comes first; a worker that registers it later (a recycled one) gets the
// same gauge and does not reset it.
TEST(Fork, AnAgeGaugeStartsAtItsFirstRegistrationNotAtEachWorkers) {
  using Clock = std::chrono::system_clock;
  TempSegment seg;
  Registry registry(seg.options());
  testing::CollectorReader reader(registry);
  auto register_in_child = [&] {
    return WaitChild(ForkChild([&] {
      Registry attached(seg.options());
      return attached.GetAgeGauge("job.lastSuccess", {{"id", "refresh"}}).IsLive() ? 0 : 1;
    }));
  };
  const auto first_before = Clock::now();
  ASSERT_EQ(register_in_child(), 0);
  const auto first_after = Clock::now();
  // The second worker must come measurably later: wait for the clock.
  while (Clock::now() < first_after + 300ms) {
  }
  ASSERT_EQ(register_in_child(), 0);
  ASSERT_EQ(register_in_child(), 0);
  const auto now = Clock::now();
  const double age = testing::Peek(reader, now).at("job.lastSuccess,id=refresh").value;
  EXPECT_GE(age, std::chrono::duration<double>(now - first_after).count());
  EXPECT_LE(age, std::chrono::duration<double>(now - first_before).count());
  EXPECT_GT(age, 0.3) << "a later registration reset the gauge";
}

}  // namespace
}  // namespace spectator
