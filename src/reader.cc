#include "spectator/internal/reader.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "process.h"
#include "registry_impl.h"

namespace spectator {

using detail::FromBits;
using detail::ToBits;
using detail::Word;
namespace l = detail::layout;

namespace {

constexpr std::int64_t kGaugeTtlNs = std::int64_t{15} * 60 * 1000000000;

std::int64_t UnixNs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// Reads a step word; with take, resets it to `empty` by exchange. The relaxed
// pre-load skips the exchange (and the cache-line transfer) for idle words;
// it is safe because only the collector resets: a stale `empty` merely leaves
// the update for the next take.
std::uint64_t Read(Word& w, bool take, std::uint64_t empty = 0) {
  const std::uint64_t v = w.load(std::memory_order_relaxed);  // relaxed: see above
  if (!take || v == empty) return v;
  // relaxed: an RMW in the word's modification order; every update (also a
  // relaxed RMW) is ordered entirely before or after it. Nothing else is
  // published through the word.
  return w.exchange(empty, std::memory_order_relaxed);
}

// Collector-owned words (pending journal, gauge and monotonic bookkeeping)
// are written only by the single collector, which holds the collector lock;
// relaxed is enough because no other process writes them and a collector
// that takes over after a crash starts with the lock's acquire.
std::uint64_t Own(const Word& w) { return w.load(std::memory_order_relaxed); }
void SetOwn(Word& w, std::uint64_t v) { w.store(v, std::memory_order_relaxed); }

// The journaled take of one step word: the live value is moved into its
// pending word, and the result is everything pending. `merge` combines the
// pending value with the live one (add or max, in the word's encoding).
// With `cumulative`, what was taken is also added to that word, and
// *cumulative_out gets its value with the live one added (so a peek reads
// the same total as a take). Peek computes the same results and stores
// nothing.
template <typename Merge>
std::uint64_t Journal(Word& live, Word& pending, bool take, Merge merge, std::uint64_t empty = 0,
                      Word* cumulative = nullptr, std::uint64_t* cumulative_out = nullptr) {
  const std::uint64_t v = Read(live, take, empty);
  const std::uint64_t p = Own(pending);
  const std::uint64_t result = v == empty ? p : (p == empty ? v : merge(p, v));
  if (take && result != p) SetOwn(pending, result);
  if (cumulative != nullptr) {
    const std::uint64_t c = v == empty ? Own(*cumulative) : merge(Own(*cumulative), v);
    if (take && v != empty) SetOwn(*cumulative, c);
    *cumulative_out = c;
  }
  return result;
}

std::uint64_t AddU64(std::uint64_t a, std::uint64_t b) { return a + b; }
std::uint64_t AddDoubles(std::uint64_t a, std::uint64_t b) {
  return ToBits(FromBits(a) + FromBits(b));
}
// Max of non-negative doubles by their bits, or of integers.
std::uint64_t MaxBits(std::uint64_t a, std::uint64_t b) { return a > b ? a : b; }
std::uint64_t MaxDoubles(std::uint64_t a, std::uint64_t b) {
  return ToBits(std::fmax(FromBits(a), FromBits(b)));
}

}  // namespace

struct SegmentReader::Impl {
  enum SlotStatus : std::uint8_t { kUnknown, kValid, kCorrupt, kNoStorage };

  // 24 bytes: a scan of a million meters streams this array and their
  // value blocks, nothing else.
  struct Meter {
    Word* words;
    std::uint32_t slot;
    std::uint32_t id_offset;  // a validated private copy of the Id bytes, in `ids`
    std::uint16_t id_len;
    MeterType type;
  };

  internal::TableView view;
  std::vector<std::uint8_t> status;  // per slot
  std::vector<Meter> meters;         // the valid ones, in the order of their value blocks
  std::string ids;                   // their canonical Ids, back to back
  std::size_t corrupt = 0;           // slots found corrupt (they stay so: validated once)
  std::uint64_t seen_published = ~std::uint64_t{0};  // header `published` at the last walk
  bool unsettled = true;  // the last walk met a claim in progress: walk again
  std::uint64_t buckets[kPercentileBucketCount];
  std::uint64_t cumulative_buckets[kPercentileBucketCount];

  const Meter* Find(const MeterReading& r) const;  // nullptr when r is not ours
  void Settle(const Meter& m) noexcept;            // clears its pending journal

