#pragma once

// The real spectator-collector binary against a fake Atlas, with fork()ed
// workers updating the segment meanwhile: the helpers of the collector
// process, reliability and soak tests, and the fault scenarios the fast and
// the long (soak) binaries both run with different sizes.
//
// Needs SPECTATOR_COLLECTOR_PATH (the binary under test) defined by the build.
// Forked children never use gtest assertions; they report through exit codes
// and an anonymous shared mapping.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "segment_layout.h"
#include "spectator/spectator.h"
#include "support/atlas_payload.h"
#include "support/env_count.h"
#include "support/fake_http_server.h"
#include "support/fork_helpers.h"
#include "support/subprocess.h"
#include "support/temp_segment.h"

#ifndef SPECTATOR_COLLECTOR_PATH
#error "SPECTATOR_COLLECTOR_PATH must name the spectator-collector binary"
#endif

namespace spectator::testing {

using namespace std::chrono_literals;

/// Generous: sanitizer builds on a machine shared with other builds.
inline constexpr std::chrono::milliseconds kCollectorDeadline = 60s;

inline std::vector<std::string> CollectorArgs(std::vector<std::string> args) {
  args.insert(args.begin(), SPECTATOR_COLLECTOR_PATH);
  return args;
}

/// Which requests a sum is over, by the answer the fake Atlas gave.
enum class Answered {
  kAccepted,  // 200, or 202 (the fake keeps every measurement of a partial success)
  kRejected,  // 4xx other than 429: dropped for good by the collector
  kRefused,   // 429, 5xx, reset or stalled: the collector keeps the values and retries
  kAny,
};

/// The fake Atlas: answers what the test says (200 by default; any status,
/// a connection reset or a stall), and keeps, for every request it handled,
/// the answer and the request's measurements summed per meter (see Request).
class Atlas {
 public:
  struct Request {
    int status = 0;  // the status answered; 0 for a reset or a stall
    HttpReply::Action action = HttpReply::Action::kRespond;
    std::size_t measurements = 0;  // how many the request carried
    std::string round;             // its common tag `rnd`, if any
    std::string error;             // the payload could not be decoded
    // The request's measurements merged per name and tags, the tags `rnd`,
    // `i` and `percentile` left out: one entry per meter of interest however
    // many spread counters or buckets there are, so that long runs stay small.
    std::vector<PublishedMeasurement> sums;

    Answered kind() const {
      if (action != HttpReply::Action::kRespond) return Answered::kRefused;
      if (status == 200 || status == 202) return Answered::kAccepted;
      if (status >= 400 && status < 500 && status != 429) return Answered::kRejected;
      return Answered::kRefused;
    }
    /// Sum of the measurements called `name` with that statistic and every
    /// tag of `tags`.
    double Sum(std::string_view name, std::string_view statistic,
               const std::map<std::string, std::string>& tags = {}) const {
      double sum = 0;
      for (const auto& m : sums) {
        if (m.name != name) continue;
        const auto st = m.tags.find("statistic");
        if (st == m.tags.end() || st->second != statistic) continue;
        bool match = true;
        for (const auto& [k, v] : tags) {
          const auto it = m.tags.find(k);
          match = match && it != m.tags.end() && it->second == v;
        }
        if (match) sum += m.value;
      }
      return sum;
    }
  };

  Atlas() {
    server_.SetHandler([this](const HttpRequest& req) { return Handle(req); });
  }
  std::string url() const { return server_.url(); }
  FakeHttpServer& server() { return server_; }

