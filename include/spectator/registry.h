#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "spectator/counter.h"
#include "spectator/distribution_summary.h"
#include "spectator/error.h"
#include "spectator/export.h"
#include "spectator/gauge.h"
#include "spectator/id.h"
#include "spectator/meter_type.h"
#include "spectator/options.h"
#include "spectator/timer.h"

namespace spectator {

/// Capacities and usage of a segment, as recorded in its header.
struct SegmentInfo {
  std::string name;
  std::uint32_t layout_version = 0;
  std::uint64_t size_bytes = 0;
  std::uint32_t max_meters = 0;
  std::uint32_t table_slots = 0;
  std::uint64_t value_words = 0;
  std::uint64_t value_words_used = 0;
  std::uint32_t meters = 0;            // entries claimed so far (overflow meters aside)
  std::uint64_t id_bytes = 0;          // capacity of the Id arena
  std::uint64_t id_bytes_used = 0;
  std::uint32_t reserve_meters = 0;    // room for overflow meters
  std::uint32_t overflow_meters = 0;   // overflow meters placed (per-type ones included)
  std::uint64_t overflow = 0;          // registrations without a place of their own: table,
                                       // value area or Id arena full (see GetCounter)
  std::uint64_t invalid_ids = 0;       // registrations refused: invalid Id
  std::uint64_t type_mismatches = 0;   // registrations refused: Id exists with another type
  std::uint64_t recovered_claims = 0;  // entries taken over from a claimer that died
  std::uint64_t created_unix_ns = 0;
  std::int64_t collector_pid = 0;  // 0 when no collector has announced itself
  std::uint64_t collector_heartbeat_unix_ns = 0;
};

/// The meters of one shared-memory segment.
///
/// Opening a Registry creates the segment /dev/shm/<name> or attaches to the
/// one another process created; either side (worker, master or collector) may
/// come first. Open it once in the master before fork(): the mapping and every
/// handle obtained from it stay valid in the children.
///
/// Thread safety: every method may be called concurrently from any thread.
/// Process safety: any number of processes may register and update meters in
/// the same segment at once; registration takes no lock (an entry is claimed
/// by CAS), so a process killed at any instant never blocks the others.
///
/// Getting a meter never throws. When the segment is full (its table, value
/// area or Id arena), a new Id's updates go to the overflow meter of its name
/// and type, whose only tag is spectator.overflow=true, so that the totals
/// per name stay exact; when even that cannot be placed, to the per-type
/// overflow meter `spectator.overflowed{spectator.overflow=true,type=...}`.
/// Both count in the header's `overflow` and log a (rate-limited) line. An
/// invalid Id or an Id already registered with another type yields a working
/// no-op meter, a log line and a counter in the segment header that the
/// collector publishes.
/// Memory ordering: a meter's Id, type and value words are visible to any
/// process that observes its entry in the READY state (release/acquire).
class SPECTATOR_EXPORT Registry {
 public:
  /// Opens (and creates, unless options.create_if_missing is false) the
  /// segment. \throw Error when the name is invalid, the segment is foreign,
  /// of another layout version, of an inconsistent size, owned by another
  /// user, or cannot be mapped.
  explicit Registry(const SegmentOptions& options = {});
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Getting a handle canonicalises the Id (see id.h) into a stack buffer,
  // hashes it and probes the table: no lock, and no allocation once the Id
  // exists (pass tags as a braced list, or a Tags vector you keep). Cache
  // handles on hot paths anyway; they are cheaper still.
  Counter GetCounter(std::string_view name, TagList tags = {}) noexcept;
  MonotonicCounter GetMonotonicCounter(std::string_view name, TagList tags = {}) noexcept;
  Timer GetTimer(std::string_view name, TagList tags = {}) noexcept;
  DistributionSummary GetDistributionSummary(std::string_view name, TagList tags = {}) noexcept;
  Gauge GetGauge(std::string_view name, TagList tags = {}) noexcept;
  MaxGauge GetMaxGauge(std::string_view name, TagList tags = {}) noexcept;
  AgeGauge GetAgeGauge(std::string_view name, TagList tags = {}) noexcept;

  /// The bucket range is fixed by whichever process registers the Id first;
  /// later callers get the registered range. An empty range (min > max) is
  /// refused with a no-op meter.
  PercentileTimer GetPercentileTimer(
      std::string_view name, TagList tags = {},
      std::chrono::nanoseconds min = std::chrono::milliseconds(10),
      std::chrono::nanoseconds max = std::chrono::seconds(60)) noexcept;
  PercentileDistributionSummary GetPercentileDistributionSummary(
      std::string_view name, TagList tags = {}, std::int64_t min = 0,
      std::int64_t max = INT64_MAX) noexcept;

  /// Capacities and usage, read from the segment header.
  SegmentInfo Info() const;

  const std::string& segment_name() const noexcept;

  /// Removes /dev/shm/<name>. Processes that still map it keep their mapping;
  /// the next Registry opened with that name creates a fresh segment.
  /// Returns false when there was nothing to remove.
  static bool Remove(const std::string& name) noexcept;

  struct Impl;  // src/registry_impl.h

 private:
  friend class SegmentReader;
  // The Get* of meters without parameters (defined in registry.cc).
  template <typename Meter>
  Meter Get(std::string_view name, TagList tags, MeterType type) noexcept;
  detail::Word* Register(std::string_view name, TagList tags, MeterType type,
                         std::int64_t param_min, std::int64_t param_max, std::int64_t* out_min,
                         std::int64_t* out_max) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spectator
