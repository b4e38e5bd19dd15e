#pragma once

// A real Prometheus server (Debian's prometheus package) as a child process:
// its config, file_sd targets file and TSDB in a temporary directory, and
// queries through its HTTP API (support/http_get.h, so link CURL::libcurl).

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "support/subprocess.h"
#include "support/temp_dir.h"

namespace spectator::testing {

/// Where Debian's prometheus package puts the server; tests skip without it.
inline constexpr const char* kPrometheusPath = "/usr/bin/prometheus";

/// Any one wait of PrometheusServer (readiness, a target, a value): generous
/// for a machine shared with other builds.
inline constexpr std::chrono::milliseconds kPrometheusDeadline = std::chrono::seconds(30);

/// A Prometheus server on 127.0.0.1 with its config, its file_sd targets file
/// and its TSDB in a temporary directory, scraping one job (`spectator`)
/// every second. The target is whatever SetTarget last wrote; its `instance`
/// label is fixed ("spectator-collector"), so the series of successive
/// collectors (on different ports) are the same series, as they would be in
/// production where the collector keeps its address. Runs DiesWithTheTest.
/// Stopped (SIGTERM, then SIGKILL) and its directory removed on destruction.
class PrometheusServer {
 public:
  using Json = nlohmann::json;

  PrometheusServer();
  ~PrometheusServer();
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  bool ready() const { return ready_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  /// Prometheus' own log (stderr) so far.
  const std::string& log() const { return process_->err(); }
  /// Drains Prometheus' output for up to `ms` (a poll interval): its log
  /// never fills the pipe.
  void Pump(std::chrono::milliseconds ms = std::chrono::milliseconds(20)) { process_->Wait(ms); }

  /// Makes the collector at 127.0.0.1:`port` the one target (file_sd picks
  /// the file up; Prometheus applies target changes at most every 5 s).
  void SetTarget(std::uint16_t port);

  /// The active targets (/api/v1/targets), or an empty array.
  Json ActiveTargets();

  /// Waits until the only active target is the collector on `port` and its
  /// last scrape succeeded.
  bool WaitForTarget(std::uint16_t port, std::string* why);

  /// Waits until the single target has been scraped `n` more times.
  bool WaitForScrapes(int n);

  /// An instant query's result vector (/api/v1/query); nullopt with *why on
  /// any error.
  std::optional<Json> QueryVector(const std::string& expr, std::string* why);

  /// An instant query that yields one sample: its value; nullopt with *why
  /// when there is no series (yet) or an error.
  std::optional<double> Query(const std::string& expr, std::string* why);

  /// Polls `expr` until it equals `want` (or exceeds it: that never comes
  /// back down for a total) or the deadline passes. Returns the last value
  /// seen; *why says what went wrong.
  std::optional<double> WaitForValue(const std::string& expr, double want, std::string* why);

 private:
  // Polls /-/ready until 200, Prometheus exits, or the deadline passes.
  bool WaitReady();

  TempDir dir_{"spectator-prom"};  // first: outlives the process
  std::string targets_;
  std::uint16_t port_ = 0;
  bool ready_ = false;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace spectator::testing