  explicit Impl(internal::TableView v)
      : view(v), status(v.table_slots, kUnknown) {}

  // Finds the entries made READY since the last walk. The table is walked
  // only when the header's `published` count moved (or a claim was in
  // progress), so a steady-state scan reads the meters' value blocks and
  // nothing else; the meters are kept in the order of their value blocks,
  // which is their registration order, so that those reads are sequential.
  // With `take`, a claim whose claimer died is abandoned on the way (as any
  // prober would), so that it does not keep the table walked every step.
  void Discover(bool take) {
    // acquire: pairs with the release increment after READY in IdTable: an
    // entry published before this count is visible to the walk, and one
    // published after moves the count for the next scan.
    const std::uint64_t published = view.header->published.load(std::memory_order_acquire);
    if (!unsettled && published == seen_published) return;
    seen_published = published;
    unsettled = false;
    const std::size_t known = meters.size();
    for (std::uint32_t slot = 0; slot < status.size(); ++slot) {
      if (status[slot] != kUnknown) continue;
      internal::Entry& e = view.entries[slot];
      // acquire: pairs with the READY release CAS in IdTable::Fill.
      const std::uint64_t state = e.state.load(std::memory_order_acquire);
      const internal::EntryKind kind = internal::KindOf(state);
      if (kind == internal::EntryKind::kClaimed) {
        std::uint64_t expected = state;
        // acq_rel: as the prober's CAS in IdTable::FindOrRegister.
        if (take && !internal::ClaimIsHeld(view.fd, internal::ClaimToken(state)) &&
            e.state.compare_exchange_strong(expected, internal::kAbandonedState,
                                            std::memory_order_acq_rel,
                                            std::memory_order_acquire)) {
          // relaxed: a statistic.
          view.header->recovered_claims.fetch_add(1, std::memory_order_relaxed);
        } else {
          unsettled = true;
        }
        continue;
      }
      if (kind != internal::EntryKind::kReady) continue;  // empty or abandoned
      status[slot] = Check(slot, e, state);
      if (status[slot] == kCorrupt) ++corrupt;
    }
    if (found.empty()) return;
    // The Ids are copied and checked in the order of the value blocks, which
    // is the order of the segment's Id arena (both follow registration): a
    // sequential read, where slot order would be a random one.
    const auto by_words = [](const Found& a, const Found& b) { return a.words < b.words; };
    std::sort(found.begin(), found.end(), by_words);
    for (const Found& f : found) {
      status[f.slot] = CopyId(f);
      if (status[f.slot] == kCorrupt) ++corrupt;
    }
    found.clear();
    if (meters.size() == known) return;
    // Positions move here, between scans, never between a scan and the
    // Commit or Restore of its readings.
    const auto by_block = [](const Meter& a, const Meter& b) { return a.words < b.words; };
    std::inplace_merge(meters.begin(), meters.begin() + static_cast<std::ptrdiff_t>(known),
                       meters.end(), by_block);
    LayOutIds();
  }

  // Puts the Ids back to back in the order of `meters`: they were appended
  // in slot (hash) order, and every consumer of a scan (the payload hashes
  // each Id to check its cache) reads them in position order, so out of
  // order they cost one cache and TLB miss per meter once `ids` leaves the
  // caches (68 MB for 1M counters). Only the run after the longest prefix
  // already in place is copied: new meters usually have the last value
  // blocks, so a later discovery moves only their Ids.
  void LayOutIds() {
    std::size_t i = 0;
    std::uint32_t end = 0;
    while (i < meters.size() && meters[i].id_offset == end) end += meters[i++].id_len;
    if (i == meters.size()) return;
    std::string tail;
    tail.reserve(ids.size() - end);
    for (std::size_t k = i; k < meters.size(); ++k) {
      Meter& m = meters[k];
      const std::uint32_t at = end + static_cast<std::uint32_t>(tail.size());
      tail.append(ids, m.id_offset, m.id_len);
      m.id_offset = at;
    }
    ids.resize(end);
    ids += tail;
  }

  // An entry found READY whose fields passed Check: its Id is copied and
  // checked next (CopyId), in value-block order.
  struct Found {
    Word* words;
    const char* id;
    std::uint64_t hash;
    std::uint32_t slot;
    std::uint16_t id_len;
    MeterType type;
  };
  std::vector<Found> found;  // the walk's, until its CopyId pass

