#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace prefork {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0: the kernel picks a free port
  int workers = 4;
  std::string segment = "spectator";  // or $SPECTATOR_SEGMENT
  /// A worker exits after answering this many requests and the master starts
  /// a fresh one (gunicorn's max_requests). 0: no limit.
  std::uint64_t max_requests = 0;
  /// How long a connection may stay silent, between or inside requests.
  std::chrono::milliseconds idle_timeout{10'000};
  /// After SIGTERM, how long the master waits for workers before SIGKILL.
  std::chrono::milliseconds stop_timeout{5'000};
};

enum class FlagsOutcome { kRun, kHelp, kError };

/// Parses the command line (`--flag value` or `--flag=value`). On kError,
/// `*error` holds one line saying what is wrong.
FlagsOutcome ParseFlags(int argc, const char* const* argv, ServerOptions* options,
                        std::string* error);

/// The --help text.
std::string_view Usage() noexcept;

}  // namespace prefork
