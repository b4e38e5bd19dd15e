// The first step of a collector run after an absence, with an injected
// clock: what accumulated is published at once (default), or dropped and
// counted as stale when the absence exceeds --max-catch-up.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "collector.h"
#include "line_sink.h"
#include "log.h"
#include "payload.h"
#include "spectator/spectator.h"
#include "support/temp_segment.h"

namespace spectator::collector {
namespace {

using namespace std::chrono_literals;
using spectator::testing::TempSegment;
using Clock = std::chrono::system_clock;


class CatchUpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogLevel(LogLevel::kInfo);
    SetLogSinkForTesting([this](LogLevel level, std::string_view line) {
      logs.push_back({level, std::string(line)});
    });
    // An earlier collector's last step, at t0.
    LineSink earlier;
    Collector(registry_, CollectorOptions{}, earlier).Step(t0_);
    logs.clear();
    // What the workers did while no collector ran: 5 requests, 2 timings.
    registry_.GetCounter("absent.requests").Add(5);
    registry_.GetTimer("absent.latency").Record(2s);
    registry_.GetTimer("absent.latency").Record(1s);
  }
  void TearDown() override {
    SetLogSinkForTesting({});
    SetLogLevel(LogLevel::kWarning);
  }

  // The next collector's first two steps, `gap` after the earlier one's last.
  void RunAfter(std::chrono::nanoseconds gap, std::chrono::nanoseconds max_catch_up) {
    CollectorOptions o;
    o.max_catch_up = max_catch_up;
    Collector next(registry_, o, sink_);
    const auto at = t0_ + std::chrono::duration_cast<Clock::duration>(gap);
    first_ = next.Step(at);
    first_lines_ = sink_.lines;
    sink_.lines.clear();
    second_ = next.Step(at + 5s);
  }
  int Logged(LogLevel level, const std::string& what) const {
    return static_cast<int>(std::count_if(logs.begin(), logs.end(), [&](const auto& l) {
      return l.first == level && l.second.find(what) != std::string::npos;
    }));
  }
  bool FirstHas(const std::string& line) const {
    return std::find(first_lines_.begin(), first_lines_.end(), line) != first_lines_.end();
  }

  TempSegment segment_;
  Registry registry_{segment_.options()};
  LineSink sink_;
  const Clock::time_point t0_ = Clock::time_point(std::chrono::seconds(1700000000));
  StepStats first_, second_;
  std::vector<std::string> first_lines_;
  std::vector<std::pair<LogLevel, std::string>> logs;
};

TEST_F(CatchUpTest, ByDefaultAnHourOfAbsenceIsPublishedAtOnceAndLogged) {
  RunAfter(3600s, 0ns);
  EXPECT_TRUE(FirstHas("absent.requests{statistic=count} 5"));
  EXPECT_TRUE(FirstHas("absent.latency{statistic=count} 2"));
  EXPECT_TRUE(FirstHas("absent.latency{statistic=totalTime} 3"));
  EXPECT_EQ(first_.dropped, 0u);
  EXPECT_FALSE(sink_.HasPrefix("spectator.measurements{error=stale"));
  // The earlier collector's pid is ours (same process).
  EXPECT_EQ(Logged(LogLevel::kWarning, "the last step of this segment was 3600.0 s ago (collector "
                                       "pid " + std::to_string(::getpid()) + "): publishing the " +
                                       std::to_string(first_.measurements) + " measurements of " +
                                       std::to_string(first_.meters) +
                                       " meters accumulated since at once"),
            1);
}

TEST_F(CatchUpTest, AShortAbsenceIsPublishedAndLoggedAtInfo) {
  RunAfter(7s, 600s);
  EXPECT_TRUE(FirstHas("absent.requests{statistic=count} 5"));
  EXPECT_EQ(first_.dropped, 0u);
  EXPECT_EQ(Logged(LogLevel::kInfo, "the last step of this segment was 7.0 s ago"), 1);
  EXPECT_EQ(Logged(LogLevel::kWarning, "last step"), 0) << "a restart is no warning";
}

TEST_F(CatchUpTest, JustUnderTheLimitIsPublished) {
  RunAfter(599s, 600s);
  EXPECT_TRUE(FirstHas("absent.requests{statistic=count} 5"));
  EXPECT_EQ(first_.dropped, 0u);
}

TEST_F(CatchUpTest, LongerThanTheLimitIsDroppedCommittedAndCountedAsStale) {
  RunAfter(3600s, 600s);
  EXPECT_FALSE(FirstHas("absent.requests{statistic=count} 5")) << "not published";
  EXPECT_TRUE(first_lines_.empty()) << "nothing at all is published in that step";
  EXPECT_GT(first_.measurements, 3u);
  EXPECT_EQ(first_.dropped, first_.measurements) << "every measurement taken";
  EXPECT_EQ(first_.sent, 0u);
  // Committed: the next step has nothing of it, and counts the drop.
  EXPECT_FALSE(sink_.HasPrefix("absent."));
  EXPECT_TRUE(sink_.Has("spectator.measurements{error=stale,id=dropped,statistic=count} " +
                        std::to_string(first_.measurements)))
      << "counted";
  EXPECT_EQ(Logged(LogLevel::kWarning, "was 3600.0 s ago (collector pid " +
                                           std::to_string(::getpid()) +
                                           "), more than --max-catch-up 600.0 s: dropping the " +
                                           std::to_string(first_.measurements) +
                                           " measurements of " + std::to_string(first_.meters) +
                                           " meters"),
            1);
  // And the segment's journal is empty: a third collector publishes nothing old.
  LineSink third_sink;
  Collector third(registry_, CollectorOptions{}, third_sink);
  third.Step(t0_ + 3700s);
  EXPECT_FALSE(third_sink.HasPrefix("absent."));
}

TEST_F(CatchUpTest, OnlyTheFirstStepOfARunIsCompared) {
  CollectorOptions o;
  o.max_catch_up = 1s;
  Collector next(registry_, o, sink_);
  next.Step(t0_ + 500ms);  // within the limit: published
  EXPECT_TRUE(sink_.Has("absent.requests{statistic=count} 5"));
  registry_.GetCounter("absent.requests").Add(2);
  sink_.lines.clear();
  next.Step(t0_ + 100s);  // a long step later, but not a new run
  EXPECT_TRUE(sink_.Has("absent.requests{statistic=count} 2"));
}

TEST(CatchUp, ASegmentNeverCollectedIsPublishedInFullWhateverTheLimit) {
  SetLogLevel(LogLevel::kError);
  TempSegment segment;
  Registry registry(segment.options());
  ASSERT_EQ(registry.Info().collector_heartbeat_unix_ns, 0u);
  registry.GetCounter("fresh").Add(3);
  LineSink sink;
  CollectorOptions o;
  o.max_catch_up = 10ms;
  Collector(registry, o, sink).Step(Clock::now());
  EXPECT_TRUE(sink.Has("fresh{statistic=count} 3"));
  SetLogLevel(LogLevel::kWarning);
}

TEST(DropReason, TagValues) {
  EXPECT_STREQ(ToString(DropReason::kValidation), "validation");
  EXPECT_STREQ(ToString(DropReason::kHttpError), "http-error");
  EXPECT_STREQ(ToString(DropReason::kOther), "other");
  EXPECT_STREQ(ToString(DropReason::kStale), "stale");
}

}  // namespace
}  // namespace spectator::collector
