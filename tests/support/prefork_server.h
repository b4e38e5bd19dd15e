#pragma once

// The real prefork-server example binary as a child process: its command
// line, and starting it until it says its port. Header-only; the binary's
// path comes from the build (PREFORK_SERVER_PATH, defined on each test target
// that includes this: tests/e2e/CMakeLists.txt).

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "support/subprocess.h"

#ifndef PREFORK_SERVER_PATH
#error "PREFORK_SERVER_PATH must name the prefork-server binary"
#endif

namespace spectator::testing {

/// prefork-server's command line: 4 workers on a port of its choice,
/// recording into `segment`, then `extra`.
inline std::vector<std::string> PreforkServerArgs(const std::string& segment,
                                                  const std::vector<std::string>& extra) {
  std::vector<std::string> args = {PREFORK_SERVER_PATH, "--segment", segment, "--port", "0",
                                   "--workers",         "4"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

/// Starts `argv` (PreforkServerArgs, maybe wrapped: DiesWithTheTest) into
/// *server and waits up to `timeout` for its first line on stdout,
/// `listening on 127.0.0.1:PORT`. Returns PORT; 0, with a test failure, if it
/// said anything else.
inline std::uint16_t StartPreforkServer(const std::vector<std::string>& argv,
                                        std::chrono::milliseconds timeout,
                                        std::unique_ptr<Subprocess>* server) {
  *server = std::make_unique<Subprocess>(argv);
  (*server)->WaitForOutput(
      [](const std::string& out) { return out.find('\n') != std::string::npos; }, timeout);
  const std::string line = (*server)->out().substr(0, (*server)->out().find('\n'));
  const std::string prefix = "listening on 127.0.0.1:";
  if (line.compare(0, prefix.size(), prefix) != 0) {
    ADD_FAILURE() << "prefork-server said '" << line << "', stderr: " << (*server)->err();
    return 0;
  }
  return static_cast<std::uint16_t>(std::atoi(line.c_str() + prefix.size()));
}

}  // namespace spectator::testing