  /// What requests arriving from now on are answered.
  void Answer(HttpReply reply) {
    std::lock_guard<std::mutex> lock(mu_);
    answer_ = std::move(reply);
  }
  void Answer(int status, std::string body = "") {
    HttpReply r;
    r.status = status;
    r.body = std::move(body);
    Answer(std::move(r));
  }
  void Answer(HttpReply::Action action) {
    HttpReply r;
    r.action = action;
    Answer(std::move(r));
  }
  /// Stalls every request from now on (true), or accepts them again.
  void Stall(bool stall) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stalled_before_ = CountLocked(IsStalled);
    }
    Answer(stall ? HttpReply::Action::kStall : HttpReply::Action::kRespond);
  }
  /// Waits until a request has been stalled since the last Stall(true).
  bool WaitForStalledRequest(std::chrono::milliseconds timeout) {
    std::size_t before;
    {
      std::lock_guard<std::mutex> lock(mu_);
      before = stalled_before_;
    }
    return WaitFor(IsStalled, before + 1, timeout);
  }
  /// Waits until `n` requests answered `kind` have been handled in total
  /// (take Count() first to wait for new ones).
  bool WaitForAnswered(Answered kind, std::size_t n, std::chrono::milliseconds timeout) {
    return WaitFor([kind](const Request& r) { return Matches(r, kind); }, n, timeout);
  }
  /// Waits until `n` requests answered `status` have been handled in total.
  bool WaitForStatus(int status, std::size_t n, std::chrono::milliseconds timeout) {
    return WaitFor(
        [status](const Request& r) {
          return r.action == HttpReply::Action::kRespond && r.status == status;
        },
        n, timeout);
  }
  std::size_t Count(Answered kind) {
    std::lock_guard<std::mutex> lock(mu_);
    return CountLocked([kind](const Request& r) { return Matches(r, kind); });
  }
  /// Waits until every request the server received has been handled (a
  /// request is recorded by the server just before its handler runs).
  bool WaitUntilHandled(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const std::size_t received = server_.request_count();
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (cv_.wait_until(lock, deadline, [&] { return handled_ >= received; }) &&
            server_.request_count() == received) {
          return true;
        }
      }
      if (std::chrono::steady_clock::now() >= deadline) return false;
    }
  }

  /// Sum over the requests answered `kind`.
  double Sum(Answered kind, std::string_view name, std::string_view statistic,
             const std::map<std::string, std::string>& tags = {}) {
    std::lock_guard<std::mutex> lock(mu_);
    double sum = 0;
    for (const Request& r : requests_) {
      if (Matches(r, kind)) sum += r.Sum(name, statistic, tags);
    }
    return sum;
  }
  /// What Atlas accepted.
  double Accepted(std::string_view name, std::string_view statistic) {
    return Sum(Answered::kAccepted, name, statistic);
  }
  /// Every handled request, in the order their handlers finished (which is
  /// their order of arrival for one collector: it waits for each answer).
  std::vector<Request> Requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  /// Payloads that did not decode (a collector bug): their errors.
  std::vector<std::string> DecodeErrors() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const Request& r : requests_) {
      if (!r.error.empty()) out.push_back(r.error);
    }
    return out;
  }

 private:
  static bool IsStalled(const Request& r) { return r.action == HttpReply::Action::kStall; }
  static bool Matches(const Request& r, Answered kind) {
    return kind == Answered::kAny || r.kind() == kind;
  }
  template <typename Pred>
  std::size_t CountLocked(Pred pred) const {
    return static_cast<std::size_t>(std::count_if(requests_.begin(), requests_.end(), pred));
  }
  template <typename Pred>
  bool WaitFor(Pred pred, std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return CountLocked(pred) >= n; });
  }

  HttpReply Handle(const HttpRequest& req) {
    HttpReply reply;
    {
      std::lock_guard<std::mutex> lock(mu_);
      reply = answer_;
    }
    Request r;
    r.action = reply.action;
    r.status = reply.action == HttpReply::Action::kRespond ? reply.status : 0;
    try {
      const std::vector<PublishedMeasurement> ms = DecodePayload(req.DecodedBody());
      r.measurements = ms.size();
      std::map<std::pair<std::string, std::map<std::string, std::string>>, double> merged;
      for (PublishedMeasurement m : ms) {
        const auto rnd = m.tags.find("rnd");
        if (rnd != m.tags.end()) r.round = rnd->second;
        m.tags.erase("rnd");
        m.tags.erase("i");
        m.tags.erase("percentile");
        merged[{m.name, m.tags}] += m.value;
      }
      for (auto& [key, value] : merged) {
        PublishedMeasurement m;
        m.name = key.first;
        m.tags = key.second;
        m.value = value;
        r.sums.push_back(std::move(m));
      }
    } catch (const std::exception& e) {
      r.error = e.what();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(std::move(r));
      ++handled_;
    }
    cv_.notify_all();
    return reply;
  }

  std::mutex mu_;
  std::condition_variable cv_;      // a request was handled
  HttpReply answer_;                // guarded by mu_; default: 200
  std::vector<Request> requests_;   // guarded by mu_
  std::size_t handled_ = 0;         // guarded by mu_
  std::size_t stalled_before_ = 0;  // guarded by mu_; stalled requests before the last Stall()
  FakeHttpServer server_;           // last: stopped first, while the rest still exists
};

