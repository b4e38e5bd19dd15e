#pragma once

// Internal to the handles: the atomic value words a meter updates, and the
// word layout of each meter type. Not part of the API; included by the meter
// headers because updates are inline. Any change here changes the segment
// layout and must bump kLayoutVersion (docs/segment_format.md).

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "spectator/export.h"

namespace spectator::detail {

/// One 8-byte value word in shared memory. Lock-free atomics are address-free,
/// so the same word may be mapped at different addresses in different
/// processes.
using Word = std::atomic<std::uint64_t>;
static_assert(Word::is_always_lock_free, "value words must be lock-free to live in shared memory");
static_assert(sizeof(Word) == 8);

inline std::uint64_t ToBits(double d) noexcept {
  std::uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
}

inline double FromBits(std::uint64_t u) noexcept {
  double d;
  std::memcpy(&d, &u, sizeof d);
  return d;
}

/// The quiet NaN used for "no value" in gauge, max gauge and monotonic words.
inline constexpr std::uint64_t kNaNBits = 0x7ff8000000000000ULL;

// Memory ordering of every update helper below: relaxed. A meter word carries
// only its own value, nothing else is published through it, so all that is
// needed is the atomicity of each read-modify-write. The collector's
// exchange(0) on the same word is another RMW in that word's single
// modification order, so an update lands either before the exchange (taken in
// this step) or after it (taken in the next), never both and never neither.

/// word += d, for a word holding a double.
inline void AddDouble(Word& word, double d) noexcept {
  std::uint64_t cur = word.load(std::memory_order_relaxed);  // relaxed: see above
  while (!word.compare_exchange_weak(cur, ToBits(FromBits(cur) + d), std::memory_order_relaxed,
                                     std::memory_order_relaxed)) {
  }
}

/// word = max(word, d), for a word holding a double where NaN means "empty".
inline void MaxDouble(Word& word, double d) noexcept {
  std::uint64_t cur = word.load(std::memory_order_relaxed);  // relaxed: see above
  for (;;) {
    double current = FromBits(cur);
    if (!std::isnan(current) && !(d > current)) return;
    if (word.compare_exchange_weak(cur, ToBits(d), std::memory_order_relaxed,
                                   std::memory_order_relaxed)) {
      return;
    }
  }
}

/// word = max(word, v), for a word holding an unsigned integer.
inline void MaxU64(Word& word, std::uint64_t v) noexcept {
  std::uint64_t cur = word.load(std::memory_order_relaxed);  // relaxed: see above
  while (v > cur && !word.compare_exchange_weak(cur, v, std::memory_order_relaxed,
                                                std::memory_order_relaxed)) {
  }
}

/// Word indexes inside a meter's value block. A block is a whole number of
/// 64-byte cache lines and starts on a cache-line boundary.
namespace layout {
inline constexpr std::uint32_t kWordsPerLine = 8;

// Step words are journaled: a take moves them into collector-owned "pending"
// words of the same block, and the collector clears those only once the
// publish is settled (SegmentReader::Commit). A collector killed in between
// leaves the values in the segment for the next one.

// counter: integral deltas go to an integer word (one fetch_add, exact);
// fractional deltas go to a double word.
inline constexpr std::uint32_t kCounterInt = 0;
inline constexpr std::uint32_t kCounterFrac = 1;
inline constexpr std::uint32_t kCounterPendingInt = 2;   // u64, collector-owned
inline constexpr std::uint32_t kCounterPendingFrac = 3;  // double, collector-owned
// Cumulative words (collector-owned) add up everything every take moved out
// of the live words since the segment was created, whatever became of its
// publish: the never-decreasing totals a Prometheus scrape reads (with the
// live words added).
inline constexpr std::uint32_t kCounterCumulativeInt = 4;   // u64
inline constexpr std::uint32_t kCounterCumulativeFrac = 5;  // double

// timer (nanoseconds) and distribution summary (amounts).
inline constexpr std::uint32_t kStatCount = 0;    // u64
inline constexpr std::uint32_t kStatTotal = 1;    // timer: u64 ns; summary: double
inline constexpr std::uint32_t kStatSquares = 2;  // double; timer: ns^2
inline constexpr std::uint32_t kStatMax = 3;      // timer: u64 ns; summary: double bits (>= 0)
// ... and their pending copies, same encodings, collector-owned.
inline constexpr std::uint32_t kStatPendingOffset = 4;
// ... and the cumulative count and total (collector-owned), on the second line.
inline constexpr std::uint32_t kStatCumulativeCount = 8;  // u64
inline constexpr std::uint32_t kStatCumulativeTotal = 9;  // timer: u64 ns; summary: double

// gauge: value and an update sequence written by workers; the last sequence
// the collector saw and when it saw it change are written by the collector
// only (so the 15-minute TTL survives a collector restart).
inline constexpr std::uint32_t kGaugeValue = 0;     // double, NaN = no value
inline constexpr std::uint32_t kGaugeSeq = 1;       // u64
inline constexpr std::uint32_t kGaugeSeenSeq = 2;   // u64, collector-owned
inline constexpr std::uint32_t kGaugeSeenAtNs = 3;  // u64 unix ns, collector-owned

inline constexpr std::uint32_t kMaxGaugeValue = 0;    // double, NaN = no value this step
inline constexpr std::uint32_t kMaxGaugePending = 1;  // double, NaN = none; collector-owned
inline constexpr std::uint32_t kAgeGaugeTimeNs = 0;   // u64 unix ns, 0 = never set

// monotonic counter: the cumulative value, and the value the collector
// published last (collector-owned, NaN = no previous sample).
inline constexpr std::uint32_t kMonoValue = 0;    // double, NaN = never set
inline constexpr std::uint32_t kMonoPrev = 1;     // double, collector-owned
inline constexpr std::uint32_t kMonoPending = 2;  // double, taken increase; collector-owned
inline constexpr std::uint32_t kMonoCumulative = 3;  // double, every increase taken; collector-owned

// percentile meters: the timer/summary words (two lines), then one u64 per
// bucket from the third line, the clamp range (segment_layout.h), and the
// cumulative bucket counts (collector-owned). Buckets are not journaled
// (that would double the block again): a failed publish gives them back
// with SegmentReader::Restore, which takes them out of the cumulative words
// at the same time, so that live + cumulative never changes.
inline constexpr std::uint32_t kBucketsStart = 16;
inline constexpr std::uint32_t kCumulativeBucketsStart = kBucketsStart + 276 + 2;
}  // namespace layout

/// Where no-op meters write: a process-local sink large enough for the biggest
/// meter, so a no-op handle needs no branch on the update path.
inline constexpr std::uint32_t kNoopWords = 576;
SPECTATOR_EXPORT extern Word g_noop_words[kNoopWords];

}  // namespace spectator::detail
