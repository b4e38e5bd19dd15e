#include "spectator/percentile_buckets.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

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

std::size_t ReferenceIndex(std::int64_t v) {
  const auto& b = kPercentileBucketBounds;
  return static_cast<std::size_t>(std::lower_bound(b.begin(), b.end(), v) - b.begin());
}

TEST(PercentileBuckets, IndexOfEveryBoundAndItsNeighbours) {
  for (std::size_t i = 0; i < kPercentileBucketCount; ++i) {
    const std::int64_t bound = kPercentileBucketBounds[i];
    EXPECT_EQ(PercentileBucketIndex(bound), i) << bound;
    if (bound > 1) {
      EXPECT_EQ(PercentileBucketIndex(bound - 1), ReferenceIndex(bound - 1));
    }
    if (bound < INT64_MAX) {
      EXPECT_EQ(PercentileBucketIndex(bound + 1), ReferenceIndex(bound + 1));
    }
  }
}

TEST(PercentileBuckets, IndexMatchesBinarySearchOnRandomValues) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 200000; ++i) {
    // Spread over all magnitudes: a random shift of a random number.
    const std::int64_t v = static_cast<std::int64_t>(rng() >> (1 + rng() % 63));
    ASSERT_EQ(PercentileBucketIndex(v), ReferenceIndex(v)) << v;
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
