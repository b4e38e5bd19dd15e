#include "collector.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>

#include "log.h"

namespace spectator::collector {
namespace {

using Clock = std::chrono::system_clock;

std::string StatusClass(const Attempt& a) {
  if (a.status == 0) return a.timed_out ? "timeout" : "connection-error";
  return std::to_string(a.status / 100) + "xx";
}

}  // namespace

namespace {

// How long ago, at `now`, the segment's last recorded step was.
std::chrono::nanoseconds Gap(Clock::time_point now, std::uint64_t last_step_ns) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()) -
         std::chrono::nanoseconds(static_cast<std::int64_t>(last_step_ns));
}

}  // namespace

bool HasMaximum(MeterType type) {
  switch (type) {
    case MeterType::kTimer:
    case MeterType::kDistributionSummary:
    case MeterType::kPercentileTimer:
    case MeterType::kPercentileDistributionSummary:
    case MeterType::kMaxGauge:
      return true;
    default:
      return false;
  }
}

Collector::Collector(Registry& registry, CollectorOptions options, Sink* sink)
    : registry_(registry),
      options_(std::move(options)),
      sink_(sink),
      lock_(registry.segment_name()),
      reader_(registry, lock_) {
  const auto dropped = [&registry](DropReason reason) {
    return registry.GetCounter("spectator.measurements",
                               {{"id", "dropped"}, {"error", ToString(reason)}});
  };
  self_.sent = registry.GetCounter("spectator.measurements", {{"id", "sent"}});
  self_.dropped_validation = dropped(DropReason::kValidation);
  self_.dropped_http = dropped(DropReason::kHttpError);
  self_.dropped_other = dropped(DropReason::kOther);
  self_.registry_size = registry.GetGauge("spectator.registrySize");
  self_.corrupt_entries = registry.GetGauge("spectator.corruptEntries");
  self_.overflow = registry.GetMonotonicCounter("spectator.overflow");
  self_.invalid_ids = registry.GetMonotonicCounter("spectator.invalidIds");
  self_.type_mismatches = registry.GetMonotonicCounter("spectator.typeMismatches");
  // Each step sets the corrupt-entry gauge from the previous scan, before
  // taking; without a first look here, the first step (the only one of a
  // --once run) would publish 0 whatever the segment holds. Peeking changes
  // nothing in the segment.
  last_corrupt_ =
      reader_.Scan(SegmentReader::Mode::kPeek, Clock::now(), [](const MeterReading&) {}).corrupt;
}

void Collector::UpdateSelfGauges(std::size_t corrupt) {
  const SegmentInfo info = registry_.Info();
  self_.registry_size.Set(info.meters);
  self_.corrupt_entries.Set(static_cast<double>(corrupt));
  self_.overflow.Set(static_cast<double>(info.overflow));
  self_.invalid_ids.Set(static_cast<double>(info.invalid_ids));
  self_.type_mismatches.Set(static_cast<double>(info.type_mismatches));
}

void Collector::Record(const BatchOutcome& outcome) {
  self_.sent.Add(static_cast<double>(outcome.sent));
  if (outcome.dropped > 0) {
    Counter* c = &self_.dropped_other;
    switch (outcome.drop_reason) {
      case DropReason::kValidation:
        c = &self_.dropped_validation;
        break;
      case DropReason::kHttpError:
        c = &self_.dropped_http;
        break;
      case DropReason::kStale:  // never from a sink; counted by CatchUp
      case DropReason::kOther:
      case DropReason::kNone:
        break;
    }
    c->Add(static_cast<double>(outcome.dropped));
  }
  for (const Attempt& a : outcome.attempts) {
    const std::string status = StatusClass(a);
    const std::string code = a.status == 0 ? status : std::to_string(a.status);
    registry_
        .GetTimer("http.req.complete", {{"client", "spectator-collector"},
                                        {"method", "POST"},
                                        {"mode", "http-client"},
                                        {"status", status},
                                        {"statusCode", code}})
        .Record(a.elapsed);
  }
}

