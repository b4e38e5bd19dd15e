#include "spectator/percentile_buckets.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <utility>
#include <vector>

namespace spectator {
namespace {

TEST(PercentileBuckets, BoundsMatchPinnedValues) {
  const auto& b = kPercentileBucketBounds;
  ASSERT_EQ(b.size(), 276u);
  EXPECT_EQ(b[0], 1);
  EXPECT_EQ(b[3], 4);
  EXPECT_EQ(b[13], 14);
  EXPECT_EQ(b[14], 16);
  EXPECT_EQ(b[15], 21);
  EXPECT_EQ(b[24], 85);
  EXPECT_EQ(b[50], 4096);
  EXPECT_EQ(b[100], 11184809);
  EXPECT_EQ(b[150], 22906492245);
  EXPECT_EQ(b[200], 52776558133246);
  EXPECT_EQ(b[274], 4227378850225105576);
  EXPECT_EQ(b[275], 9223372036854775807);
}

TEST(PercentileBuckets, BoundsStrictlyIncrease) {
  const auto& b = kPercentileBucketBounds;
  EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
  EXPECT_EQ(std::adjacent_find(b.begin(), b.end()), b.end());
}

// Spectator's PercentileBuckets.indexOf as written there, with a real
// division and the power-of-4 positions found by search: slow and plain, the
// oracle for the constant-time version.
std::size_t SpectatorIndexOf(std::int64_t v) {
  const auto& b = kPercentileBucketBounds;
  if (v <= 0) return 0;
  if (v <= 4) return static_cast<std::size_t>(v);
  int shift = 63 - __builtin_clzll(static_cast<std::uint64_t>(v));
  if (shift % 2 != 0) --shift;
  const std::int64_t base = std::int64_t{1} << shift;
  const std::int64_t delta = base / 3;
  const auto offset = static_cast<std::size_t>((v - base) / delta);
  const auto at = std::find(b.begin(), b.end(), base);
  const std::size_t power_of_4_index =
      at == b.end() ? kPercentileBucketCount - 1 : static_cast<std::size_t>(at - b.begin());
  const std::size_t pos = offset + power_of_4_index;
  return pos >= kPercentileBucketCount - 1 ? kPercentileBucketCount - 1 : pos + 1;
}

// Pairs taken from Spectator's own code and tests (docs/protocol.md).
constexpr std::pair<std::int64_t, std::size_t> kReferencePairs[] = {
    {0, 0},          {1, 1},           {4, 4},           {5, 5},
    {14, 14},        {15, 15},         {16, 15},         {20, 15},
    {21, 16},        {63, 24},         {64, 24},         {255, 33},
    {1023, 42},      {12345, 57},      {1000000, 86},    {10000000, 100},
    {11184809, 101}, {60000000000, 157}, {INT64_MAX, 275},
};

TEST(PercentileBuckets, ReferencePairsFromSpectator) {
  for (const auto& [value, index] : kReferencePairs) {
    EXPECT_EQ(PercentileBucketIndex(value), index) << value;
    EXPECT_EQ(SpectatorIndexOf(value), index) << value;
  }
}

TEST(PercentileBuckets, EveryBoundAndItsNeighbours) {
  for (std::size_t i = 0; i < kPercentileBucketCount; ++i) {
    const std::int64_t bound = kPercentileBucketBounds[i];
    for (const std::int64_t v : {bound - 1, bound, bound == INT64_MAX ? bound : bound + 1}) {
      ASSERT_EQ(PercentileBucketIndex(v), SpectatorIndexOf(v)) << v;
    }
  }
}

TEST(PercentileBuckets, PowersOfTwoAndFourAndTheirNeighbours) {
  for (int e = 0; e < 63; ++e) {
    const std::int64_t p = std::int64_t{1} << e;
    for (const std::int64_t v : {p - 1, p, p + 1}) {
      ASSERT_EQ(PercentileBucketIndex(v), SpectatorIndexOf(v)) << v;
    }
  }
  // Every value of the small groups, where the division rounds most.
  for (std::int64_t v = -3; v < 100000; ++v) {
    ASSERT_EQ(PercentileBucketIndex(v), SpectatorIndexOf(v)) << v;
  }
}

TEST(PercentileBuckets, RandomValuesMatchTheOracleAndTheBoundIsAbove) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 3000000; ++i) {
    // Spread over all magnitudes below 2^63: a random shift of a random number.
    const auto v = static_cast<std::int64_t>(rng() >> (1 + rng() % 63));
    const std::size_t index = PercentileBucketIndex(v);
    ASSERT_EQ(index, SpectatorIndexOf(v)) << v;
    if (index < kPercentileBucketCount - 1) {
      ASSERT_GT(kPercentileBucketBounds[index], v) << v;
    }
  }
}

TEST(PercentileBuckets, IndexNeverDecreasesAsValuesGrow) {
  std::mt19937_64 rng(7);
  std::vector<std::int64_t> values;
  for (int i = 0; i < 1000000; ++i) values.push_back(static_cast<std::int64_t>(rng() >> (1 + rng() % 63)));
  for (const std::int64_t b : kPercentileBucketBounds) {
    values.push_back(b);
    values.push_back(b - 1);
  }
  std::sort(values.begin(), values.end());
  std::size_t previous = 0;
  for (const std::int64_t v : values) {
    const std::size_t index = PercentileBucketIndex(v);
    ASSERT_GE(index, previous) << v;
    previous = index;
  }
}

TEST(PercentileBuckets, NonPositiveValuesGoToTheFirstBucket) {
  EXPECT_EQ(PercentileBucketIndex(0), 0u);
  EXPECT_EQ(PercentileBucketIndex(-5), 0u);
  EXPECT_EQ(PercentileBucketIndex(INT64_MIN), 0u);
  EXPECT_EQ(PercentileBucketIndex(INT64_MAX), 275u);
}

}  // namespace
}  // namespace spectator
