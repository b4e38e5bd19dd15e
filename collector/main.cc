// spectator-collector: publishes a spectator-shm segment to Atlas.
// Everything but the command line lives in spectator_collector_lib.

#include <signal.h>

#include <cstdio>
#include <cstdlib>

#include "options.h"
#include "run.h"
#include "spectator/version.h"

int main(int argc, char** argv) {
  using spectator::collector::ParseResult;
  // Block the stop signals before any thread exists (libcurl's resolver may
  // start one), so that they are only ever received by sigtimedwait between
  // steps: a step in progress always finishes, then the final publish runs.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A closed stdout (the stdout sink's reader went away) must not kill us.
  signal(SIGPIPE, SIG_IGN);

  const ParseResult parsed = spectator::collector::ParseCommandLine(argc, argv, &std::getenv);
  switch (parsed.action) {
    case ParseResult::Action::kHelp:
      std::fputs(spectator::collector::Usage().c_str(), stdout);
      return 0;
    case ParseResult::Action::kVersion:
      std::printf("spectator-collector %s (segment layout %u)\n", spectator::kVersion,
                  spectator::kLayoutVersion);
      return 0;
    case ParseResult::Action::kError:
      std::fprintf(stderr, "spectator-collector: %s\n", parsed.error.c_str());
      return 2;
    case ParseResult::Action::kRun:
      break;
  }
  return spectator::collector::RunCollector(parsed.options);
}