  // Checks an entry found READY, all but its Id bytes, and adds it to
  // `found`. Every field comes from another process and is treated as
  // hostile: a bad one marks the slot corrupt.
  SlotStatus Check(std::uint32_t slot, const internal::Entry& e, std::uint64_t state) {
    if (state != internal::kReadyState) return kCorrupt;
    if (e.type < kMinMeterType || e.type > kMaxMeterType) return kCorrupt;
    const auto type = static_cast<MeterType>(e.type);
    if (e.value_words == 0) return kNoStorage;
    Word* words = internal::ValueBlock(view, e);
    if (words == nullptr) return kCorrupt;
    const std::string_view bytes = internal::IdBytes(view, e);
    if (bytes.empty() || bytes.size() > UINT16_MAX) return kCorrupt;
    if (type == MeterType::kPercentileTimer || type == MeterType::kPercentileDistributionSummary) {
      // relaxed: immutable since READY, acquired by the caller.
      const auto lo = static_cast<std::int64_t>(
          words[internal::kParamMinWord].load(std::memory_order_relaxed));
      const auto hi = static_cast<std::int64_t>(
          words[internal::kParamMaxWord].load(std::memory_order_relaxed));
      if (lo < 0 || lo > hi) return kCorrupt;
    }
    // relaxed: READY was acquired by the caller; the hash is immutable after.
    found.push_back({words, bytes.data(), e.hash.load(std::memory_order_relaxed), slot,
                     static_cast<std::uint16_t>(bytes.size()), type});
    return kUnknown;  // until CopyId
  }

  // Copies a found entry's Id and checks the copy (the bytes could change
  // under us: only the copy is trusted); a valid one becomes a meter, after
  // the ones of earlier walks (Discover merges them into block order).
  SlotStatus CopyId(const Found& f) {
    const std::size_t at = ids.size();
    ids.append(f.id, f.id_len);
    const std::string_view id = std::string_view(ids).substr(at);
    IdView parsed;
    if (!ParseCanonicalId(id, &parsed) || f.hash != (internal::HashId(id) | 1)) {
      ids.resize(at);
      return kCorrupt;
    }
    meters.push_back({f.words, f.slot, static_cast<std::uint32_t>(at), f.id_len, f.type});
    return kValid;
  }

  void ReadStats(Word* w, bool timer, bool take, MeterReading* r) {
    Word* p = w + l::kStatPendingOffset;
    std::uint64_t cumulative_count = 0, cumulative_total = 0;
    r->count = static_cast<double>(Journal(w[l::kStatCount], p[l::kStatCount], take, AddU64, 0,
                                           &w[l::kStatCumulativeCount], &cumulative_count));
    r->cumulative_count = static_cast<double>(cumulative_count);
    const std::uint64_t total =
        Journal(w[l::kStatTotal], p[l::kStatTotal], take, timer ? AddU64 : AddDoubles, 0,
                &w[l::kStatCumulativeTotal], &cumulative_total);
    r->cumulative_total =
        timer ? static_cast<double>(cumulative_total) / 1e9 : FromBits(cumulative_total);
    const double squares =
        FromBits(Journal(w[l::kStatSquares], p[l::kStatSquares], take, AddDoubles));
    const std::uint64_t max = Journal(w[l::kStatMax], p[l::kStatMax], take, MaxBits);
    if (timer) {
      r->total = static_cast<double>(total) / 1e9;
      r->total_of_squares = squares / 1e18;
      r->max = static_cast<double>(max) / 1e9;
    } else {
      r->total = FromBits(total);
      r->total_of_squares = squares;
      r->max = FromBits(max);
    }
  }

  void ReadBuckets(Word* w, bool take, MeterReading* r) {
    for (std::size_t b = 0; b < kPercentileBucketCount; ++b) {
      buckets[b] = Read(w[l::kBucketsStart + b], take);
      Word& cumulative = w[l::kCumulativeBucketsStart + b];
      cumulative_buckets[b] = Own(cumulative) + buckets[b];
      if (take && buckets[b] != 0) SetOwn(cumulative, cumulative_buckets[b]);
    }
    r->buckets = buckets;
    r->cumulative_buckets = cumulative_buckets;
  }

