// Fault 1: workers SIGKILLed at random instants -- while registering (also
// stopped inside a claim by the test hook), while recording a timer, while
// recording percentile buckets. After each round nothing that was counted
// before the kill is lost, no Id is lost or duplicated, and nobody blocks.
#include <gtest/gtest.h>

#include "reliability_support.h"
#include "worker_deaths.h"

namespace spectator::reliability {
namespace {

// Dozens of rounds for the default (CI) set; the long binary runs hundreds.
constexpr int kFastRounds = 24;

TEST(WorkerDeath, KilledWhileRegisteringLosesNoIdAndBlocksNobody) {
  DeathScenario s{"KilledWhileRegistering"};
  s.role = Role::kRegister;
  s.claim_hook = true;
  RunDeathRounds(s, Rounds(kFastRounds), 0x5EED0001);
}

TEST(WorkerDeath, KilledWhileRecordingATimerLosesNoRecord) {
  DeathScenario s{"KilledWhileRecordingATimer"};
  s.role = Role::kTimer;
  RunDeathRounds(s, Rounds(kFastRounds), 0x5EED0002);
}

TEST(WorkerDeath, KilledWhileRecordingPercentileBucketsLosesNoRecord) {
  DeathScenario s{"KilledWhileRecordingPercentiles"};
  s.role = Role::kPercentile;
  RunDeathRounds(s, Rounds(kFastRounds), 0x5EED0003);
}

TEST(WorkerDeath, KilledAnywhereInAMixOfWorkers) {
  DeathScenario s{"KilledAnywhere"};
  s.mixed = true;
  s.claim_hook = true;
  s.workers = 6;
  s.max_victims = 3;
  RunDeathRounds(s, Rounds(kFastRounds / 2), 0x5EED0004);
}

}  // namespace
}  // namespace spectator::reliability
