// The collector's schedule with an injected clock: alignment to the step
// grid, overruns, wall-clock jumps forward and back (small and huge, also
// during a step), slow drift, stop signals during the wait, bounded waits and
// the watchdog's pace.
#include "run_loop.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "log.h"

namespace spectator::collector {
namespace {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;
using WallTime = StepClock::WallTime;
using MonoTime = StepClock::MonoTime;

nanoseconds Sec(double s) { return nanoseconds(static_cast<long long>(s * 1e9)); }
double ToSec(nanoseconds d) { return static_cast<double>(d.count()) / 1e9; }

// Monotonic time starts at 1000 s; the wall clock wherever the test says.
// Events are scheduled at monotonic offsets from the start: a wall-clock jump
// happens as time passes (in a wait or in a step), a signal is delivered by
// the first wait that reaches its time (like a blocked signal: one arriving
// during a step is returned by the next wait at once).
class FakeClock : public StepClock {
 public:
  explicit FakeClock(double wall_start_s)
      : wall_(WallTime(std::chrono::duration_cast<WallTime::duration>(Sec(wall_start_s)))),
        mono_(MonoTime(std::chrono::duration_cast<MonoTime::duration>(1000s))),
        start_(mono_) {}

  WallTime Wall() override { return wall_; }
  MonoTime Monotonic() override { return mono_; }
  int Wait(nanoseconds timeout) override {
    waits.push_back(timeout);
    if (timeout < nanoseconds::zero()) ADD_FAILURE() << "negative wait " << timeout.count();
    const MonoTime until = mono_ + std::max(timeout, nanoseconds::zero());
    for (auto it = signals_.begin(); it != signals_.end(); ++it) {
      if (it->first <= until) {
        const int sig = it->second;
        const MonoTime at = std::max(it->first, mono_);
        signals_.erase(it);
        Advance(at - mono_);
        return sig;
      }
    }
    Advance(until - mono_);
    return 0;
  }

  // Time passes (also used by a step that takes time).
  void Advance(nanoseconds d) {
    const MonoTime until = mono_ + d;
    while (!jumps_.empty() && jumps_.front().first <= until) {
      Move(jumps_.front().first - mono_);
      wall_ += std::chrono::duration_cast<WallTime::duration>(jumps_.front().second);
      jumps_.erase(jumps_.begin());
    }
    Move(until - mono_);
  }

  void JumpAt(double mono_s, nanoseconds by) {
    jumps_.push_back({start_ + Sec(mono_s), by});
    std::sort(jumps_.begin(), jumps_.end());
  }
  void SignalAt(double mono_s, int sig) {
    signals_.push_back({start_ + Sec(mono_s), sig});
    std::sort(signals_.begin(), signals_.end());
  }
  // The wall clock runs at (1 + rate) times the monotonic clock.
  void SetDrift(double rate) { drift_ = rate; }

  double MonoSeconds() const { return ToSec(mono_ - start_); }
  double WallSeconds() const { return ToSec(wall_.time_since_epoch()); }

  std::vector<nanoseconds> waits;

 private:
  void Move(nanoseconds d) {
    mono_ += d;
    wall_ += std::chrono::duration_cast<WallTime::duration>(
        d + nanoseconds(static_cast<long long>(static_cast<double>(d.count()) * drift_)));
  }

  WallTime wall_;
  MonoTime mono_;
  MonoTime start_;
  double drift_ = 0;
  std::vector<std::pair<MonoTime, nanoseconds>> jumps_;
  std::vector<std::pair<MonoTime, int>> signals_;
};

struct StepAt {
  double wall;  // seconds since the epoch
  double mono;  // seconds since the fake clock's start
};

// Runs the loop until the scheduled signal; records each step.
class RunLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogLevel(LogLevel::kInfo);
    SetLogSinkForTesting([this](LogLevel, std::string_view line) { logs.emplace_back(line); });
  }
  void TearDown() override {
    SetLogSinkForTesting({});
    SetLogLevel(LogLevel::kWarning);
  }

