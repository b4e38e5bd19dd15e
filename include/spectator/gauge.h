#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>

#include "spectator/detail/words.h"

namespace spectator {

class Registry;

/// A gauge: a value sampled at a point in time (queue length, busy workers).
/// Published each step as the last value set (statistic=gauge). A gauge that
/// has not been set for 15 minutes is no longer published; setting NaN clears
/// it at once.
///
/// Same thread, process and fork safety as Counter: a value handle, valid in
/// fork()ed children, that must not outlive its Registry. When several
/// processes set the same gauge, the last Set wins.
///
/// Set is noexcept, lock-free, allocation-free and syscall-free: no clock is
/// read; the collector notes when it sees the update sequence change.
class Gauge {
 public:
  Gauge() noexcept : words_(detail::g_noop_words) {}

  void Set(double value) noexcept {
    namespace l = detail::layout;
    // relaxed store, then release increment: a collector that reads the new
    // sequence with acquire (src/reader.cc) also sees this value or a later one.
    words_[l::kGaugeValue].store(detail::ToBits(value), std::memory_order_relaxed);
    words_[l::kGaugeSeq].fetch_add(1, std::memory_order_release);
  }

  bool IsLive() const noexcept { return words_ != detail::g_noop_words; }

 private:
  friend class Registry;
  explicit Gauge(detail::Word* words) noexcept : words_(words) {}
  detail::Word* words_;
};

/// A max gauge: the largest value set during the step (statistic=max), reset
/// every step. NaN is ignored. Same safety as Gauge; Set is one load plus a
/// CAS when the value is a new maximum.
class MaxGauge {
 public:
  MaxGauge() noexcept : words_(detail::g_noop_words) {}

  void Set(double value) noexcept {
    if (std::isnan(value)) return;
    detail::MaxDouble(words_[detail::layout::kMaxGaugeValue], value);
  }

  bool IsLive() const noexcept { return words_ != detail::g_noop_words; }

 private:
  friend class Registry;
  explicit MaxGauge(detail::Word* words) noexcept : words_(words) {}
  detail::Word* words_;
};

/// An age gauge: the time since an event (last successful refresh, say),
/// published as seconds (statistic=gauge). The age starts at 0 when the Id is
/// first registered in the segment, so that a "time since last success" alert
/// fires for a task that never succeeds; getting the same age gauge again (in
/// a recycled worker, say) does not reset it. Same safety as Gauge. Reset
/// reads the wall clock through the vDSO (clock_gettime(CLOCK_REALTIME)),
/// which on Linux is not a syscall.
class AgeGauge {
 public:
  AgeGauge() noexcept : words_(detail::g_noop_words) {}

  /// The event happened now.
  void Reset() noexcept { Set(std::chrono::system_clock::now()); }

  /// The event happened at `when`.
  void Set(std::chrono::system_clock::time_point when) noexcept {
    const auto ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count();
    // 0 means "never set": an event at or before the epoch is stored as 1 ns.
    const std::uint64_t stored = ns > 0 ? static_cast<std::uint64_t>(ns) : 1;
    // relaxed: a single self-contained word; the collector loads it relaxed.
    words_[detail::layout::kAgeGaugeTimeNs].store(stored, std::memory_order_relaxed);
  }

  bool IsLive() const noexcept { return words_ != detail::g_noop_words; }

 private:
  friend class Registry;
  explicit AgeGauge(detail::Word* words) noexcept : words_(words) {}
  detail::Word* words_;
};

}  // namespace spectator
