#include "spectator/snapshot.h"

#include <cmath>
#include <string>
#include <vector>

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
// Peek computes the same result and stores nothing.
template <typename Merge>
std::uint64_t Journal(Word& live, Word& pending, bool take, Merge merge, std::uint64_t empty = 0) {
  const std::uint64_t v = Read(live, take, empty);
  const std::uint64_t p = Own(pending);
  const std::uint64_t result = v == empty ? p : (p == empty ? v : merge(p, v));
  if (take && result != p) SetOwn(pending, result);
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

  struct Meter {
    std::uint32_t slot;
    MeterType type;
    std::string id;  // a validated private copy of the Id bytes
    Word* words;
  };

  internal::TableView view;
  std::vector<std::uint8_t> status;  // per slot
  std::vector<std::uint32_t> index;  // per valid slot: position in `meters`
  std::vector<Meter> meters;
  std::uint64_t buckets[kPercentileBucketCount];

  const Meter* Find(const MeterReading& r) const;  // nullptr when r is not ours

  explicit Impl(internal::TableView v)
      : view(v), status(v.table_slots, kUnknown), index(v.table_slots, 0) {}

  // Checks an entry found READY and caches it. Every field comes from another
  // process and is treated as hostile: a bad one marks the slot corrupt.
  SlotStatus Validate(std::uint32_t slot, const internal::Entry& e, std::uint64_t state) {
    if (state != internal::kReadyState) return kCorrupt;
    if (e.type < kMinMeterType || e.type > kMaxMeterType) return kCorrupt;
    const auto type = static_cast<MeterType>(e.type);
    if (e.value_words == 0) return kNoStorage;
    Word* words = internal::ValueBlock(view, e);
    if (words == nullptr) return kCorrupt;
    if (e.id_len == 0 || e.id_len > kMaxIdBytes) return kCorrupt;
    std::string id(e.id, e.id_len);  // copy first: the bytes could change under us
    IdView parsed;
    if (!ParseCanonicalId(id, &parsed)) return kCorrupt;
    // relaxed: READY was acquired by the caller; the hash is immutable after.
    if (e.hash.load(std::memory_order_relaxed) != (internal::HashId(id) | 1)) return kCorrupt;
    if ((type == MeterType::kPercentileTimer ||
         type == MeterType::kPercentileDistributionSummary) &&
        (e.param_min < 0 || e.param_min > e.param_max)) {
      return kCorrupt;
    }
    index[slot] = static_cast<std::uint32_t>(meters.size());
    meters.push_back({slot, type, std::move(id), words});
    return kValid;
  }

  void ReadStats(Word* w, bool timer, bool take, MeterReading* r) {
    Word* p = w + l::kStatPendingOffset;
    r->count = static_cast<double>(Journal(w[l::kStatCount], p[l::kStatCount], take, AddU64));
    const std::uint64_t total =
        Journal(w[l::kStatTotal], p[l::kStatTotal], take, timer ? AddU64 : AddDoubles);
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
    }
    r->buckets = buckets;
  }

  void ReadMeter(const Meter& m, bool take, std::int64_t now_ns, MeterReading* r) {
    Word* w = m.words;
    r->slot = m.slot;
    r->type = m.type;
    r->id = m.id;
    switch (m.type) {
      case MeterType::kCounter:
        r->count =
            static_cast<double>(
                Journal(w[l::kCounterInt], w[l::kCounterPendingInt], take, AddU64)) +
            FromBits(Journal(w[l::kCounterFrac], w[l::kCounterPendingFrac], take, AddDoubles));
        break;
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
        if (delta) pending += value - prev;
        r->count = delta || pending > 0 ? pending : NAN;
        if (take && !std::isnan(value)) {
          // A decrease re-bases on the new value: it publishes nothing.
          SetOwn(w[l::kMonoPrev], ToBits(value));
          SetOwn(w[l::kMonoPending], ToBits(pending));
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
  Impl& im = *impl_;
  const bool take = mode == Mode::kTake;
  const std::int64_t now_ns = UnixNs(now);
  ScanStats stats;
  for (std::uint32_t slot = 0; slot < im.status.size(); ++slot) {
    if (im.status[slot] == Impl::kUnknown) {
      const internal::Entry& e = im.view.entries[slot];
      // acquire: pairs with the READY release store in IdTable::Fill.
      const std::uint64_t state = e.state.load(std::memory_order_acquire);
      const internal::EntryKind kind = internal::KindOf(state);
      if (kind != internal::EntryKind::kReady) continue;  // empty, being claimed, or abandoned
      im.status[slot] = im.Validate(slot, e, state);
    }
    if (im.status[slot] == Impl::kCorrupt) ++stats.corrupt;
    if (im.status[slot] != Impl::kValid) continue;
    MeterReading r;
    im.ReadMeter(im.meters[im.index[slot]], take, now_ns, &r);
    ++stats.meters;
    visit(r);
  }
  return stats;
}

const SegmentReader::Impl::Meter* SegmentReader::Impl::Find(const MeterReading& r) const {
  if (r.slot >= status.size() || status[r.slot] != kValid) return nullptr;
  const Meter& m = meters[index[r.slot]];
  return m.type == r.type ? &m : nullptr;
}

void SegmentReader::Commit(const MeterReading& r) noexcept {
  const Impl::Meter* m = impl_->Find(r);
  if (m == nullptr) return;
  Word* w = m->words;
  switch (m->type) {
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
  const Impl::Meter* m = impl_->Find(r);
  if (m == nullptr || r.buckets == nullptr) return;
  // Everything but the buckets is still pending in the segment.
  Word* w = m->words;
  for (std::size_t b = 0; b < kPercentileBucketCount; ++b) {
    if (r.buckets[b] != 0) {
      // relaxed: the same RMW workers use on bucket words.
      w[l::kBucketsStart + b].fetch_add(r.buckets[b], std::memory_order_relaxed);
    }
  }
}

void SegmentReader::Heartbeat(pid_t collector_pid,
                              std::chrono::system_clock::time_point now) noexcept {
  internal::SegmentHeader& h = *impl_->view.header;
  // relaxed: informational fields for --dump and operators.
  h.collector_pid.store(collector_pid, std::memory_order_relaxed);
  h.collector_heartbeat_unix_ns.store(static_cast<std::uint64_t>(UnixNs(now)),
                                      std::memory_order_relaxed);
}

}  // namespace spectator
