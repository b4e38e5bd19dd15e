#include "options.h"

#include <grp.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <map>
#include <string_view>

#include "log.h"
#include "spectator/id.h"

namespace spectator::collector {
namespace {

// docs/protocol.md, "Common tags".
constexpr std::pair<const char*, const char*> kEnvTags[] = {
    {"NETFLIX_APP", "nf.app"},
    {"NETFLIX_CLUSTER", "nf.cluster"},
    {"NETFLIX_AUTO_SCALE_GROUP", "nf.asg"},
    {"NETFLIX_STACK", "nf.stack"},
    {"EC2_REGION", "nf.region"},
    {"EC2_AVAILABILITY_ZONE", "nf.zone"},
    {"EC2_INSTANCE_ID", "nf.node"},
    {"NETFLIX_ACCOUNT_ID", "nf.account"},
    {"NETFLIX_PROCESS_NAME", "nf.process"},
};

std::string Sanitize(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (!IsAllowedIdChar(c)) c = '_';
  }
  return out;
}

template <typename T>
bool ParseUnsigned(std::string_view text, T min, T max, T* out) {
  T v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < min || v > max) return false;
  *out = v;
  return true;
}

bool ParseSeconds(std::string_view text, double min, double max, double* out) {
  // strtod wants a NUL-terminated string; the views here always come from argv.
  const std::string s(text);
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v) || v < min || v > max) {
    return false;
  }
  *out = v;
  return true;
}

// Octal permission bits: 1 to 4 octal digits, within 0777 and including
// 0600 (the owner must read and write), as SegmentOptions::mode requires.
bool ParseMode(std::string_view text, std::uint32_t* out) {
  if (text.empty() || text.size() > 4) return false;
  std::uint32_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '7') return false;
    v = v * 8 + static_cast<std::uint32_t>(c - '0');
  }
  if (v > 0777 || (v & 0600) != 0600) return false;
  *out = v;
  return true;
}

// A group name that exists, or a numeric gid (which needs no name).
bool ValidGroup(std::string_view text, std::string* why) {
  if (text.empty()) {
    *why = "is empty";
    return false;
  }
  if (text.find_first_not_of("0123456789") == std::string_view::npos) {
    std::uint32_t gid = 0;
    if (!ParseUnsigned<std::uint32_t>(text, 0, 0xfffffffeu, &gid)) {
      *why = "is not a valid gid";
      return false;
    }
    return true;
  }
  const std::string name(text);
  group g{};
  group* found = nullptr;
  std::vector<char> buf(16384);
  const int err = ::getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &found);
  if (found == nullptr) {
    *why = err == 0 ? "names no group" : "could not be looked up";
    return false;
  }
  return true;
}

// The one-line error for a bad mode or group, naming where it came from.
std::string ModeError(const char* source, std::string_view value) {
  return std::string(source) +
         " must be octal permission bits within 0777 that include 0600 (e.g. 0660), got '" +
         std::string(value) + "'";
}

}  // namespace

std::string ListenAddress::ToString() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

bool ParseListenAddress(std::string_view text, ListenAddress* out, std::string* error) {
  ListenAddress a;
  std::string_view port = text;
  if (const auto colon = text.rfind(':'); colon != std::string_view::npos) {
    std::string_view host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string_view::npos) {
      *error = "an IPv6 host needs brackets, e.g. [::1]:9464";
      return false;
    }
    if (host.empty()) {
      *error = "the host is empty: name it (127.0.0.1, or 0.0.0.0 for every interface)";
      return false;
    }
    a.host = host;
  }
  if (port.empty() || !ParseUnsigned<std::uint16_t>(port, 0, 65535, &a.port)) {
    *error = "the port must be an integer in [0, 65535]";
    return false;
  }
  *out = std::move(a);
  return true;
}