  int Run(FakeClock& clock, RunLoopOptions options, nanoseconds step_cost = 0ns) {
    RunLoopHooks hooks;
    hooks.step = [&](WallTime now) {
      EXPECT_EQ(now, clock.Wall()) << "a step is given the wall time it runs at";
      steps.push_back({ToSec(now.time_since_epoch()), clock.MonoSeconds()});
      if (steps.size() > 100000) std::abort();  // a runaway loop
      clock.Advance(step_cost);
    };
    hooks.stopping = [&](int sig) {
      stopping.push_back(sig);
      stopping_after_steps = steps.size();
    };
    hooks.watchdog = [&] { pings.push_back(clock.MonoSeconds()); };
    return RunSteps(clock, options, hooks);
  }

  int Logged(const std::string& what) const {
    return static_cast<int>(std::count_if(logs.begin(), logs.end(), [&](const std::string& l) {
      return l.find(what) != std::string::npos;
    }));
  }

  // Each step's wall time is a multiple of `step` (to the nanosecond).
  static bool OnGrid(double wall, double step) {
    const double k = wall / step;
    return std::abs(k - std::round(k)) < 1e-6;
  }

  std::vector<StepAt> steps;
  std::vector<int> stopping;
  std::size_t stopping_after_steps = 0;
  std::vector<double> pings;
  std::vector<std::string> logs;
};

RunLoopOptions Options(double step_s) {
  RunLoopOptions o;
  o.step = Sec(step_s);
  return o;
}

TEST_F(RunLoopTest, StepsAreAlignedToTheWallClockGridAndWaitsAreBounded) {
  FakeClock clock(1000.3);
  clock.SignalAt(27.0, 15);  // mid-wait
  EXPECT_EQ(Run(clock, Options(5)), 15);
  // 1005, 1010, ..., 1025 on the grid, then the final step at the signal.
  ASSERT_EQ(steps.size(), 6u);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_DOUBLE_EQ(steps[i].wall, 1005.0 + 5.0 * static_cast<double>(i)) << i;
  }
  EXPECT_NEAR(steps[0].mono, 4.7, 1e-9);
  EXPECT_NEAR(steps[5].mono, 27.0, 1e-9) << "the final step runs when the signal arrives";
  for (nanoseconds w : clock.waits) EXPECT_LE(w, 1s) << "a wait is a bounded slice";
  EXPECT_GE(clock.waits.size(), 27u);
  EXPECT_EQ(stopping, std::vector<int>{15});
  EXPECT_EQ(stopping_after_steps, 5u) << "stopping is announced before the final step";
  EXPECT_EQ(Logged("jumped"), 0);
}

TEST_F(RunLoopTest, AnOverrunningStepSkipsBoundariesInsteadOfQueueingThem) {
  FakeClock clock(1000.0);
  clock.SignalAt(30.0, 15);
  EXPECT_EQ(Run(clock, Options(5), Sec(7)), 15);  // each step takes 7 s
  // 1005 (ends 1012), 1015 (ends 1022), 1025 (ends 1032 = mono 32: the signal
  // that arrived during it is taken by the next wait at once), final.
  ASSERT_EQ(steps.size(), 4u);
  EXPECT_DOUBLE_EQ(steps[0].wall, 1005);
  EXPECT_DOUBLE_EQ(steps[1].wall, 1015);
  EXPECT_DOUBLE_EQ(steps[2].wall, 1025);
  EXPECT_DOUBLE_EQ(steps[3].wall, 1032);
}

TEST_F(RunLoopTest, SmallForwardJumpMovesTheStepToTheWallBoundary) {
  FakeClock clock(1000.0);
  clock.JumpAt(1.5, Sec(2));  // wall 1001.5 -> 1003.5
  clock.SignalAt(12.0, 15);
  EXPECT_EQ(Run(clock, Options(5)), 15);
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_DOUBLE_EQ(steps[0].wall, 1005);
  EXPECT_NEAR(steps[0].mono, 3.0, 1e-9) << "2 s of monotonic time earlier";
  EXPECT_DOUBLE_EQ(steps[1].wall, 1010);
  EXPECT_NEAR(steps[1].mono, 8.0, 1e-9);
  EXPECT_EQ(Logged("the wall clock jumped forward by 2.000 s"), 1);
}

