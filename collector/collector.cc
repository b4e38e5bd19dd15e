#include "collector.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string_view>
#include <utility>

#include "collector_lock.h"
#include "log.h"
#include "run_loop.h"
#include "systemd.h"
#include "spectator/version.h"

namespace spectator::collector {
namespace {

using Clock = std::chrono::system_clock;

// "name{k=v,...}" for a canonical Id.
std::string Readable(std::string_view canonical) {
  IdView id;
  if (!ParseCanonicalId(canonical, &id)) return std::string(canonical);
  return FormatId(id.name, id.tags);
}

std::string StatusClass(const Attempt& a) {
  if (a.status == 0) return a.timed_out ? "timeout" : "connection-error";
  return std::to_string(a.status / 100) + "xx";
}

}  // namespace

Collector::Collector(Registry& registry, CollectorOptions options, Sink& sink)
    : registry_(registry), options_(std::move(options)), sink_(sink), reader_(registry) {
  self_.sent = registry.GetCounter("spectator.measurements", {{"id", "sent"}});
  self_.dropped_validation =
      registry.GetCounter("spectator.measurements", {{"id", "dropped"}, {"error", "validation"}});
  self_.dropped_http =
      registry.GetCounter("spectator.measurements", {{"id", "dropped"}, {"error", "http-error"}});
  self_.dropped_other =
      registry.GetCounter("spectator.measurements", {{"id", "dropped"}, {"error", "other"}});
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
    reader_.Commit(taken_[from].reading.position, taken_[to - 1].reading.position + 1);
    return;
  }
  for (std::size_t k = from; k < to; ++k) reader_.Restore(taken_[k].reading);
}

