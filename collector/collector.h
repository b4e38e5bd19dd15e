#pragma once

// The collector: every step, take the step values of every meter in the
// segment, turn them into measurements, publish them in batches and settle
// each meter's journal by what became of its batch.

#include <chrono>
#include <cmath>
#include <mutex>
#include <string>
#include <vector>

#include "measurements.h"
#include "options.h"
#include "sinks.h"
#include "spectator/registry.h"
#include "spectator/internal/collector_lock.h"
#include "spectator/internal/reader.h"

namespace spectator::collector {

/// Whether meters of `type` have a step maximum (timers, summaries and
/// their percentile forms, max gauges): what Collector::last_step_max keeps.
bool HasMaximum(MeterType type);

/// What one step did.
struct StepStats {
  std::size_t meters = 0;        // readings taken
  std::size_t corrupt = 0;       // entries skipped as corrupt
  std::size_t measurements = 0;  // measurements built
  std::size_t sent = 0;          // accepted by the sink
  std::size_t dropped = 0;       // rejected for good (4xx, 202 errors, stdout failure)
  std::size_t retained = 0;      // kept in the segment for the next step (sink down)
  std::size_t batches = 0;       // Publish calls
};

/// Thread safety: one thread at a time. Process safety: a Collector holds the
/// segment's CollectorLock while it exists (a second taker would break
/// exactness), shared with any other holder in this process.
class Collector {
 public:
  /// Takes the collector lock and registers the collector's self-metrics in
  /// `registry` (docs/protocol.md, "Self-metrics"); they are published with the
  /// other meters. \throw Error when another process holds the lock.
  Collector(Registry& registry, CollectorOptions options, Sink& sink)
      : Collector(registry, std::move(options), &sink) {}
  /// `sink` null: nothing is published; each step takes and settles at once
  /// (the Prometheus endpoint alone still needs steps: max gauges and timer
  /// maxima restart, gauges expire, the journal stays empty).
  Collector(Registry& registry, CollectorOptions options, Sink* sink);

  /// One step at time `now`: heartbeat (this process's pid and `now` in the
  /// segment header), take, measure, publish, settle. A batch that could not
  /// be delivered (endpoint down, or the step's time used up) stays in the
  /// segment's journal and the rest of the step is not attempted; the next
  /// step publishes it all.
  StepStats Step(std::chrono::system_clock::time_point now);

  /// Held by Step while it takes and while it restores a failed batch: the
  /// two moments when a meter's cumulative total (cumulative words + live
  /// words) is briefly short or over. A Prometheus scrape peeks under it
  /// (prometheus_endpoint.h) so that its totals never go back.
  std::mutex& take_mutex() const { return take_mutex_; }

  /// The maximum the last step took from the meter in entry `slot` (timers,
  /// summaries, max gauges); NaN when it took none or the meter has no
  /// maximum. Call with take_mutex() held. A scrape reports the larger of
  /// this and the running step's, so that a maximum does not vanish the
  /// moment a step takes it.
  double last_step_max(std::uint32_t slot) const {
    return slot < last_max_.size() ? last_max_[slot] : std::nan("");
  }

 private:
  // A meter taken this step: what settling it needs. Its measurements
  // view its Id in the reader, valid until the next scan.
  struct Taken {
    std::uint32_t slot = 0;
    std::uint32_t position = 0;
    MeterType type = MeterType::kCounter;
    std::size_t bucket_offset = kNoBuckets;  // its taken buckets in bucket_arena_
    std::size_t first = 0;                   // its measurements: [first, first + count)
    std::size_t count = 0;
  };
  static constexpr std::size_t kNoBuckets = ~std::size_t{0};

  void UpdateSelfGauges(std::size_t corrupt);
  // The first step of a run: whether what accumulated since the segment's
  // last step (by another collector) is older than --max-catch-up and is
  // dropped (counted as stale) instead of published; and the log line.
  bool Stale(std::chrono::system_clock::time_point now, std::uint64_t last_step_ns) const;
  void CatchUp(std::chrono::system_clock::time_point now, std::uint64_t last_step_ns,
               pid_t last_pid, bool stale, const StepStats& stats);
  // Publishes (or settles unpublished) taken_[0, k) as one batch; what is
  // left moves to the front.
  void Flush(std::size_t k, StepStats* stats);
  void Record(const BatchOutcome& outcome);
  void Settle(std::size_t from, std::size_t to, bool retry);

  Registry& registry_;
  CollectorOptions options_;
  Sink* sink_;  // null: no publishing
  mutable std::mutex take_mutex_;
  std::vector<double> last_max_;  // by entry slot; guarded by take_mutex_
  CollectorLock lock_;     // before reader_: it grants the take
  SegmentReader reader_;

  // Reused between steps to keep allocation off the steady state.
  std::vector<Taken> taken_;
  std::vector<std::uint64_t> bucket_arena_;  // percentile meters' taken buckets, for Restore
  std::vector<Measurement> measurements_;
  std::size_t last_corrupt_ = 0;
  bool first_step_ = true;
  // This step's: whether its batches are published, whether the rest waits
  // for the next step, and when publishing began.
  bool publish_ = true;
  bool defer_ = false;
  std::chrono::steady_clock::time_point started_;

  struct SelfMetrics {
    Counter sent;
    Counter dropped_validation;
    Counter dropped_http;
    Counter dropped_other;
    Gauge registry_size;
    Gauge corrupt_entries;
    MonotonicCounter overflow;
    MonotonicCounter invalid_ids;
    MonotonicCounter type_mismatches;
  } self_;
};

}  // namespace spectator::collector
