#include "id_table.h"

#include <sched.h>
#include <cstring>
#include <new>
#include <thread>

#include "process.h"

namespace spectator::internal {
namespace {

constexpr std::uint64_t Rotl(std::uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

constexpr std::uint64_t Mix(std::uint64_t k) {
  k ^= k >> 33;
  k *= 0xFF51AFD7ED558CCDULL;
  k ^= k >> 33;
  k *= 0xC4CEB9FE1A85EC53ULL;
  k ^= k >> 33;
  return k;
}

std::atomic<void (*)()> g_claim_hook{nullptr};

}  // namespace

std::uint64_t HashId(std::string_view s) noexcept {
  // Eight bytes at a time, murmur-style multiply/rotate, then a final mix.
  // Little-endian loads: the segment never leaves the machine it lives on.
  std::uint64_t h = 0x9E3779B97F4A7C15ULL ^ (s.size() * 0xC2B2AE3D27D4EB4FULL);
  const char* p = s.data();
  std::size_t n = s.size();
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t k;
    std::memcpy(&k, p, 8);
    h ^= Rotl(k * 0x87C37B91114253D5ULL, 31) * 0x4CF5AD432745937FULL;
    h = Rotl(h, 27) * 5 + 0x52DCE729;
  }
  std::uint64_t tail = 0;
  std::memcpy(&tail, p, n);
  h ^= Rotl(tail * 0x87C37B91114253D5ULL, 31) * 0x4CF5AD432745937FULL;
  return Mix(h);
}

std::string PerTypeOverflowId(MeterType type) {
  return std::string(kPerTypeOverflowName) + ",spectator.overflow=true,type=" + ToString(type);
}

void InitializeSegment(void* base, std::uint32_t max_meters, std::uint64_t value_words,
                       const Layout& layout, std::uint64_t created_unix_ns) {
  auto* h = new (base) SegmentHeader{};
  h->layout_version = kLayoutVersion;
  h->header_size = sizeof(SegmentHeader);
  h->total_size = layout.total_size;
  h->entry_size = sizeof(Entry);
  h->table_slots = layout.table_slots;
  h->max_meters = max_meters;
  h->reserve_meters = layout.reserve_meters;
  h->value_words = value_words;
  h->entries_offset = layout.entries_offset;
  h->values_offset = layout.values_offset;
  h->reserve_words = layout.reserve_words;
  h->ids_offset = layout.ids_offset;
  h->id_bytes = layout.id_bytes;
  h->reserve_id_bytes = layout.reserve_id_bytes;
  h->created_unix_ns = created_unix_ns;
  // relaxed: published by the release store of `ready` below.
  h->magic.store(kMagic, std::memory_order_relaxed);
  // release: pairs with the acquire load of `ready` in every attacher, which
  // then sees every header field above (segment_layout.h invariant 1). The
  // entries and values are all-zero (EMPTY) from ftruncate/the caller.
  h->ready.store(kReadyValue, std::memory_order_release);
}

TableView ViewOf(void* base, int fd) {
  auto* bytes = static_cast<char*>(base);
  auto* h = reinterpret_cast<SegmentHeader*>(bytes);
  TableView v;
  v.fd = fd;
  v.header = h;
  v.entries = reinterpret_cast<Entry*>(bytes + h->entries_offset);
  v.values = reinterpret_cast<Word*>(bytes + h->values_offset);
  v.ids = bytes + h->ids_offset;
  v.table_slots = h->table_slots;
  v.max_meters = h->max_meters;
  v.reserve_meters = h->reserve_meters;
  v.value_words = h->value_words;
  v.reserve_words = h->reserve_words;
  v.id_bytes = h->id_bytes;
  v.reserve_id_bytes = h->reserve_id_bytes;
  return v;
}

void IdTable::SetClaimHookForTesting(void (*hook)()) {
  g_claim_hook.store(hook, std::memory_order_relaxed);  // relaxed: set before the test forks
}

std::string_view IdBytes(const TableView& view, const Entry& entry) noexcept {
  const std::uint64_t capacity = view.id_bytes + view.reserve_id_bytes;
  const std::uint64_t offset = std::uint64_t{entry.id_offset} * 8;
  if (entry.id_len == 0 || entry.id_len > kMaxIdBytes || offset > capacity ||
      entry.id_len > capacity - offset) {
    return {};
  }
  return {view.ids + offset, entry.id_len};
}

bool IdTable::Matches(const Entry& entry, std::uint64_t hash, std::string_view canonical) const {
  // relaxed: the entry is READY (acquire already done by the caller) and its
  // hash never changes after that.
  return entry.hash.load(std::memory_order_relaxed) == hash && IdBytes(view_, entry) == canonical;
}

// Reserves one unit of a capacity counter, unless it is used up.
bool IdTable::Reserve(std::atomic<std::uint64_t>& used, std::uint64_t limit) noexcept {
  // relaxed: a capacity count, not a publication; the CAS makes the check and
  // the increment one atomic step.
  std::uint64_t n = used.load(std::memory_order_relaxed);
  do {
    if (n >= limit) return false;
  } while (!used.compare_exchange_weak(n, n + 1, std::memory_order_relaxed,
                                       std::memory_order_relaxed));
  return true;
}

// Bump-allocates `n` units of [base, base + capacity) from `used`.
bool IdTable::Allocate(std::atomic<std::uint64_t>& used, std::uint64_t base,
                       std::uint64_t capacity, std::uint64_t n, std::uint64_t* offset) noexcept {
  // relaxed: the CAS hands out disjoint ranges; what is written into them is
  // published by the entry's READY release store.
  std::uint64_t u = used.load(std::memory_order_relaxed);
  do {
    if (u > capacity || n > capacity - u) return false;
  } while (!used.compare_exchange_weak(u, u + n, std::memory_order_relaxed,
                                       std::memory_order_relaxed));
  *offset = base + u;
  return true;
}

Word* ValueBlock(const TableView& view, const Entry& entry) noexcept {
  if (entry.type < kMinMeterType || entry.type > kMaxMeterType) return nullptr;
  const std::uint64_t capacity = view.value_words + view.reserve_words;
  const std::uint64_t offset = std::uint64_t{entry.value_line} * detail::layout::kWordsPerLine;
  if (entry.value_words != ValueWordsFor(MeterType(entry.type)) || offset > capacity ||
      entry.value_words > capacity - offset) {
    return nullptr;
  }
  return view.values + offset;
}

IdTable::Limits IdTable::LimitsOf(Tier tier) const noexcept {
  SegmentHeader& h = *view_.header;
  switch (tier) {
    case Tier::kOwn:
      return {&h.meters, view_.max_meters, &h.values_used, 0, view_.value_words, &h.ids_used, 0,
              view_.id_bytes};
    case Tier::kOverflow:
      return {&h.overflow_meters, view_.reserve_meters - kPerTypeMeters, &h.reserve_words_used,
              view_.value_words, view_.reserve_words - kPerTypeWords, &h.reserve_ids_used,
              view_.id_bytes, view_.reserve_id_bytes - kPerTypeIdBytes};
    case Tier::kLastResort:
      break;
  }
  return {&h.overflow_meters, view_.reserve_meters, &h.reserve_words_used, view_.value_words,
          view_.reserve_words, &h.reserve_ids_used, view_.id_bytes, view_.reserve_id_bytes};
}

bool IdTable::Fill(Entry& e, std::uint64_t claimed, std::uint64_t hash, std::uint64_t id_offset,
                   std::string_view canonical, MeterType type, std::int64_t param_min,
                   std::int64_t param_max, Tier tier) noexcept {
  namespace l = detail::layout;
  // release: pairs with the acquire load of `hash` by probers (invariant 4);
  // the value itself is all they need.
  e.hash.store(hash, std::memory_order_release);
  std::memcpy(view_.ids + id_offset, canonical.data(), canonical.size());
  e.id_offset = static_cast<std::uint32_t>(id_offset / 8);
  e.id_len = static_cast<std::uint16_t>(canonical.size());
  e.type = static_cast<std::uint8_t>(type);
  e.flags = tier == Tier::kOwn ? 0 : kOverflowMeter;
  const std::uint32_t words = ValueWordsFor(type);
  std::uint64_t offset = 0;
  const Limits limits = LimitsOf(tier);
  if (Allocate(*limits.words_used, limits.words_base, limits.words_limit, words, &offset)) {
    Word* w = view_.values + offset;
    for (std::uint32_t i = 0; i < words; ++i) new (&w[i]) Word(0);
    // relaxed: published by the READY release store below.
    switch (type) {
      case MeterType::kGauge:
        w[l::kGaugeValue].store(detail::kNaNBits, std::memory_order_relaxed);
        break;
      case MeterType::kMaxGauge:
        w[l::kMaxGaugeValue].store(detail::kNaNBits, std::memory_order_relaxed);
        w[l::kMaxGaugePending].store(detail::kNaNBits, std::memory_order_relaxed);
        break;
      case MeterType::kMonotonicCounter:
        w[l::kMonoValue].store(detail::kNaNBits, std::memory_order_relaxed);
        w[l::kMonoPrev].store(detail::kNaNBits, std::memory_order_relaxed);
        break;
      case MeterType::kAgeGauge: {
        // The age starts when the Id is first registered in the segment, as
        // the classic client's "starting value of the gauge is zero"; a later
        // registration (a recycled worker) finds the entry and keeps it.
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
        w[l::kAgeGaugeTimeNs].store(ns > 0 ? static_cast<std::uint64_t>(ns) : 1,
                                    std::memory_order_relaxed);
        break;
      }
      case MeterType::kPercentileTimer:
      case MeterType::kPercentileDistributionSummary:
        w[kParamMinWord].store(static_cast<std::uint64_t>(param_min), std::memory_order_relaxed);
        w[kParamMaxWord].store(static_cast<std::uint64_t>(param_max), std::memory_order_relaxed);
        break;
      default:
        break;
    }
    e.value_line = static_cast<std::uint32_t>(offset / l::kWordsPerLine);
    e.value_words = words;
  } else {
    e.value_line = 0;
    e.value_words = 0;  // the Id is known, but has no storage: every lookup overflows
  }
  // release: pairs with the acquire loads of `state` in FindOrRegister and in
  // the reader; everything written above is visible to whoever sees READY.
  // A CAS, not a store: if a prober took the claim for dead (its lock query
  // failed), the entry is ABANDONED and must stay so; the caller retries.
  std::uint64_t expected = claimed;
  return e.state.compare_exchange_strong(expected, kReadyState, std::memory_order_release,
                                         std::memory_order_relaxed);
}

IdTable::Result IdTable::FindOrRegister(std::string_view canonical, MeterType type,
                                        std::int64_t param_min, std::int64_t param_max,
                                        Tier tier) noexcept {
  SegmentHeader& h = *view_.header;
  const std::uint64_t hash = hash_(canonical) | 1;
  const std::uint32_t mask = view_.table_slots - 1;
  const std::uint32_t start = static_cast<std::uint32_t>(hash >> 7) & mask;
  std::uint32_t i = start;
  unsigned lost_claims = 0;
  // Set when we first have to wait for another process's claim: looking up an
  // existing Id reads no clock.
  std::chrono::steady_clock::time_point deadline{};
  unsigned waits = 0;
  // Arena bytes for our Id, taken on the first EMPTY entry and kept across
  // retries of this call (lost only if another process registers the Id).
  std::uint64_t id_offset = kNoOffset;
  const Limits limits = LimitsOf(tier);
  std::atomic<std::uint64_t>& entries_used = *limits.entries_used;

  for (std::uint32_t probes = 0; probes < view_.table_slots;) {
    Entry& e = view_.entries[i];
    // acquire: pairs with the READY release CAS in Fill (and with the claim
    // CAS), so a READY entry's fields are complete when read.
    const std::uint64_t s = e.state.load(std::memory_order_acquire);
    switch (KindOf(s)) {
      case EntryKind::kReady:
        if (!Matches(e, hash, canonical)) break;
        if (e.type != static_cast<std::uint8_t>(type)) {
          // relaxed (all header counters): statistics only, no ordering implied.
          h.type_mismatches.fetch_add(1, std::memory_order_relaxed);
          return {Status::kTypeMismatch, &e, nullptr};
        }
        if (Word* words = ValueBlock(view_, e)) return {Status::kOk, &e, words};
        return {Status::kFull, &e, nullptr};

      case EntryKind::kAbandoned:
        break;

      case EntryKind::kClaimed: {
        // acquire: pairs with the release store of `hash` in Fill.
        const std::uint64_t claimed_hash = e.hash.load(std::memory_order_acquire);
        if (claimed_hash != 0 && claimed_hash != hash) break;  // invariant 4: not ours
        // Our Id, or not known yet: wait for the claimer to finish, unless it
        // died (nobody holds its claim lock), in which case the entry is
        // abandoned and probed past.
        if (!ClaimIsHeld(view_.fd, ClaimToken(s))) {
          std::uint64_t expected = s;
          // acq_rel: one winner among the processes that found the claimer dead.
          if (e.state.compare_exchange_strong(expected, kAbandonedState, std::memory_order_acq_rel,
                                              std::memory_order_acquire)) {
            h.recovered_claims.fetch_add(1, std::memory_order_relaxed);
          }
          continue;  // re-examine this entry
        }
        const auto now = std::chrono::steady_clock::now();
        if (waits == 0) deadline = now + claim_timeout_;
        if (now > deadline) return {Status::kTimedOut};
        if (++waits < 64) {
          sched_yield();
        } else {
          std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        continue;
      }

      case EntryKind::kEmpty: {
        // The entry first, then its arena bytes (kept across retries of this
        // call), so that a full table does not drain the arena call by call.
        if (!Reserve(entries_used, limits.entries_limit)) return {Status::kFull};
        if (id_offset == kNoOffset) {
          const std::uint64_t bytes = (canonical.size() + 7) & ~std::uint64_t{7};
          if (!Allocate(*limits.ids_used, limits.ids_base, limits.ids_limit, bytes, &id_offset)) {
            entries_used.fetch_sub(1, std::memory_order_relaxed);  // give the reservation back
            return {Status::kFull};
          }
        }
        // relaxed: tokens only need to be unique; 2^62 of them never run out.
        const std::uint64_t token = h.claim_tokens.fetch_add(1, std::memory_order_relaxed) + 1;
        ClaimLock lock;  // held until this function returns, after READY
        if (token > kMaxClaimToken || lock.Acquire(view_.fd, token) != 0) {
          entries_used.fetch_sub(1, std::memory_order_relaxed);  // give the reservation back
          return {Status::kNoClaimLock};
        }
        const std::uint64_t claimed = ClaimedState(token);
        std::uint64_t expected = s;
        // acq_rel: the claim makes this process the entry's only writer
        // (invariant 3); on failure, acquire the state another process set.
        if (!e.state.compare_exchange_strong(expected, claimed, std::memory_order_acq_rel,
                                             std::memory_order_acquire)) {
          entries_used.fetch_sub(1, std::memory_order_relaxed);  // give the reservation back
          continue;                                               // re-examine this entry
        }
        // relaxed: the hook pointer is set before the test forks.
        if (auto hook = g_claim_hook.load(std::memory_order_relaxed)) hook();
        if (!Fill(e, claimed, hash, id_offset, canonical, type, param_min, param_max, tier)) {
          // Taken for dead while we held the lock (a failed lock query):
          // the Id may have been registered elsewhere meanwhile; look again.
          if (++lost_claims > 3) return {Status::kTimedOut};
          id_offset = kNoOffset;  // the abandoned entry keeps those bytes
          i = start;
          probes = 0;
          continue;
        }
        // release: pairs with the reader's acquire load of `published`; a
        // reader that sees the new count walks the table and finds the entry.
        h.published.fetch_add(1, std::memory_order_release);
        if (Word* words = ValueBlock(view_, e)) return {Status::kOk, &e, words};
        return {Status::kFull, &e, nullptr};
      }
    }
    i = (i + 1) & mask;
    ++probes;
  }
  return {Status::kFull};
}

}  // namespace spectator::internal
