#include "run.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "collector.h"
#include "dump.h"
#include "log.h"
#include "prometheus_endpoint.h"
#include "run_loop.h"
#include "spectator/internal/collector_lock.h"
#include "sinks.h"
#include "systemd.h"

namespace spectator::collector {
namespace {

using Clock = std::chrono::system_clock;

SegmentOptions ToSegmentOptions(const CollectorOptions& options) {
  SegmentOptions seg;
  seg.name = options.segment;
  seg.max_meters = options.max_meters;
  seg.value_words = options.value_words;
  seg.mode = options.mode;
  seg.group = options.group;
  seg.logger = [](LogLevel level, std::string_view message) { Log(level, message); };
  return seg;
}

std::unique_ptr<Registry> Open(const SegmentOptions& seg) {
  try {
    return std::make_unique<Registry>(seg);
  } catch (const std::exception& e) {
    Log(LogLevel::kError, e.what());
    return nullptr;
  }
}

// --dump: only looks. The segment must exist; no lock, no sink, no
// self-metric, no heartbeat: a reader that can only peek.
int RunDump(const CollectorOptions& options) {
  SegmentOptions seg = ToSegmentOptions(options);
  seg.create_if_missing = false;
  const std::unique_ptr<Registry> registry = Open(seg);
  if (registry == nullptr) return 1;
  SegmentReader reader(*registry);
  Dump(reader, stdout, Clock::now());
  return 0;
}

// Atlas with --uri; stdout when there is neither --uri nor an endpoint;
// nothing for the endpoint alone.
std::unique_ptr<Sink> MakeSink(const CollectorOptions& options) {
  if (options.uri.empty() && options.prometheus) return nullptr;
  if (options.uri.empty()) return std::make_unique<StdoutSink>();
  HttpOptions http;
  http.connect_timeout = options.connect_timeout;
  http.total_timeout = options.timeout;
  return std::make_unique<AtlasSink>(options.uri, http, RetryPolicy{});
}

}  // namespace

int RunCollector(const CollectorOptions& options) {
  SetLogLevel(options.log_level);
  if (options.dump) return RunDump(options);

  const std::unique_ptr<Registry> registry = Open(ToSegmentOptions(options));
  if (registry == nullptr) return 1;
  const std::unique_ptr<Sink> sink = MakeSink(options);

  CollectorLock lock;
  std::string error;
  if (!lock.TryAcquire(options.segment, &error)) {
    const auto pid = registry->Info().collector_pid;
    if (pid != 0) error += " (pid " + std::to_string(pid) + ")";
    Log(LogLevel::kError, error);
    return 1;
  }

  Collector collector(*registry, options, sink.get());
  std::unique_ptr<PrometheusScraper> scraper;
  std::unique_ptr<PrometheusEndpoint> endpoint;
  if (options.prometheus) {
    try {
      scraper = std::make_unique<PrometheusScraper>(*registry, options.common_tags, collector);
      endpoint = std::make_unique<PrometheusEndpoint>(options.prometheus_listen, *scraper);
    } catch (const std::exception& e) {
      Log(LogLevel::kError, e.what());
      return 1;
    }
    // Always printed: with port 0 it is the only way to learn the port.
    LogAlways(LogLevel::kInfo, "prometheus endpoint listening on " + endpoint->url());
  }
  const std::string target = !options.uri.empty() ? options.uri
                             : options.prometheus ? std::string("nowhere (Prometheus only)")
                                                  : std::string("stdout");
  Log(LogLevel::kInfo, "publishing segment '" + options.segment + "' to " + target + " every " +
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
