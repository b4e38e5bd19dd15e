#include "worker_deaths.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "id_table.h"
#include "reliability_support.h"
#include "spectator/internal/reader.h"
#include "support/collector_reader.h"
#include "spectator/spectator.h"
#include "support/fork_helpers.h"
#include "support/temp_segment.h"

namespace spectator::reliability {
namespace {

using std::chrono::steady_clock;
using testing::Barrier;
using testing::ForkChild;
using testing::TempSegment;

constexpr int kRegIds = 150;  // Ids a registering survivor registers
// A registering victim keeps going (up to this many) until its timer kills
// it, so that the kill lands inside the registration loop.
constexpr int kVictimRegIds = 1000;
constexpr long kMaxKillDelayUs = 3000;
constexpr int kSharedIds = 48;   // Ids every registering worker also registers
constexpr int kUpdates = 20000;  // iterations of a timer or percentile survivor
constexpr auto kKillPhase = std::chrono::seconds(20);
constexpr auto kExitPhase = std::chrono::seconds(30);

std::uint64_t TimerNs(int k) { return 1000 + 37 * static_cast<std::uint64_t>(k); }
std::chrono::milliseconds PercentileDuration(int k) { return std::chrono::milliseconds(10 + k); }
double SummaryAmount(int k) { return 100 + k; }
int SharedIndex(int i, int k) { return (i * 7 + k * 13) % kSharedIds; }

std::string OwnId(int k, int i) {
  return "reg.own,child=" + std::to_string(k) + ",i=" + std::to_string(i);
}
std::string SharedId(int j) { return "reg.shared,i=" + std::to_string(j); }
// The canonical Id of `name` tagged child=k (what the scan reports).
std::string PerChild(const char* name, int k) {
  return std::string(name) + ",child=" + std::to_string(k);
}

// The claim hook of a victim: on its N-th claim (an entry CLAIMED, not yet
// READY), tell the parent and wait to be killed right there.
int g_hook_fd = -1;
int g_hook_target = 0;
int g_hook_claims = 0;
char g_hook_child = 0;
void StopInsideClaim() {
  if (++g_hook_claims != g_hook_target) return;
  (void)!::write(g_hook_fd, &g_hook_child, 1);
  for (;;) ::pause();
}

// Meters every worker updates; registered by the parent before fork(), so
// the handles are valid in the children.
struct Handles {
  Counter shared_count;
  Timer shared_timer;
  std::vector<Counter> count;
  std::vector<Timer> timer;
  std::vector<PercentileTimer> ptimer;
  std::vector<PercentileDistributionSummary> psummary;
};

// One worker. Returns its exit code; never uses gtest. Every iteration does
// its role's work, then two counter increments, then bumps its witness: so
// after a kill, the segment holds at least `witness` iterations and at most
// one more (the one in flight).
int RegLimit(bool victim) { return victim ? kVictimRegIds : kRegIds; }

// Arms a POSIX timer that sends this process SIGKILL after `delay_us`: the
// kernel delivers it at whatever instruction the process is then running, on
// any core, without waiting for the parent to be scheduled.
bool ArmKillTimer(long delay_us) {
  sigevent ev{};
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = SIGKILL;
  timer_t timer;
  if (::timer_create(CLOCK_MONOTONIC, &ev, &timer) != 0) return false;
  itimerspec when{};
  when.it_value.tv_sec = delay_us / 1000000;
  when.it_value.tv_nsec = (delay_us % 1000000) * 1000 + 1;  // never 0: that disarms
  return ::timer_settime(timer, 0, &when, nullptr) == 0;
}

int Worker(Registry& registry, Handles& h, int k, Role role, bool victim, long kill_delay_us,
           SharedWords::Word& witness, Barrier& start) {
  start.Wait();
  if (kill_delay_us >= 0 && !ArmKillTimer(kill_delay_us)) return 12;
  const std::string child = std::to_string(k);
  const long limit = role == Role::kRegister ? RegLimit(victim) : (victim ? -1 : kUpdates);
  for (long i = 0; limit < 0 || i < limit; ++i) {
    switch (role) {
      case Role::kRegister: {
        const std::string own_i = std::to_string(i);
        Counter own = registry.GetCounter("reg.own", {{"child", child}, {"i", own_i}});
        if (!own.IsLive()) return 10;
        own.Increment();
        const std::string shared_i = std::to_string(SharedIndex(static_cast<int>(i), k));
        Counter shared = registry.GetCounter("reg.shared", {{"i", shared_i}});
        if (!shared.IsLive()) return 11;
        shared.Increment();
        break;
      }
      case Role::kTimer:
        h.timer[k].Record(std::chrono::nanoseconds(TimerNs(k)));
        h.shared_timer.Record(std::chrono::nanoseconds(TimerNs(k)));
        break;
      case Role::kPercentile:
        h.ptimer[k].Record(PercentileDuration(k));
        h.psummary[k].Record(SummaryAmount(k));
        break;
    }
    h.count[k].Increment();
    h.shared_count.Increment();
    // relaxed: read by the parent only after this process is dead or exited
    // (waitpid orders it); the counter increments above precede it in program
    // order, so the segment never holds less than the witness says.
    witness.fetch_add(1, std::memory_order_relaxed);
  }
  if (!victim) return 0;
  for (;;) ::pause();  // a registering victim that ran out of Ids waits for its kill
}

// Sums of every take of a round, by Id.
struct Acc {
  double count = 0;
  std::uint64_t total_ns = 0;  // timers
  double total = 0;            // summaries
  double max = 0;
  std::vector<std::uint64_t> buckets = std::vector<std::uint64_t>(kPercentileBucketCount, 0);
};

void Accumulate(SegmentReader& reader, std::map<std::string, Acc>* acc) {
  reader.Scan(SegmentReader::Mode::kTake, std::chrono::system_clock::now(),
              [&](const MeterReading& r) {
                Acc& a = (*acc)[std::string(r.id)];
                a.count += r.count;
                if (r.type == MeterType::kTimer || r.type == MeterType::kPercentileTimer) {
                  a.total_ns += static_cast<std::uint64_t>(std::llround(r.total * 1e9));
                } else {
                  a.total += r.total;
                }
                a.max = std::max(a.max, r.max);
                if (r.buckets != nullptr) {
                  for (std::size_t b = 0; b < kPercentileBucketCount; ++b)
                    a.buckets[b] += r.buckets[b];
                }
                reader.Commit(r);  // published: settle it
              });
}

struct RoundPlan {
  std::vector<Role> roles;
  std::vector<bool> victim;
  std::vector<std::uint64_t> threshold;  // kill once the witness reaches it
  std::vector<long> kill_delay_us;       // or: its own SIGKILL timer (-1: none)
  int hook_victim = -1;                  // stopped by the claim hook instead
  int hook_target = 0;
};

RoundPlan Plan(const DeathScenario& s, int round, std::mt19937_64& rng) {
  RoundPlan p;
  const auto n = static_cast<std::size_t>(s.workers);
  p.roles.assign(n, s.role);
  if (s.mixed) {
    for (auto& r : p.roles) r = static_cast<Role>(rng() % 3);
  }
  p.victim.assign(n, false);
  p.threshold.assign(n, 0);
  p.kill_delay_us.assign(n, -1);
  const int victims =
      1 +
      static_cast<int>(rng() % static_cast<std::uint64_t>(std::min(s.max_victims, s.workers - 1)));
  for (int v = 0; v < victims;) {
    const auto k = static_cast<std::size_t>(rng() % n);
    if (p.victim[k]) continue;
    p.victim[k] = true;
    ++v;
    if (p.roles[k] == Role::kRegister) {
      p.kill_delay_us[k] = static_cast<long>(rng() % kMaxKillDelayUs);
    } else {
      p.threshold[k] = 1 + rng() % kUpdates;
    }
  }
  if (s.claim_hook && round % 2 == 0) {
    for (std::size_t k = 0; k < n; ++k) {
      if (p.victim[k] && p.roles[k] == Role::kRegister) {
        p.hook_victim = static_cast<int>(k);
        p.kill_delay_us[k] = -1;
        p.hook_target = 1 + static_cast<int>(rng() % kRegIds);  // own Ids alone make kRegIds claims
        break;
      }
    }
  }
  return p;
}

std::string Describe(const DeathScenario& s, int round, std::uint64_t seed, const RoundPlan& p,
                     const std::vector<std::uint64_t>& witness) {
  static const char* kRole[] = {"register", "timer", "percentile"};
  std::ostringstream out;
  out << s.name << " round " << round << " seed " << seed << ":";
  for (std::size_t k = 0; k < p.roles.size(); ++k) {
    out << " [w" << k << " " << kRole[static_cast<int>(p.roles[k])];
    if (p.victim[k]) out << (static_cast<int>(k) == p.hook_victim ? " hook-killed" : " killed");
    if (k < witness.size()) out << " witness=" << witness[k];
    out << "]";
  }
  return out.str();
}

// Checks that `v` is in [lo, hi], with a message naming what and the round.
#define EXPECT_WITHIN(v, lo, hi, what)    \
  EXPECT_TRUE((v) >= (lo) && (v) <= (hi)) \
      << (what) << " = " << (v) << ", expected within [" << (lo) << ", " << (hi) << "]; " << where

// What a run of rounds injected and saw, for the summary line.
struct Tally {
  int victims = 0;
  int hook_kills = 0;           // killed while holding a claim (hook)
  int registering = 0;          // killed with registrations still to do
  std::uint64_t recovered = 0;  // dead claims turned ABANDONED
  std::uint64_t leaked = 0;     // capacity reservations lost with a victim
  std::uint64_t takes = 0;      // concurrent collector takes
};

void RunRound(const DeathScenario& s, int round, std::uint64_t seed, Tally* tally) {
  std::mt19937_64 rng(seed);
  const RoundPlan plan = Plan(s, round, rng);
  const int n = s.workers;

  TempSegment seg;
  // Room for every Id the round can register, and no more: the parent's
  // takes scan the whole table, and a smaller one lets it take more often.
  std::uint32_t max_meters = 2048;
  for (std::size_t k = 0; k < plan.roles.size(); ++k) {
    if (plan.victim[k] && plan.roles[k] == Role::kRegister) max_meters += kVictimRegIds;
  }
  Registry registry(seg.options(max_meters, /*value_words=*/std::uint64_t{16} * max_meters));
  testing::CollectorReader reader(registry);
  Handles h;
  h.shared_count = registry.GetCounter("work.count");
  h.shared_timer = registry.GetTimer("work.timer");
  for (int k = 0; k < n; ++k) {
    const std::string child = std::to_string(k);
    h.count.push_back(registry.GetCounter("work.count", {{"child", child}}));
    h.timer.push_back(registry.GetTimer("work.timer", {{"child", child}}));
    h.ptimer.push_back(registry.GetPercentileTimer("work.ptimer", {{"child", child}}));
    h.psummary.push_back(
        registry.GetPercentileDistributionSummary("work.psummary", {{"child", child}}));
    ASSERT_TRUE(h.count.back().IsLive() && h.timer.back().IsLive() && h.ptimer.back().IsLive() &&
                h.psummary.back().IsLive());
  }
  ASSERT_TRUE(h.shared_count.IsLive() && h.shared_timer.IsLive());

  SharedWords witness(static_cast<std::size_t>(n));
  int stop_pipe[2];
  ASSERT_EQ(::pipe(stop_pipe), 0);
  ASSERT_EQ(::fcntl(stop_pipe[0], F_SETFL, O_NONBLOCK), 0);
  Barrier start;
  std::vector<pid_t> pids;
  for (int k = 0; k < n; ++k) {
    const auto uk = static_cast<std::size_t>(k);
    pids.push_back(ForkChild([&, k, uk] {
      ::close(stop_pipe[0]);
      if (k == plan.hook_victim) {
        g_hook_fd = stop_pipe[1];
        g_hook_target = plan.hook_target;
        g_hook_child = static_cast<char>(k);
        internal::IdTable::SetClaimHookForTesting(&StopInsideClaim);
      }
      return Worker(registry, h, k, plan.roles[uk], plan.victim[uk], plan.kill_delay_us[uk],
                    witness[uk], start);
    }));
  }
  ::close(stop_pipe[1]);
  start.Release();

  // Kill phase: each victim dies when its witness reaches its threshold, or
  // by its own timer (registering victims), or
  // when the claim hook says it stopped inside a registration. Meanwhile the
  // parent keeps taking step values, as a collector would.
  std::map<std::string, Acc> acc;
  std::vector<bool> killed(static_cast<std::size_t>(n), false);
  int pending = 0;
  for (std::size_t k = 0; k < killed.size(); ++k) {
    if (plan.victim[k] && plan.kill_delay_us[k] < 0) ++pending;
  }
  const auto kill_deadline = steady_clock::now() + kKillPhase;
  bool kill_timed_out = false;
  while (pending > 0) {
    char c;
    while (::read(stop_pipe[0], &c, 1) == 1) {
      const auto k = static_cast<std::size_t>(c);
      if (k < killed.size() && !killed[k]) {
        ::kill(pids[k], SIGKILL);
        killed[k] = true;
        --pending;
      }
    }
    for (std::size_t k = 0; k < killed.size(); ++k) {
      if (!plan.victim[k] || killed[k] || static_cast<int>(k) == plan.hook_victim ||
          plan.kill_delay_us[k] >= 0) {
        continue;
      }
      // relaxed: only a trigger; the values are checked after the child is reaped.
      if (witness[k].load(std::memory_order_relaxed) >= plan.threshold[k]) {
        ::kill(pids[k], SIGKILL);
        killed[k] = true;
        --pending;
      }
    }
    Accumulate(reader, &acc);
    ++tally->takes;
    if (steady_clock::now() > kill_deadline) {
      kill_timed_out = true;
      break;
    }
  }
  ::close(stop_pipe[0]);

  // Exit phase: survivors must finish by themselves (nobody blocked them);
  // victims must have died of the SIGKILL.
  // The parent keeps taking until the last one is reaped.
  std::vector<int> codes(pids.size(), kChildTimedOut);
  std::vector<bool> reaped(pids.size(), false);
  const auto exit_deadline = steady_clock::now() + kExitPhase;
  for (std::size_t left = pids.size(); left > 0;) {
    for (std::size_t k = 0; k < pids.size(); ++k) {
      int status = 0;
      if (reaped[k] || ::waitpid(pids[k], &status, WNOHANG) != pids[k]) continue;
      codes[k] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      reaped[k] = true;
      --left;
    }
    Accumulate(reader, &acc);
    ++tally->takes;
    if (left > 0 && steady_clock::now() > exit_deadline) {
      for (std::size_t k = 0; k < pids.size(); ++k) {
        if (!reaped[k]) codes[k] = WaitChildFor(pids[k], exit_deadline);  // kills and reaps
      }
      break;
    }
  }

  std::vector<std::uint64_t> w;
  for (int k = 0; k < n; ++k) w.push_back(witness[static_cast<std::size_t>(k)].load());
  const std::string where = Describe(s, round, seed, plan, w);
  ASSERT_FALSE(kill_timed_out) << "a victim never reached its kill point; " << where;
  for (std::size_t k = 0; k < pids.size(); ++k) {
    if (plan.victim[k]) {
      EXPECT_EQ(codes[k], 128 + SIGKILL) << "victim w" << k << "; " << where;
    } else {
      EXPECT_EQ(codes[k], 0) << "survivor w" << k << " (" << kChildTimedOut
                             << " = blocked past the deadline); " << where;
    }
  }
  if (::testing::Test::HasFailure()) return;

  // The segment is consistent: every READY entry validates, no Id twice.
  const ScanResult peek = ScanSegment(reader, SegmentReader::Mode::kPeek);
  EXPECT_EQ(peek.stats.corrupt, 0u) << where;
  EXPECT_EQ(peek.Duplicates(), 0) << where;
  auto present = [&](const std::string& id) {
    auto it = peek.deliveries.find(id);
    return it == peek.deliveries.end() ? 0 : it->second;
  };
  auto count_of = [&](const std::string& id) {
    auto it = acc.find(id);
    return it == acc.end() ? 0.0 : it->second.count;
  };

  // Every increment made before a kill is counted; survivors are exact.
  double sum_w = 0, sum_v = 0;
  std::vector<double> shared_expected(kSharedIds, 0), shared_inflight(kSharedIds, 0);
  double timer_w = 0, timer_v = 0;
  std::uint64_t timer_ns_lo = 0, timer_ns_hi = 0;
  for (int k = 0; k < n; ++k) {
    const auto uk = static_cast<std::size_t>(k);
    const double wk = static_cast<double>(w[uk]);
    const double vk = plan.victim[uk] ? 1 : 0;
    const Role role = plan.roles[uk];
    sum_w += wk;
    sum_v += vk;
    if (!plan.victim[uk]) {
      EXPECT_EQ(w[uk], static_cast<std::uint64_t>(role == Role::kRegister ? kRegIds : kUpdates))
          << "survivor w" << k << " did not finish its work; " << where;
    }
    EXPECT_WITHIN(count_of(PerChild("work.count", k)), wk, wk + vk, PerChild("work.count", k));

    const Acc& t = acc[PerChild("work.timer", k)];
    const Acc& pt = acc[PerChild("work.ptimer", k)];
    const Acc& ps = acc[PerChild("work.psummary", k)];
    if (role == Role::kTimer) {
      EXPECT_WITHIN(t.count, wk, wk + vk, PerChild("work.timer", k) + " count");
      const std::uint64_t d = TimerNs(k);
      EXPECT_WITHIN(t.total_ns, w[uk] * d, (w[uk] + (vk > 0 ? 1 : 0)) * d,
                    PerChild("work.timer", k) + " total ns");
      if (w[uk] > 0) {
        EXPECT_DOUBLE_EQ(t.max, static_cast<double>(d) / 1e9) << where;
      }
      timer_w += wk;
      timer_v += vk;
      timer_ns_lo += w[uk] * d;
      timer_ns_hi += (w[uk] + (vk > 0 ? 1 : 0)) * d;
    } else {
      EXPECT_EQ(t.count, 0) << PerChild("work.timer", k) << "; " << where;
    }
    if (role == Role::kPercentile) {
      const auto ns = std::chrono::nanoseconds(PercentileDuration(k)).count();
      const std::size_t tb = PercentileBucketIndex(ns);
      const std::size_t sb = PercentileBucketIndex(static_cast<std::int64_t>(SummaryAmount(k)));
      EXPECT_WITHIN(pt.count, wk, wk + vk, PerChild("work.ptimer", k) + " count");
      EXPECT_WITHIN(static_cast<double>(pt.buckets[tb]), wk, wk + vk,
                    PerChild("work.ptimer", k) + " bucket");
      EXPECT_WITHIN(pt.total_ns, w[uk] * static_cast<std::uint64_t>(ns),
                    (w[uk] + (vk > 0 ? 1 : 0)) * static_cast<std::uint64_t>(ns),
                    PerChild("work.ptimer", k) + " total ns");
      EXPECT_WITHIN(ps.count, wk, wk + vk, PerChild("work.psummary", k) + " count");
      EXPECT_WITHIN(static_cast<double>(ps.buckets[sb]), wk, wk + vk,
                    PerChild("work.psummary", k) + " bucket");
      EXPECT_WITHIN(ps.total, wk * SummaryAmount(k), (wk + vk) * SummaryAmount(k),
                    PerChild("work.psummary", k) + " total");
      std::uint64_t others = 0;
      for (std::size_t b = 0; b < kPercentileBucketCount; ++b) {
        if (b != tb) others += pt.buckets[b];
        if (b != sb) others += ps.buckets[b];
      }
      EXPECT_EQ(others, 0u) << "a record landed in the wrong bucket; " << where;
    } else {
      EXPECT_EQ(pt.count + ps.count, 0) << where;
    }
    if (role == Role::kRegister) {
      // Ids registered before the kill are all there, once, counted once.
      for (int i = 0; i < RegLimit(plan.victim[uk]); ++i) {
        const std::string id = OwnId(k, i);
        if (static_cast<std::uint64_t>(i) < w[uk]) {
          EXPECT_EQ(present(id), 1) << id << "; " << where;
          EXPECT_EQ(count_of(id), 1) << id << "; " << where;
          shared_expected[static_cast<std::size_t>(SharedIndex(i, k))] += 1;
        } else if (static_cast<std::uint64_t>(i) == w[uk] && plan.victim[uk]) {
          EXPECT_LE(present(id), 1) << id << "; " << where;  // in flight: maybe
          EXPECT_LE(count_of(id), 1) << id << "; " << where;
          shared_inflight[static_cast<std::size_t>(SharedIndex(i, k))] += 1;
        } else {
          EXPECT_EQ(present(id), 0) << "an Id nobody registered: " << id << "; " << where;
        }
      }
    }
  }
  EXPECT_WITHIN(count_of("work.count"), sum_w, sum_w + sum_v, std::string("work.count"));
  EXPECT_WITHIN(acc["work.timer"].count, timer_w, timer_w + timer_v, std::string("work.timer"));
  EXPECT_WITHIN(acc["work.timer"].total_ns, timer_ns_lo, timer_ns_hi, std::string("work.timer ns"));
  for (int j = 0; j < kSharedIds; ++j) {
    const auto uj = static_cast<std::size_t>(j);
    const std::string id = SharedId(j);
    EXPECT_WITHIN(count_of(id), shared_expected[uj], shared_expected[uj] + shared_inflight[uj], id);
    if (shared_expected[uj] > 0) {
      EXPECT_EQ(present(id), 1) << id << "; " << where;
    }
    EXPECT_LE(present(id), 1) << id << "; " << where;
  }

  // Capacity accounting: every claimed entry holds a reservation; a victim
  // killed between reserving and claiming may leak one.
  RawSegment raw(seg.path());
  ASSERT_TRUE(raw.ok());
  {
    const RawSegment::Kinds kinds = raw.CountKinds();
    const SegmentInfo info = registry.Info();
    if (info.meters >= kinds.NonEmpty()) tally->leaked += info.meters - kinds.NonEmpty();
    EXPECT_WITHIN(info.meters, kinds.NonEmpty(),
                  kinds.NonEmpty() + static_cast<std::uint32_t>(sum_v),
                  std::string("Info().meters"));
    if (plan.hook_victim >= 0) {
      EXPECT_GE(kinds.claimed + kinds.abandoned, 1u)
          << "the hook-stopped victim died holding a claim; " << where;
    }
  }

  // Recovery: whatever a victim was registering when it died can be
  // registered now, at once (no 2 s wait for a dead claimer), and afterwards
  // no entry is left CLAIMED.
  for (int k = 0; k < n; ++k) {
    const auto uk = static_cast<std::size_t>(k);
    if (!plan.victim[uk] || plan.roles[uk] != Role::kRegister || w[uk] >= kVictimRegIds) {
      continue;
    }
    const int i = static_cast<int>(w[uk]);
    const auto t0 = steady_clock::now();
    const std::string child = std::to_string(k), own_i = std::to_string(i),
                      shared_i = std::to_string(SharedIndex(i, k));
    EXPECT_TRUE(registry.GetCounter("reg.own", {{"child", child}, {"i", own_i}}).IsLive()) << where;
    EXPECT_TRUE(registry.GetCounter("reg.shared", {{"i", shared_i}}).IsLive()) << where;
    EXPECT_LT(steady_clock::now() - t0, std::chrono::milliseconds(1500))
        << "re-registering a dead victim's Ids waited for it; " << where;
  }
  const RawSegment::Kinds kinds = raw.CountKinds();
  EXPECT_EQ(kinds.claimed, 0u) << "a dead claim was not recovered; " << where;
  EXPECT_EQ(registry.Info().recovered_claims, kinds.abandoned) << where;
  const ScanResult after = ScanSegment(reader, SegmentReader::Mode::kPeek);
  EXPECT_EQ(after.stats.corrupt, 0u) << where;
  EXPECT_EQ(after.Duplicates(), 0) << where;
  tally->recovered += kinds.abandoned;
  for (int k = 0; k < n; ++k) {
    const auto uk = static_cast<std::size_t>(k);
    if (!plan.victim[uk]) continue;
    ++tally->victims;
    if (k == plan.hook_victim) ++tally->hook_kills;
    if (plan.roles[uk] == Role::kRegister && w[uk] < kVictimRegIds) ++tally->registering;
  }
}

}  // namespace

void RunDeathRounds(const DeathScenario& scenario, int rounds, std::uint64_t seed) {
  Tally tally;
  for (int round = 0; round < rounds; ++round) {
    RunRound(scenario, round, seed + static_cast<std::uint64_t>(round), &tally);
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << scenario.name << ": stopped at round " << round << " of " << rounds
                    << " (seed " << seed + static_cast<std::uint64_t>(round) << ")";
      return;
    }
  }
  std::printf(
      "[ reliability ] %s: %d rounds (seed %llu): %d workers SIGKILLed (%d mid-registration, "
      "%d inside a claim), %llu dead claims recovered, %llu reservations leaked, %llu takes\n",
      scenario.name, rounds, static_cast<unsigned long long>(seed), tally.victims,
      tally.registering, tally.hook_kills, static_cast<unsigned long long>(tally.recovered),
      static_cast<unsigned long long>(tally.leaked), static_cast<unsigned long long>(tally.takes));
}

}  // namespace spectator::reliability
