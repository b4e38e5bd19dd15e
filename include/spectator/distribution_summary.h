#pragma once

#include <cmath>
#include <cstdint>

#include "spectator/detail/words.h"
#include "spectator/percentile_buckets.h"

namespace spectator {

class Registry;

/// A distribution summary: the distribution of amounts (response sizes, batch
/// lengths). Each step publishes count, totalAmount, totalOfSquares and max;
/// nothing when nothing was recorded.
///
/// Same thread, process and fork safety as Counter: a value handle, valid in
/// fork()ed children, that must not outlive its Registry. Record is noexcept,
/// lock-free, allocation-free and syscall-free.
class DistributionSummary {
 public:
  DistributionSummary() noexcept : words_(detail::g_noop_words) {}

  /// Records one amount. Negative, NaN and infinite amounts are ignored.
  void Record(double amount) noexcept {
    if (!(amount >= 0) || !std::isfinite(amount)) return;
    RecordAmount(words_, amount + 0.0);  // + 0.0 turns -0.0 into +0.0
  }

  bool IsLive() const noexcept { return words_ != detail::g_noop_words; }

 private:
  friend class Registry;
  friend class PercentileDistributionSummary;
  explicit DistributionSummary(detail::Word* words) noexcept : words_(words) {}

  static void RecordAmount(detail::Word* words, double amount) noexcept {
    namespace l = detail::layout;
    // relaxed, all four: independent sums/max, each paired only with the
    // collector's exchange on the same word (detail/words.h).
    words[l::kStatCount].fetch_add(1, std::memory_order_relaxed);
    detail::AddDouble(words[l::kStatTotal], amount);
    detail::AddDouble(words[l::kStatSquares], amount * amount);
    // For non-negative doubles the bit patterns order like the values, so the
    // maximum is an integer max on the bits.
    detail::MaxU64(words[l::kStatMax], detail::ToBits(amount));
  }

  detail::Word* words_;
};

/// A distribution summary that also keeps Spectator's 276 percentile buckets
/// (statistic=percentile, percentile=D%04X). The bucket value is the amount
/// truncated to an integer and clamped to [min, max] given at registration.
/// Same safety as DistributionSummary.
class PercentileDistributionSummary {
 public:
  PercentileDistributionSummary() noexcept
      : words_(detail::g_noop_words), min_(0), max_(INT64_MAX) {}

  void Record(double amount) noexcept {
    if (!(amount >= 0) || !std::isfinite(amount)) return;
    DistributionSummary::RecordAmount(words_, amount + 0.0);
    std::int64_t v = amount >= 9.2e18 ? INT64_MAX : static_cast<std::int64_t>(amount);
    v = v < min_ ? min_ : (v > max_ ? max_ : v);
    // relaxed: a bucket is an independent sum, taken by exchange.
    words_[detail::layout::kBucketsStart + PercentileBucketIndex(v)].fetch_add(
        1, std::memory_order_relaxed);
  }

  bool IsLive() const noexcept { return words_ != detail::g_noop_words; }

 private:
  friend class Registry;
  PercentileDistributionSummary(detail::Word* words, std::int64_t min, std::int64_t max) noexcept
      : words_(words), min_(min), max_(max) {}
  detail::Word* words_;
  std::int64_t min_;
  std::int64_t max_;
};

}  // namespace spectator