bool Collector::CatchUp(Clock::time_point now, std::uint64_t last_step_ns, pid_t last_pid,
                        StepStats* stats) {
  const std::size_t n = measurements_.size();
  const auto now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch());
  const auto gap = now_ns - std::chrono::nanoseconds(static_cast<std::int64_t>(last_step_ns));
  char ago[64];
  std::snprintf(ago, sizeof ago, "%.1f s", static_cast<double>(gap.count()) / 1e9);
  const std::string what = std::to_string(n) + " measurements of " +
                           std::to_string(taken_.size()) + " meters";
  const std::string since = std::string("the last step of this segment was ") + ago +
                            " ago (collector pid " + std::to_string(last_pid) + ")";
  if (options_.max_catch_up > std::chrono::nanoseconds::zero() && gap > options_.max_catch_up) {
    // Taken and committed, not published: counted, so the loss is visible.
    Settle(0, taken_.size(), /*retry=*/false);
    registry_
        .GetCounter("spectator.measurements",
                    {{"id", "dropped"}, {"error", ToString(DropReason::kStale)}})
        .Add(static_cast<double>(n));
    stats->dropped += n;
    char limit[64];
    std::snprintf(limit, sizeof limit, "%.1f s",
                  static_cast<double>(options_.max_catch_up.count()) / 1e9);
    Log(LogLevel::kWarning, since + ", more than --max-catch-up " + limit + ": dropping the " +
                                what + " that accumulated meanwhile "
                                "(spectator.measurements{id=dropped,error=stale})");
    return true;
  }
  // Published in this step: exact, but a rate graph shows it as one spike.
  // Worth a warning when the absence was long (more than 10 steps).
  const bool long_gap = gap > 10 * options_.step;
  Log(long_gap ? LogLevel::kWarning : LogLevel::kInfo,
      since + ": publishing the " + what + " accumulated since at once");
  return false;
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

  taken_.clear();
  id_arena_.clear();
  bucket_arena_.clear();
  measurements_.clear();
  StepStats stats;
  const SegmentReader::ScanStats scan =
      reader_.Scan(SegmentReader::Mode::kTake, now, [&](const MeterReading& r) {
        Taken t;
        t.reading = r;
        t.id_offset = id_arena_.size();
        id_arena_.append(r.id);
        if (r.buckets != nullptr) {
          t.bucket_offset = bucket_arena_.size();
          bucket_arena_.insert(bucket_arena_.end(), r.buckets, r.buckets + kPercentileBucketCount);
        }
        taken_.push_back(t);
      });
  stats.meters = scan.meters;
  stats.corrupt = scan.corrupt;
  last_corrupt_ = scan.corrupt;

  // The arenas are complete: point the readings into them and measure.
  for (Taken& t : taken_) {
    t.reading.id = std::string_view(id_arena_).substr(t.id_offset, t.reading.id.size());
    if (t.reading.buckets != nullptr) t.reading.buckets = bucket_arena_.data() + t.bucket_offset;
    t.first = measurements_.size();
    AppendMeasurements(t.reading, t.reading.id, &measurements_);
    t.count = measurements_.size() - t.first;
  }
  stats.measurements = measurements_.size();
  // No heartbeat: a segment never collected; everything is published.
  if (first_of_run && last_step_ns != 0 && CatchUp(now, last_step_ns, last_pid, &stats)) return stats;

  // Batches of whole meters, so that each meter's fate is one batch's fate.
  // After an undeliverable batch, or once the step's time is used up (a slow
  // endpoint), the rest waits in the journal for the next step: the collector
  // keeps to its schedule instead of queueing work.
  const auto started = std::chrono::steady_clock::now();
  bool defer = false;
  for (std::size_t i = 0; i < taken_.size();) {
    std::size_t j = i;
    std::size_t n = 0;
    while (j < taken_.size() && (n == 0 || n + taken_[j].count <= options_.batch_size)) {
      n += taken_[j++].count;
    }
    if (!defer && stats.batches > 0 && std::chrono::steady_clock::now() - started > options_.step) {
      Log(LogLevel::kWarning, "publishing took longer than the step; the rest waits for the next");
      defer = true;
    }
    if (n == 0 || defer) {
      if (defer) stats.retained += n;
      Settle(i, j, defer);
      i = j;
      continue;
    }
    const Measurement* first = measurements_.data() + taken_[i].first;
    const BatchOutcome outcome =
        sink_.Publish(options_.common_tags, first, first + n, started + options_.step);
    // Settle first: a collector killed between the endpoint's answer and the
    // commit publishes the batch again, so nothing else (the self-metrics may
    // register a meter) belongs in that window.
    const bool retry = outcome.kind == BatchOutcome::Kind::kRetryable;
    Settle(i, j, retry);
    ++stats.batches;
    Record(outcome);
    stats.sent += outcome.sent;
    stats.dropped += outcome.dropped;
    if (retry) {
      stats.retained += n;
      defer = true;
    }
    i = j;
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

void Collector::Dump(std::FILE* out, Clock::time_point now) {
  const SegmentInfo info = registry_.Info();
  std::fprintf(out,
               "segment %s: layout %u, %llu bytes, %u/%u meters, %llu/%llu value words, "
               "overflow %llu, invalid ids %llu, type mismatches %llu, recovered claims %llu",
               info.name.c_str(), info.layout_version,
               static_cast<unsigned long long>(info.size_bytes), info.meters, info.max_meters,
               static_cast<unsigned long long>(info.value_words_used),
               static_cast<unsigned long long>(info.value_words),
               static_cast<unsigned long long>(info.overflow),
               static_cast<unsigned long long>(info.invalid_ids),
               static_cast<unsigned long long>(info.type_mismatches),
               static_cast<unsigned long long>(info.recovered_claims));
  if (info.collector_pid != 0) {
    const auto now_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
    const double age =
        static_cast<double>(now_ns - static_cast<std::int64_t>(info.collector_heartbeat_unix_ns)) /
        1e9;
    std::fprintf(out, ", collector pid %lld (last step %.1f s ago)",
                 static_cast<long long>(info.collector_pid), age);
  }
  std::fputc('\n', out);

  const auto stats = reader_.Scan(SegmentReader::Mode::kPeek, now, [&](const MeterReading& r) {
    std::string line = ToString(r.type);
    line += ' ';
    line += Readable(r.id);
    auto field = [&](const char* name, double v) {
      line.append(" ").append(name).append("=").append(FormatValue(v));
    };
    switch (r.type) {
      case MeterType::kCounter:
      case MeterType::kMonotonicCounter:
        field("count", r.count);
        break;
      case MeterType::kTimer:
      case MeterType::kPercentileTimer:
      case MeterType::kDistributionSummary:
      case MeterType::kPercentileDistributionSummary: {
        const bool timer = r.type == MeterType::kTimer || r.type == MeterType::kPercentileTimer;
        field("count", r.count);
        field(timer ? "totalTime" : "totalAmount", r.total);
        field("totalOfSquares", r.total_of_squares);
        field("max", r.max);
        break;
      }
      case MeterType::kGauge:
      case MeterType::kAgeGauge:
        field("value", r.value);
        break;
      case MeterType::kMaxGauge:
        field("max", r.max);
        break;
    }
    if (r.buckets != nullptr) {
      std::size_t used = 0;
      for (std::size_t b = 0; b < kPercentileBucketCount; ++b) used += r.buckets[b] != 0;
      line += " buckets=" + std::to_string(used);
    }
    line += '\n';
    std::fputs(line.c_str(), out);
  });
  if (stats.corrupt > 0) std::fprintf(out, "corrupt entries skipped: %zu\n", stats.corrupt);
  std::fflush(out);
}

int RunCollector(const CollectorOptions& options) {
  SetLogLevel(options.log_level);

  SegmentOptions seg;
  seg.name = options.segment;
  seg.max_meters = options.max_meters;
  seg.value_words = options.value_words;
  seg.mode = options.mode;
  seg.group = options.group;
  seg.create_if_missing = !options.dump;  // --dump only looks
  seg.logger = [](LogLevel level, std::string_view message) { Log(level, message); };
  std::unique_ptr<Registry> registry;
  try {
    registry = std::make_unique<Registry>(seg);
  } catch (const std::exception& e) {
    Log(LogLevel::kError, e.what());
    return 1;
  }

  std::unique_ptr<Sink> sink;
  if (options.uri.empty()) {
    sink = std::make_unique<StdoutSink>();
  } else {
    HttpOptions http;
    http.connect_timeout = options.connect_timeout;
    http.total_timeout = options.timeout;
    sink = std::make_unique<AtlasSink>(options.uri, http, RetryPolicy{});
  }

  if (options.dump) {
    // Peeking needs no lock: it changes nothing.
    Collector(*registry, options, *sink).Dump(stdout, Clock::now());
    return 0;
  }

  CollectorLock lock;
  std::string error;
  if (!lock.TryAcquire(options.segment, &error)) {
    const auto pid = registry->Info().collector_pid;
    if (pid != 0) error += " (pid " + std::to_string(pid) + ")";
    Log(LogLevel::kError, error);
    return 1;
  }

  Collector collector(*registry, options, *sink);
  Log(LogLevel::kInfo, "publishing segment '" + options.segment + "' to " +
                           (options.uri.empty() ? std::string("stdout") : options.uri) + " every " +
                           std::to_string(options.step.count() / 1e9) + " s");
  if (options.once) {
    collector.Step(Clock::now());
    return 0;
  }

  // Under systemd (Type=notify): ready now that the segment is open and the
  // lock held; the watchdog is pinged from the run loop's own thread, so a
  // stuck step stops the pings and systemd restarts us.
  SystemdNotifier systemd = SystemdNotifier::FromEnvironment(&std::getenv, ::getpid());
  systemd.Notify("READY=1");

  // The schedule (run_loop.h): wall-clock boundaries, monotonic waits.
  SystemStepClock clock;
  RunLoopOptions loop;
  loop.step = options.step;
  loop.watchdog_interval = systemd.watchdog() / 2;
  RunLoopHooks hooks;
  hooks.step = [&collector](StepClock::WallTime now) { collector.Step(now); };
  hooks.stopping = [&systemd](int) { systemd.Notify("STOPPING=1"); };
  hooks.watchdog = [&systemd] { systemd.Notify("WATCHDOG=1"); };
  const int sig = RunSteps(clock, loop, hooks);
  Log(LogLevel::kInfo, std::string("stopping on ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") +
                           " after a final publish");
  return 0;
}

}  // namespace spectator::collector
