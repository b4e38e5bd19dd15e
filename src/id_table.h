#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "segment_layout.h"

namespace spectator::internal {

/// The hash that places an Id in the table. Part of the layout: changing it
/// requires a new kLayoutVersion, since processes of both versions would probe
/// different slots for the same Id.
std::uint64_t HashId(std::string_view canonical_id) noexcept;

using HashFunction = std::uint64_t (*)(std::string_view) noexcept;

/// Pointers into one mapped segment whose header has been validated.
/// A validated segment. The geometry is copied out of the header when the
/// segment is validated and never re-read from it: another process could
/// rewrite the header later, and every bound must stay the one checked
/// against the mapping's size.
struct TableView {
  int fd = -1;  // the segment file: claim liveness is asked through it (process.h)
  SegmentHeader* header = nullptr;
  Entry* entries = nullptr;  // table_slots entries
  Word* values = nullptr;    // value_words words
  std::uint32_t table_slots = 0;
  std::uint32_t max_meters = 0;
  std::uint64_t value_words = 0;
};

/// The value words of a READY entry, or nullptr when its type, length or
/// offset is not what a writer of this layout would have stored (the entry
/// is shared with other processes and may be corrupt). Workers and the
/// reader use this one check, so they agree on what is corrupt.
Word* ValueBlock(const TableView& view, const Entry& entry) noexcept;

/// Writes a fresh header for `layout` into `base` (which must be zeroed and
/// layout.total_size bytes long) and publishes it with `ready`.
void InitializeSegment(void* base, std::uint32_t max_meters, std::uint64_t value_words,
                       const Layout& layout, std::uint64_t created_unix_ns);

/// Returns the view of a segment whose header was validated, backed by the
/// file `fd`.
TableView ViewOf(void* base, int fd);

/// The open-addressing (linear probing) table of meter entries. No lock on
/// the table: an EMPTY entry is claimed by CAS, filled, then published READY
/// by CAS with release order; lookups of existing Ids only load. The claimer
/// holds the file lock of its claim token meanwhile (process.h); a claim whose
/// lock nobody holds was left by a process that died, and is turned ABANDONED
/// and probed past (never reused, so no prober can be misled by a stale hash;
/// see segment_layout.h invariant 4).
///
/// Thread and process safe. Operates on any byte range with a valid header,
/// so tests can use heap memory and inject a degenerate hash.
class IdTable {
 public:
  explicit IdTable(TableView view, HashFunction hash = &HashId) : view_(view), hash_(hash) {}

  enum class Status {
    kOk,            // found or registered
    kFull,          // no room for a new entry or for its value words
    kTypeMismatch,  // the Id exists with another meter type
    kTimedOut,      // the entry is being registered by a live process that did not finish
    kNoClaimLock,   // the claim lock could not be taken (no /proc, or out of descriptors)
  };

  struct Result {
    Status status = Status::kFull;
    const Entry* entry = nullptr;  // set with kOk and kTypeMismatch
    Word* words = nullptr;         // kOk: the meter's value words
  };

  /// Finds the Id or registers it. `canonical` must come from CanonicalizeId.
  /// Counts refusals in the segment header. Never throws.
  Result FindOrRegister(std::string_view canonical, MeterType type, std::int64_t param_min,
                        std::int64_t param_max) noexcept;

  /// How long to wait for a live process that is registering the same Id.
  void set_claim_timeout(std::chrono::milliseconds timeout) { claim_timeout_ = timeout; }

  /// Test hook: called by a claimer after it claimed an entry and before it
  /// publishes it READY. Process-wide; nullptr to clear.
  static void SetClaimHookForTesting(void (*hook)());

 private:
  bool Matches(const Entry& entry, std::uint64_t hash, std::string_view canonical) const;
  bool ReserveMeter() noexcept;
  bool AllocateValues(std::uint32_t words, std::uint64_t* offset) noexcept;
  bool Fill(Entry& entry, std::uint64_t claimed, std::uint64_t hash, std::string_view canonical,
            MeterType type, std::int64_t param_min, std::int64_t param_max) noexcept;

  TableView view_;
  HashFunction hash_;
  std::chrono::milliseconds claim_timeout_{2000};
};

}  // namespace spectator::internal
