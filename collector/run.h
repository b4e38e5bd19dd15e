#pragma once

// The process life cycle of spectator-collector, after the command line.

#include "options.h"

namespace spectator::collector {

/// The whole program after parsing. --dump: open the existing segment
/// without creating it, print it (dump.h) and exit, changing nothing.
/// Otherwise: open (or create) the segment, take the collector lock, tell
/// systemd it is ready (systemd.h), then step on the schedule of run_loop.h
/// until SIGTERM/SIGINT (or once). Returns the exit code: 0 done, 1 cannot
/// run. SIGTERM and SIGINT must be blocked in every thread of the process
/// before it is called (main does it first thing).
int RunCollector(const CollectorOptions& options);

}  // namespace spectator::collector
