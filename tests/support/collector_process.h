#pragma once

// The real spectator-collector binary as a child process: its command line,
// starting it and waiting until it is up, and watching it from outside (its
// heartbeat in the segment header, its memory). The binary's path comes from
// the build (SPECTATOR_COLLECTOR_PATH, defined where collector_process.cc is
// compiled: tests/collector/CMakeLists.txt).

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "spectator/registry.h"
#include "support/subprocess.h"

namespace spectator::testing {

/// Generous: sanitizer builds on a machine shared with other builds.
inline constexpr std::chrono::milliseconds kCollectorDeadline = std::chrono::seconds(60);

/// The path of the spectator-collector under test.
const char* CollectorPath();

/// `args` with the collector's path in front: a Subprocess command line.
std::vector<std::string> CollectorArgs(std::vector<std::string> args);

/// Starts a collector publishing to `uri` and waits until it is up (its
/// signals are blocked and its lock taken, so a SIGTERM from now on means a
/// final publish).
std::unique_ptr<Subprocess> StartCollector(const std::string& segment, const std::string& uri,
                                           const std::string& step,
                                           const std::vector<std::string>& extra = {});

/// The resident set of a process, in KiB (VmRSS in /proc/<pid>/status); -1
/// when it cannot be read.
long RssKiB(pid_t pid);

/// How the collector's heartbeat in the segment header moved while watched.
struct Heartbeats {
  int beats = 0;                         // times it changed
  std::chrono::milliseconds longest{0};  // longest time without a change, edges included
  bool exited = false;                   // the collector exited meanwhile
};

/// Watches the heartbeat for `duration`, polling every few milliseconds (the
/// poll is the collector's Wait, which also drains its output so that it
/// never blocks on a full stderr pipe).
Heartbeats WatchHeartbeat(const Registry& registry, Subprocess& collector,
                          std::chrono::milliseconds duration);

}  // namespace spectator::testing
