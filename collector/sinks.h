#pragma once

// Where a step's measurements go: Atlas over HTTP, or stdout.

#include <chrono>
#include <cstdio>
#include <string>

#include "http_client.h"
#include "measurements.h"
#include "publish.h"

namespace spectator::collector {

/// Thread safety: one thread at a time (the collector's).
class Sink {
 public:
  virtual ~Sink() = default;
  using Deadline = std::chrono::steady_clock::time_point;
  /// Publishes one batch; the outcome says what became of its measurements.
  /// A sink that retries starts no attempt after `deadline`.
  virtual BatchOutcome Publish(const CommonTags& common, const Measurement* begin,
                               const Measurement* end, Deadline deadline) = 0;
};

/// One readable line per measurement, flushed after each batch:
///   server.requestCount{method=GET,statistic=count,status=200} 42
class StdoutSink : public Sink {
 public:
  explicit StdoutSink(std::FILE* out = stdout) : out_(out) {}
  BatchOutcome Publish(const CommonTags& common, const Measurement* begin, const Measurement* end,
                       Deadline deadline) override;

 private:
  std::FILE* out_;
};

/// The Atlas publish endpoint: payload, gzip, POST, retries (publish.h).
class AtlasSink : public Sink {
 public:
  AtlasSink(std::string uri, HttpOptions http, RetryPolicy retry)
      : uri_(std::move(uri)), client_(http), retry_(std::move(retry)) {}
  BatchOutcome Publish(const CommonTags& common, const Measurement* begin, const Measurement* end,
                       Deadline deadline) override;

 private:
  std::string uri_;
  HttpClient client_;
  RetryPolicy retry_;
};

}  // namespace spectator::collector
