// A worker process for the pid-namespace tests: registers counters for the
// Ids on its command line and increments each once.
//
//   claim_worker SEGMENT register ID...   exit 0 when every meter is live,
//                                         else 10 + the number of no-ops
//   claim_worker SEGMENT stall ID         stops itself (SIGSTOP) inside the
//                                         claim of ID, after printing
//                                         "claimed"; finishes when continued
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "id_table.h"
#include "spectator/spectator.h"

namespace {

void StopInsideClaim() {
  std::fputs("claimed\n", stdout);
  std::fflush(stdout);
  ::raise(SIGSTOP);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: claim_worker SEGMENT register|stall ID...\n");
    return 2;
  }
  spectator::SegmentOptions options;
  options.name = argv[1];
  options.max_meters = 1024;
  options.value_words = 1 << 16;
  options.logger = [](spectator::LogLevel, std::string_view) {};
  spectator::Registry registry(options);
  const bool stall = std::strcmp(argv[2], "stall") == 0;
  if (stall) spectator::internal::IdTable::SetClaimHookForTesting(&StopInsideClaim);
  int noops = 0;
  for (int i = 3; i < argc; ++i) {
    spectator::Counter c = registry.GetCounter(argv[i]);
    if (!c.IsLive()) ++noops;
    c.Increment();
  }
  return noops == 0 ? 0 : 10 + noops;
}
