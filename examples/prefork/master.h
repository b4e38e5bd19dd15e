#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <vector>

#include "options.h"
#include "server_metrics.h"

namespace prefork {

/// The master process: owns the listening socket, forks the workers, replaces
/// any that exit, and stops them on SIGTERM/SIGINT.
///
/// Signals reach the master only through a signalfd: SIGCHLD, SIGTERM and
/// SIGINT are blocked from construction on, so none is lost between the
/// moment the port is printed and the moment Run() waits, and the workers
/// inherit them blocked (see RunWorker).
class Master {
 public:
  Master(const ServerOptions& options, ServerMetrics& metrics);
  ~Master();
  Master(const Master&) = delete;
  Master& operator=(const Master&) = delete;

  /// Binds and listens, then prints "listening on ADDR:PORT" on stdout.
  /// Returns false (after one line on stderr) when that is impossible.
  bool Listen();

  /// Starts the workers and supervises them until SIGTERM or SIGINT. Returns
  /// the process exit code: 0 after a requested stop, 1 on a failure.
  int Run();

 private:
  using Clock = std::chrono::steady_clock;
  struct WorkerSlot {
    pid_t pid = 0;  // 0: not running
    Clock::time_point started;
  };

  bool Spawn(WorkerSlot& slot);
  // Collects every exited worker; while running, starts a replacement for
  // each. Returns false when workers keep failing right after start.
  bool Reap(bool respawn);
  int Stop(int exit_code);
  std::size_t Running() const;

  const ServerOptions& options_;
  ServerMetrics& metrics_;
  const pid_t pid_;
  int listen_fd_ = -1;
  int signal_fd_ = -1;
  std::vector<WorkerSlot> workers_;
  int rapid_failures_ = 0;
};

}  // namespace prefork
