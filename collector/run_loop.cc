#include "run_loop.h"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <string>

#include "log.h"

namespace spectator::collector {
namespace {

using std::chrono::nanoseconds;
using WallTime = StepClock::WallTime;
using MonoTime = StepClock::MonoTime;

nanoseconds SinceEpoch(WallTime t) {
  return std::chrono::duration_cast<nanoseconds>(t.time_since_epoch());
}
nanoseconds SinceEpoch(MonoTime t) {
  return std::chrono::duration_cast<nanoseconds>(t.time_since_epoch());
}

std::string Seconds(nanoseconds d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f s", static_cast<double>(d.count()) / 1e9);
  return buf;
}

// Watches (wall - monotonic) between looks; reports a jump once.
class JumpDetector {
 public:
  JumpDetector(nanoseconds tolerance, WallTime wall, MonoTime mono)
      : tolerance_(tolerance), offset_(SinceEpoch(wall) - SinceEpoch(mono)) {}

  // The jump since the last look (0 within the tolerance: drift, slewing).
  nanoseconds Look(WallTime wall, MonoTime mono) {
    const nanoseconds offset = SinceEpoch(wall) - SinceEpoch(mono);
    const nanoseconds jump = offset - offset_;
    offset_ = offset;
    if (jump <= tolerance_ && jump >= -tolerance_) return nanoseconds(0);
    if (jump > nanoseconds(0)) {
      Log(LogLevel::kWarning, "the wall clock jumped forward by " + Seconds(jump) +
                                  ": publishing the step now, then back on the step grid");
    } else {
      Log(LogLevel::kWarning, "the wall clock jumped back by " + Seconds(-jump) +
                                  ": the step ends on the monotonic clock, then the schedule "
                                  "re-aligns to the step grid");
    }
    return jump;
  }

 private:
  nanoseconds tolerance_;
  nanoseconds offset_;
};

}  // namespace

StepClock::WallTime SystemStepClock::Wall() { return std::chrono::system_clock::now(); }

StepClock::MonoTime SystemStepClock::Monotonic() { return std::chrono::steady_clock::now(); }

int SystemStepClock::Wait(nanoseconds timeout) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  const auto deadline = Monotonic() + timeout;
  for (;;) {
    const nanoseconds left = std::chrono::duration_cast<nanoseconds>(deadline - Monotonic());
    if (left <= nanoseconds::zero()) return 0;
    timespec ts{static_cast<time_t>(left.count() / 1000000000),
                static_cast<long>(left.count() % 1000000000)};
    const int sig = ::sigtimedwait(&signals, nullptr, &ts);
    if (sig > 0) return sig;
    // EAGAIN: the timeout (re-checked above); EINTR: another signal, retry.
  }
}

StepClock::WallTime NextBoundary(StepClock::WallTime now, nanoseconds step) {
  const nanoseconds since_epoch = SinceEpoch(now);
  // Floor division, so that a time before the epoch (a clock set very wrong)
  // still gets the next multiple, not the one before.
  auto n = since_epoch / step;
  if (since_epoch < nanoseconds::zero() && since_epoch % step != nanoseconds::zero()) --n;
  return WallTime(std::chrono::duration_cast<WallTime::duration>((n + 1) * step));
}

int RunSteps(StepClock& clock, const RunLoopOptions& options, const RunLoopHooks& hooks) {
  const nanoseconds step = options.step;
  const bool watchdog = options.watchdog_interval > nanoseconds::zero() && hooks.watchdog;
  auto ping = [&] {
    if (watchdog) hooks.watchdog();
  };

  WallTime wall = clock.Wall();
  MonoTime mono = clock.Monotonic();
  JumpDetector jumps(options.jump_tolerance, wall, mono);
  // The step being waited for: its wall-clock boundary, and the monotonic
  // time at which it is due whatever the wall clock says.
  WallTime boundary = NextBoundary(wall, step);
  MonoTime deadline = mono + (boundary - wall);
  MonoTime next_ping = mono;

  for (;;) {
    int sig = 0;
    for (;;) {
      wall = clock.Wall();
      mono = clock.Monotonic();
      // Forward: the boundary may be due on the wall clock already, or
      // nearer; pull the deadline in. Back: the deadline stays, so the step
      // in progress lasts no longer than it would have.
      if (jumps.Look(wall, mono) > nanoseconds::zero()) {
        deadline = std::min(deadline, mono + std::max(nanoseconds::zero(),
                                                      std::chrono::duration_cast<nanoseconds>(
                                                          boundary - wall)));
      }
      if (watchdog && mono >= next_ping) {
        ping();
        next_ping = mono + options.watchdog_interval;
      }
      if (wall >= boundary || mono >= deadline) break;
      nanoseconds wait = std::min({std::chrono::duration_cast<nanoseconds>(deadline - mono),
                                   std::chrono::duration_cast<nanoseconds>(boundary - wall),
                                   options.max_wait});
      if (watchdog) wait = std::min(wait, std::chrono::duration_cast<nanoseconds>(next_ping - mono));
      sig = clock.Wait(wait);
      if (sig != 0) break;
    }
    if (sig != 0 && hooks.stopping) hooks.stopping(sig);
    ping();
    hooks.step(clock.Wall());
    ping();
    if (sig != 0) return sig;

    wall = clock.Wall();
    mono = clock.Monotonic();
    next_ping = mono + options.watchdog_interval;
    jumps.Look(wall, mono);  // a jump during the step is logged here
    if (wall + options.jump_tolerance < boundary) {
      // The wall clock is behind the boundary just served: it went back.
      // Re-align to the grid of the new time (the next step is at most a
      // step away) instead of waiting for the old boundary to come round.
      boundary = NextBoundary(wall, step);
    } else {
      // The first boundary after both: an overrun skips boundaries, and a
      // step taken a little early by the monotonic deadline does not serve
      // the same boundary twice.
      boundary = NextBoundary(std::max(wall, boundary), step);
    }
    deadline = mono + (boundary - wall);
  }
}

}  // namespace spectator::collector