/// Starts a collector publishing to `uri` and waits until it is up (its
/// signals are blocked and its lock taken, so a SIGTERM from now on means a
/// final publish).
inline std::unique_ptr<Subprocess> StartCollector(const std::string& segment,
                                                  const std::string& uri, const std::string& step,
                                                  const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"--segment", segment, "--uri",       uri,
                                   "--step",    step,    "--log-level", "info"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto c = std::make_unique<Subprocess>(CollectorArgs(args));
  bool up = false;
  const auto deadline = std::chrono::steady_clock::now() + kCollectorDeadline;
  while (!up && std::chrono::steady_clock::now() < deadline && c->Wait(10ms) < 0) {
    up = c->err().find("publishing segment") != std::string::npos;
  }
  EXPECT_TRUE(up) << c->err();
  return c;
}

/// Workers that update, until told to stop, a counter `work.done{kind=exact}`,
/// a timer `work.latency` (1..5 µs), a percentile timer `work.percentiles`
/// (3..21 ms) and, optionally, one of `spread` counters `work.spread{i=K}`
/// per iteration; then say what they did through an anonymous shared mapping.
class EndlessWorkers {
 public:
  struct Totals {
    std::uint64_t iterations = 0;  // = counter increments = timer and percentile records
    std::uint64_t timer_ns = 0;
    std::uint64_t percentile_ns = 0;
  };

  EndlessWorkers(Registry& registry, int workers, int spread = 0) {
    if (workers > kMaxWorkers) std::abort();
    void* p =
        ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    shared_ = new (p) Shared();
    for (int w = 0; w < workers; ++w) {
      pids_.push_back(
          ForkChild([this, &registry, w, spread] { return Work(registry, w, spread); }));
    }
  }
  ~EndlessWorkers() {
    if (!stopped_) StopAndCount();
    ::munmap(shared_, sizeof(Shared));
  }
  EndlessWorkers(const EndlessWorkers&) = delete;
  EndlessWorkers& operator=(const EndlessWorkers&) = delete;

