// PublishBatch: how each answer of the publish endpoint turns into sent,
// dropped or "try again next step", and how attempts are paced.
#include "publish.h"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "log.h"
#include "support/fake_http_server.h"

namespace spectator::collector {
namespace {

using namespace std::chrono_literals;
using spectator::testing::FakeHttpServer;
using spectator::testing::HttpReply;
using spectator::testing::HttpRequest;
using spectator::testing::Reply;
using Kind = BatchOutcome::Kind;

class Publish : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogLevel(LogLevel::kDebug);
    SetLogSinkForTesting([this](LogLevel level, std::string_view line) {
      std::lock_guard<std::mutex> lock(mu_);
      log_.emplace_back(level, std::string(line));
    });
    policy_.delay = 100ms;
    policy_.sleep = [this](std::chrono::milliseconds d) { sleeps_.push_back(d); };
  }
  void TearDown() override {
    SetLogSinkForTesting({});
    SetLogLevel(LogLevel::kWarning);
  }

  std::vector<std::string> Lines(LogLevel level) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const auto& [l, line] : log_) {
      if (l == level) out.push_back(line);
    }
    return out;
  }

  BatchOutcome Run(FakeHttpServer& server, std::size_t measurements = 5) {
    return PublishBatch(client_, server.url(), json_, measurements, policy_);
  }

  const std::string json_ = R"([2,"name","x",1,0,1,0,1])";
  HttpClient client_{HttpOptions{2000ms, 2000ms}};
  RetryPolicy policy_;
  std::vector<std::chrono::milliseconds> sleeps_;
  std::mutex mu_;
  std::vector<std::pair<LogLevel, std::string>> log_;
};

TEST_F(Publish, Http200SendsEverythingInOneQuietAttempt) {
  FakeHttpServer server;
  const BatchOutcome o = Run(server);
  EXPECT_EQ(o.kind, Kind::kAccepted);
  EXPECT_EQ(o.sent, 5u);
  EXPECT_EQ(o.dropped, 0u);
  EXPECT_EQ(o.drop_reason, DropReason::kNone);
  ASSERT_EQ(o.attempts.size(), 1u);
  EXPECT_EQ(o.attempts[0].status, 200);
  EXPECT_FALSE(o.attempts[0].timed_out);
  EXPECT_TRUE(sleeps_.empty());
  EXPECT_TRUE(Lines(LogLevel::kWarning).empty());
  ASSERT_EQ(server.request_count(), 1u);
  EXPECT_EQ(server.requests()[0].DecodedBody(), json_);
}

TEST_F(Publish, Http202PartialDropsTheErrorCountAsValidation) {
  FakeHttpServer server([](const HttpRequest&) {
    return Reply(202, R"({"type":"partial","errorCount":2,"message":["bad tag a","bad tag b"]})");
  });
  const BatchOutcome o = Run(server, 5);
  EXPECT_EQ(o.kind, Kind::kAccepted);
  EXPECT_EQ(o.sent, 3u);
  EXPECT_EQ(o.dropped, 2u);
  EXPECT_EQ(o.drop_reason, DropReason::kValidation);
  EXPECT_EQ(o.attempts.size(), 1u);
  const auto warnings = Lines(LogLevel::kWarning);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("bad tag a"), std::string::npos);
  EXPECT_NE(warnings[0].find("bad tag b"), std::string::npos);
}

TEST_F(Publish, Http202LogsOnlyTheFirstFewMessages) {
  std::string body = R"({"type":"partial","errorCount":9,"message":[)";
  for (int i = 0; i < 9; ++i)
    body += std::string(i ? "," : "") + "\"msg-" + std::to_string(i) + "\"";
  body += "]}";
  FakeHttpServer server([&](const HttpRequest&) { return Reply(202, body); });
  const BatchOutcome o = Run(server, 9);
  EXPECT_EQ(o.dropped, 9u);
  EXPECT_EQ(o.sent, 0u);
  const auto warnings = Lines(LogLevel::kWarning);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("msg-4"), std::string::npos);
  EXPECT_EQ(warnings[0].find("msg-5"), std::string::npos);
  EXPECT_NE(warnings[0].find("4 more"), std::string::npos);
}

