#pragma once

// fork()ed workers that update a few meters as fast as they can until told
// to stop, then say exactly what they did: the load of the collector process,
// reliability and soak tests.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

#include "spectator/registry.h"

namespace spectator::testing {

/// Workers that update, until told to stop, a counter `work.done{kind=exact}`,
/// a timer `work.latency` (1..5 µs), a percentile timer `work.percentiles`
/// (3..21 ms) and, optionally, one of `spread` counters `work.spread{i=K}`
/// per iteration; then say what they did through an anonymous shared mapping.
/// The children never use gtest assertions; they report through exit codes.
class EndlessWorkers {
 public:
  struct Totals {
    std::uint64_t iterations = 0;  // = counter increments = timer and percentile records
    std::uint64_t timer_ns = 0;
    std::uint64_t percentile_ns = 0;
  };

  EndlessWorkers(Registry& registry, int workers, int spread = 0);
  ~EndlessWorkers();
  EndlessWorkers(const EndlessWorkers&) = delete;
  EndlessWorkers& operator=(const EndlessWorkers&) = delete;

  /// Waits until every worker holds its handles (all its meters exist).
  bool WaitUntilRegistered(std::chrono::milliseconds timeout);

  /// Stops the workers and returns the number of iterations they did; the
  /// other totals are in totals(). Their stores happen-before waitpid's return.
  std::uint64_t StopAndCount();
  const Totals& totals() const { return totals_; }

 private:
  static constexpr int kMaxWorkers = 16;
  struct Shared {
    std::atomic<bool> stop{false};
    std::atomic<int> registered{0};
    std::atomic<std::uint64_t> done[kMaxWorkers];
    std::atomic<std::uint64_t> timer_ns[kMaxWorkers];
    std::atomic<std::uint64_t> percentile_ns[kMaxWorkers];
  };

  int Work(Registry& registry, int w, int spread);  // in the child

  Shared* shared_;
  std::vector<pid_t> pids_;
  bool stopped_ = false;
  Totals totals_;
};

}  // namespace spectator::testing
