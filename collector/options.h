#pragma once

// The collector's command line (docs/collector.md):
//
//   spectator-collector --segment NAME [--uri URL] [--step SECONDS] [--tag K=V]...
//                       [--batch-size N] [--mode MODE] [--group GROUP]
//                       [--prometheus-listen HOST:PORT]
//                       [--once] [--dump] [--help] [--version]
//
// with fallbacks SPECTATOR_SEGMENT, SPECTATOR_URI, SPECTATOR_SEGMENT_MODE,
// SPECTATOR_SEGMENT_GROUP and SPECTATOR_PROMETHEUS_LISTEN, and common tags from the
// environment variables of docs/protocol.md ("Common tags").

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "spectator/options.h"

namespace spectator::collector {

using CommonTags = std::vector<std::pair<std::string, std::string>>;  // sorted by key, unique

/// Where a listener binds (--prometheus-listen HOST:PORT).
struct ListenAddress {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port
  /// "HOST:PORT", with brackets around an IPv6 host.
  std::string ToString() const;
};

/// Parses "HOST:PORT", "[IPV6]:PORT" or "PORT" (host 127.0.0.1). The host
/// must not be empty: every interface is "0.0.0.0" or "[::]", said on
/// purpose. Returns false with a one-line reason in *error.
bool ParseListenAddress(std::string_view text, ListenAddress* out, std::string* error);

struct CollectorOptions {
  std::string segment = "spectator";
  std::string uri;  // empty: print measurements on stdout (unless prometheus)
  // --prometheus-listen: serve GET /metrics there (docs/prometheus.md).
  bool prometheus = false;
  ListenAddress prometheus_listen;
  std::chrono::nanoseconds step = std::chrono::seconds(5);
  CommonTags common_tags;
  std::size_t batch_size = 10000;
  bool once = false;  // one collect + publish now, then exit
  bool dump = false;  // print every meter without resetting anything, then exit
  LogLevel log_level = LogLevel::kWarning;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds timeout{5000};  // whole HTTP request
  // Capacities, used only when the collector is first to create the segment.
  std::uint32_t max_meters = SegmentOptions{}.max_meters;
  std::uint64_t value_words = SegmentOptions{}.value_words;
  // SegmentOptions::mode and ::group (--mode, --group): the permission bits
  // and group of a segment the collector creates, and the group it accepts
  // on a segment another user created.
  std::uint32_t mode = SegmentOptions{}.mode;
  std::string group;  // a group name or a numeric gid; empty: none
  // --max-catch-up: when the first step of a run finds the last step
  // recorded in the segment longer ago than this, what accumulated is
  // dropped (counted as error=stale) instead of published. 0: no limit.
  std::chrono::nanoseconds max_catch_up{0};
};

struct ParseResult {
  enum class Action { kRun, kHelp, kVersion, kError };
  Action action = Action::kRun;
  CollectorOptions options;
  std::string error;  // kError: one line, without the program name
};

/// Looks up an environment variable; returns nullptr when unset.
using Getenv = std::function<const char*(const char*)>;

/// Parses argv (argv[0] is skipped). Flags win over the environment; a
/// meter's own tags win over common tags at publish time, --tag wins over the
/// environment's nf.* tags here.
ParseResult ParseCommandLine(int argc, const char* const* argv, const Getenv& getenv);

/// The text of --help.
std::string Usage();

}  // namespace spectator::collector
