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

void InitializeSegment(void* base, std::uint32_t max_meters, std::uint64_t value_words,
                       const Layout& layout, std::uint64_t created_unix_ns) {
  auto* h = new (base) SegmentHeader{};
  h->layout_version = kLayoutVersion;
  h->header_size = sizeof(SegmentHeader);
  h->total_size = layout.total_size;
  h->entry_size = sizeof(Entry);
  h->table_slots = layout.table_slots;
  h->max_meters = max_meters;
  h->value_words = value_words;
  h->entries_offset = layout.entries_offset;
  h->values_offset = layout.values_offset;
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
  return {fd,
          h,
          reinterpret_cast<Entry*>(bytes + h->entries_offset),
          reinterpret_cast<Word*>(bytes + h->values_offset),
          h->table_slots,
          h->max_meters,
          h->value_words};
}

void IdTable::SetClaimHookForTesting(void (*hook)()) {
  g_claim_hook.store(hook, std::memory_order_relaxed);  // relaxed: set before the test forks
}

bool IdTable::Matches(const Entry& entry, std::uint64_t hash, std::string_view canonical) const {
  // relaxed: the entry is READY (acquire already done by the caller) and its
  // hash never changes after that.
  return entry.hash.load(std::memory_order_relaxed) == hash && entry.id_len == canonical.size() &&
         std::memcmp(entry.id, canonical.data(), canonical.size()) == 0;
}

bool IdTable::ReserveMeter() noexcept {
  SegmentHeader& h = *view_.header;
  // relaxed: a capacity count, not a publication; the CAS makes the check and
  // the increment one atomic step.
  std::uint64_t used = h.meters.load(std::memory_order_relaxed);
  do {
    if (used >= view_.max_meters) return false;
  } while (!h.meters.compare_exchange_weak(used, used + 1, std::memory_order_relaxed,
                                           std::memory_order_relaxed));
  return true;
}

bool IdTable::AllocateValues(std::uint32_t words, std::uint64_t* offset) noexcept {
  SegmentHeader& h = *view_.header;
  // relaxed: the CAS hands out disjoint ranges; what is written into them is
  // published by the entry's READY release store.
  std::uint64_t used = h.values_used.load(std::memory_order_relaxed);
  do {
    if (used > view_.value_words || words > view_.value_words - used) return false;
  } while (!h.values_used.compare_exchange_weak(used, used + words, std::memory_order_relaxed,
                                                std::memory_order_relaxed));
  *offset = used;
  return true;
}

Word* ValueBlock(const TableView& view, const Entry& entry) noexcept {
  if (entry.type < kMinMeterType || entry.type > kMaxMeterType) return nullptr;
  const std::uint64_t capacity = view.value_words;
  if (entry.value_words != ValueWordsFor(MeterType(entry.type)) ||
      entry.value_offset % detail::layout::kWordsPerLine != 0 || entry.value_offset > capacity ||
      entry.value_words > capacity - entry.value_offset) {
    return nullptr;
  }
  return view.values + entry.value_offset;
}

bool IdTable::Fill(Entry& e, std::uint64_t claimed, std::uint64_t hash, std::string_view canonical,
                   MeterType type, std::int64_t param_min, std::int64_t param_max) noexcept {
  namespace l = detail::layout;
  // release: pairs with the acquire load of `hash` by probers (invariant 4);
  // the value itself is all they need.
  e.hash.store(hash, std::memory_order_release);
  e.id_len = static_cast<std::uint16_t>(canonical.size());
  std::memcpy(e.id, canonical.data(), canonical.size());
  e.type = static_cast<std::uint8_t>(type);
  e.param_min = param_min;
  e.param_max = param_max;
  const std::uint32_t words = ValueWordsFor(type);
  std::uint64_t offset = 0;
  if (AllocateValues(words, &offset)) {
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
      default:
        break;
    }
    e.value_offset = offset;
    e.value_words = words;
  } else {
    e.value_offset = 0;
    e.value_words = 0;  // the Id is known, but has no storage: every lookup gets a no-op
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
                                        std::int64_t param_min, std::int64_t param_max) noexcept {
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

  for (std::uint32_t probes = 0; probes < view_.table_slots;) {
    Entry& e = view_.entries[i];
    // acquire: pairs with the READY release store in Fill (and with the claim
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
        h.overflow.fetch_add(1, std::memory_order_relaxed);
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
        if (!ReserveMeter()) {
          h.overflow.fetch_add(1, std::memory_order_relaxed);
          return {Status::kFull};
        }
        // relaxed: tokens only need to be unique; 2^62 of them never run out.
        const std::uint64_t token = h.claim_tokens.fetch_add(1, std::memory_order_relaxed) + 1;
        ClaimLock lock;  // held until this function returns, after READY
        if (token > kMaxClaimToken || lock.Acquire(view_.fd, token) != 0) {
          h.meters.fetch_sub(1, std::memory_order_relaxed);  // give the reservation back
          return {Status::kNoClaimLock};
        }
        const std::uint64_t claimed = ClaimedState(token);
        std::uint64_t expected = s;
        // acq_rel: the claim makes this process the entry's only writer
        // (invariant 3); on failure, acquire the state another process set.
        if (!e.state.compare_exchange_strong(expected, claimed, std::memory_order_acq_rel,
                                             std::memory_order_acquire)) {
          h.meters.fetch_sub(1, std::memory_order_relaxed);  // give the reservation back
          continue;                                          // re-examine this entry
        }
        // relaxed: the hook pointer is set before the test forks.
        if (auto hook = g_claim_hook.load(std::memory_order_relaxed)) hook();
        if (!Fill(e, claimed, hash, canonical, type, param_min, param_max)) {
          // Taken for dead while we held the lock (a failed lock query):
          // the Id may have been registered elsewhere meanwhile; look again.
          if (++lost_claims > 3) return {Status::kTimedOut};
          i = start;
          probes = 0;
          continue;
        }
        if (Word* words = ValueBlock(view_, e)) return {Status::kOk, &e, words};
        h.overflow.fetch_add(1, std::memory_order_relaxed);
        return {Status::kFull, &e, nullptr};
      }
    }
    i = (i + 1) & mask;
    ++probes;
  }
  h.overflow.fetch_add(1, std::memory_order_relaxed);
  return {Status::kFull};
}

}  // namespace spectator::internal