  /// Waits until every worker holds its handles (all its meters exist).
  bool WaitUntilRegistered(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    // acquire: pairs with the workers' release increment; nothing else is
    // read through it, it only says the meters exist.
    while (shared_->registered.load(std::memory_order_acquire) < static_cast<int>(pids_.size())) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(1ms);  // a poll interval, not a synchronisation
    }
    return true;
  }

  /// Stops the workers and returns the number of iterations they did; the
  /// other totals are in totals(). Their stores happen-before waitpid's return.
  std::uint64_t StopAndCount() {
    stopped_ = true;
    shared_->stop.store(true, std::memory_order_relaxed);  // relaxed: a stop request
    totals_ = Totals{};
    for (std::size_t w = 0; w < pids_.size(); ++w) {
      EXPECT_EQ(WaitChild(pids_[w]), 0) << "worker " << w;
      // relaxed: the child has been reaped.
      totals_.iterations += shared_->done[w].load(std::memory_order_relaxed);
      totals_.timer_ns += shared_->timer_ns[w].load(std::memory_order_relaxed);
      totals_.percentile_ns += shared_->percentile_ns[w].load(std::memory_order_relaxed);
    }
    return totals_.iterations;
  }
  const Totals& totals() const { return totals_; }

 private:
  static constexpr int kMaxWorkers = 16;
  struct Shared {
    std::atomic<bool> stop{false};
    std::atomic<int> registered{0};
    std::atomic<std::uint64_t> done[kMaxWorkers];
    std::atomic<std::uint64_t> timer_ns[kMaxWorkers];
    std::atomic<std::uint64_t> percentile_ns[kMaxWorkers];
  };

  // In the child.
  int Work(Registry& registry, int w, int spread) {
    Counter c = registry.GetCounter("work.done", {{"kind", "exact"}});
    Timer t = registry.GetTimer("work.latency");
    PercentileTimer p = registry.GetPercentileTimer("work.percentiles");
    std::vector<Counter> spreads;
    for (int k = 0; k < spread; ++k) {
      spreads.push_back(registry.GetCounter("work.spread", {{"i", std::to_string(k)}}));
      if (!spreads.back().IsLive()) return 2;
    }
    if (!c.IsLive() || !t.IsLive() || !p.IsLive()) return 2;
    shared_->registered.fetch_add(1,
                                  std::memory_order_release);  // release: see WaitUntilRegistered
    std::uint64_t n = 0, timer_ns = 0, percentile_ns = 0;
    // relaxed: a stop request; the counts are reported after it, through exit.
    while (!shared_->stop.load(std::memory_order_relaxed)) {
      c.Increment();
      // Durations vary so that two steps' totals rarely coincide even when
      // their counts do (the kill test tells a re-published batch apart
      // from a new one by count and total).
      const auto d1 = std::chrono::microseconds(1 + n % 5);
      t.Record(d1);
      timer_ns += static_cast<std::uint64_t>(std::chrono::nanoseconds(d1).count());
      const auto d2 = std::chrono::milliseconds(3 * (1 + n % 7));
      p.Record(d2);
      percentile_ns += static_cast<std::uint64_t>(std::chrono::nanoseconds(d2).count());
      if (!spreads.empty()) spreads[n % spreads.size()].Increment();
      ++n;
    }
    shared_->done[w].store(n, std::memory_order_relaxed);
    shared_->timer_ns[w].store(timer_ns, std::memory_order_relaxed);
    shared_->percentile_ns[w].store(percentile_ns, std::memory_order_relaxed);
    return 0;
  }

  Shared* shared_;
  std::vector<pid_t> pids_;
  bool stopped_ = false;
  Totals totals_;
};

/// A read-only mapping of /dev/shm/<name> to look at collector-owned words
/// (the pending journal) that no API exposes.
class SegmentWords {
 public:
  explicit SegmentWords(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st {};
    if (::fstat(fd, &st) == 0 &&
        st.st_size >= static_cast<off_t>(sizeof(internal::SegmentHeader))) {
      size_ = static_cast<std::size_t>(st.st_size);
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
      base_ = p == MAP_FAILED ? nullptr : static_cast<const char*>(p);
    }
    ::close(fd);
  }
  ~SegmentWords() {
    if (base_ != nullptr) ::munmap(const_cast<char*>(base_), size_);
  }
  SegmentWords(const SegmentWords&) = delete;
  SegmentWords& operator=(const SegmentWords&) = delete;

  bool ok() const { return base_ != nullptr; }

  /// The value words of the READY meter with canonical Id `id`, or nullptr.
  /// Bounds-checked: the test trusts the segment no more than the collector.
  const detail::Word* Find(std::string_view id) const {
    if (base_ == nullptr) return nullptr;
    const auto& h = *reinterpret_cast<const internal::SegmentHeader*>(base_);
    const std::uint64_t entries = h.entries_offset, values = h.values_offset;
    if (entries > size_ || values > size_ ||
        std::uint64_t{h.table_slots} * sizeof(internal::Entry) > size_ - entries) {
      return nullptr;
    }
    for (std::uint32_t s = 0; s < h.table_slots; ++s) {
      const auto& e =
          *reinterpret_cast<const internal::Entry*>(base_ + entries + s * sizeof(internal::Entry));
      // acquire: pairs with the claimer's READY release; the fields read next
      // were written before it.
      if (e.state.load(std::memory_order_acquire) != internal::kReadyState) continue;
      const std::uint64_t id_at = h.ids_offset + std::uint64_t{e.id_offset} * 8;
      if (e.id_len != id.size() || id_at > size_ || e.id_len > size_ - id_at ||
          std::string_view(base_ + id_at, e.id_len) != id) {
        continue;
      }
      const std::uint64_t offset = std::uint64_t{e.value_line} * 8;
      if (offset > (size_ - values) / 8 || e.value_words > (size_ - values) / 8 - offset ||
          e.value_words == 0) {
        return nullptr;
      }
      return reinterpret_cast<const detail::Word*>(base_ + values) + offset;
    }
    return nullptr;
  }

