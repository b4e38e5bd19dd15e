// prefork-server: a pre-fork HTTP/1.1 server that records its metrics in a
// spectator-shm segment. See README.md in this directory.
#include <signal.h>

#include <cstdio>
#include <string>

#include <spectator/spectator.h>

#include "master.h"
#include "options.h"
#include "server_metrics.h"

int main(int argc, char** argv) {
  prefork::ServerOptions options;
  std::string error;
  switch (prefork::ParseFlags(argc, argv, &options, &error)) {
    case prefork::FlagsOutcome::kHelp:
      std::fwrite(prefork::Usage().data(), 1, prefork::Usage().size(), stdout);
      return 0;
    case prefork::FlagsOutcome::kError:
      std::fprintf(stderr, "prefork-server: %s (see --help)\n", error.c_str());
      return 2;
    case prefork::FlagsOutcome::kRun:
      break;
  }
  // A client that disconnects must not kill the process writing to it.
  ::signal(SIGPIPE, SIG_IGN);

  try {
    // The registry is opened once, in the master, before any fork: every
    // worker inherits the mapping and the cached meter handles.
    spectator::SegmentOptions segment;
    segment.name = options.segment;
    spectator::Registry registry(segment);
    prefork::ServerMetrics metrics(registry);
    prefork::Master master(options, metrics);
    if (!master.Listen()) return 1;
    return master.Run();
  } catch (const spectator::Error& e) {
    std::fprintf(stderr, "prefork-server: %s\n", e.what());
    return 1;
  }
}
