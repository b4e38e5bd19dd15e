#include "support/collector_process.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#ifndef SPECTATOR_COLLECTOR_PATH
#error "SPECTATOR_COLLECTOR_PATH must name the spectator-collector binary"
#endif

namespace spectator::testing {

using namespace std::chrono_literals;

const char* CollectorPath() { return SPECTATOR_COLLECTOR_PATH; }

std::vector<std::string> CollectorArgs(std::vector<std::string> args) {
  args.insert(args.begin(), CollectorPath());
  return args;
}

std::unique_ptr<Subprocess> StartCollector(const std::string& segment, const std::string& uri,
                                           const std::string& step,
                                           const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--segment", segment, "--uri",       uri,
                                   "--step",    step,    "--log-level", "info"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto c = std::make_unique<Subprocess>(CollectorArgs(args));
  bool up = false;
  const auto deadline = std::chrono::steady_clock::now() + kCollectorDeadline;
  while (!up && std::chrono::steady_clock::now() < deadline && c->Wait(10ms) < 0) {
    up = c->err().find("publishing segment") != std::string::npos;
  }
  EXPECT_TRUE(up) << c->err();
  return c;
}

long RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

Heartbeats WatchHeartbeat(const Registry& registry, Subprocess& collector,
                          std::chrono::milliseconds duration) {
  Heartbeats h;
  const auto start = std::chrono::steady_clock::now();
  auto last_change = start;
  std::uint64_t last = registry.Info().collector_heartbeat_unix_ns;
  for (auto now = start; now - start < duration; now = std::chrono::steady_clock::now()) {
    if (collector.Wait(5ms) >= 0) {
      h.exited = true;
      break;
    }
    const std::uint64_t beat = registry.Info().collector_heartbeat_unix_ns;
    if (beat != last) {
      const auto t = std::chrono::steady_clock::now();
      h.longest = std::max(h.longest,
                           std::chrono::duration_cast<std::chrono::milliseconds>(t - last_change));
      last_change = t;
      last = beat;
      ++h.beats;
    }
  }
  h.longest = std::max(h.longest, std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::steady_clock::now() - last_change));
  return h;
}

}  // namespace spectator::testing