 private:
  const char* base_ = nullptr;
  std::size_t size_ = 0;
};

/// The resident set of a process, in KiB (VmRSS in /proc/<pid>/status); -1
/// when it cannot be read.
inline long RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

/// How the collector's heartbeat in the segment header moved while watched.
struct Heartbeats {
  int beats = 0;                         // times it changed
  std::chrono::milliseconds longest{0};  // longest time without a change, edges included
  bool exited = false;                   // the collector exited meanwhile
};

/// Watches the heartbeat for `duration`, polling every few milliseconds (the
/// poll is the collector's Wait, which also drains its output so that it
/// never blocks on a full stderr pipe).
inline Heartbeats WatchHeartbeat(const Registry& registry, Subprocess& collector,
                                 std::chrono::milliseconds duration) {
  Heartbeats h;
  const auto start = std::chrono::steady_clock::now();
  auto last_change = start;
  std::uint64_t last = registry.Info().collector_heartbeat_unix_ns;
  for (auto now = start; now - start < duration; now = std::chrono::steady_clock::now()) {
    if (collector.Wait(5ms) >= 0) {
      h.exited = true;
      break;
    }
    const std::uint64_t beat = registry.Info().collector_heartbeat_unix_ns;
    if (beat != last) {
      const auto t = std::chrono::steady_clock::now();
      h.longest = std::max(h.longest,
                           std::chrono::duration_cast<std::chrono::milliseconds>(t - last_change));
      last_change = t;
      last = beat;
      ++h.beats;
    }
  }
  h.longest = std::max(h.longest, std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::steady_clock::now() - last_change));
  return h;
}

