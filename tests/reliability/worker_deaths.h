#pragma once

// Rounds of forked workers SIGKILLed at random instants, and the checks that
// nothing was lost, duplicated or blocked. Shared by the fast binary
// (dozens of rounds) and the long one (hundreds).

#include <cstdint>

namespace spectator::reliability {

/// What the workers of a round do; victims are killed while doing it.
enum class Role : std::uint8_t {
  kRegister,    // register new Ids (own and shared with others), one increment each
  kTimer,       // record a fixed duration into a timer
  kPercentile,  // record into a percentile timer and a percentile summary
};

struct DeathScenario {
  const char* name;
  /// Every worker does `role`, unless `mixed` (then each worker gets a random
  /// role and victims are chosen among all of them).
  Role role = Role::kRegister;
  bool mixed = false;
  /// On some rounds, stop one registering victim inside a registration (after
  /// its claim, before READY) with the claim hook, then kill it there.
  bool claim_hook = false;
  int workers = 5;
  int max_victims = 2;  // 1..max_victims per round, always leaving a survivor
};

/// Runs `rounds` rounds with seeds `seed`, `seed + 1`, ... and reports every
/// broken guarantee through gtest (the caller's test). Stops at the first
/// failing round, whose seed is in the failure message.
void RunDeathRounds(const DeathScenario& scenario, int rounds, std::uint64_t seed);

}  // namespace spectator::reliability
