// Opens a segment, counts in a fork()ed child, reads the total back: the
// README example, compiled against the installed headers and library only.
// The read side is not public (the collector owns it): the total is read
// back through the installed spectator-collector (argv[1]), --once to stdout.
#include <spectator/spectator.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer PATH-TO-spectator-collector\n");
    return 2;
  }
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
    const std::string command = std::string(argv[1]) + " --once --segment " + name;
    FILE* out = popen(command.c_str(), "r");
    double total = 0;
    char line[512];
    while (out != nullptr && std::fgets(line, sizeof line, out) != nullptr) {
      double v = 0;
      if (std::sscanf(line, "requests{statistic=count,status=200} %lf", &v) == 1) total += v;
    }
    const int collector = out != nullptr ? pclose(out) : -1;
    std::printf("requests counted: %.0f\n", total);
    rc = total == 1000 && collector == 0 ? 0 : 1;
  }
  spectator::Registry::Remove(name);
  return rc;
}