TEST_F(Publish, Http202LogsMessagesThatAreNotStringsAsJson) {
  FakeHttpServer server([](const HttpRequest&) {
    return Reply(202, R"({"type":"partial","errorCount":1,"message":[{"tag":"x"}]})");
  });
  const BatchOutcome o = Run(server, 5);
  EXPECT_EQ(o.dropped, 1u);
  const auto warnings = Lines(LogLevel::kWarning);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find(R"({"tag":"x"})"), std::string::npos) << warnings[0];
}

TEST_F(Publish, Http202ErrorCountIsClampedToTheBatch) {
  FakeHttpServer server(
      [](const HttpRequest&) { return Reply(202, R"({"type":"partial","errorCount":50})"); });
  const BatchOutcome o = Run(server, 5);
  EXPECT_EQ(o.kind, Kind::kAccepted);
  EXPECT_EQ(o.sent, 0u);
  EXPECT_EQ(o.dropped, 5u);
}

TEST_F(Publish, Http202NegativeErrorCountDropsNothing) {
  FakeHttpServer server(
      [](const HttpRequest&) { return Reply(202, R"({"type":"partial","errorCount":-3})"); });
  const BatchOutcome o = Run(server, 5);
  EXPECT_EQ(o.sent, 5u);
  EXPECT_EQ(o.dropped, 0u);
}

TEST_F(Publish, Http202WithAnUnreadableBodyCountsEverythingAsSent) {
  for (const char* body : {"not json {", "", "[1,2]", R"({"errorCount":"two"})"}) {
    SCOPED_TRACE(body);
    FakeHttpServer server([&](const HttpRequest&) { return Reply(202, body); });
    const BatchOutcome o = Run(server, 5);
    EXPECT_EQ(o.kind, Kind::kAccepted);
    EXPECT_EQ(o.sent, 5u);
    EXPECT_EQ(o.dropped, 0u);
    EXPECT_EQ(o.attempts.size(), 1u);
  }
  EXPECT_EQ(Lines(LogLevel::kWarning).size(), 4u);
}

TEST_F(Publish, Http400DropsTheBatchWithoutRetrying) {
  FakeHttpServer server([](const HttpRequest&) { return Reply(400, "missing name tag"); });
  const BatchOutcome o = Run(server, 5);
  EXPECT_EQ(o.kind, Kind::kRejected);
  EXPECT_EQ(o.sent, 0u);
  EXPECT_EQ(o.dropped, 5u);
  EXPECT_EQ(o.drop_reason, DropReason::kHttpError);
  ASSERT_EQ(o.attempts.size(), 1u);
  EXPECT_EQ(o.attempts[0].status, 400);
  EXPECT_TRUE(sleeps_.empty());
  const auto warnings = Lines(LogLevel::kWarning);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("400"), std::string::npos);
  EXPECT_NE(warnings[0].find("missing name tag"), std::string::npos);
}

TEST_F(Publish, Http429ThenSuccessIsAcceptedAfterOneDelay) {
  FakeHttpServer server([&](const HttpRequest&) {
    // The first request is number 1: it is recorded before the handler runs.
    return server.request_count() == 1 ? Reply(429) : Reply(200);
  });
  const BatchOutcome o = Run(server, 5);
  EXPECT_EQ(o.kind, Kind::kAccepted);
  EXPECT_EQ(o.sent, 5u);
  ASSERT_EQ(o.attempts.size(), 2u);
  EXPECT_EQ(o.attempts[0].status, 429);
  EXPECT_EQ(o.attempts[1].status, 200);
  EXPECT_EQ(sleeps_, (std::vector<std::chrono::milliseconds>{100ms}));
  EXPECT_EQ(Lines(LogLevel::kWarning).size(), 1u);
}