std::string Usage() {
  return R"(Usage: spectator-collector --segment NAME [options]

Publishes the meters of a spectator-shm segment to Atlas every step, serves
them to Prometheus, or both; prints them on stdout when given neither --uri
nor --prometheus-listen.

  --segment NAME      segment in /dev/shm (env SPECTATOR_SEGMENT; default "spectator");
                      created when no worker has created it yet
  --uri URL           Atlas publish endpoint, e.g. http://atlas/api/v1/publish
                      (env SPECTATOR_URI); none: one line per measurement on stdout
  --prometheus-listen HOST:PORT
                      serve GET /metrics (Prometheus text format) on HOST:PORT (env
                      SPECTATOR_PROMETHEUS_LISTEN); a bare PORT means 127.0.0.1:PORT,
                      port 0 picks a free one (logged); 0.0.0.0:PORT listens on every
                      interface. Values are cumulative and current at scrape time
  --step SECONDS      step length, fractions allowed (default 5); steps are aligned
                      to wall-clock multiples of the step
  --tag K=V           common tag added to every measurement (repeatable); also from
                      NETFLIX_APP, NETFLIX_CLUSTER, NETFLIX_AUTO_SCALE_GROUP,
                      NETFLIX_STACK, EC2_REGION, EC2_AVAILABILITY_ZONE,
                      EC2_INSTANCE_ID, NETFLIX_ACCOUNT_ID, NETFLIX_PROCESS_NAME
  --batch-size N      measurements per HTTP request (default 10000)
  --timeout SECONDS   whole-request HTTP timeout (default 5; connect timeout 2)
  --max-meters N      capacity when this process creates the segment (default 8192)
  --value-words N     value words when this process creates the segment (default 1048576)
  --mode MODE         permission bits of a segment this process creates, octal, must
                      include 0600 (env SPECTATOR_SEGMENT_MODE; default 0600; 0660
                      shares it with --group)
  --group GROUP       group name or gid to share the segment with (env
                      SPECTATOR_SEGMENT_GROUP): a segment this process creates gets
                      it, and a segment of another user is accepted if it is shared
                      with it (group read-write, not writable by others)
  --max-catch-up SECONDS
                      when the last step recorded in the segment is longer ago than
                      this (the collector was stopped), drop what accumulated instead
                      of publishing it as one spike; counted in
                      spectator.measurements{id=dropped,error=stale} (default: no
                      limit, nothing is dropped)
  --once              collect and publish once, now, then exit
  --dump              print every meter with its current values, reset nothing, exit
  --log-level LEVEL   debug, info, warn (default) or error; logs go to stderr
  --help              this text
  --version           the collector and segment layout versions

SIGTERM or SIGINT: one final collect and publish of everything pending, then exit 0.
Under systemd (NOTIFY_SOCKET set): READY=1 once the segment is open and locked,
WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 on SIGTERM/SIGINT.
Exit codes: 0 done, 1 cannot run (segment refused, another collector holds it),
2 bad command line.
)";
}

