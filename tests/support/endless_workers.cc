#include "support/endless_workers.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstdlib>
#include <new>
#include <string>
#include <thread>

#include "spectator/spectator.h"
#include "support/fork_helpers.h"

namespace spectator::testing {

using namespace std::chrono_literals;

EndlessWorkers::EndlessWorkers(Registry& registry, int workers, int spread) {
  if (workers > kMaxWorkers) std::abort();
  void* p =
      ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) std::abort();
  shared_ = new (p) Shared();
  for (int w = 0; w < workers; ++w) {
    pids_.push_back(ForkChild([this, &registry, w, spread] { return Work(registry, w, spread); }));
  }
}

EndlessWorkers::~EndlessWorkers() {
  if (!stopped_) StopAndCount();
  ::munmap(shared_, sizeof(Shared));
}

bool EndlessWorkers::WaitUntilRegistered(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // acquire: pairs with the workers' release increment; nothing else is
  // read through it, it only says the meters exist.
  while (shared_->registered.load(std::memory_order_acquire) < static_cast<int>(pids_.size())) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);  // a poll interval, not a synchronisation
  }
  return true;
}

std::uint64_t EndlessWorkers::StopAndCount() {
  stopped_ = true;
  shared_->stop.store(true, std::memory_order_relaxed);  // relaxed: a stop request
  totals_ = Totals{};
  for (std::size_t w = 0; w < pids_.size(); ++w) {
    EXPECT_EQ(WaitChild(pids_[w]), 0) << "worker " << w;
    // relaxed: the child has been reaped.
    totals_.iterations += shared_->done[w].load(std::memory_order_relaxed);
    totals_.timer_ns += shared_->timer_ns[w].load(std::memory_order_relaxed);
    totals_.percentile_ns += shared_->percentile_ns[w].load(std::memory_order_relaxed);
  }
  return totals_.iterations;
}

int EndlessWorkers::Work(Registry& registry, int w, int spread) {
  Counter c = registry.GetCounter("work.done", {{"kind", "exact"}});
  Timer t = registry.GetTimer("work.latency");
  PercentileTimer p = registry.GetPercentileTimer("work.percentiles");
  std::vector<Counter> spreads;
  for (int k = 0; k < spread; ++k) {
    spreads.push_back(registry.GetCounter("work.spread", {{"i", std::to_string(k)}}));
    if (!spreads.back().IsLive()) return 2;
  }
  if (!c.IsLive() || !t.IsLive() || !p.IsLive()) return 2;
  shared_->registered.fetch_add(1,
                                std::memory_order_release);  // release: see WaitUntilRegistered
  std::uint64_t n = 0, timer_ns = 0, percentile_ns = 0;
  // relaxed: a stop request; the counts are reported after it, through exit.
  while (!shared_->stop.load(std::memory_order_relaxed)) {
    c.Increment();
    // Durations vary so that two steps' totals rarely coincide even when
    // their counts do (the kill test tells a re-published batch apart
    // from a new one by count and total).
    const auto d1 = std::chrono::microseconds(1 + n % 5);
    t.Record(d1);
    timer_ns += static_cast<std::uint64_t>(std::chrono::nanoseconds(d1).count());
    const auto d2 = std::chrono::milliseconds(3 * (1 + n % 7));
    p.Record(d2);
    percentile_ns += static_cast<std::uint64_t>(std::chrono::nanoseconds(d2).count());
    if (!spreads.empty()) spreads[n % spreads.size()].Increment();
    ++n;
  }
  shared_->done[w].store(n, std::memory_order_relaxed);
  shared_->timer_ns[w].store(timer_ns, std::memory_order_relaxed);
  shared_->percentile_ns[w].store(percentile_ns, std::memory_order_relaxed);
  return 0;
}

}  // namespace spectator::testing