// ---------------------------------------------------------------------------
// Fault scenarios shared by the fast (label reliability) and the soak (label
// long) binaries.

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
inline void RunCollectorKillRounds(int rounds, std::uint32_t seed) {
  TempSegment seg;
  Atlas atlas;
  Registry registry(seg.options());
  std::mt19937 rng(seed);
  EndlessWorkers workers(registry, 2);
  ASSERT_TRUE(workers.WaitUntilRegistered(kCollectorDeadline));
  const SegmentWords words(seg.path());
  ASSERT_TRUE(words.ok());

  // The meters checked for exactness, and where their pending words are.
  struct Meter {
    const char* name;
    const char* id;  // canonical
    bool timer;
  };
  const std::array<Meter, 3> meters = {{{"work.done", "work.done,kind=exact", false},
                                        {"work.latency", "work.latency", true},
                                        {"work.percentiles", "work.percentiles", true}}};
  struct Pending {
    double count = 0;
    double total = 0;  // timers: seconds
  };
  auto read_pending = [&](const Meter& m) {
    Pending p;
    const detail::Word* w = words.Find(m.id);
    if (w == nullptr) return p;
    namespace l = detail::layout;
    // relaxed: no collector is alive; workers never write these words.
    if (m.timer) {
      p.count = static_cast<double>(
          w[l::kStatPendingOffset + l::kStatCount].load(std::memory_order_relaxed));
      p.total = static_cast<double>(
                    w[l::kStatPendingOffset + l::kStatTotal].load(std::memory_order_relaxed)) /
                1e9;
    } else {
      p.count = static_cast<double>(w[l::kCounterPendingInt].load(std::memory_order_relaxed)) +
                detail::FromBits(w[l::kCounterPendingFrac].load(std::memory_order_relaxed));
    }
    return p;
  };

  std::vector<std::array<Pending, 3>> pending(static_cast<std::size_t>(rounds));
  std::vector<std::uint32_t> delays_us(static_cast<std::size_t>(rounds));
  std::vector<bool> early(static_cast<std::size_t>(rounds));
  int early_kills = 0;
  for (int round = 0; round < rounds; ++round) {
    const std::size_t accepted = atlas.Count(Answered::kAccepted);
    auto collector =
        StartCollector(seg.name(), atlas.url(), "0.05", {"--tag", "rnd=" + std::to_string(round)});
    // Mostly kill a collector that is publishing (after one of its requests
    // arrived), sometimes one that may not have published yet.
    if (rng() % 4 != 0) {
      ASSERT_TRUE(atlas.WaitForAnswered(Answered::kAccepted, accepted + 1, kCollectorDeadline))
          << "round " << round << ": " << collector->err();
    } else {
      ++early_kills;
      early[static_cast<std::size_t>(round)] = true;
    }
    // The random instant: anywhere in the ~2 steps that follow.
    delays_us[static_cast<std::size_t>(round)] = rng() % 120000;
    std::this_thread::sleep_for(
        std::chrono::microseconds(delays_us[static_cast<std::size_t>(round)]));
    collector->Signal(SIGKILL);
    ASSERT_EQ(collector->Wait(kCollectorDeadline), 128 + SIGKILL) << collector->err();
    for (std::size_t m = 0; m < meters.size(); ++m) {
      pending[static_cast<std::size_t>(round)][m] = read_pending(meters[m]);
    }
  }
  const std::uint64_t done = workers.StopAndCount();
  const EndlessWorkers::Totals totals = workers.totals();
  ASSERT_GT(done, 0u);
  auto last = StartCollector(seg.name(), atlas.url(), "0.05", {"--tag", "rnd=final"});
  last->Signal(SIGTERM);
  ASSERT_EQ(last->Wait(kCollectorDeadline), 0) << last->err();
  ASSERT_TRUE(atlas.WaitUntilHandled(kCollectorDeadline));
  EXPECT_TRUE(atlas.DecodeErrors().empty());

  // The last request of each round Atlas accepted: what its pending would
  // hold if the kill fell between that answer and the commit.
  const std::vector<Atlas::Request> requests = atlas.Requests();
  std::map<std::string, const Atlas::Request*> last_accepted;
  for (const Atlas::Request& r : requests) {
    if (r.kind() == Answered::kAccepted) last_accepted[r.round] = &r;
  }
  std::array<double, 3> duplicated{};
  std::array<double, 3> duplicated_total{};
  int duplicate_rounds = 0;
  std::ostringstream duplicate_delays;  // the kill delays of those rounds, for the report
  for (int round = 0; round < rounds; ++round) {
    const auto& p = pending[static_cast<std::size_t>(round)];
    const auto it = last_accepted.find(std::to_string(round));
    bool any = false, all_published = true;
    for (std::size_t m = 0; m < meters.size(); ++m) {
      if (p[m].count == 0) continue;  // committed, or nothing taken
      any = true;
      const double count = it == last_accepted.end() ? 0 : it->second->Sum(meters[m].name, "count");
      const double total = it == last_accepted.end() || !meters[m].timer
                               ? 0
                               : it->second->Sum(meters[m].name, "totalTime");
      all_published = all_published && count == p[m].count && std::abs(total - p[m].total) < 1e-9;
    }
    if (!any || !all_published) continue;
    ++duplicate_rounds;
    duplicate_delays << ' ' << delays_us[static_cast<std::size_t>(round)] / 1000.0 << "ms"
                     << (early[static_cast<std::size_t>(round)] ? "(from start)" : "");
    for (std::size_t m = 0; m < meters.size(); ++m) {
      duplicated[m] += p[m].count;
      duplicated_total[m] += p[m].total;
    }
  }

  const double n = static_cast<double>(done);
  const double buckets = atlas.Accepted("work.percentiles", "percentile");
  std::ostringstream report;
  report << "rounds=" << rounds << " (killed before a publish was seen: " << early_kills
         << ") seed=" << seed << " iterations=" << done
         << " accepted_requests=" << atlas.Count(Answered::kAccepted)
         << " duplicate_rounds=" << duplicate_rounds
         << " (kill delays after an accepted request:" << duplicate_delays.str()
         << ") duplicated_increments=" << duplicated[0]
         << " lost_percentile_bucket_counts=" << n - buckets;
  std::cout << "[collector kill rounds] " << report.str() << std::endl;
  ::testing::Test::RecordProperty("rounds", rounds);
  ::testing::Test::RecordProperty("duplicate_rounds", duplicate_rounds);
  ::testing::Test::RecordProperty("duplicated_increments", std::to_string(duplicated[0]));
  ::testing::Test::RecordProperty("lost_percentile_bucket_counts", std::to_string(n - buckets));

  // Never lost; duplicated only by the rounds whose kill fell in the window.
  for (std::size_t m = 0; m < meters.size(); ++m) {
    const double accepted = atlas.Accepted(meters[m].name, "count");
    EXPECT_GE(accepted, n) << meters[m].name << " lost increments; " << report.str();
    EXPECT_EQ(accepted, n + duplicated[m]) << meters[m].name << ": " << report.str();
  }
  EXPECT_NEAR(atlas.Accepted("work.latency", "totalTime"),
              static_cast<double>(totals.timer_ns) / 1e9 + duplicated_total[1], 1e-6);
  EXPECT_NEAR(atlas.Accepted("work.percentiles", "totalTime"),
              static_cast<double>(totals.percentile_ns) / 1e9 + duplicated_total[2], 1e-6);
  // Percentile buckets are not journaled: a kill between take and settle
  // loses that step's; they are never published twice.
  EXPECT_LE(buckets, n);
  // Every duplicate was explained above by a kill inside the answer-to-commit
  // window. That window is microseconds of work, but in wall-clock time it
  // lasts until the collector gets a CPU to read the answer: milliseconds on
  // a saturated machine (2 spinning workers on 2 shared cores here; 3-15% of
  // the rounds measured). So the bound on how often is loose: the exception.
  EXPECT_LE(duplicate_rounds, rounds / 2 + 1) << report.str();
}

