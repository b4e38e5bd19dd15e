#pragma once

#include <cmath>
#include <cstdint>

#include "spectator/detail/words.h"

namespace spectator {

class Registry;

/// A counter: the rate of something happening, published each step as the
/// sum of the step's deltas (statistic=count).
///
/// A Counter is a small value handle pointing at its slot in the segment; copy
/// it freely. Safe to call from any thread of any process attached to the same
/// segment; handles stay valid after fork() in the child. A handle must not
/// outlive the Registry it came from.
///
/// Updates are noexcept, lock-free, allocation-free and syscall-free.
/// A default-constructed Counter, or one the registry could not place (full
/// segment, invalid Id), is a no-op.
class Counter {
 public:
  Counter() noexcept : words_(detail::g_noop_words) {}

  /// Adds one. A single relaxed fetch_add.
  void Increment() noexcept {
    // relaxed: atomicity is all that is needed; pairs with the collector's
    // exchange on the same word (see detail/words.h).
    words_[detail::layout::kCounterInt].fetch_add(1, std::memory_order_relaxed);
  }

  /// Adds `delta`. Ignored unless delta > 0 and finite (as in Spectator).
  /// Whole deltas below 2^53 are added exactly to an integer word; fractional
  /// ones to a double word.
  void Add(double delta) noexcept {
    if (!(delta > 0) || !std::isfinite(delta)) return;
    if (delta < 9007199254740992.0 && delta == std::floor(delta)) {
      // relaxed: see Increment.
      words_[detail::layout::kCounterInt].fetch_add(static_cast<std::uint64_t>(delta),
                                                    std::memory_order_relaxed);
    } else {
      detail::AddDouble(words_[detail::layout::kCounterFrac], delta);
    }
  }

  /// False for a no-op counter.
  bool IsLive() const noexcept { return words_ != detail::g_noop_words; }

 private:
  friend class Registry;
  explicit Counter(detail::Word* words) noexcept : words_(words) {}
  detail::Word* words_;
};

/// A monotonic counter: samples a cumulative count kept elsewhere (bytes sent
/// by the kernel, say). The collector publishes the increase since the value it
/// saw at the previous step (statistic=count); the first sample and a decrease
/// publish nothing.
///
/// Same thread, process and fork safety as Counter.
class MonotonicCounter {
 public:
  MonotonicCounter() noexcept : words_(detail::g_noop_words) {}

  /// Records the current cumulative value. NaN is ignored.
  void Set(double total) noexcept {
    if (std::isnan(total)) return;
    // relaxed: a single word carrying only itself; the collector loads it
    // with relaxed order at each step and any recent value is correct.
    words_[detail::layout::kMonoValue].store(detail::ToBits(total), std::memory_order_relaxed);
  }

  bool IsLive() const noexcept { return words_ != detail::g_noop_words; }

 private:
  friend class Registry;
  explicit MonotonicCounter(detail::Word* words) noexcept : words_(words) {}
  detail::Word* words_;
};

}  // namespace spectator