// A hand parser on purpose, not CLI11 (Debian's libcli11-dev 2.1 was tried):
// CLI11 reads the environment with std::getenv only, so the injected Getenv
// (the tests' environment) would still need this code; it accepts a value
// on a flag (`--once=yes` parses as true, where we refuse it); its messages
// differ for every pinned case (unknown option, missing value, exclusive
// flags) and name the option only inside the text, so matching them would
// mean re-parsing its errors; and it parses the whole line before --help or
// --version can win, and does not take `--segment --x` as the name "--x".
// The loop below is the part it would replace; the checks stay either way.
ParseResult ParseCommandLine(int argc, const char* const* argv, const Getenv& getenv) {
  ParseResult result;
  CollectorOptions& o = result.options;
  auto fail = [&](std::string message) {
    result.action = ParseResult::Action::kError;
    result.error = std::move(message);
    return result;
  };

  if (const char* v = getenv("SPECTATOR_SEGMENT"); v != nullptr && *v != '\0') o.segment = v;
  if (const char* v = getenv("SPECTATOR_URI"); v != nullptr && *v != '\0') o.uri = v;
  if (const char* v = getenv("SPECTATOR_SEGMENT_MODE"); v != nullptr && *v != '\0') {
    if (!ParseMode(v, &o.mode)) return fail(ModeError("SPECTATOR_SEGMENT_MODE", v));
  }
  if (const char* v = getenv("SPECTATOR_SEGMENT_GROUP"); v != nullptr && *v != '\0') {
    std::string why;
    if (!ValidGroup(v, &why)) {
      return fail("SPECTATOR_SEGMENT_GROUP '" + std::string(v) + "' " + why);
    }
    o.group = v;
  }
  bool listen_flag = false;  // --prometheus-listen given, not only its variable
  auto set_listen = [&](const char* source, std::string_view value) -> bool {
    std::string why;
    if (!ParseListenAddress(value, &o.prometheus_listen, &why)) {
      result.action = ParseResult::Action::kError;
      result.error = std::string(source) + " '" + std::string(value) + "': " + why;
      return false;
    }
    o.prometheus = true;
    return true;
  };
  if (const char* v = getenv("SPECTATOR_PROMETHEUS_LISTEN"); v != nullptr && *v != '\0') {
    if (!set_listen("SPECTATOR_PROMETHEUS_LISTEN", v)) return result;
  }
  std::map<std::string, std::string> tags;
  for (const auto& [var, key] : kEnvTags) {
    if (const char* v = getenv(var); v != nullptr && *v != '\0') tags[key] = Sanitize(v);
  }

  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view value;
    bool has_value = false;
    // Both "--flag value" and "--flag=value".
    if (const auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto need_value = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 >= argc) return false;
      value = argv[++i];
      return true;
    };
    auto no_value = [&] { return !has_value; };

    if (arg == "--help" || arg == "-h") {
      if (!no_value()) return fail("--help takes no value");
      result.action = ParseResult::Action::kHelp;
      return result;
    }
    if (arg == "--version") {
      if (!no_value()) return fail("--version takes no value");
      result.action = ParseResult::Action::kVersion;
      return result;
    }
    if (arg == "--once" || arg == "--dump") {
      if (!no_value()) return fail(std::string(arg) + " takes no value");
      (arg == "--once" ? o.once : o.dump) = true;
      continue;
    }
    const bool known = arg == "--segment" || arg == "--uri" || arg == "--step" || arg == "--tag" ||
                       arg == "--batch-size" || arg == "--timeout" || arg == "--max-meters" ||
                       arg == "--value-words" || arg == "--log-level" || arg == "--mode" ||
                       arg == "--group" || arg == "--max-catch-up" ||
                       arg == "--prometheus-listen";
    if (!known) return fail("unknown option '" + std::string(argv[i]) + "' (see --help)");
    if (!need_value()) return fail(std::string(arg) + " needs a value (see --help)");

    if (arg == "--segment") {
      if (value.empty()) return fail("--segment needs a non-empty name");
      o.segment = value;
    } else if (arg == "--uri") {
      if (value.rfind("http://", 0) != 0 && value.rfind("https://", 0) != 0) {
        return fail("--uri must start with http:// or https://, got '" + std::string(value) + "'");
      }
      o.uri = value;
    } else if (arg == "--step") {
      double seconds = 0;
      if (!ParseSeconds(value, 0.01, 3600, &seconds)) {
        return fail("--step must be a number of seconds in [0.01, 3600], got '" +
                    std::string(value) + "'");
      }
      o.step = std::chrono::nanoseconds(std::llround(seconds * 1e9));
    } else if (arg == "--timeout") {
      double seconds = 0;
      if (!ParseSeconds(value, 0.05, 600, &seconds)) {
        return fail("--timeout must be a number of seconds in [0.05, 600], got '" +
                    std::string(value) + "'");
      }
      o.timeout = std::chrono::milliseconds(std::llround(seconds * 1e3));
      o.connect_timeout = std::min(o.connect_timeout, o.timeout);
    } else if (arg == "--tag") {
      const auto eq = value.find('=');
      if (eq == std::string_view::npos || eq == 0 || eq + 1 == value.size()) {
        return fail("--tag must be KEY=VALUE with both non-empty, got '" + std::string(value) +
                    "'");
      }
      const std::string key = Sanitize(value.substr(0, eq));
      if (key == "name" || key == "statistic") {
        return fail("--tag key '" + key + "' is reserved");
      }
      if (key.size() > kMaxTagLength || value.size() - eq - 1 > kMaxTagLength) {
        return fail("--tag key and value must be at most 255 characters");
      }
      tags[key] = Sanitize(value.substr(eq + 1));
    } else if (arg == "--batch-size") {
      if (!ParseUnsigned<std::size_t>(value, 1, 1000000, &o.batch_size)) {
        return fail("--batch-size must be an integer in [1, 1000000], got '" + std::string(value) +
                    "'");
      }
    } else if (arg == "--max-meters") {
      if (!ParseUnsigned<std::uint32_t>(value, 1, 1u << 24, &o.max_meters)) {
        return fail("--max-meters must be an integer in [1, 16777216], got '" + std::string(value) +
                    "'");
      }
    } else if (arg == "--value-words") {
      if (!ParseUnsigned<std::uint64_t>(value, 8, std::uint64_t{1} << 32, &o.value_words)) {
        return fail("--value-words must be an integer in [8, 4294967296], got '" +
                    std::string(value) + "'");
      }
    } else if (arg == "--max-catch-up") {
      double seconds = 0;
      if (!ParseSeconds(value, 0.01, 1e9, &seconds)) {
        return fail("--max-catch-up must be a number of seconds in [0.01, 1e9], got '" +
                    std::string(value) + "'");
      }
      o.max_catch_up = std::chrono::nanoseconds(std::llround(seconds * 1e9));
    } else if (arg == "--prometheus-listen") {
      if (!set_listen("--prometheus-listen", value)) return result;
      listen_flag = true;
    } else if (arg == "--mode") {
      if (!ParseMode(value, &o.mode)) return fail(ModeError("--mode", value));
    } else if (arg == "--group") {
      std::string why;
      if (!ValidGroup(value, &why)) return fail("--group '" + std::string(value) + "' " + why);
      o.group = value;
    } else if (arg == "--log-level") {
      if (!ParseLogLevel(value, &o.log_level)) {
        return fail("--log-level must be debug, info, warn or error, got '" + std::string(value) +
                    "'");
      }
    }
  }
  if (o.once && o.dump) return fail("--once and --dump are exclusive");
  // --once and --dump run no endpoint: the variable (set for the service,
  // say) yields to them, the flag is a contradiction.
  if (o.once || o.dump) o.prometheus = o.prometheus && listen_flag;
  if (o.prometheus && (o.once || o.dump)) {
    return fail(std::string("--prometheus-listen and ") + (o.once ? "--once" : "--dump") +
                " are exclusive: the endpoint serves a running collector");
  }
  if (tags.size() > kMaxUserTags) return fail("too many common tags (at most 20)");
  o.common_tags.assign(tags.begin(), tags.end());
  return result;
}

}  // namespace spectator::collector
