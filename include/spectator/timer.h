#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "spectator/detail/words.h"
#include "spectator/percentile_buckets.h"

namespace spectator {

class Registry;

/// A timer: how long something took. Each step publishes count, totalTime
/// (seconds), totalOfSquares (seconds^2) and max (seconds); nothing when
/// nothing was recorded.
///
/// Same thread, process and fork safety as Counter: a value handle, valid in
/// fork()ed children, that must not outlive its Registry.
///
/// Record is noexcept, lock-free, allocation-free and syscall-free: three
/// fetch_add/CAS and a load (plus a CAS when a new maximum is seen).
class Timer {
 public:
  Timer() noexcept : words_(detail::g_noop_words) {}

  /// Records one duration. Negative durations are ignored.
  void Record(std::chrono::nanoseconds duration) noexcept {
    const std::int64_t ns = duration.count();
    if (ns < 0) return;
    RecordNanos(words_, static_cast<std::uint64_t>(ns));
  }

  /// Any std::chrono duration (truncated to nanoseconds).
  template <class Rep, class Period>
  void Record(std::chrono::duration<Rep, Period> duration) noexcept {
    Record(std::chrono::duration_cast<std::chrono::nanoseconds>(duration));
  }

  bool IsLive() const noexcept { return words_ != detail::g_noop_words; }

 private:
  friend class Registry;
  friend class PercentileTimer;
  explicit Timer(detail::Word* words) noexcept : words_(words) {}

  static void RecordNanos(detail::Word* words, std::uint64_t ns) noexcept {
    namespace l = detail::layout;
    // relaxed, all four: each word is an independent sum or max that pairs
    // only with the collector's exchange on that word (detail/words.h). A
    // record may straddle a step (count taken now, total next step); the sum
    // over steps stays exact.
    words[l::kStatCount].fetch_add(1, std::memory_order_relaxed);
    words[l::kStatTotal].fetch_add(ns, std::memory_order_relaxed);
    const double d = static_cast<double>(ns);
    detail::AddDouble(words[l::kStatSquares], d * d);
    detail::MaxU64(words[l::kStatMax], ns);
  }

  detail::Word* words_;
};

/// A timer that also keeps a histogram in Spectator's 276 percentile buckets,
/// so that Atlas can compute percentiles across all processes and instances.
/// Each step publishes the Timer statistics plus, for each non-empty bucket, a
/// counter tagged statistic=percentile, percentile=T%04X.
///
/// The bucket value is clamped to [min, max] given at registration (default
/// 10 ms .. 60 s), as Spectator's PercentileTimer does. Same safety as Timer.
class PercentileTimer {
 public:
  PercentileTimer() noexcept : words_(detail::g_noop_words), min_ns_(0), max_ns_(INT64_MAX) {}

  void Record(std::chrono::nanoseconds duration) noexcept {
    const std::int64_t ns = duration.count();
    if (ns < 0) return;
    Timer::RecordNanos(words_, static_cast<std::uint64_t>(ns));
    const std::int64_t clamped = std::clamp(ns, min_ns_, max_ns_);
    // relaxed: a bucket is an independent sum, taken by exchange.
    words_[detail::layout::kBucketsStart + PercentileBucketIndex(clamped)].fetch_add(
        1, std::memory_order_relaxed);
  }

  template <class Rep, class Period>
  void Record(std::chrono::duration<Rep, Period> duration) noexcept {
    Record(std::chrono::duration_cast<std::chrono::nanoseconds>(duration));
  }

  bool IsLive() const noexcept { return words_ != detail::g_noop_words; }

 private:
  friend class Registry;
  PercentileTimer(detail::Word* words, std::int64_t min_ns, std::int64_t max_ns) noexcept
      : words_(words), min_ns_(min_ns), max_ns_(max_ns) {}
  detail::Word* words_;
  std::int64_t min_ns_;
  std::int64_t max_ns_;
};

}  // namespace spectator