TEST_F(RunLoopTest, HugeForwardJumpPublishesOneStepAtOnceThenStaysOnTheGrid) {
  FakeClock clock(1000.0);
  clock.JumpAt(7.2, Sec(3600));  // wall 1007.2 -> 4607.2, 720 boundaries skipped
  clock.SignalAt(20.0, 15);
  EXPECT_EQ(Run(clock, Options(5)), 15);
  // 1005; one step as soon as a wait ends after the jump (the waits are
  // bounded slices of 1 s), at wall 4608; then 4610, 4615; the final one.
  ASSERT_EQ(steps.size(), 5u);
  EXPECT_DOUBLE_EQ(steps[0].wall, 1005);
  EXPECT_NEAR(steps[1].mono, 7.2, 1.0 + 1e-9) << "within one bounded wait of the jump";
  EXPECT_GE(steps[1].wall, 4607.2);
  EXPECT_LT(steps[1].wall, 4608.3);
  EXPECT_DOUBLE_EQ(steps[2].wall, 4610);
  EXPECT_DOUBLE_EQ(steps[3].wall, 4615);
  EXPECT_EQ(Logged("the wall clock jumped forward by 3600.000 s"), 1) << "logged once";
  EXPECT_EQ(Logged("jumped"), 1);
}

TEST_F(RunLoopTest, SmallBackwardJumpEndsTheStepOnTimeAndRealignsWithoutRepeating) {
  FakeClock clock(1000.0);
  clock.JumpAt(6.5, -Sec(2));  // wall 1006.5 -> 1004.5; the 1010 step is due at mono 10
  clock.SignalAt(22.0, 15);
  EXPECT_EQ(Run(clock, Options(5)), 15);
  // 1005 (mono 5); mono 10 (wall 1008: the step ends on time); re-aligned:
  // 1010 (mono 12), 1015 (mono 17), final at mono 22.
  ASSERT_EQ(steps.size(), 5u);
  EXPECT_NEAR(steps[1].mono, 10.0, 1e-9);
  EXPECT_DOUBLE_EQ(steps[1].wall, 1008);
  EXPECT_DOUBLE_EQ(steps[2].wall, 1010);
  EXPECT_DOUBLE_EQ(steps[3].wall, 1015);
  EXPECT_EQ(Logged("the wall clock jumped back by 2.000 s"), 1);
}

TEST_F(RunLoopTest, HourBackwardJumpKeepsSteppingEveryStepOfMonotonicTime) {
  FakeClock clock(1000.0);
  // wall 1012.3 -> -2590 (before the epoch, too): off the old grid by 2.3 s.
  clock.JumpAt(12.3, -Sec(3602.3));
  clock.SignalAt(60.0, 15);
  EXPECT_EQ(Run(clock, Options(5)), 15);
  ASSERT_GE(steps.size(), 12u);
  for (std::size_t i = 1; i < steps.size(); ++i) {
    EXPECT_LE(steps[i].mono - steps[i - 1].mono, 5.0 + 1e-9)
        << "step " << i << ": never longer than a step of monotonic time";
    EXPECT_GT(steps[i].mono - steps[i - 1].mono, 0.0) << "step " << i << ": never repeated";
  }
  // The step in progress at the jump ends at mono 15 (its deadline, wall
  // -2587.3); then the grid of the new time: -2585 at mono 17.3, -2580, ...
  EXPECT_NEAR(steps[2].mono, 15.0, 1e-9);
  EXPECT_DOUBLE_EQ(steps[3].wall, -2585);
  EXPECT_NEAR(steps[3].mono, 17.3, 1e-9);
  for (std::size_t i = 3; i + 1 < steps.size(); ++i) EXPECT_TRUE(OnGrid(steps[i].wall, 5)) << i;
  EXPECT_EQ(steps.size(), 2u + 1u + 9u + 1u) << "5, 10, 15, 17.3 ... 57.3, final";
  EXPECT_EQ(Logged("the wall clock jumped back by 3602.300 s"), 1) << "logged once";
  EXPECT_EQ(Logged("jumped"), 1);
}