/// Outages the collector retries: 503, 429, connection resets, stalls.
enum class RetryableFault { k503, k429, kReset, kStall };

inline const char* FaultName(RetryableFault f) {
  switch (f) {
    case RetryableFault::k503:
      return "503";
    case RetryableFault::k429:
      return "429";
    case RetryableFault::kReset:
      return "reset";
    case RetryableFault::kStall:
      return "stall";
  }
  return "?";
}

/// Atlas answers `fault` for `duration` while workers update thousands of
/// meters, then recovers. During the outage the collector keeps stepping (no
/// attempt starts after the step's end, so a step on a dead endpoint costs
/// one attempt of at most --timeout, and the heartbeat keeps the step's
/// pace) and its memory stays flat (the values wait in the segment, not in
/// the collector); after it, every value is published exactly once,
/// percentile buckets included.
inline void RunRetryableOutage(RetryableFault fault, std::chrono::milliseconds duration) {
  constexpr int kSpread = 2000;
  constexpr double kStep = 0.1;
  // The timeout must outlast the fake's answer (it decodes the payload
  // before answering) on a slow, sanitized, loaded machine: a request the
  // fake accepted but the collector gave up on is published again, correctly
  // (at least once), but this test counts exactly.
  constexpr double timeout = 1.0;
  // One step on a dead endpoint: one attempt of at most --timeout, then the
  // wait for the next boundary; tripled for sanitizers and a loaded machine.
  const auto step_bound =
      std::chrono::milliseconds(static_cast<long>(3 * 1000 * (timeout + 2 * kStep)));
  constexpr long kRssGrowthKiB = 20 * 1024;

  TempSegment seg;
  Atlas atlas;
  Registry registry(seg.options(4096));
  EndlessWorkers workers(registry, 2, kSpread);
  ASSERT_TRUE(workers.WaitUntilRegistered(kCollectorDeadline));
#if defined(__SANITIZE_ADDRESS__)
  // ASan holds freed memory in a quarantine (256 MiB by default), which the
  // RSS check below would take for growth: give the collector a small one.
  const char* asan = std::getenv("ASAN_OPTIONS");
  const std::string saved = asan != nullptr ? asan : "";
  ::setenv("ASAN_OPTIONS", (saved + ":quarantine_size_mb=1").c_str(), 1);
#endif
  auto collector = StartCollector(seg.name(), atlas.url(), std::to_string(kStep),
                                  {"--timeout", std::to_string(timeout)});
#if defined(__SANITIZE_ADDRESS__)
  ::setenv("ASAN_OPTIONS", saved.c_str(), 1);
#endif
  // Two healthy steps with every meter, so that the collector's buffers have
  // their steady size before the outage.
  ASSERT_TRUE(atlas.WaitForAnswered(Answered::kAccepted, 2, kCollectorDeadline));

  switch (fault) {
    case RetryableFault::k503:
      atlas.Answer(503, "unavailable");
      break;
    case RetryableFault::k429:
      atlas.Answer(429, "slow down");
      break;
    case RetryableFault::kReset:
      atlas.Answer(HttpReply::Action::kReset);
      break;
    case RetryableFault::kStall:
      atlas.Answer(HttpReply::Action::kStall);
      break;
  }
  ASSERT_TRUE(atlas.WaitForAnswered(Answered::kRefused, 1, kCollectorDeadline));
  const long rss_start = RssKiB(collector->pid());
  const Heartbeats beats = WatchHeartbeat(registry, *collector, duration);
  const long rss_end = RssKiB(collector->pid());
  ASSERT_FALSE(beats.exited) << collector->err();
  const std::size_t refused = atlas.Count(Answered::kRefused);

  atlas.Answer(200);
  const std::size_t accepted = atlas.Count(Answered::kAccepted);
  ASSERT_TRUE(atlas.WaitForAnswered(Answered::kAccepted, accepted + 1, kCollectorDeadline))
      << "recovered";
  const std::uint64_t done = workers.StopAndCount();
  collector->Signal(SIGTERM);
  ASSERT_EQ(collector->Wait(kCollectorDeadline), 0) << collector->err();
  ASSERT_TRUE(atlas.WaitUntilHandled(kCollectorDeadline));
  EXPECT_TRUE(atlas.DecodeErrors().empty());

  std::size_t largest_refused = 0;
  for (const auto& r : atlas.Requests()) {
    if (r.kind() == Answered::kRefused) largest_refused = std::max(largest_refused, r.measurements);
  }
  std::ostringstream report;
  report << "fault=" << FaultName(fault) << " outage_ms=" << duration.count()
         << " refused_requests=" << refused << " largest_refused_request=" << largest_refused
         << " heartbeats=" << beats.beats << " longest_heartbeat_gap_ms=" << beats.longest.count()
         << " rss_kib=" << rss_start << "->" << rss_end << " iterations=" << done;
  std::cout << "[collector outage] " << report.str() << std::endl;
  ::testing::Test::RecordProperty("longest_heartbeat_gap_ms",
                                  static_cast<int>(beats.longest.count()));
  ::testing::Test::RecordProperty("rss_growth_kib", static_cast<int>(rss_end - rss_start));

  // The outage was real and carried thousands of measurements per attempt.
  EXPECT_GE(largest_refused, static_cast<std::size_t>(kSpread)) << report.str();
  // The collector kept stepping, each step bounded.
  EXPECT_GE(beats.beats, std::max<long>(1, duration / step_bound)) << report.str();
  EXPECT_LE(beats.longest, step_bound) << report.str();
  // Nothing accumulates in the collector.
  ASSERT_GT(rss_start, 0);
  EXPECT_LE(rss_end - rss_start, kRssGrowthKiB) << report.str();
  // Exact after recovery: nothing lost, nothing published twice.
  const double n = static_cast<double>(done);
  EXPECT_EQ(atlas.Accepted("work.done", "count"), n) << report.str();
  EXPECT_EQ(atlas.Accepted("work.spread", "count"), n) << report.str();
  EXPECT_EQ(atlas.Accepted("work.latency", "count"), n) << report.str();
  EXPECT_EQ(atlas.Accepted("work.percentiles", "count"), n) << report.str();
  EXPECT_EQ(atlas.Accepted("work.percentiles", "percentile"), n)
      << "buckets given back after each failed step; " << report.str();
  EXPECT_NEAR(atlas.Accepted("work.latency", "totalTime"),
              static_cast<double>(workers.totals().timer_ns) / 1e9, 1e-6);
}

}  // namespace spectator::testing