  void ReadMeter(const Meter& m, bool take, std::int64_t now_ns, MeterReading* r) {
    Word* w = m.words;
    r->slot = m.slot;
    r->type = m.type;
    r->id = std::string_view(ids).substr(m.id_offset, m.id_len);
    switch (m.type) {
      case MeterType::kCounter: {
        std::uint64_t whole = 0, fraction = 0;
        r->count =
            static_cast<double>(Journal(w[l::kCounterInt], w[l::kCounterPendingInt], take, AddU64,
                                        0, &w[l::kCounterCumulativeInt], &whole)) +
            FromBits(Journal(w[l::kCounterFrac], w[l::kCounterPendingFrac], take, AddDoubles, 0,
                             &w[l::kCounterCumulativeFrac], &fraction));
        r->cumulative_count = static_cast<double>(whole) + FromBits(fraction);
        break;
      }
      case MeterType::kTimer:
        ReadStats(w, true, take, r);
        break;
      case MeterType::kDistributionSummary:
        ReadStats(w, false, take, r);
        break;
      case MeterType::kPercentileTimer:
        ReadStats(w, true, take, r);
        ReadBuckets(w, take, r);
        break;
      case MeterType::kPercentileDistributionSummary:
        ReadStats(w, false, take, r);
        ReadBuckets(w, take, r);
        break;
      case MeterType::kGauge: {
        // acquire: pairs with the release increment in Gauge::Set, so the
        // value loaded next is the one stored before that increment or later.
        const std::uint64_t seq = w[l::kGaugeSeq].load(std::memory_order_acquire);
        const double value = FromBits(w[l::kGaugeValue].load(std::memory_order_relaxed));
        // relaxed: the collector-owned words are written only by this (the
        // single) collector process.
        const std::uint64_t seen = w[l::kGaugeSeenSeq].load(std::memory_order_relaxed);
        std::int64_t seen_at =
            static_cast<std::int64_t>(w[l::kGaugeSeenAtNs].load(std::memory_order_relaxed));
        if (seq != seen) {
          seen_at = now_ns;
          if (take) {
            w[l::kGaugeSeenSeq].store(seq, std::memory_order_relaxed);
            w[l::kGaugeSeenAtNs].store(static_cast<std::uint64_t>(now_ns),
                                       std::memory_order_relaxed);
          }
        }
        // Written so that a hostile seen_at cannot overflow: now_ns is a
        // sane wall-clock time, far from the limits.
        const bool expired = seq == 0 || seen_at < now_ns - kGaugeTtlNs;
        r->value = expired ? NAN : value;
        break;
      }
      case MeterType::kMaxGauge:
        r->max = FromBits(Journal(w[l::kMaxGaugeValue], w[l::kMaxGaugePending], take, MaxDoubles,
                                  detail::kNaNBits));
        break;
      case MeterType::kAgeGauge: {
        // relaxed: a self-contained word.
        const std::uint64_t t = w[l::kAgeGaugeTimeNs].load(std::memory_order_relaxed);
        // Unsigned, and only when t is not in the future: exact to the
        // nanosecond, and a hostile t cannot overflow (now_ns is a sane
        // wall-clock time, so it is non-negative).
        const auto now_u = static_cast<std::uint64_t>(now_ns);
        const double age = t < now_u ? static_cast<double>(now_u - t) / 1e9 : 0.0;
        r->value = t == 0 ? NAN : age;
        break;
      }
      case MeterType::kMonotonicCounter: {
        // relaxed: the value is a self-contained word; the rest is collector-owned.
        const double value = FromBits(w[l::kMonoValue].load(std::memory_order_relaxed));
        const double prev = FromBits(Own(w[l::kMonoPrev]));
        double pending = FromBits(Own(w[l::kMonoPending]));
        // No sample, the first sample, or a decrease (a restart): no delta.
        const bool delta = !std::isnan(value) && !std::isnan(prev) && value >= prev;
        const double increase = delta ? value - prev : 0;
        pending += increase;
        r->count = delta || pending > 0 ? pending : NAN;
        r->cumulative_count = FromBits(Own(w[l::kMonoCumulative])) + increase;
        if (take && !std::isnan(value)) {
          // A decrease re-bases on the new value: it publishes nothing.
          SetOwn(w[l::kMonoPrev], ToBits(value));
          SetOwn(w[l::kMonoPending], ToBits(pending));
          if (increase > 0) SetOwn(w[l::kMonoCumulative], ToBits(r->cumulative_count));
        }
        break;
      }
    }
  }
};

SegmentReader::SegmentReader(Registry& registry)
    : registry_(registry), impl_(std::make_unique<Impl>(registry.impl_->segment->view())) {}

SegmentReader::~SegmentReader() = default;

SegmentReader::ScanStats SegmentReader::Scan(
    Mode mode, std::chrono::system_clock::time_point now,
    const std::function<void(const MeterReading&)>& visit) {
  if (mode == Mode::kTake && !can_take_) {
    throw std::logic_error("SegmentReader: a take needs the collector lock");
  }
  Impl& im = *impl_;
  const bool take = mode == Mode::kTake;
  const std::int64_t now_ns = UnixNs(now);
  im.Discover(take);
  ScanStats stats;
  stats.corrupt = im.corrupt;
  for (std::uint32_t i = 0; i < im.meters.size(); ++i) {
    MeterReading r;
    r.position = i;
    im.ReadMeter(im.meters[i], take, now_ns, &r);
    ++stats.meters;
    visit(r);
  }
  return stats;
}

const SegmentReader::Impl::Meter* SegmentReader::Impl::Find(const MeterReading& r) const {
  // By position first (no random access into the per-slot arrays), and only
  // a reading of this reader's last scan matches.
  if (r.position >= meters.size()) return nullptr;
  const Meter& m = meters[r.position];
  return m.slot == r.slot && m.type == r.type ? &m : nullptr;
}

void SegmentReader::Commit(const MeterReading& r) noexcept {
  if (!can_take_) return;
  if (const Impl::Meter* m = impl_->Find(r)) impl_->Settle(*m);
}

void SegmentReader::Commit(std::uint32_t first_position, std::uint32_t end_position) noexcept {
  if (!can_take_) return;
  const std::size_t end = std::min<std::size_t>(end_position, impl_->meters.size());
  for (std::size_t i = first_position; i < end; ++i) impl_->Settle(impl_->meters[i]);
}

void SegmentReader::Impl::Settle(const Meter& m) noexcept {
  Word* w = m.words;
  switch (m.type) {
    case MeterType::kCounter:
      SetOwn(w[l::kCounterPendingInt], 0);
      SetOwn(w[l::kCounterPendingFrac], 0);
      break;
    case MeterType::kTimer:
    case MeterType::kPercentileTimer:
    case MeterType::kDistributionSummary:
    case MeterType::kPercentileDistributionSummary:
      for (std::uint32_t i = 0; i < l::kStatPendingOffset; ++i) {
        SetOwn(w[l::kStatPendingOffset + i], 0);
      }
      break;
    case MeterType::kMaxGauge:
      SetOwn(w[l::kMaxGaugePending], detail::kNaNBits);
      break;
    case MeterType::kMonotonicCounter:
      SetOwn(w[l::kMonoPending], 0);
      break;
    case MeterType::kGauge:
    case MeterType::kAgeGauge:
      break;  // never taken
  }
}

void SegmentReader::Restore(const MeterReading& r) noexcept {
  if (!can_take_) return;
  const Impl::Meter* m = impl_->Find(r);
  if (m == nullptr || r.buckets == nullptr) return;
  // Everything but the buckets is still pending in the segment. The live
  // word gets the count back first, then the cumulative word gives it up, so
  // that their sum (what a scrape reads) never goes down; a take between
  // the two is impossible (one reader thread).
  Word* w = m->words;
  for (std::size_t b = 0; b < kPercentileBucketCount; ++b) {
    if (r.buckets[b] != 0) {
      // relaxed: the same RMW workers use on bucket words.
      w[l::kBucketsStart + b].fetch_add(r.buckets[b], std::memory_order_relaxed);
      Word& cumulative = w[l::kCumulativeBucketsStart + b];
      SetOwn(cumulative, Own(cumulative) - r.buckets[b]);
    }
  }
}

void SegmentReader::Heartbeat(pid_t collector_pid,
                              std::chrono::system_clock::time_point now) noexcept {
  if (!can_take_) return;  // only the collector announces itself
  internal::SegmentHeader& h = *impl_->view.header;
  // relaxed: informational fields for --dump and operators.
  h.collector_pid.store(collector_pid, std::memory_order_relaxed);
  h.collector_heartbeat_unix_ns.store(static_cast<std::uint64_t>(UnixNs(now)),
                                      std::memory_order_relaxed);
}

}  // namespace spectator