TEST_F(RunLoopTest, BackwardJumpDuringAStepRealignsAfterIt) {
  FakeClock clock(1000.0);
  clock.JumpAt(5.5, -Sec(3600));  // inside the first step, which takes 1 s
  clock.SignalAt(20.0, 15);
  EXPECT_EQ(Run(clock, Options(5), Sec(1)), 15);
  ASSERT_GE(steps.size(), 3u);
  EXPECT_DOUBLE_EQ(steps[0].wall, 1005);
  // After the step: wall -2594, so the next boundary is -2590, at mono 10.
  EXPECT_DOUBLE_EQ(steps[1].wall, -2590);
  EXPECT_NEAR(steps[1].mono, 10.0, 1e-9);
  EXPECT_EQ(Logged("jumped back by 3600.000 s"), 1);
}

TEST_F(RunLoopTest, SlowOrFastDriftIsNotAJumpAndNoBoundaryIsServedTwice) {
  for (const double drift : {-0.001, 0.001}) {
    SCOPED_TRACE(drift);
    steps.clear();
    logs.clear();
    FakeClock clock(1000.0);
    clock.SetDrift(drift);
    clock.SignalAt(100.0, 15);
    EXPECT_EQ(Run(clock, Options(0.5)), 15);
    ASSERT_GE(steps.size(), 190u);
    for (std::size_t i = 1; i + 1 < steps.size(); ++i) {
      const double gap = steps[i].mono - steps[i - 1].mono;
      EXPECT_GT(gap, 0.49) << i;
      EXPECT_LT(gap, 0.51) << i;
      EXPECT_NEAR(steps[i].wall, std::round(steps[i].wall * 2) / 2, 0.01) << i;
    }
    EXPECT_EQ(Logged("jumped"), 0);
  }
}

TEST_F(RunLoopTest, SignalBeforeTheFirstStepStillPublishesOnce) {
  FakeClock clock(1000.2);
  clock.SignalAt(0.1, 2);
  EXPECT_EQ(Run(clock, Options(5)), 2);
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_NEAR(steps[0].mono, 0.1, 1e-9);
  EXPECT_EQ(stopping, std::vector<int>{2});
  EXPECT_EQ(stopping_after_steps, 0u);
}

TEST_F(RunLoopTest, WatchdogPingsWhileWaitingAndAroundStepsButNotDuringThem) {
  FakeClock clock(1000.0);
  clock.SignalAt(21.0, 15);
  RunLoopOptions o = Options(5);
  o.watchdog_interval = Sec(0.3);
  EXPECT_EQ(Run(clock, o, Sec(2)), 15);  // each step takes 2 s
  ASSERT_GE(pings.size(), 40u);
  EXPECT_DOUBLE_EQ(pings.front(), 0);
  for (std::size_t i = 1; i < pings.size(); ++i) {
    const double gap = pings[i] - pings[i - 1];
    // Inside a step (2 s) nothing pings: a stuck step stops the pings.
    const bool across_a_step = std::any_of(steps.begin(), steps.end(), [&](const StepAt& s) {
      return s.mono >= pings[i - 1] - 1e-9 && s.mono + 2 <= pings[i] + 1e-9;
    });
    if (across_a_step) {
      EXPECT_NEAR(gap, 2.0, 1e-9) << i;
    } else {
      EXPECT_LE(gap, 0.3 + 1e-9) << i;
    }
  }
  for (nanoseconds w : clock.waits) EXPECT_LE(w, Sec(0.3));
  // No watchdog configured: no pings.
  pings.clear();
  FakeClock quiet(1000.0);
  quiet.SignalAt(3.0, 15);
  Run(quiet, Options(5));
  EXPECT_TRUE(pings.empty());
}

TEST(NextBoundary, IsStrictlyAfterNowOnTheGrid) {
  auto at = [](double s) {
    return WallTime(std::chrono::duration_cast<WallTime::duration>(Sec(s)));
  };
  auto sec = [](WallTime t) { return ToSec(t.time_since_epoch()); };
  EXPECT_DOUBLE_EQ(sec(NextBoundary(at(1000.0), 5s)), 1005);
  EXPECT_DOUBLE_EQ(sec(NextBoundary(at(1004.999), 5s)), 1005);
  EXPECT_DOUBLE_EQ(sec(NextBoundary(at(1000.01), Sec(0.05))), 1000.05);
  EXPECT_DOUBLE_EQ(sec(NextBoundary(at(-7.5), 5s)), -5);
  EXPECT_DOUBLE_EQ(sec(NextBoundary(at(-10), 5s)), -5);
}

}  // namespace
}  // namespace spectator::collector
