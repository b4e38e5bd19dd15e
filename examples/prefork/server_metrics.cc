#include "server_metrics.h"

namespace prefork {

ServerMetrics::ServerMetrics(spectator::Registry& registry)
    : registry_(registry),
      connection_duration_(registry.GetPercentileTimer("server.connectionDuration")),
      workers_(registry.GetGauge("server.workers")),
      exits_recycled_(registry.GetCounter("server.workerExits", {{"reason", "recycled"}})),
      exits_failed_(registry.GetCounter("server.workerExits", {{"reason", "failed"}})),
      exits_crashed_(registry.GetCounter("server.workerExits", {{"reason", "crashed"}})) {
  // The common case is registered before the fork, so no worker ever has to.
  For(Method::kGet, Status::kOk);
}

ServerMetrics::RequestMeters& ServerMetrics::For(Method method, Status status) noexcept {
  RequestMeters& m = requests_[static_cast<std::size_t>(method)][static_cast<std::size_t>(status)];
  if (!m.registered) {
    // Braced tag lists of string views: registering allocates nothing. (A
    // TagList must not be kept in a variable: it views a temporary list.)
    const std::string_view method_tag = MethodName(method);
    const std::string_view status_tag = StatusTagValue(status);
    m.count = registry_.GetCounter("server.requestCount",
                                   {{"method", method_tag}, {"status", status_tag}});
    m.latency = registry_.GetTimer("server.requestLatency",
                                   {{"method", method_tag}, {"status", status_tag}});
    m.size = registry_.GetDistributionSummary("server.responseSize",
                                              {{"method", method_tag}, {"status", status_tag}});
    m.registered = true;
  }
  return m;
}

void ServerMetrics::RecordRequest(Method method, Status status, std::chrono::nanoseconds latency,
                                  std::size_t response_bytes) noexcept {
  RequestMeters& m = For(method, status);
  m.count.Increment();
  m.latency.Record(latency);
  m.size.Record(static_cast<double>(response_bytes));
}

void ServerMetrics::RecordWorkerExit(ExitReason reason) noexcept {
  switch (reason) {
    case ExitReason::kRecycled:
      exits_recycled_.Increment();
      break;
    case ExitReason::kFailed:
      exits_failed_.Increment();
      break;
    case ExitReason::kCrashed:
      exits_crashed_.Increment();
      break;
  }
}

}  // namespace prefork
