#pragma once

// The fake Atlas of the collector process tests: a FakeHttpServer that
// answers what the test says and keeps, per request, the answer and the
// decoded measurements summed per meter.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "support/atlas_payload.h"
#include "support/fake_http_server.h"

namespace spectator::testing {

/// Which requests a sum is over, by the answer the fake Atlas gave.
enum class Answered {
  kAccepted,  // 200, or 202 (the fake keeps every measurement of a partial success)
  kRejected,  // 4xx other than 429: dropped for good by the collector
  kRefused,   // 429, 5xx, reset or stalled: the collector keeps the values and retries
  kAny,
};

/// The fake Atlas: answers what the test says (200 by default; any status,
/// a connection reset or a stall), and keeps, for every request it handled,
/// the answer and the request's measurements summed per meter (see Request).
class Atlas {
 public:
  struct Request {
    int status = 0;  // the status answered; 0 for a reset or a stall
    HttpReply::Action action = HttpReply::Action::kRespond;
    std::size_t measurements = 0;  // how many the request carried
    std::string round;             // its common tag `rnd`, if any
    std::string error;             // the payload could not be decoded
    // The request's measurements merged per name and tags, the tags `rnd`,
    // `i` and `percentile` left out: one entry per meter of interest however
    // many spread counters or buckets there are, so that long runs stay small.
    std::vector<PublishedMeasurement> sums;

    Answered kind() const;
    /// Sum of the measurements called `name` with that statistic and every
    /// tag of `tags` (testing::Sum over `sums`).
    double Sum(std::string_view name, std::string_view statistic,
               const std::map<std::string, std::string>& tags = {}) const;
  };

  Atlas();
  std::string url() const { return server_.url(); }
  FakeHttpServer& server() { return server_; }

  /// What requests arriving from now on are answered.
  void Answer(HttpReply reply);
  void Answer(int status, std::string body = "");
  void Answer(HttpReply::Action action);
  /// Stalls every request from now on (true), or accepts them again.
  void Stall(bool stall);
  /// Waits until a request has been stalled since the last Stall(true).
  bool WaitForStalledRequest(std::chrono::milliseconds timeout);
  /// Waits until `n` requests answered `kind` have been handled in total
  /// (take Count() first to wait for new ones).
  bool WaitForAnswered(Answered kind, std::size_t n, std::chrono::milliseconds timeout);
  /// Waits until `n` requests answered `status` have been handled in total.
  bool WaitForStatus(int status, std::size_t n, std::chrono::milliseconds timeout);
  std::size_t Count(Answered kind);
  /// Waits until every request the server received has been handled (a
  /// request is recorded by the server just before its handler runs).
  bool WaitUntilHandled(std::chrono::milliseconds timeout);

  /// Sum over the requests answered `kind`.
  double Sum(Answered kind, std::string_view name, std::string_view statistic,
             const std::map<std::string, std::string>& tags = {});
  /// What Atlas accepted.
  double Accepted(std::string_view name, std::string_view statistic) {
    return Sum(Answered::kAccepted, name, statistic);
  }
  /// Every handled request, in the order their handlers finished (which is
  /// their order of arrival for one collector: it waits for each answer).
  std::vector<Request> Requests();
  /// Payloads that did not decode (a collector bug): their errors.
  std::vector<std::string> DecodeErrors();

 private:
  static bool IsStalled(const Request& r) { return r.action == HttpReply::Action::kStall; }
  static bool Matches(const Request& r, Answered kind) {
    return kind == Answered::kAny || r.kind() == kind;
  }
  template <typename Pred>
  std::size_t CountLocked(Pred pred) const {
    std::size_t n = 0;
    for (const Request& r : requests_) n += pred(r) ? 1 : 0;
    return n;
  }
  template <typename Pred>
  bool WaitFor(Pred pred, std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return CountLocked(pred) >= n; });
  }
  HttpReply Handle(const HttpRequest& req);

  std::mutex mu_;
  std::condition_variable cv_;      // a request was handled
  HttpReply answer_;                // guarded by mu_; default: 200
  std::vector<Request> requests_;   // guarded by mu_
  std::size_t handled_ = 0;         // guarded by mu_
  std::size_t stalled_before_ = 0;  // guarded by mu_; stalled requests before the last Stall()
  FakeHttpServer server_;           // last: stopped first, while the rest still exists
};

}  // namespace spectator::testing
