// Pins the byte layout of the shared structures. If this fails, the segment
// format changed: bump kLayoutVersion, update docs/segment_format.md, and
// then update these numbers.
#include <gtest/gtest.h>

#include <cstddef>

#include "segment_layout.h"
#include "spectator/version.h"

namespace spectator::internal {
namespace {

TEST(Layout, VersionTwo) {
  ASSERT_EQ(kLayoutVersion, 2u) << "layout changed: update the offsets pinned below";
  EXPECT_EQ(kMagic, 0x4D48535443455053ULL);
  EXPECT_EQ(kReadyValue, 0x59444552U);
}

TEST(Layout, HeaderOffsets) {
  EXPECT_EQ(sizeof(SegmentHeader), 256u);
  EXPECT_EQ(offsetof(SegmentHeader, magic), 0u);
  EXPECT_EQ(offsetof(SegmentHeader, layout_version), 8u);
  EXPECT_EQ(offsetof(SegmentHeader, header_size), 12u);
  EXPECT_EQ(offsetof(SegmentHeader, total_size), 16u);
  EXPECT_EQ(offsetof(SegmentHeader, entry_size), 24u);
  EXPECT_EQ(offsetof(SegmentHeader, table_slots), 28u);
  EXPECT_EQ(offsetof(SegmentHeader, max_meters), 32u);
  EXPECT_EQ(offsetof(SegmentHeader, value_words), 40u);
  EXPECT_EQ(offsetof(SegmentHeader, entries_offset), 48u);
  EXPECT_EQ(offsetof(SegmentHeader, values_offset), 56u);
  EXPECT_EQ(offsetof(SegmentHeader, created_unix_ns), 64u);
  EXPECT_EQ(offsetof(SegmentHeader, ready), 72u);
  EXPECT_EQ(offsetof(SegmentHeader, meters), 80u);
  EXPECT_EQ(offsetof(SegmentHeader, values_used), 88u);
  EXPECT_EQ(offsetof(SegmentHeader, overflow), 96u);
  EXPECT_EQ(offsetof(SegmentHeader, invalid_ids), 104u);
  EXPECT_EQ(offsetof(SegmentHeader, type_mismatches), 112u);
  EXPECT_EQ(offsetof(SegmentHeader, recovered_claims), 120u);
  EXPECT_EQ(offsetof(SegmentHeader, collector_pid), 128u);
  EXPECT_EQ(offsetof(SegmentHeader, collector_heartbeat_unix_ns), 136u);
  EXPECT_EQ(offsetof(SegmentHeader, claim_tokens), 144u);
  EXPECT_EQ(offsetof(SegmentHeader, ids_used), 152u);
  EXPECT_EQ(offsetof(SegmentHeader, overflow_meters), 160u);
  EXPECT_EQ(offsetof(SegmentHeader, reserve_words_used), 168u);
  EXPECT_EQ(offsetof(SegmentHeader, reserve_ids_used), 176u);
  EXPECT_EQ(offsetof(SegmentHeader, published), 184u);
  EXPECT_EQ(offsetof(SegmentHeader, reserve_meters), 36u);
  EXPECT_EQ(offsetof(SegmentHeader, reserve_words), 192u);
  EXPECT_EQ(offsetof(SegmentHeader, ids_offset), 200u);
  EXPECT_EQ(offsetof(SegmentHeader, id_bytes), 208u);
  EXPECT_EQ(offsetof(SegmentHeader, reserve_id_bytes), 216u);
}

TEST(Layout, EntryOffsets) {
  EXPECT_EQ(sizeof(Entry), 32u);
  EXPECT_EQ(alignof(Entry), 32u);
  EXPECT_EQ(offsetof(Entry, state), 0u);
  EXPECT_EQ(offsetof(Entry, hash), 8u);
  EXPECT_EQ(offsetof(Entry, id_offset), 16u);
  EXPECT_EQ(offsetof(Entry, value_line), 20u);
  EXPECT_EQ(offsetof(Entry, value_words), 24u);
  EXPECT_EQ(offsetof(Entry, id_len), 28u);
  EXPECT_EQ(offsetof(Entry, type), 30u);
  EXPECT_EQ(offsetof(Entry, flags), 31u);
  EXPECT_EQ(kParamMinWord, 292u);
  EXPECT_EQ(kParamMaxWord, 293u);
}

TEST(Layout, StateWordEncoding) {
  const std::uint64_t s = ClaimedState(kMaxClaimToken);
  EXPECT_EQ(KindOf(s), EntryKind::kClaimed);
  EXPECT_EQ(ClaimToken(s), 0x3FFFFFFFFFFFFFFFULL);
  EXPECT_EQ(ClaimedState(1), 0x4000000000000001ULL);
  EXPECT_EQ(kReadyState, 0x8000000000000000ULL);
  EXPECT_EQ(kAbandonedState, 0xC000000000000000ULL);
}

TEST(Layout, ValueWordsPerMeterType) {
  EXPECT_EQ(ValueWordsFor(MeterType::kCounter), 8u);
  EXPECT_EQ(ValueWordsFor(MeterType::kTimer), 16u);
  EXPECT_EQ(ValueWordsFor(MeterType::kDistributionSummary), 16u);
  EXPECT_EQ(ValueWordsFor(MeterType::kGauge), 8u);
  EXPECT_EQ(ValueWordsFor(MeterType::kMonotonicCounter), 8u);
  EXPECT_EQ(ValueWordsFor(MeterType::kPercentileTimer), 576u);
  EXPECT_EQ(ValueWordsFor(MeterType::kPercentileDistributionSummary), 576u);
  namespace w = detail::layout;
  EXPECT_EQ(w::kCounterCumulativeInt, 4u);
  EXPECT_EQ(w::kCounterCumulativeFrac, 5u);
  EXPECT_EQ(w::kStatCumulativeCount, 8u);
  EXPECT_EQ(w::kStatCumulativeTotal, 9u);
  EXPECT_EQ(w::kMonoCumulative, 3u);
  EXPECT_EQ(w::kBucketsStart, 16u);
  EXPECT_EQ(w::kCumulativeBucketsStart, 294u);
}

TEST(Layout, SizesFromCapacities) {
  Layout l;
  ASSERT_TRUE(ComputeLayout(8192, 1 << 20, &l));
  EXPECT_EQ(l.reserve_meters, 512u + 9u);  // max_meters / 16, plus the per-type meters
  EXPECT_EQ(l.table_slots, 16384u);        // >= (8192 + 521) * 4/3, power of two
  EXPECT_EQ(l.entries_offset, 256u);
  EXPECT_EQ(l.values_offset, 256u + 16384u * 32u);
  EXPECT_EQ(l.reserve_words, 512u * 16u + 1224u);
  EXPECT_EQ(l.ids_offset, l.values_offset + ((1u << 20) + l.reserve_words) * 8u);
  EXPECT_EQ(l.id_bytes, 8192u * 128u);
  EXPECT_EQ(l.reserve_id_bytes, 512u * 64u + 2304u);
  EXPECT_EQ(l.total_size, l.ids_offset + l.id_bytes + l.reserve_id_bytes);
  EXPECT_EQ(l.total_size, 10072128u);
  ASSERT_TRUE(ComputeLayout(4, 1 << 10, &l));
  EXPECT_EQ(l.reserve_meters, 16u + 9u) << "at least 16 overflow meters";
  EXPECT_FALSE(ComputeLayout(0, 1 << 20, &l));
  EXPECT_FALSE(ComputeLayout(kMaxMeters + 1, 1 << 20, &l));
  EXPECT_FALSE(ComputeLayout(16, 7, &l));
  EXPECT_FALSE(ComputeLayout(16, kMaxValueWords + 1, &l));
}

}  // namespace
}  // namespace spectator::internal
