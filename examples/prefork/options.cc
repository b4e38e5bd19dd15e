#include "options.h"

#include <cerrno>
#include <cstdlib>

namespace prefork {
namespace {

constexpr std::string_view kUsage =
    "usage: prefork-server [--host ADDR] [--port P] [--workers N] [--segment NAME]\n"
    "                      [--max-requests K] [--idle-timeout SECONDS]\n"
    "\n"
    "A pre-fork HTTP/1.1 server that answers every request with 200 \"ok\" and\n"
    "records its metrics in the spectator-shm segment /dev/shm/NAME, for\n"
    "spectator-collector to publish.\n"
    "\n"
    "  --host ADDR          address to listen on (default 127.0.0.1)\n"
    "  --port P             port; 0 picks a free one (default 8080). The bound\n"
    "                       address is printed on stdout: \"listening on ADDR:PORT\"\n"
    "  --workers N          worker processes, 1..1024 (default 4)\n"
    "  --segment NAME       metrics segment (default $SPECTATOR_SEGMENT or \"spectator\")\n"
    "  --max-requests K     a worker exits after K requests and is replaced (default: never)\n"
    "  --idle-timeout S     close a connection silent for S seconds (default 10)\n"
    "  --help               this text\n";

// Whole decimal numbers only: "12abc", "-1" and "" are mistakes worth reporting.
bool ParseUnsigned(std::string_view text, std::uint64_t max, std::uint64_t* out) {
  if (text.empty() || text.size() > 19) return false;
  std::uint64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (n > max) return false;
  *out = n;
  return true;
}

bool ParseSeconds(std::string_view text, std::chrono::milliseconds* out) {
  const std::string copy(text);
  char* end = nullptr;
  errno = 0;
  const double seconds = std::strtod(copy.c_str(), &end);
  if (copy.empty() || end != copy.c_str() + copy.size() || errno != 0 || !(seconds > 0) ||
      seconds > 86400) {
    return false;
  }
  *out = std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000 + 0.5));
  return out->count() > 0;
}

}  // namespace

std::string_view Usage() noexcept { return kUsage; }

FlagsOutcome ParseFlags(int argc, const char* const* argv, ServerOptions* options,
                        std::string* error) {
  if (const char* env = std::getenv("SPECTATOR_SEGMENT"); env != nullptr && *env != '\0') {
    options->segment = env;
  }
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") return FlagsOutcome::kHelp;
    if (arg.substr(0, 2) != "--") {
      *error = "unexpected argument '" + std::string(arg) + "'";
      return FlagsOutcome::kError;
    }
    std::string_view name = arg;
    std::string_view value;
    bool has_value = false;
    if (const std::size_t eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    const bool known = name == "--host" || name == "--port" || name == "--workers" ||
                       name == "--segment" || name == "--max-requests" || name == "--idle-timeout";
    if (!known) {
      *error = "unknown flag '" + std::string(name) + "'";
      return FlagsOutcome::kError;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        *error = "flag '" + std::string(name) + "' needs a value";
        return FlagsOutcome::kError;
      }
      value = argv[++i];
    }

    std::uint64_t n = 0;
    bool ok = true;
    if (name == "--host") {
      ok = !value.empty();
      options->host = value;
    } else if (name == "--port") {
      ok = ParseUnsigned(value, 65535, &n);
      options->port = static_cast<std::uint16_t>(n);
    } else if (name == "--workers") {
      ok = ParseUnsigned(value, 1024, &n) && n >= 1;
      options->workers = static_cast<int>(n);
    } else if (name == "--segment") {
      ok = !value.empty();
      options->segment = value;
    } else if (name == "--max-requests") {
      ok = ParseUnsigned(value, UINT64_MAX / 2, &n) && n >= 1;
      options->max_requests = n;
    } else {
      ok = ParseSeconds(value, &options->idle_timeout);
    }
    if (!ok) {
      *error = "bad value '" + std::string(value) + "' for " + std::string(name);
      return FlagsOutcome::kError;
    }
  }
  return FlagsOutcome::kRun;
}

}  // namespace prefork
