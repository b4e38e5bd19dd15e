// Item 2: two fork()ed processes hammering the same counter, and two different
// counters, against the same bare atomics (one word; two words on different
// cache lines). This is the pre-fork server's real situation: every worker
// updates the same request counter.
//
// Each child spins on a start flag in shared memory, runs a fixed number of
// increments, and writes its own elapsed wall time to a pipe. The figure is
// the slower child's time divided by its operations: ns per op while both
// run at once. A fork benchmark cannot be timed by the framework's clock, so
// it uses manual time. On a loaded 2-core machine the two children are not
// always on a CPU at the same time, which would hide contention, so the run
// also reports how much of the time both were running ("overlap_pct", from
// the children's CLOCK_MONOTONIC start and end).

#include <benchmark/benchmark.h>

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "bench_util.h"
#include "spectator/registry.h"
#include "spectator/internal/reader.h"

namespace spectator::bench {
namespace {

constexpr int kProcesses = 2;
// Long enough (tens of ms) that both children are surely scheduled at once
// for most of it, short enough for 7 repetitions of 4 benchmarks.
constexpr std::int64_t kOpsPerProcess = 20'000'000;

struct ContentionFixture {
  BenchSegment segment{"contention"};
  Counter shared = segment.registry().GetCounter("bench.shared");
  Counter own[kProcesses] = {segment.registry().GetCounter("bench.own", {{"worker", "0"}}),
                             segment.registry().GetCounter("bench.own", {{"worker", "1"}})};
  // word 0: the shared bare word; words 8 and 16: one per process, each on
  // its own cache line; word 32: the start flag and ready count (its own line).
  ShmWords bare{64};
};

ContentionFixture& Fixture() {
  static auto* fixture = new ContentionFixture();  // removed by the cleanup list
  return *fixture;
}

struct Span {
  std::int64_t start_ns;
  std::int64_t end_ns;
};

std::int64_t MonotonicNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Runs `body(worker)` in kProcesses children at once; returns the slowest
// child's elapsed seconds, or a negative value when a child failed. *overlap
// is the fraction of the slowest child's time during which all children ran.
template <class Body>
double RunChildren(Body body, double* overlap) {
  std::atomic<std::uint64_t>* start = Fixture().bare.word(32);
  std::atomic<std::uint64_t>* ready = Fixture().bare.word(33);
  // relaxed: reset before any child exists; fork() orders it before them.
  start->store(0, std::memory_order_relaxed);
  ready->store(0, std::memory_order_relaxed);
  int fds[kProcesses][2];
  pid_t pids[kProcesses];
  for (int w = 0; w < kProcesses; ++w) {
    if (::pipe(fds[w]) != 0) return -1;
    pids[w] = ::fork();
    if (pids[w] < 0) return -1;
    if (pids[w] == 0) {
      ::close(fds[w][0]);
      // relaxed: a rendezvous count; the parent only waits for it to reach N.
      ready->fetch_add(1, std::memory_order_relaxed);
      // acquire: pairs with the parent's release store; nothing else is
      // published through it, but it keeps the spin honest.
      while (start->load(std::memory_order_acquire) == 0) {
      }
      Span span;
      span.start_ns = MonotonicNs();
      body(w);
      span.end_ns = MonotonicNs();
      const bool ok = ::write(fds[w][1], &span, sizeof span) == sizeof span;
      ::_exit(ok ? 0 : 1);  // no atexit handlers, no benchmark state in the child
    }
    ::close(fds[w][1]);
  }
  while (ready->load(std::memory_order_relaxed) < kProcesses) {  // relaxed: see above
    ::sched_yield();
  }
  start->store(1, std::memory_order_release);  // pairs with the children's acquire
  std::int64_t slowest = 0, last_start = 0, first_end = INT64_MAX;
  bool failed = false;
  for (int w = 0; w < kProcesses; ++w) {
    Span span{0, -1};
    if (::read(fds[w][0], &span, sizeof span) != sizeof span) span = {0, -1};
    ::close(fds[w][0]);
    int status = 0;
    ::waitpid(pids[w], &status, 0);
    failed = failed || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || span.end_ns < 0;
    slowest = std::max(slowest, span.end_ns - span.start_ns);
    last_start = std::max(last_start, span.start_ns);
    first_end = std::min(first_end, span.end_ns);
  }
  if (failed || slowest <= 0) return -1;
  *overlap = static_cast<double>(std::max<std::int64_t>(0, first_end - last_start)) /
             static_cast<double>(slowest);
  return static_cast<double>(slowest) / 1e9;
}

template <class Body>
void RunContention(benchmark::State& state, Body body) {
  double overlap = 0;
  for (auto _ : state) {
    const double seconds = RunChildren(body, &overlap);
    if (seconds < 0) {
      state.SkipWithError("a child process failed");
      return;
    }
    state.SetIterationTime(seconds);
  }
  // bench_main divides the time per iteration by this to get ns per op.
  state.counters["ops_per_iter"] = static_cast<double>(kOpsPerProcess);
  state.counters["overlap_pct"] = 100 * overlap;
}

double CounterValue(const std::string& id) {
  SegmentReader reader(Fixture().segment.registry());
  double value = -1;
  reader.Scan(SegmentReader::Mode::kPeek, std::chrono::system_clock::now(),
              [&](const MeterReading& r) {
                if (r.id == id) value = r.count;
              });
  return value;
}

void BM_Contended_BareSameWord(benchmark::State& state) {
  std::atomic<std::uint64_t>* word = Fixture().bare.word(0);
  const std::uint64_t before = word->load(std::memory_order_relaxed);  // relaxed: children exited
  RunContention(state, [word](int) {
    for (std::int64_t i = 0; i < kOpsPerProcess; ++i) word->fetch_add(1, std::memory_order_relaxed);
  });
  // No increment lost: the same check the counter gets below.
  if (word->load(std::memory_order_relaxed) - before !=
      static_cast<std::uint64_t>(state.iterations() * kProcesses * kOpsPerProcess)) {
    state.SkipWithError("lost increments on the bare word");
  }
}
BENCHMARK(BM_Contended_BareSameWord)->UseManualTime()->Iterations(1);

void BM_Contended_BareOwnLine(benchmark::State& state) {
  RunContention(state, [](int w) {
    std::atomic<std::uint64_t>* word = Fixture().bare.word(8 + 8 * w);
    for (std::int64_t i = 0; i < kOpsPerProcess; ++i) word->fetch_add(1, std::memory_order_relaxed);
  });
}
BENCHMARK(BM_Contended_BareOwnLine)->UseManualTime()->Iterations(1);

void BM_Contended_CounterSame(benchmark::State& state) {
  const double before = CounterValue("bench.shared");
  RunContention(state, [](int) {
    Counter c = Fixture().shared;
    for (std::int64_t i = 0; i < kOpsPerProcess; ++i) c.Increment();
  });
  const double added = CounterValue("bench.shared") - before;
  if (added != static_cast<double>(state.iterations() * kProcesses * kOpsPerProcess)) {
    state.SkipWithError("lost increments on the shared counter");
  }
}
BENCHMARK(BM_Contended_CounterSame)->UseManualTime()->Iterations(1);

void BM_Contended_CounterOwn(benchmark::State& state) {
  RunContention(state, [](int w) {
    Counter c = Fixture().own[w];
    for (std::int64_t i = 0; i < kOpsPerProcess; ++i) c.Increment();
  });
}
BENCHMARK(BM_Contended_CounterOwn)->UseManualTime()->Iterations(1);

}  // namespace
}  // namespace spectator::bench
