#pragma once

// The read side of a segment: internal (include-internal/, never installed).
// A take resets step values: a second taker, or a user taking values behind
// the collector's back, would silently break exactness. So only code built
// with the library can take, and only under the collector lock.

#include <sys/types.h>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

#include "spectator/export.h"
#include "spectator/internal/collector_lock.h"
#include "spectator/meter_type.h"
#include "spectator/registry.h"

namespace spectator {

/// One meter's values, from SegmentReader::Scan. Which fields mean something
/// depends on `type`; unused fields are 0 (NaN where NaN means "no value"):
///
/// | type                          | fields                                                  |
/// |-------------------------------|---------------------------------------------------------|
/// | counter                       | count (sum of deltas)                                    |
/// | monotonic counter             | count (increase since the previous take; NaN: none)      |
/// | timer, percentile timer       | count, total (s), total_of_squares (s^2), max (s)        |
/// | summary, percentile summary   | count, total, total_of_squares, max                      |
/// | gauge                         | value (NaN: never set, cleared or expired after 15 min)  |
/// | max gauge                     | max (NaN: not set this step)                             |
/// | age gauge                     | value (seconds since the stored time; NaN: never set)    |
///
/// Percentile meters also have `buckets`: kPercentileBucketCount counts.
struct MeterReading {
  std::uint32_t slot = 0;      // stable index of the meter's entry
  std::uint32_t position = 0;  // where the reader keeps it, for Commit and Restore
  MeterType type = MeterType::kCounter;
  std::string_view id;  // canonical Id (id.h), valid until the next Scan of the reader
  double count = 0;
  double total = 0;
  double total_of_squares = 0;
  double max = 0;
  double value = 0;
  const std::uint64_t* buckets = nullptr;
  /// Totals since the segment was created, current (the live step included)
  /// and never decreasing, whatever became of earlier publishes: what a
  /// Prometheus scrape reads. Counter and monotonic counter: count; timer and
  /// summary: count and total (s for timers); percentile meters also buckets.
  double cumulative_count = 0;
  double cumulative_total = 0;
  const std::uint64_t* cumulative_buckets = nullptr;
};

/// The read side of a segment, for the collector and for --dump.
///
/// Thread safety: one SegmentReader must be used by one thread at a time.
/// Process safety: any number of readers may Peek; only one process may Take
/// (the collector): a reader may take only when it was opened with the
/// segment's CollectorLock, which one process at a time can hold. Workers
/// may update concurrently with either.
///
/// The segment is untrusted input: every entry's state, type, Id bytes, value
/// offset and length is checked before use; a corrupt entry is skipped and
/// counted, never dereferenced.
class SPECTATOR_EXPORT SegmentReader {
 public:
  enum class Mode {
    kPeek,  // read the current values (pending + live); change nothing
    kTake,  // move the step values into the segment's pending journal
            // (atomic exchange: the only reset path of the library) and read
            // everything pending; advance gauge TTL and monotonic state
  };

  struct ScanStats {
    std::size_t meters = 0;   // readings delivered
    std::size_t corrupt = 0;  // entries skipped because they failed validation
  };

  /// A reader that only peeks (--dump, tests): Scan(kTake) throws, and
  /// Commit, Restore and Heartbeat do nothing. The reader keeps a reference
  /// to `registry`, which must outlive it.
  explicit SegmentReader(Registry& registry);
  /// A reader that may also take: `lock` must be held by this process on the
  /// very file `registry` maps, and must outlive the reader. \throw Error
  /// (kInvalidArgument) otherwise. Defined in collector_lock.cc.
  SegmentReader(Registry& registry, const CollectorLock& lock);
  ~SegmentReader();
  SegmentReader(const SegmentReader&) = delete;
  SegmentReader& operator=(const SegmentReader&) = delete;

  /// Calls `visit` once per valid meter, in registration order (the order of
  /// their value blocks). Only live meters are visited: the table is walked
  /// for new entries only when one was published since the last scan. `now`
  /// drives the gauge TTL, age gauges and (on kTake) the time a gauge change
  /// was first seen.
  ///
  /// Exactness: with kTake, whatever the interleaving with updates, each
  /// update is moved to the pending journal by exactly one take.
  ///
  /// Crash safety: a take does not forget what it read. Counters, timer and
  /// summary statistics, max gauges and monotonic counters stay pending in
  /// the segment, and every later take returns them again (merged with the new
  /// step), until Commit. So a collector killed before its publish settled
  /// loses nothing: the next collector publishes it. Percentile buckets are
  /// the exception (journaling them would double their block): a take resets
  /// them, Restore gives them back, and a crash in between loses them.
  ///
  /// After every kTake the caller must settle each reading: Commit once it is
  /// published or dropped for good, Restore when it will be retried.
  ///
  /// \throw std::logic_error for kTake on a reader opened without the
  /// collector lock (before anything is read or changed).
  ScanStats Scan(Mode mode, std::chrono::system_clock::time_point now,
                 const std::function<void(const MeterReading&)>& visit);

  /// The reading from the last kTake is settled (published, or dropped for
  /// good): clears its pending journal so that it is not returned again.
  void Commit(const MeterReading& reading) noexcept;

  /// Commit of the readings of the last kTake whose `position` is in
  /// [first_position, end_position): a run of meters settled together (a
  /// batch) without going through their readings again.
  void Commit(std::uint32_t first_position, std::uint32_t end_position) noexcept;

  /// The reading from the last kTake could not be published and will be
  /// retried: its percentile buckets are added back to the live words (all
  /// else is still pending and comes back with the next take by itself).
  void Restore(const MeterReading& reading) noexcept;

  /// Announces the collector (pid and heartbeat) in the segment header, for
  /// --dump and for operators.
  void Heartbeat(pid_t collector_pid, std::chrono::system_clock::time_point now) noexcept;

  SegmentInfo Info() const { return registry_.Info(); }

  /// Whether this reader was opened with the collector lock.
  bool can_take() const noexcept { return can_take_; }

  struct Impl;

 private:
  Registry& registry_;
  std::unique_ptr<Impl> impl_;
  bool can_take_ = false;  // opened with the collector lock
};

}  // namespace spectator
