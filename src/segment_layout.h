#pragma once

// The bytes of a spectator-shm segment. See docs/segment_format.md.
//
// Process safety
// --------------
// Any number of processes map the segment read-write: workers register and
// update meters, one collector takes step values, any number of readers peek.
// Nothing in the segment is a pointer; everything is an offset or an index,
// because every process maps the segment at its own address.
//
// Invariants
// ----------
// 1. The header fields above `ready` are written once, by the creator, before
//    it stores `ready = kReadyValue` with release order; they never change
//    afterwards. An attacher reads them only after an acquire load of `ready`
//    returns kReadyValue.
// 2. An entry's state moves only forward: EMPTY -> CLAIMED(token) -> READY,
//    or CLAIMED -> ABANDONED when no process holds the claim's lock (the
//    claimer died). Each move is a single atomic operation on `state`.
// 3. Only the claimer (the process named in CLAIMED) writes the entry's plain
//    fields and initialises its value words, and it does so before the release
//    store of READY. After READY the entry is immutable; a reader reads its
//    plain fields only after an acquire load of `state` returned READY.
// 4. `hash` is written once by the claimer (hash | 1, so never 0); a prober
//    that reads a non-zero hash different from its own may skip the entry,
//    because a CLAIMED entry ends either READY with that hash or ABANDONED.
// 5. Value words are never freed or reused: a block belongs to one entry for
//    the life of the segment. Workers update them with atomic RMWs; only the
//    collector resets them (exchange) and writes the collector-owned words.
// 6. Header counters (meters, values_used, overflow, ...) only grow, except
//    that a failed claim gives back its reservation of `meters`.
// 7. The reserve (reserve_meters entries, reserve_words value words,
//    reserve_id_bytes of arena) is used only by overflow meters: when an Id
//    cannot be placed, its updates go to the meter of the same name and type
//    whose only tag is spectator.overflow=true, placed from the reserve; when
//    even that cannot be placed, to one of nine per-type overflow meters, for
//    which the last part of the reserve is kept. An Id's canonical bytes live
//    in the arena, written once by the claimer before READY.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "spectator/detail/words.h"
#include "spectator/id.h"
#include "spectator/meter_type.h"
#include "spectator/percentile_buckets.h"
#include "spectator/version.h"

