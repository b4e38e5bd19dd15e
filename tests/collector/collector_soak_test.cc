// The collector faults of collector_reliability_test.cc at soak size (ctest
// label "long", `scripts/test --long`): hundreds of SIGKILLs at random
// instants (SPECTATOR_RELIABILITY_ROUNDS overrides the count) and one-minute
// outages. Seeds differ from the fast set's, so the two cover different
// instants.
#include <gtest/gtest.h>

#include <chrono>

#include "collector_faults.h"
#include "support/env_count.h"

namespace spectator::testing {
namespace {

using namespace std::chrono_literals;

TEST(CollectorKillsLong, KilledAtRandomInstantsAndRestartedLosesNothing) {
  RunCollectorKillRounds(static_cast<int>(EnvCount("SPECTATOR_RELIABILITY_ROUNDS", 300)), 0x50A11u);
}

TEST(CollectorOutageLong, OneMinuteOf503) { RunRetryableOutage(RetryableFault::k503, 60s); }

TEST(CollectorOutageLong, OneMinuteOfStalls) { RunRetryableOutage(RetryableFault::kStall, 60s); }

}  // namespace
}  // namespace spectator::testing
