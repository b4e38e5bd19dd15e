#pragma once

// The collector's schedule: when to step, how to wait, and what a wall-clock
// step (NTP, an operator's `date -s`, a VM resumed) does to it.
//
// Steps are aligned to wall-clock multiples of --step, like every Spectator
// client, but the time between two steps is measured on the monotonic clock,
// in waits of at most `max_wait`, and both clocks are compared at every
// wake-up:
//
//  - The normal case: the step for boundary B runs when the wall clock
//    reaches B (or, if the wall clock runs a little slow, when the monotonic
//    time computed for B has passed). The next boundary is the first one after
//    both B and now: an overrunning step skips boundaries, it does not queue
//    them, and no boundary is served twice.
//  - The wall clock jumps forward: the step is due on the wall clock, so it
//    runs at once (within one wait of the jump), one step, not one per
//    skipped boundary; it takes everything accumulated, so nothing is
//    skipped. Then the schedule continues on the grid from the new time.
//  - The wall clock jumps back: the step in progress still ends at its
//    monotonic deadline (at most --step after the previous one), then the
//    schedule re-aligns to the grid of the new wall time: the next step is
//    at most --step later. The collector never waits for the wall clock to
//    catch up.
//
// A jump (the wall clock moving against the monotonic clock by more than
// `jump_tolerance` between two looks) is logged once, as a warning.

#include <chrono>
#include <functional>

namespace spectator::collector {

/// The clocks and the wait of the run loop; tests inject a fake one.
/// Thread safety: used by one thread at a time.
class StepClock {
 public:
  using WallTime = std::chrono::system_clock::time_point;
  using MonoTime = std::chrono::steady_clock::time_point;

  virtual ~StepClock() = default;
  virtual WallTime Wall() = 0;
  virtual MonoTime Monotonic() = 0;
  /// Waits up to `timeout` of monotonic time for a stop signal (SIGTERM or
  /// SIGINT). Returns the signal, or 0 when the time is up.
  virtual int Wait(std::chrono::nanoseconds timeout) = 0;
};

/// CLOCK_REALTIME, CLOCK_MONOTONIC, and sigtimedwait(2) on SIGTERM and SIGINT
/// (whose relative timeout runs on the monotonic clock). The signals must be
/// blocked in every thread (main does it first thing).
class SystemStepClock : public StepClock {
 public:
  WallTime Wall() override;
  MonoTime Monotonic() override;
  int Wait(std::chrono::nanoseconds timeout) override;
};

struct RunLoopOptions {
  std::chrono::nanoseconds step = std::chrono::seconds(5);
  /// The longest single wait: bounds how late a clock jump is noticed.
  std::chrono::nanoseconds max_wait = std::chrono::seconds(1);
  /// A change of (wall - monotonic) beyond this between two looks is a jump.
  std::chrono::nanoseconds jump_tolerance = std::chrono::milliseconds(100);
  /// When positive, `watchdog` is called at least this often while waiting,
  /// and right before and after each step (never during one).
  std::chrono::nanoseconds watchdog_interval{0};
};

struct RunLoopHooks {
  /// One step, at wall time `now`.
  std::function<void(StepClock::WallTime now)> step;
  /// Optional: a stop signal arrived; the final step follows.
  std::function<void(int signal)> stopping;
  /// Optional: the watchdog ping (RunLoopOptions::watchdog_interval).
  std::function<void()> watchdog;
};

/// Steps on the schedule above until a stop signal, then steps once more
/// (a value added just before the signal is published) and returns the
/// signal.
int RunSteps(StepClock& clock, const RunLoopOptions& options, const RunLoopHooks& hooks);

/// The first wall-clock multiple of `step` strictly after `now`.
StepClock::WallTime NextBoundary(StepClock::WallTime now, std::chrono::nanoseconds step);

}  // namespace spectator::collector
