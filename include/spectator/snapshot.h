#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <sys/types.h>

#include "spectator/export.h"
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
  std::uint32_t slot = 0;    // stable index of the meter's entry
  MeterType type = MeterType::kCounter;
  std::string_view id;       // canonical Id (id.h), valid during the callback
  double count = 0;
  double total = 0;
  double total_of_squares = 0;
  double max = 0;
  double value = 0;
  const std::uint64_t* buckets = nullptr;
};

/// The read side of a segment, for the collector and for --dump.
///
/// Thread safety: one SegmentReader must be used by one thread at a time.
/// Process safety: any number of readers may Peek; only one process may Take
/// (the collector, which holds the collector lock); workers may update
/// concurrently with either.
///
/// The segment is untrusted input: every entry's state, type, Id bytes, value
/// offset and length is checked before use; a corrupt entry is skipped and
/// counted, never dereferenced.
class SPECTATOR_EXPORT SegmentReader {
 public:
  enum class Mode {
    kPeek,  // read the current values; change nothing
    kTake,  // read and reset the step values (atomic exchange), advance gauge
            // TTL and monotonic state; the only reset path of the library
  };

  struct ScanStats {
    std::size_t meters = 0;   // readings delivered
    std::size_t corrupt = 0;  // entries skipped because they failed validation
  };

  /// The reader keeps a reference to `registry`, which must outlive it.
  explicit SegmentReader(Registry& registry);
  ~SegmentReader();
  SegmentReader(const SegmentReader&) = delete;
  SegmentReader& operator=(const SegmentReader&) = delete;

  /// Calls `visit` once per valid meter, in slot order. `now` drives the gauge
  /// TTL, age gauges and (on kTake) the time a gauge change was first seen.
  /// Exactness: with kTake, whatever the interleaving with updates, the sum of
  /// all takes of a word equals the sum of all updates to it.
  ScanStats Scan(Mode mode, std::chrono::system_clock::time_point now,
                 const std::function<void(const MeterReading&)>& visit);

  /// Gives back what a kTake returned and could not be published, so that the
  /// next take includes it: counts, totals and buckets are added back, max is
  /// merged, a monotonic counter's previous sample is rewound. Gauges and age
  /// gauges are not taken and need nothing.
  void Restore(const MeterReading& reading) noexcept;

  /// Announces the collector (pid and heartbeat) in the segment header, for
  /// --dump and for operators.
  void Heartbeat(pid_t collector_pid, std::chrono::system_clock::time_point now) noexcept;

  SegmentInfo Info() const { return registry_.Info(); }

  struct Impl;

 private:
  Registry& registry_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spectator
