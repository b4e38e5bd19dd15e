#pragma once

// systemd's notification protocol (sd_notify(3)) without libsystemd: one
// datagram of newline-separated KEY=VALUE assignments to the AF_UNIX socket
// named by $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace).
// The collector sends READY=1 once the segment is open and its lock held,
// WATCHDOG=1 at least every half of $WATCHDOG_USEC from its run loop, and
// STOPPING=1 when a stop signal arrives.

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <chrono>
#include <string>
#include <string_view>

#include "options.h"  // Getenv

namespace spectator::collector {

/// Thread safety: one thread at a time. Disabled (every call a no-op) when
/// not started by systemd with Type=notify.
class SystemdNotifier {
 public:
  SystemdNotifier() = default;
  ~SystemdNotifier();
  SystemdNotifier(SystemdNotifier&& other) noexcept;
  SystemdNotifier& operator=(SystemdNotifier&& other) noexcept;
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  /// From NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID; `pid` is this
  /// process's. A socket address that cannot be used (not "/..." or "@...",
  /// too long) or a malformed watchdog value is logged once and ignored.
  static SystemdNotifier FromEnvironment(const Getenv& getenv, pid_t pid);

  bool enabled() const { return fd_ >= 0; }
  /// The watchdog timeout systemd enforces on this process, or 0 when none
  /// (no WATCHDOG_USEC, or WATCHDOG_PID names another process).
  std::chrono::microseconds watchdog() const { return watchdog_; }

  /// Sends `state` (e.g. "READY=1") as one datagram. Never blocks, never
  /// throws; false when disabled or the send failed (logged once).
  bool Notify(std::string_view state);

 private:
  int fd_ = -1;
  sockaddr_un addr_{};
  socklen_t addr_len_ = 0;
  std::chrono::microseconds watchdog_{0};
  bool send_failure_logged_ = false;
};

}  // namespace spectator::collector