void Collector::Settle(std::size_t from, std::size_t to, bool retry) {
  if (from >= to) return;
  if (!retry) {
    // The readings of a step are in the reader's order: a run of them is a
    // run of positions.
    reader_.Commit(taken_[from].position, taken_[to - 1].position + 1);
    return;
  }
  const std::lock_guard<std::mutex> take(take_mutex_);
  for (std::size_t k = from; k < to; ++k) {
    const Taken& t = taken_[k];
    if (t.bucket_offset == kNoBuckets) continue;  // all else is still pending
    MeterReading r;
    r.slot = t.slot;
    r.position = t.position;
    r.type = t.type;
    r.buckets = bucket_arena_.data() + t.bucket_offset;
    reader_.Restore(r);
  }
}

void Collector::CatchUp(Clock::time_point now, std::uint64_t last_step_ns, pid_t last_pid,
                        bool stale, const StepStats& stats) {
  const std::chrono::nanoseconds gap = Gap(now, last_step_ns);
  char ago[64];
  std::snprintf(ago, sizeof ago, "%.1f s", static_cast<double>(gap.count()) / 1e9);
  const std::string what = std::to_string(stats.measurements) + " measurements of " +
                           std::to_string(stats.meters) + " meters";
  const std::string since = std::string("the last step of this segment was ") + ago +
                            " ago (collector pid " + std::to_string(last_pid) + ")";
  if (stale) {
    char limit[64];
    std::snprintf(limit, sizeof limit, "%.1f s",
                  static_cast<double>(options_.max_catch_up.count()) / 1e9);
    Log(LogLevel::kWarning, since + ", more than --max-catch-up " + limit + ": dropping the " +
                                what +
                                " that accumulated meanwhile "
                                "(spectator.measurements{id=dropped,error=stale})");
    return;
  }
  // Published in this step: exact, but a rate graph shows it as one spike.
  // Worth a warning when the absence was long (more than 10 steps).
  const bool long_gap = gap > 10 * options_.step;
  Log(long_gap ? LogLevel::kWarning : LogLevel::kInfo,
      since + ": publishing the " + what + " accumulated since at once");
}

bool Collector::Stale(Clock::time_point now, std::uint64_t last_step_ns) const {
  const std::chrono::nanoseconds gap = Gap(now, last_step_ns);
  return options_.max_catch_up > std::chrono::nanoseconds::zero() && gap > options_.max_catch_up;
}

void Collector::Flush(std::size_t k, StepStats* stats) {
  if (k == 0) return;
  const Taken& last = taken_[k - 1];
  const std::size_t n = last.first + last.count;  // the batch's measurements start at 0
  if (!publish_) {
    // Taken and settled, not published: the endpoint alone, or what a long
    // absence left (counted as stale by Step).
    Settle(0, k, /*retry=*/false);
  } else {
    // After an undeliverable batch, or once the step's time is used up (a
    // slow endpoint), the rest waits in the journal for the next step: the
    // collector keeps to its schedule instead of queueing work.
    if (!defer_ && stats->batches > 0 &&
        std::chrono::steady_clock::now() - started_ > options_.step) {
      Log(LogLevel::kWarning, "publishing took longer than the step; the rest waits for the next");
      defer_ = true;
    }
    if (n == 0 || defer_) {
      if (defer_) stats->retained += n;
      Settle(0, k, defer_);
    } else {
      const BatchOutcome outcome = sink_->Publish(options_.common_tags, measurements_.data(),
                                                  measurements_.data() + n,
                                                  started_ + options_.step);
      // Settle first: a collector killed between the endpoint's answer and
      // the commit publishes the batch again, so nothing else (the
      // self-metrics may register a meter) belongs in that window.
      const bool retry = outcome.kind == BatchOutcome::Kind::kRetryable;
      Settle(0, k, retry);
      ++stats->batches;
      Record(outcome);
      stats->sent += outcome.sent;
      stats->dropped += outcome.dropped;
      if (retry) {
        stats->retained += n;
        defer_ = true;
      }
    }
  }
  // What is left (at most the meter that did not fit) moves to the front.
  if (k == taken_.size()) {
    taken_.clear();
    measurements_.clear();
    bucket_arena_.clear();
    return;
  }
  Taken t = taken_[k];
  measurements_.erase(measurements_.begin(),
                      measurements_.begin() + static_cast<std::ptrdiff_t>(t.first));
  t.first = 0;
  if (t.bucket_offset != kNoBuckets) {
    bucket_arena_.erase(bucket_arena_.begin(),
                        bucket_arena_.begin() + static_cast<std::ptrdiff_t>(t.bucket_offset));
    t.bucket_offset = 0;
  } else {
    bucket_arena_.clear();
  }
  taken_.assign(1, t);
}

