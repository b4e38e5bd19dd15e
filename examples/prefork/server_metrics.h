#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <string_view>

#include <spectator/spectator.h>

#include "http_request.h"
#include "http_response.h"

namespace prefork {

/// Every meter the server updates, with handles cached so that a request does
/// no lookup. Built in the master before fork(): the handles stay valid in
/// every worker, since they point into the shared mapping.
///
/// Meters (method and status tags on the per-request ones):
///   server.requestCount         counter
///   server.requestLatency       timer: first byte of the request to the response being ready
///   server.responseSize         distribution summary, bytes
///   server.connectionDuration   percentile timer: accept() to close()
///   server.workers              gauge: workers running (set by the master)
///   server.workerExits{reason}  counter: recycled (max requests), failed, crashed
class ServerMetrics {
 public:
  explicit ServerMetrics(spectator::Registry& registry);

  /// Records one answered request. Allocation-free: the handles for a method
  /// and status are registered on first use and cached; the Id is already in
  /// the segment after the first process registered it.
  void RecordRequest(Method method, Status status, std::chrono::nanoseconds latency,
                     std::size_t response_bytes) noexcept;

  void RecordConnection(std::chrono::nanoseconds duration) noexcept {
    connection_duration_.Record(duration);
  }
  void SetWorkers(std::size_t running) noexcept { workers_.Set(static_cast<double>(running)); }
  enum class ExitReason { kRecycled, kFailed, kCrashed };
  void RecordWorkerExit(ExitReason reason) noexcept;

 private:
  struct RequestMeters {
    bool registered = false;
    spectator::Counter count;
    spectator::Timer latency;
    spectator::DistributionSummary size;
  };
  RequestMeters& For(Method method, Status status) noexcept;

  spectator::Registry& registry_;
  std::array<std::array<RequestMeters, kStatusCount>, kMethodCount> requests_;
  spectator::PercentileTimer connection_duration_;
  spectator::Gauge workers_;
  spectator::Counter exits_recycled_;
  spectator::Counter exits_failed_;
  spectator::Counter exits_crashed_;
};

}  // namespace prefork
