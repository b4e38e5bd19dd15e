#pragma once

// Sending one batch to the Atlas publish endpoint: gzip, POST, retries on
// 429/5xx/connection errors, and the reading of 200/202/4xx answers
// (docs/protocol.md, "HTTP").

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "http_client.h"

namespace spectator::collector {

struct RetryPolicy {
  int max_attempts = 3;
  std::chrono::milliseconds delay{500};  // before the 2nd attempt; doubled after
  /// Waits between attempts; tests inject one that records and returns at once.
  std::function<void(std::chrono::milliseconds)> sleep;  // empty: real sleep
  /// No attempt starts after this instant (the end of the collector's step),
  /// so that a dead endpoint never holds the collector past its schedule;
  /// the batch then stays pending for the next step.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

/// One HTTP attempt, for the http.req.complete self-metric.
struct Attempt {
  int status = 0;  // 0: no response
  bool timed_out = false;
  std::chrono::nanoseconds elapsed{0};
};

/// Why measurements were dropped for good: the `error` tag of
/// spectator.measurements{id=dropped}.
enum class DropReason {
  kNone,
  kValidation,  // 202 errorCount: Atlas rejected these measurements
  kHttpError,   // other 4xx: the whole batch
  kOther,       // the stdout sink could not write
  kStale,       // taken after an absence longer than --max-catch-up, not published
};
/// The tag value: "validation", "http-error", "other", "stale" ("" for kNone).
const char* ToString(DropReason reason);

struct BatchOutcome {
  enum class Kind {
    kAccepted,   // 200, or 202: every measurement was delivered or rejected for good
    kRejected,   // 4xx other than 429: the batch is dropped for good (error=http-error)
    kRetryable,  // attempts exhausted on 429, 5xx or a network error: keep for a later step
  };
  Kind kind = Kind::kRetryable;
  std::size_t sent = 0;     // measurements accepted by the server
  std::size_t dropped = 0;  // measurements rejected for good
  DropReason drop_reason = DropReason::kNone;  // kValidation (202) or kHttpError (4xx)
  std::vector<Attempt> attempts;
};

/// Posts `json` (an uncompressed payload of `measurements` measurements) to
/// `url`. 200 → all sent. 202 with {"errorCount":k,"message":[...]} → k
/// dropped (validation; the messages are logged), the rest sent; a 202 body
/// that cannot be parsed counts everything as sent. Other 4xx → all dropped
/// (http-error), logged. 429, 5xx, timeouts and connection errors are retried
/// up to policy.max_attempts, then kRetryable. Never throws on bad answers.
BatchOutcome PublishBatch(HttpClient& client, const std::string& url, const std::string& json,
                          std::size_t measurements, const RetryPolicy& policy);

}  // namespace spectator::collector