StepStats Collector::Step(Clock::time_point now) {
  // The first step of a run compares now with the last step recorded in the
  // segment (by an earlier collector), read before our own heartbeat.
  std::uint64_t last_step_ns = 0;
  pid_t last_pid = 0;
  const bool first_of_run = std::exchange(first_step_, false);
  if (first_of_run) {
    const SegmentInfo info = registry_.Info();
    last_step_ns = info.collector_heartbeat_unix_ns;
    last_pid = static_cast<pid_t>(info.collector_pid);
  }
  // Announce ourselves (for --dump and operators) as the segment's collector.
  reader_.Heartbeat(::getpid(), now);
  // The header's gauges go out with this step; the corrupt count is the last
  // scan's (the same entries are corrupt every scan).
  UpdateSelfGauges(last_corrupt_);

  // No heartbeat: a segment never collected; everything is published.
  const bool catching_up = sink_ != nullptr && first_of_run && last_step_ns != 0;
  const bool stale = catching_up && Stale(now, last_step_ns);
  publish_ = sink_ != nullptr && !stale;
  defer_ = false;
  started_ = std::chrono::steady_clock::now();
  taken_.clear();
  bucket_arena_.clear();
  measurements_.clear();
  StepStats stats;
  // Taken, measured and published a batch at a time, so that a step's
  // bookkeeping stays in cache however many meters there are. A batch holds
  // whole meters, so that each meter's fate is one batch's fate; it goes out
  // when the next meter would not fit. A measurement views its meter's Id in
  // the reader, which stays put until the next scan; only percentile buckets
  // are copied, for a Restore if their batch fails. The take mutex is held
  // while meters are taken, never while a batch is published.
  std::unique_lock<std::mutex> take(take_mutex_);
  const SegmentReader::ScanStats scan =
      reader_.Scan(SegmentReader::Mode::kTake, now, [&](const MeterReading& r) {
        if (HasMaximum(r.type)) {
          if (r.slot >= last_max_.size()) last_max_.resize(r.slot + 1, std::nan(""));
          last_max_[r.slot] = r.max;
        }
        Taken t;
        t.slot = r.slot;
        t.position = r.position;
        t.type = r.type;
        if (r.buckets != nullptr && sink_ != nullptr) {
          t.bucket_offset = bucket_arena_.size();
          bucket_arena_.insert(bucket_arena_.end(), r.buckets, r.buckets + kPercentileBucketCount);
        }
        t.first = measurements_.size();
        if (sink_ != nullptr) AppendMeasurements(r, r.id, &measurements_);
        t.count = measurements_.size() - t.first;
        taken_.push_back(t);
        stats.measurements += t.count;
        if (measurements_.size() >= options_.batch_size) {
          // Full; or this meter overflows it: the batch is the meters before.
          const bool over = measurements_.size() > options_.batch_size && taken_.size() > 1;
          take.unlock();
          Flush(over ? taken_.size() - 1 : taken_.size(), &stats);
          take.lock();
        }
      });
  take.unlock();
  Flush(taken_.size(), &stats);
  stats.meters = scan.meters;
  stats.corrupt = scan.corrupt;
  last_corrupt_ = scan.corrupt;
  if (catching_up) CatchUp(now, last_step_ns, last_pid, stale, stats);
  if (stale) {
    registry_
        .GetCounter("spectator.measurements",
                    {{"id", "dropped"}, {"error", ToString(DropReason::kStale)}})
        .Add(static_cast<double>(stats.measurements));
    stats.dropped += stats.measurements;
    return stats;
  }
  if (sink_ == nullptr) {
    Log(LogLevel::kDebug, "step: " + std::to_string(stats.meters) + " meters taken, none published");
    return stats;
  }

  if (stats.retained > 0) {
    Log(LogLevel::kWarning, "publish failed: " + std::to_string(stats.retained) +
                                " measurements kept in the segment for the next step");
  }
  if (stats.dropped > 0) {
    Log(LogLevel::kWarning, "dropped " + std::to_string(stats.dropped) + " measurements");
  }
  Log(LogLevel::kDebug, "step: " + std::to_string(stats.meters) + " meters, " +
                            std::to_string(stats.measurements) + " measurements, " +
                            std::to_string(stats.sent) + " sent in " +
                            std::to_string(stats.batches) + " batches");
  return stats;
}

}  // namespace spectator::collector
