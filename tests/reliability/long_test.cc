// The long reliability runs (ctest label "long", `scripts/test --long`):
// the fast set's faults for hundreds of rounds and a million fuzz iterations.
// SPECTATOR_RELIABILITY_ROUNDS and SPECTATOR_FUZZ_ITERATIONS override the
// defaults below. Seeds differ from the fast set's, so the two cover
// different cases.
#include <gtest/gtest.h>

#include "reliability_support.h"
#include "segment_fuzz.h"
#include "worker_deaths.h"

namespace spectator::reliability {
namespace {

constexpr int kLongRounds = 300;
constexpr long kLongFuzz = 1000000;

TEST(WorkerDeathLong, KilledWhileRegistering) {
  DeathScenario s{"KilledWhileRegistering(long)"};
  s.role = Role::kRegister;
  s.claim_hook = true;
  RunDeathRounds(s, Rounds(kLongRounds), 0x10C0001);
}

TEST(WorkerDeathLong, KilledWhileRecordingATimer) {
  DeathScenario s{"KilledWhileRecordingATimer(long)"};
  s.role = Role::kTimer;
  RunDeathRounds(s, Rounds(kLongRounds), 0x10C0002);
}

TEST(WorkerDeathLong, KilledWhileRecordingPercentileBuckets) {
  DeathScenario s{"KilledWhileRecordingPercentiles(long)"};
  s.role = Role::kPercentile;
  RunDeathRounds(s, Rounds(kLongRounds), 0x10C0003);
}

TEST(WorkerDeathLong, KilledAnywhereInAMixOfWorkers) {
  DeathScenario s{"KilledAnywhere(long)"};
  s.mixed = true;
  s.claim_hook = true;
  s.workers = 8;
  s.max_victims = 5;
  RunDeathRounds(s, Rounds(kLongRounds), 0x10C0004);
}

TEST(FuzzLong, ReaderAndWorkersSurviveCorruptEntriesAndValues) {
  FuzzSegment(FuzzTarget::kEntriesAndValues, FuzzIterations(kLongFuzz), 0x10CF001);
}

TEST(FuzzLong, ReaderAndWorkersSurviveCorruptHeaderCounters) {
  FuzzSegment(FuzzTarget::kHeaderCounters, FuzzIterations(kLongFuzz) / 5, 0x10CF002);
}

TEST(FuzzLong, ReaderAndWorkersSurviveHeaderGeometryRewrittenAfterAttach) {
  FuzzSegment(FuzzTarget::kHeaderGeometry, FuzzIterations(kLongFuzz) / 5, 0x10CF003);
}

TEST(FuzzLong, AttachRefusesOrSurvivesACorruptSegmentFile) {
  FuzzAttach(FuzzIterations(kLongFuzz) / 20, 0x10CF004);
}

TEST(FuzzLong, ParseCanonicalIdNeverCrashesAndWhatItAcceptsRoundTrips) {
  FuzzCanonicalId(FuzzIterations(kLongFuzz) * 5, 0x10CF005);
}

}  // namespace
}  // namespace spectator::reliability