namespace spectator::internal {

using detail::Word;

/// "SPECTSHM" read as a little-endian 64-bit integer.
inline constexpr std::uint64_t kMagic = 0x4D48535443455053ULL;
/// "REDY": a specific value rather than 1, so stray bytes are unlikely to
/// look initialised.
inline constexpr std::uint32_t kReadyValue = 0x59444552U;

inline constexpr std::size_t kCacheLine = 64;

struct alignas(kCacheLine) SegmentHeader {
  // --- immutable after `ready` (invariant 1) ---
  std::atomic<std::uint64_t> magic;  // kMagic; atomic because attachers read it before `ready`
  std::uint32_t layout_version;      // kLayoutVersion
  std::uint32_t header_size;         // sizeof(SegmentHeader)
  std::uint64_t total_size;          // bytes of the whole segment == file size
  std::uint32_t entry_size;          // sizeof(Entry)
  std::uint32_t table_slots;         // power of two
  std::uint32_t max_meters;          // entries for Ids of their own
  std::uint32_t reserve_meters;      // entries for overflow meters (invariant 7)
  std::uint64_t value_words;     // value words for meters of their own: [0, value_words)
  std::uint64_t entries_offset;  // byte offset of Entry[table_slots]
  std::uint64_t values_offset;   // byte offset of Word[value_words + reserve_words]
  // --- cache line 1: written by workers ---
  std::uint64_t created_unix_ns;     // immutable after `ready`
  std::atomic<std::uint32_t> ready;  // kReadyValue once initialised (release)
  std::uint32_t reserved1;
  std::atomic<std::uint64_t> meters;            // entries claimed for Ids of their own (reservations)
  std::atomic<std::uint64_t> values_used;       // bump allocator of [0, value_words), in words
  std::atomic<std::uint64_t> overflow;          // registrations without a place of their own
  std::atomic<std::uint64_t> invalid_ids;       // registrations refused: invalid Id
  std::atomic<std::uint64_t> type_mismatches;   // registrations refused: other type
  std::atomic<std::uint64_t> recovered_claims;  // CLAIMED entries found dead -> ABANDONED
  // --- cache line 2: written by the collector (and the allocators by workers) ---
  std::atomic<std::int64_t> collector_pid;
  std::atomic<std::uint64_t> collector_heartbeat_unix_ns;
  std::atomic<std::uint64_t> claim_tokens;   // last claim token handed out (registration only)
  std::atomic<std::uint64_t> ids_used;       // bump allocator of the Id arena [0, id_bytes)
  std::atomic<std::uint64_t> overflow_meters;     // entries claimed from the reserve
  std::atomic<std::uint64_t> reserve_words_used;  // bump allocator of the reserve values
  std::atomic<std::uint64_t> reserve_ids_used;    // bump allocator of the reserve arena
  std::atomic<std::uint64_t> published;  // entries made READY, incremented after each (release)
  // --- cache line 3: immutable after `ready` ---
  std::uint64_t reserve_words;   // value words of the reserve: [value_words, + reserve_words)
  std::uint64_t ids_offset;      // byte offset of the Id arena
  std::uint64_t id_bytes;        // arena bytes for Ids of their own: [0, id_bytes)
  std::uint64_t reserve_id_bytes;  // arena bytes of the reserve: [id_bytes, + reserve_id_bytes)
  std::uint8_t reserved3[32];
};

/// Entry states (top two bits of Entry::state).
enum class EntryKind : std::uint64_t { kEmpty = 0, kClaimed = 1, kReady = 2, kAbandoned = 3 };

inline constexpr int kKindShift = 62;
inline constexpr std::uint64_t kReadyState = std::uint64_t{2} << kKindShift;
inline constexpr std::uint64_t kAbandonedState = std::uint64_t{3} << kKindShift;

inline EntryKind KindOf(std::uint64_t state) { return EntryKind(state >> kKindShift); }

/// Claim tokens are 1 .. kMaxClaimToken; a token is also the byte offset in
/// the segment file that the claimer write-locks while it claims (process.h),
/// so it must fit a signed file offset and never be byte 0 (the holders' lock).
inline constexpr std::uint64_t kMaxClaimToken = (std::uint64_t{1} << 62) - 1;

/// CLAIMED(token): a claim by whoever holds the lock of `token`. Liveness is
/// the lock, not a pid, so it is right across pid namespaces and pid reuse.
inline std::uint64_t ClaimedState(std::uint64_t token) {
  return (std::uint64_t{1} << kKindShift) | (token & kMaxClaimToken);
}
inline std::uint64_t ClaimToken(std::uint64_t state) { return state & kMaxClaimToken; }

/// Entry flags.
inline constexpr std::uint8_t kOverflowMeter = 1;  // placed from the reserve (invariant 7)

/// One slot of the Id table: 32 bytes, two to a cache line. The canonical
/// Id lives in the arena, the meter's words in the value area.
struct alignas(32) Entry {
  std::atomic<std::uint64_t> state;  // EntryKind in bits 63..62 (invariant 2)
  std::atomic<std::uint64_t> hash;   // hash | 1, 0 until written (invariant 4)
  // --- written by the claimer before READY, immutable after (invariant 3) ---
  std::uint32_t id_offset;    // first byte of the canonical Id in the arena, / 8
  std::uint32_t value_line;   // first value word / 8 (a value block starts on a line)
  std::uint32_t value_words;  // 0: no storage (value area was full)
  std::uint16_t id_len;       // bytes of the canonical Id
  std::uint8_t type;          // MeterType
  std::uint8_t flags;         // kOverflowMeter
};

static_assert(std::is_standard_layout_v<SegmentHeader>);
static_assert(std::is_standard_layout_v<Entry>);
static_assert(sizeof(SegmentHeader) == 256);
static_assert(offsetof(SegmentHeader, magic) == 0 && offsetof(SegmentHeader, layout_version) == 8,
              "magic and layout version keep their places in every layout version");
static_assert(sizeof(Entry) == 32);
static_assert(alignof(Entry) == 32);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(std::atomic<std::int64_t>::is_always_lock_free);

/// Percentile meters keep their bucket clamp range in two words after the
/// buckets (written by the claimer before READY, immutable after).
inline constexpr std::uint32_t kParamMinWord = detail::layout::kBucketsStart + 276;
inline constexpr std::uint32_t kParamMaxWord = kParamMinWord + 1;

/// Value words a meter of `type` occupies: a whole number of cache lines.
inline constexpr std::uint32_t kPercentileWords = 576;  // 72 lines
inline std::uint32_t ValueWordsFor(MeterType type) {
  switch (type) {
    case MeterType::kPercentileTimer:
    case MeterType::kPercentileDistributionSummary:
      return kPercentileWords;
    case MeterType::kTimer:
    case MeterType::kDistributionSummary:
      return 2 * detail::layout::kWordsPerLine;
    default:
      return detail::layout::kWordsPerLine;
  }
}
static_assert(kParamMaxWord + 1 == detail::layout::kCumulativeBucketsStart);
static_assert(detail::layout::kCumulativeBucketsStart + kPercentileBucketCount <= kPercentileWords);
static_assert(detail::kNoopWords >= kPercentileWords, "the no-op sink must hold the largest meter");

/// The layout derived from capacities. Used by the creator to size the file
/// and by an attacher to check that a header is self-consistent.
///
/// The reserve, for overflow meters (invariant 7): max(16, max_meters / 16)
/// entries, each with two value lines and 64 arena bytes on average, plus
/// the nine per-type overflow meters placed at creation.
struct Layout {
  std::uint32_t table_slots = 0;
  std::uint32_t reserve_meters = 0;
  std::uint64_t reserve_words = 0;
  std::uint64_t id_bytes = 0;
  std::uint64_t reserve_id_bytes = 0;
  std::uint64_t entries_offset = 0;
  std::uint64_t values_offset = 0;
  std::uint64_t ids_offset = 0;
  std::uint64_t total_size = 0;
};

/// The part of the reserve kept for the nine per-type overflow meters (their
/// value blocks: one line, two for a timer or summary, 576 words for a
/// percentile meter; and arena room for
/// their Ids four times over: a registration race can waste a loser's bytes).
inline constexpr std::uint32_t kPerTypeMeters = 9;
inline constexpr std::uint64_t kPerTypeWords = 5 * 8 + 2 * 16 + 2 * 576;
inline constexpr std::uint64_t kPerTypeIdBytes = kPerTypeMeters * 64 * 4;

/// Arena bytes provisioned per meter: Ids average about half of it (a name
/// and three tags); a segment of long Ids fills its arena before its table.
inline constexpr std::uint64_t kIdBytesPerMeter = 128;

/// Computes the layout, or returns false when the capacities are out of range
/// (checked with overflow-safe arithmetic; they may come from a hostile header).
bool ComputeLayout(std::uint32_t max_meters, std::uint64_t value_words, Layout* out);

inline constexpr std::uint32_t kMaxMeters = std::uint32_t{1} << 24;      // 16M
inline constexpr std::uint64_t kMaxValueWords = std::uint64_t{1} << 33;  // 64 GiB

}  // namespace spectator::internal
