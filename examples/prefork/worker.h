#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>

#include "server_metrics.h"

namespace prefork {

/// Exit codes of a worker process, read by the master.
inline constexpr int kWorkerStopped = 0;   // SIGTERM/SIGINT, or the master went away
inline constexpr int kWorkerFailed = 1;    // an unexpected system error
inline constexpr int kWorkerRecycled = 3;  // served --max-requests requests

struct WorkerConfig {
  int listen_fd = -1;  // non-blocking, shared by every worker
  pid_t master_pid = 0;
  std::uint64_t max_requests = 0;  // 0: no limit
  std::chrono::milliseconds idle_timeout{10'000};
};

/// Runs in a freshly forked worker: accepts connections on the shared socket
/// and serves them until SIGTERM/SIGINT or --max-requests. Returns the exit
/// code (one of the constants above).
///
/// The caller must fork with SIGTERM and SIGINT blocked: the worker keeps them
/// blocked except while it waits (ppoll), so a stop request is noticed between
/// requests and never interrupts one half-written.
int RunWorker(const WorkerConfig& config, ServerMetrics& metrics);

}  // namespace prefork