TEST_F(Publish, Http503EveryTimeIsRetryableAfterDoublingDelays) {
  FakeHttpServer server([](const HttpRequest&) { return Reply(503); });
  const BatchOutcome o = Run(server, 5);
  EXPECT_EQ(o.kind, Kind::kRetryable);
  EXPECT_EQ(o.sent, 0u);
  EXPECT_EQ(o.dropped, 0u);
  ASSERT_EQ(o.attempts.size(), 3u);
  for (const Attempt& a : o.attempts) EXPECT_EQ(a.status, 503);
  EXPECT_EQ(sleeps_, (std::vector<std::chrono::milliseconds>{100ms, 200ms}));
  EXPECT_EQ(server.request_count(), 3u);
  EXPECT_EQ(Lines(LogLevel::kWarning).size(), 3u);  // one per failed attempt
}

TEST_F(Publish, MaxAttemptsIsHonoured) {
  policy_.max_attempts = 5;
  FakeHttpServer server([](const HttpRequest&) { return Reply(500); });
  const BatchOutcome o = Run(server, 1);
  EXPECT_EQ(o.kind, Kind::kRetryable);
  EXPECT_EQ(o.attempts.size(), 5u);
  EXPECT_EQ(sleeps_, (std::vector<std::chrono::milliseconds>{100ms, 200ms, 400ms, 800ms}));
}

TEST_F(Publish, NoAttemptStartsAfterTheDeadline) {
  // The first attempt always runs; the second would start past the deadline
  // (now + its 100 ms delay), so the batch is left for the next step.
  policy_.deadline = std::chrono::steady_clock::now() + 50ms;
  FakeHttpServer server([](const HttpRequest&) { return Reply(503); });
  const BatchOutcome o = Run(server, 5);
  EXPECT_EQ(o.kind, Kind::kRetryable);
  EXPECT_EQ(o.attempts.size(), 1u);
  EXPECT_TRUE(sleeps_.empty());
  EXPECT_EQ(server.request_count(), 1u);
}

TEST_F(Publish, ConnectionRefusedIsRetriedThenRetryable) {
  std::string url;
  {
    FakeHttpServer gone;  // its port is closed once it is destroyed
    url = gone.url();
  }
  const BatchOutcome o = PublishBatch(client_, url, json_, 5, policy_);
  EXPECT_EQ(o.kind, Kind::kRetryable);
  ASSERT_EQ(o.attempts.size(), 3u);
  for (const Attempt& a : o.attempts) {
    EXPECT_EQ(a.status, 0);
    EXPECT_FALSE(a.timed_out);
  }
  EXPECT_EQ(sleeps_.size(), 2u);
}

TEST_F(Publish, ATimeoutIsRetriedAndRecordedAsTimedOut) {
  HttpClient fast(HttpOptions{2000ms, 200ms});
  FakeHttpServer server([](const HttpRequest&) {
    HttpReply r;
    r.action = HttpReply::Action::kStall;
    return r;
  });
  policy_.max_attempts = 2;
  const auto start = std::chrono::steady_clock::now();
  const BatchOutcome o = PublishBatch(fast, server.url(), json_, 5, policy_);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);  // safety net only
  EXPECT_EQ(o.kind, Kind::kRetryable);
  ASSERT_EQ(o.attempts.size(), 2u);
  EXPECT_TRUE(o.attempts[0].timed_out);
  EXPECT_TRUE(o.attempts[1].timed_out);
  EXPECT_GE(o.attempts[0].elapsed, 150ms);
}

TEST_F(Publish, AResetIsRetriedLikeAnyNetworkError) {
  FakeHttpServer server([&](const HttpRequest&) {
    if (server.request_count() == 1) {
      HttpReply r;
      r.action = HttpReply::Action::kReset;
      return r;
    }
    return Reply(200);
  });
  const BatchOutcome o = Run(server, 5);
  EXPECT_EQ(o.kind, Kind::kAccepted);
  ASSERT_EQ(o.attempts.size(), 2u);
  EXPECT_EQ(o.attempts[0].status, 0);
  EXPECT_EQ(o.attempts[1].status, 200);
}

TEST_F(Publish, WithoutAnInjectedSleepTheRealDelayIsUsed) {
  policy_.sleep = nullptr;
  policy_.delay = 1ms;
  FakeHttpServer server([](const HttpRequest&) { return Reply(503); });
  const BatchOutcome o = Run(server, 5);
  EXPECT_EQ(o.attempts.size(), 3u);
}

}  // namespace
}  // namespace spectator::collector
