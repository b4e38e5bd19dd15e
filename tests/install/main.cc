// Opens a segment, counts in a fork()ed child, reads the total back: the
// README example, compiled against the installed headers and library only.
#include <spectator/snapshot.h>
#include <spectator/spectator.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

int main() {
  const std::string name = "spectator-install-check-" + std::to_string(getpid());
  spectator::SegmentOptions options;
  options.name = name;
  options.max_meters = 16;
  options.value_words = 1024;
  int rc = 1;
  {
    spectator::Registry registry(options);
    spectator::Counter requests = registry.GetCounter("requests", {{"status", "200"}});
    const pid_t child = fork();
    if (child == 0) {
      for (int i = 0; i < 1000; ++i) requests.Increment();
      _exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    spectator::SegmentReader reader(registry);
    double total = 0;
    reader.Scan(spectator::SegmentReader::Mode::kTake, std::chrono::system_clock::now(),
                [&](const spectator::MeterReading& r) { total += r.count; });
    std::printf("requests counted: %.0f\n", total);
    rc = total == 1000 ? 0 : 1;
  }
  spectator::Registry::Remove(name);
  return rc;
}
