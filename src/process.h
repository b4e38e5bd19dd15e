#pragma once

#include <sys/types.h>
#include <cstdint>

namespace spectator::internal {

/// A process as named in an entry claim: its pid and its start time in clock
/// ticks since boot (/proc/<pid>/stat field 22). Together they survive pid
/// reuse: a new process with the same pid has a later start time.
struct ProcessIdentity {
  std::uint64_t pid = 0;
  std::uint64_t start_ticks = 0;
};

/// This process's identity. Re-read after fork() (the cache is keyed by pid).
/// Registration path only: reads /proc.
ProcessIdentity CurrentProcess();

/// Whether the process named by a claim is still running. A zombie (killed
/// but not yet reaped) is dead; so is a process whose start time differs from
/// the claim's (the pid was reused). Without /proc, falls back to kill(pid, 0).
bool IsAlive(std::uint64_t pid, std::uint64_t start_ticks);

}  // namespace spectator::internal
