#pragma once

// `--prometheus-listen`: the collector serves GET /metrics (Prometheus text
// format 0.0.4) from the segment it publishes, cumulative and current at
// scrape time (docs/prometheus.md).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "collector.h"
#include "gzip.h"
#include "options.h"
#include "prometheus.h"
#include "spectator/internal/reader.h"
#include "spectator/registry.h"

struct MHD_Daemon;

namespace spectator::collector {

/// Builds scrapes: a peek of the segment with a reader of its own, and the
/// text of it. The peek holds the collector's take mutex
/// (Collector::take_mutex()), so that it never sees a meter in the middle of
/// the step's take, where the value it reads (cumulative + live) would be
/// short of what was already taken; the text is written after the mutex is
/// released.
///
/// Thread safety: Scrape may be called from any thread; calls are serialised.
class PrometheusScraper {
 public:
  /// `collector` steps the same segment and must outlive the scraper.
  PrometheusScraper(Registry& registry, CommonTags common, const Collector& collector);

  /// Writes the text of a scrape at `now` (which ages gauges and age gauges)
  /// to `piece`, in consecutive pieces (PrometheusText::Write).
  void Scrape(const PrometheusText::PieceSink& piece,
              std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

  /// The text of a scrape, whole (tests).
  std::string ScrapeText(
      std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

 private:
  std::mutex mutex_;  // one scrape at a time: the reader and text are not shared
  const Collector& collector_;
  SegmentReader reader_;
  PrometheusText text_;
};

/// A scrape's answer as the endpoint sends it, replacing `*body`: the text,
/// compressed through `gzip` as it is written (each piece while it is still
/// in cache) unless `gzip` is null. Returns the size of the text.
std::size_t ScrapeBody(PrometheusScraper& scraper, GzipStream* gzip, std::string* body);

/// The HTTP side: a libmicrohttpd daemon with one internal thread that polls
/// every connection (epoll), so a slow or stalled client costs a connection
/// slot, never a thread, and never the step loop, which shares nothing with
/// it but the take mutex (held only while a scrape reads the segment).
///
/// GET or HEAD /metrics: 200, gzip'd when the request accepts gzip. Another
/// path: 404; another method: 405 with Allow. At most kMaxConnections
/// connections; one idle for kIdleTimeoutSeconds is closed.
class PrometheusEndpoint {
 public:
  static constexpr unsigned kMaxConnections = 64;
  static constexpr unsigned kIdleTimeoutSeconds = 30;

  /// Listens on `address` and serves from `scraper` (which must outlive the
  /// endpoint). \throw std::runtime_error, naming the address and the
  /// reason, when it cannot listen.
  PrometheusEndpoint(const ListenAddress& address, PrometheusScraper& scraper);
  ~PrometheusEndpoint();
  PrometheusEndpoint(const PrometheusEndpoint&) = delete;
  PrometheusEndpoint& operator=(const PrometheusEndpoint&) = delete;

  /// The port bound (the one the system chose for port 0).
  std::uint16_t port() const { return port_; }
  /// "http://HOST:PORT/metrics".
  const std::string& url() const { return url_; }

  struct Request;  // the daemon's request handler (prometheus_endpoint.cc)

 private:
  PrometheusScraper& scraper_;
  int listen_fd_ = -1;  // owned by daemon_ once it runs
  std::uint16_t port_ = 0;
  std::string url_;
  GzipStream gzip_;  // used by the daemon's one thread only
  MHD_Daemon* daemon_ = nullptr;
};

/// Whether an Accept-Encoding header value accepts gzip ("gzip" or "*" with
/// a non-zero q).
bool AcceptsGzip(std::string_view accept_encoding);

}  // namespace spectator::collector
