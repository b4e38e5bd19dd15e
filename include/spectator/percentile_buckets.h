#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace spectator {

/// Number of percentile buckets, as in Netflix Spectator.
inline constexpr std::size_t kPercentileBucketCount = 276;

namespace detail {
constexpr std::array<std::int64_t, kPercentileBucketCount> MakePercentileBounds() {
  std::array<std::int64_t, kPercentileBucketCount> bounds{};
  std::size_t n = 0;
  bounds[n++] = 1;
  bounds[n++] = 2;
  bounds[n++] = 3;
  for (int exp = 2; exp <= 60; exp += 2) {
    const std::int64_t current = std::int64_t{1} << exp;
    const std::int64_t delta = current / 3;
    const std::int64_t next = (current << 2) - delta;
    for (std::int64_t v = current; v < next; v += delta) bounds[n++] = v;
  }
  bounds[n++] = INT64_MAX;
  return bounds;
}

// Index of the first bucket of each power-of-4 group (2^exp, exp = 0, 2, ...).
constexpr std::array<std::uint16_t, 32> MakeGroupStarts() {
  std::array<std::uint16_t, 32> starts{};
  const auto bounds = MakePercentileBounds();
  for (std::size_t g = 1; g < 31; ++g) {
    const std::int64_t c = std::int64_t{1} << (2 * g);
    std::size_t i = 0;
    while (bounds[i] < c) ++i;
    starts[g] = static_cast<std::uint16_t>(i);
  }
  return starts;
}
}  // namespace detail

/// Upper bound of each bucket (nanoseconds for timers).
inline constexpr std::array<std::int64_t, kPercentileBucketCount> kPercentileBucketBounds =
    detail::MakePercentileBounds();

/// Index of the first bucket whose upper bound is >= v (0 for v <= 1).
/// Constant time: the power-of-4 group comes from the leading-zero count, the
/// position inside it from a multiply and shift, corrected by at most a step
/// or two against the bound table.
inline std::size_t PercentileBucketIndex(std::int64_t v) noexcept {
  static constexpr auto kStarts = detail::MakeGroupStarts();
  if (v <= 4) return v <= 1 ? 0 : static_cast<std::size_t>(v - 1);
  const auto u = static_cast<std::uint64_t>(v);
  const int log2 = 63 - __builtin_clzll(u);
  const int exp = log2 & ~1;  // 2^exp <= v < 4 * 2^exp
  if (exp > 60) return kPercentileBucketCount - 1;
  const std::uint64_t base = std::uint64_t{1} << exp;
  // Inside the group the bounds are base + k * (base / 3); estimate k.
  std::size_t i = kStarts[exp / 2] + static_cast<std::size_t>(((u - base) * 3) >> exp);
  if (i > kPercentileBucketCount - 1) i = kPercentileBucketCount - 1;
  while (kPercentileBucketBounds[i] < v) ++i;
  while (i > 0 && kPercentileBucketBounds[i - 1] >= v) --i;
  return i;
}

}  // namespace spectator
