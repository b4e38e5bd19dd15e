#pragma once

// Collector fault scenarios (docs/reliability.md, "Collector and
// publishing"), whole tests with their assertions, shared by the fast (label
// reliability) and the soak (label long) binaries with different sizes:
// compiled once, in collector_faults.cc.

#include <chrono>
#include <cstdint>

namespace spectator::testing {

/// The collector SIGKILLed at random instants, `rounds` times, and restarted,
/// while workers keep updating; then a last collector stopped with SIGTERM.
///
/// Each collector tags its measurements `rnd=<round>`, so that every request
/// is known to come from one round. After each kill (before the next
/// collector starts) the test reads the dead collector's pending journal. A
/// kill after Atlas accepted a batch but before the commit leaves pending
/// exactly what that accepted request carried, and the next collector
/// publishes it again; a kill anywhere else leaves pending a take that Atlas
/// never saw. So the duplicated amount of each meter is known per round, and
/// what Atlas accepted must equal what the workers did plus exactly that:
/// nothing lost, and no duplicate the documented window does not explain.
void RunCollectorKillRounds(int rounds, std::uint32_t seed);

/// Outages the collector retries: 503, 429, connection resets, stalls.
enum class RetryableFault { k503, k429, kReset, kStall };

const char* FaultName(RetryableFault f);

/// Atlas answers `fault` for `duration` while workers update thousands of
/// meters, then recovers. During the outage the collector keeps stepping (no
/// attempt starts after the step's end, so a step on a dead endpoint costs
/// one attempt of at most --timeout, and the heartbeat keeps the step's
/// pace) and its memory stays flat (the values wait in the segment, not in
/// the collector); after it, every value is published exactly once,
/// percentile buckets included.
void RunRetryableOutage(RetryableFault fault, std::chrono::milliseconds duration);

}  // namespace spectator::testing
