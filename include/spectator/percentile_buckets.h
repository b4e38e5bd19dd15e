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

/// The bounds from 4^k (inclusive) to 4^(k+1) are 4^k + i * delta with
/// delta = 4^k / 3; `first` is the index of the bound 4^k (275, the last
/// bucket, for 4^31 = 2^62, whose group is empty). `reciprocal` is
/// floor(2^64 / delta), so that a division by delta is a multiply.
struct PercentileGroup {
  std::uint64_t delta = 1;
  std::uint64_t reciprocal = 0;
  std::uint16_t first = 0;
};

constexpr std::array<PercentileGroup, 32> MakePercentileGroups() {
  std::array<PercentileGroup, 32> groups{};
  const auto bounds = MakePercentileBounds();
  for (std::size_t k = 1; k < groups.size(); ++k) {
    const std::int64_t base = std::int64_t{1} << (2 * k);
    std::size_t i = 0;
    while (bounds[i] < base && i + 1 < kPercentileBucketCount) ++i;
    groups[k].first = static_cast<std::uint16_t>(bounds[i] == base ? i : kPercentileBucketCount - 1);
    groups[k].delta = static_cast<std::uint64_t>(base / 3);
    groups[k].reciprocal = ~std::uint64_t{0} / groups[k].delta;  // delta is never a power of 2
  }
  return groups;
}

inline constexpr std::array<PercentileGroup, 32> kPercentileGroups = MakePercentileGroups();
}  // namespace detail

/// Upper bound of each bucket (nanoseconds for timers).
inline constexpr std::array<std::int64_t, kPercentileBucketCount> kPercentileBucketBounds =
    detail::MakePercentileBounds();

/// The bucket of `v`: exactly Spectator's `PercentileBuckets.indexOf`, so that
/// Atlas can merge our buckets with those of Java and Python services.
/// docs/protocol.md, "Percentile buckets", states the rule: v <= 0 -> 0;
/// 1..4 -> v; otherwise with base the power of 4 at or below v and
/// delta = base / 3, the index of the bound equal to base plus
/// (v - base) / delta, plus one, capped at 275. The bucket's bound is greater
/// than v (except in the last bucket), but it is not always the first such
/// bound: 15 and 16 both go to bucket 15 (bound 21).
///
/// Constant time and branch-light: the group from the leading-zero count,
/// the division by delta as a 64x64->128 multiply by its reciprocal, which
/// underestimates the quotient by at most one, and one correction.
inline std::size_t PercentileBucketIndex(std::int64_t v) noexcept {
  if (v <= 4) return v <= 0 ? 0 : static_cast<std::size_t>(v);
  __extension__ using U128 = unsigned __int128;
  const auto u = static_cast<std::uint64_t>(v);
  const int k = (63 - __builtin_clzll(u)) >> 1;  // 4^k <= v < 4^(k+1)
  const detail::PercentileGroup& g = detail::kPercentileGroups[static_cast<std::size_t>(k)];
  const std::uint64_t x = u - (std::uint64_t{1} << (2 * k));
  std::uint64_t q = static_cast<std::uint64_t>((U128{x} * g.reciprocal) >> 64);
  q += (x - q * g.delta) >= g.delta ? 1 : 0;
  const std::size_t pos = g.first + static_cast<std::size_t>(q);
  return pos >= kPercentileBucketCount - 1 ? kPercentileBucketCount - 1 : pos + 1;
}

}  // namespace spectator
