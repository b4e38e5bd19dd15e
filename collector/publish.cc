#include "publish.h"

#include <algorithm>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

#include "gzip.h"
#include "log.h"
#include "spectator/internal/printable.h"

namespace spectator::collector {
namespace {

// A 202 can list one message per rejected measurement; a few are enough to
// see what is wrong without flooding the log every step.
constexpr std::size_t kMaxLoggedMessages = 5;
// How much of an error body goes in the log line.
constexpr std::size_t kMaxLoggedBody = 200;

using internal::Printable;

bool IsRetryable(int status) { return status == 0 || status == 429 || status >= 500; }

std::string DescribeFailure(const HttpResult& r) {
  if (r.status != 0) return "HTTP " + std::to_string(r.status);
  return r.timed_out ? "timeout (" + r.error + ")" : "network error (" + r.error + ")";
}

// Reads a 202 answer into `outcome`. The body is untrusted: anything that is
// not the documented shape counts the whole batch as delivered, because the
// server did take it and resending would duplicate the accepted part.
void ReadPartial(const std::string& url, const std::string& body, std::size_t measurements,
                 BatchOutcome* outcome) {
  outcome->kind = BatchOutcome::Kind::kAccepted;
  outcome->sent = measurements;
  const nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  const nlohmann::json* count = nullptr;
  if (doc.is_object()) {
    const auto it = doc.find("errorCount");
    if (it != doc.end() && it->is_number_integer()) count = &*it;
  }
  if (count == nullptr) {
    Log(LogLevel::kWarning, "publish: HTTP 202 from " + url +
                                " with an unreadable body, counting the batch as sent: " +
                                Printable(body, kMaxLoggedBody));
    return;
  }
  // is_number_integer covers signed and unsigned; a negative count means none.
  std::size_t errors = 0;
  if (count->is_number_unsigned()) {
    errors = static_cast<std::size_t>(
        std::min<std::uint64_t>(count->get<std::uint64_t>(), measurements));
  } else if (count->get<std::int64_t>() > 0) {
    errors = static_cast<std::size_t>(std::min<std::uint64_t>(
        static_cast<std::uint64_t>(count->get<std::int64_t>()), measurements));
  }
  outcome->dropped = errors;
  outcome->sent = measurements - errors;
  if (errors > 0) outcome->drop_reason = DropReason::kValidation;

  std::string line = "publish: " + std::to_string(errors) + " of " + std::to_string(measurements) +
                     " measurements rejected by " + url;
  const auto messages = doc.find("message");
  if (messages != doc.end() && messages->is_array()) {
    std::size_t logged = 0;
    for (const auto& m : *messages) {
      if (logged == kMaxLoggedMessages) {
        line += "; (" + std::to_string(messages->size() - logged) + " more)";
        break;
      }
      line += "; ";
      // replace: dump() must not throw on a string that is not UTF-8.
      line += m.is_string()
                  ? Printable(m.get_ref<const std::string&>(), kMaxLoggedBody)
                  : Printable(m.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                              kMaxLoggedBody);
      ++logged;
    }
  }
  Log(errors > 0 ? LogLevel::kWarning : LogLevel::kDebug, line);
}

}  // namespace

const char* ToString(DropReason reason) {
  switch (reason) {
    case DropReason::kNone:
      return "";
    case DropReason::kValidation:
      return "validation";
    case DropReason::kHttpError:
      return "http-error";
    case DropReason::kOther:
      return "other";
    case DropReason::kStale:
      return "stale";
  }
  return "";
}

BatchOutcome PublishBatch(HttpClient& client, const std::string& url, const std::string& json,
                          std::size_t measurements, const RetryPolicy& policy) {
  BatchOutcome outcome;
  const std::string body = Gzip(json);
  const int max_attempts = std::max(1, policy.max_attempts);
  std::chrono::milliseconds delay = policy.delay;
  for (int attempt = 1; attempt <= max_attempts; ++attempt) {
    if (attempt > 1) {
      if (std::chrono::steady_clock::now() + delay >= policy.deadline) {
        Log(LogLevel::kWarning, "publish: no time left in this step for attempt " +
                                    std::to_string(attempt) +
                                    "; keeping the values for the next step");
        break;
      }
      if (policy.sleep) {
        policy.sleep(delay);
      } else {
        std::this_thread::sleep_for(delay);
      }
      delay *= 2;
    }
    HttpResult r = client.PostGzipJson(url, body);
    outcome.attempts.push_back(Attempt{r.status, r.timed_out, r.elapsed});

    if (r.status >= 200 && r.status < 300 && r.status != 202) {  // 200, or 201/204 alike
      outcome.kind = BatchOutcome::Kind::kAccepted;
      outcome.sent = measurements;
      Log(LogLevel::kDebug, "publish: " + std::to_string(measurements) + " measurements to " + url +
                                ": HTTP " + std::to_string(r.status));
      return outcome;
    }
    if (r.status == 202) {
      ReadPartial(url, r.body, measurements, &outcome);
      return outcome;
    }
    if (!IsRetryable(r.status)) {
      // 4xx (and anything else the server should not have sent, such as a
      // 3xx we do not follow): the same batch would fail the same way.
      outcome.kind = BatchOutcome::Kind::kRejected;
      outcome.dropped = measurements;
      outcome.drop_reason = DropReason::kHttpError;
      Log(LogLevel::kWarning, "publish: HTTP " + std::to_string(r.status) + " from " + url +
                                  ", dropping " + std::to_string(measurements) +
                                  " measurements: " + Printable(r.body, kMaxLoggedBody));
      return outcome;
    }
    Log(LogLevel::kWarning,
        "publish: attempt " + std::to_string(attempt) + "/" + std::to_string(max_attempts) +
            " to " + url + " failed: " + DescribeFailure(r) +
            (attempt < max_attempts ? ", retrying" : ", keeping the values for the next step"));
  }
  outcome.kind = BatchOutcome::Kind::kRetryable;
  return outcome;
}

}  // namespace spectator::collector
