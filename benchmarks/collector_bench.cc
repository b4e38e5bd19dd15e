// Items 5 and 6: the collector's whole cycle, Collector::Step, with a sink
// that does what the Atlas sink does minus the network: BuildPayload (the
// string-table payload) and Gzip, per batch of --batch-size
// (default 10000) measurements. Everything Step does is timed: the take (and
// its pending journal), the measurements, the batching, the payload, gzip,
// and the Commit that settles each meter after the sink accepted it.
//
// Item 5 varies the number of counters (1k .. 1M, three tags each); the
// figure is ns per meter, so a flat ratio across sizes means linear cost.
// Item 6 keeps 10k counters but has them registered and written by W fork()ed
// worker processes (W = 1, 2, 16, 64) before each cycle: the segment holds one
// slot per meter whatever W is, so the cycle must not depend on W.

#include <benchmark/benchmark.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "collector.h"
#include "collector_fixture.h"
#include "gzip.h"
#include "support/gunzip.h"
#include "payload.h"
#include "prometheus_endpoint.h"
#include "sinks.h"

namespace spectator::bench {
namespace {

using collector::BatchOutcome;
using collector::CollectorOptions;
using collector::CommonTags;
using collector::Measurement;

// How a sink compresses: as the Atlas sink does (collector::Gzip, the
// fastest encoder of the build: benchmarks/README.md, "Compression"), or the
// alternatives item 5 compares it with.
enum class Compression { kAtlas = 0, kNone = 1, kLevel6 = 2, kZlib1 = 3 };

// gzip at zlib's default level 6, same window and format as collector::Gzip:
// what the collector used before it chose level 1.
std::string GzipLevel6(const std::string& data) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    return {};
  }
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);  // one call: the output is deflateBound
  out.resize(rc == Z_STREAM_END ? zs.total_out : 0);
  deflateEnd(&zs);
  return out;
}

// The Atlas sink without the POST: what the collector spends CPU on per
// batch. Accepts everything, so Step commits every meter.
class PayloadSink : public collector::Sink {
 public:
  explicit PayloadSink(Compression compression = Compression::kAtlas) : compression_(compression) {}

  BatchOutcome Publish(const CommonTags& common, const Measurement* begin, const Measurement* end,
                       Deadline) override {
    // As AtlasSink::Publish and PublishBatch do: one reused payload buffer,
    // a new string for the compressed body.
    collector::BuildPayload(common, begin, end, &json_);
    const std::string& json = json_;
    json_bytes += json.size();
    if (compression_ == Compression::kAtlas) gzip_bytes += collector::Gzip(json).size();
    if (compression_ == Compression::kLevel6) gzip_bytes += GzipLevel6(json).size();
    if (compression_ == Compression::kZlib1) {
      std::string z;
      collector::GzipInto(json, &z, collector::GzipCodec::kZlib1);
      gzip_bytes += z.size();
    }
    BatchOutcome out;
    out.kind = BatchOutcome::Kind::kAccepted;
    out.sent = static_cast<std::size_t>(end - begin);
    return out;
  }

  void Reset() { json_bytes = gzip_bytes = 0; }

  std::size_t json_bytes = 0;
  std::size_t gzip_bytes = 0;

 private:
  Compression compression_;
  std::string json_;
};

// Common tags as a real deployment has them (docs/protocol.md: from --tag and the
// nf.* environment), so the payload carries them on every measurement.
CollectorOptions BenchOptions() {
  CollectorOptions options;
  options.common_tags = {{"nf.app", "prefork"},
                         {"nf.cluster", "prefork-main"},
                         {"nf.node", "i-0123456789abcdef0"},
                         {"nf.region", "us-east-1"}};
  return options;
}

struct Cycle {
  explicit Cycle(Registry& registry, Compression compression = Compression::kAtlas)
      : sink(compression), collector(registry, BenchOptions(), sink) {}
  PayloadSink sink;
  collector::Collector collector;
};

void Report(benchmark::State& state, const PayloadSink& sink, const collector::StepStats& stats,
            std::uint32_t meters) {
  state.counters["ops_per_iter"] = meters;  // bench_main: figures are per meter
  state.counters["json_B"] = static_cast<double>(sink.json_bytes);
  state.counters["gzip_B"] = static_cast<double>(sink.gzip_bytes);
  state.counters["meters"] = static_cast<double>(stats.meters);
  state.counters["measurements"] = static_cast<double>(stats.measurements);
  state.counters["batches"] = static_cast<double>(stats.batches);
}

// Item 5: N counters, all with a step value, one cycle per iteration.
void RunCycle(benchmark::State& state, Compression compression) {
  CounterSegment& s = CountersSegment(static_cast<std::uint32_t>(state.range(0)));
  // One collector per size and compression, kept for the run like its
  // segment: the first Step of a new collector validates every entry
  // (BM_ScanFirst measures that), a steady-state one does not.
  static std::map<std::pair<std::uint32_t, Compression>, std::unique_ptr<Cycle>> cycles;
  auto& c = cycles[{s.meters, compression}];
  if (!c) {
    c = std::make_unique<Cycle>(s.segment.registry(), compression);
    c->collector.Step(std::chrono::system_clock::now());
  }
  collector::StepStats stats;
  for (auto _ : state) {
    state.PauseTiming();
    s.Touch();
    c->sink.Reset();
    state.ResumeTiming();
    stats = c->collector.Step(std::chrono::system_clock::now());
  }
  // The collector's own self-metrics are published too: at least N meters.
  if (stats.meters < s.meters || stats.sent < s.meters) {
    state.SkipWithError("the cycle did not publish every counter");
  }
  Report(state, c->sink, stats, s.meters);
}

void BM_CollectorCycle(benchmark::State& state) { RunCycle(state, Compression::kAtlas); }
BENCHMARK(BM_CollectorCycle)
    ->Arg(1000)
    ->Arg(10'000)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Unit(benchmark::kMillisecond);

// The 100k cycle's two parts, to say where its time goes: without gzip
// (payload only), and with zlib's default level 6 instead of level 1.
void BM_CollectorCycleNoGzip(benchmark::State& state) { RunCycle(state, Compression::kNone); }
BENCHMARK(BM_CollectorCycleNoGzip)->Arg(100'000)->Unit(benchmark::kMillisecond);

void BM_CollectorCycleGzip6(benchmark::State& state) { RunCycle(state, Compression::kLevel6); }
BENCHMARK(BM_CollectorCycleGzip6)->Arg(100'000)->Unit(benchmark::kMillisecond);

// The 100k cycle with zlib level 1, the encoder before ISA-L.
void BM_CollectorCycleZlib1(benchmark::State& state) { RunCycle(state, Compression::kZlib1); }
BENCHMARK(BM_CollectorCycleZlib1)->Arg(100'000)->Unit(benchmark::kMillisecond);

// Compression alone, on real payloads: the JSON batches of one 100k-counter
// step, captured once, compressed by each encoder per iteration
// (benchmarks/README.md, "Compression"). The argument is a GzipCodec.
class CaptureSink : public collector::Sink {
 public:
  BatchOutcome Publish(const CommonTags& common, const Measurement* begin, const Measurement* end,
                       Deadline) override {
    batches.push_back(collector::BuildPayload(common, begin, end));
    BatchOutcome out;
    out.kind = BatchOutcome::Kind::kAccepted;
    out.sent = static_cast<std::size_t>(end - begin);
    return out;
  }
  std::vector<std::string> batches;
};

const std::vector<std::string>& PayloadBatches100k() {
  static const std::vector<std::string> batches = [] {
    CounterSegment& s = CountersSegment(100'000);
    s.Touch();
    CaptureSink sink;
    collector::Collector c(s.segment.registry(), BenchOptions(), sink);
    c.Step(std::chrono::system_clock::now());
    return std::move(sink.batches);
  }();
  return batches;
}

void BM_Compress(benchmark::State& state) {
  const auto codec = static_cast<collector::GzipCodec>(state.range(0));
  if (!collector::GzipAvailable(codec)) {
    state.SkipWithError("encoder not in this build");
    return;
  }
  const std::vector<std::string>& batches = PayloadBatches100k();
  std::string out;
  std::size_t json = 0, gzip = 0;
  for (auto _ : state) {
    json = gzip = 0;
    for (const std::string& b : batches) {
      collector::GzipInto(b, &out, codec);
      json += b.size();
      gzip += out.size();
    }
    benchmark::DoNotOptimize(out.data());
  }
  // Every output must decode back to its input: a fast encoder that writes
  // something else is no candidate.
  for (const std::string& b : batches) {
    collector::GzipInto(b, &out, codec);
    std::string back;
    if (!testing::Gunzip(out, &back) || back != b) {
      state.SkipWithError("output does not gunzip to the input");
      return;
    }
  }
  state.counters["json_B"] = static_cast<double>(json);
  state.counters["gzip_B"] = static_cast<double>(gzip);
  state.counters["ratio_pct"] = 100.0 * static_cast<double>(gzip) / static_cast<double>(json);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * json));
  state.SetLabel(collector::ToString(codec));
}
BENCHMARK(BM_Compress)
    ->Arg(static_cast<int>(collector::GzipCodec::kZlib1))
    ->Arg(static_cast<int>(collector::GzipCodec::kLibdeflate1))
    ->Arg(static_cast<int>(collector::GzipCodec::kIsal0))
    ->Arg(static_cast<int>(collector::GzipCodec::kIsal1))
    ->Unit(benchmark::kMillisecond);

constexpr std::uint32_t kWorkerMeters = 10'000;

// Forks `workers` processes; worker w registers (or finds) the counters
// MakeId(i) with i % workers == w and increments each, then exits. All run
// at once, so registrations interleave as in a starting pre-fork server.
// Returns false when a worker failed.
bool RunWorkers(Registry& registry, int workers) {
  std::vector<pid_t> pids;
  for (int w = 0; w < workers; ++w) {
    const pid_t pid = ::fork();
    if (pid < 0) break;
    if (pid == 0) {
      int status = 0;
      try {
        for (std::uint32_t i = static_cast<std::uint32_t>(w); i < kWorkerMeters;
             i += static_cast<std::uint32_t>(workers)) {
          const IdSpec id = MakeId(i);
          registry.GetCounter(id.name, id.tags).Increment();
        }
      } catch (...) {
        status = 1;
      }
      ::_exit(status);  // no atexit handlers: they would remove the run's segments
    }
    pids.push_back(pid);
  }
  bool ok = static_cast<int>(pids.size()) == workers;
  for (pid_t pid : pids) {
    int status = 0;
    ok = ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0 && ok;
  }
  return ok;
}

struct WorkerSegment {
  explicit WorkerSegment(int workers)
      : segment("workers" + std::to_string(workers), CounterSegmentOptions(kWorkerMeters)),
        cycle(segment.registry()) {}
  BenchSegment segment;
  Cycle cycle;
};

// Item 6's rows: one cycle per iteration after a round of W workers
// (`run_workers`, untimed), optionally `pause` later; counts the page
// faults taken during the timed steps (after a fork() every private page of
// the forking process is copy-on-write, so a step's first write to a page
// faults; the real collector never forks).
void TimeWorkerCycles(benchmark::State& state, Cycle& cycle, int workers,
                      const std::function<bool()>& run_workers,
                      std::chrono::milliseconds pause = std::chrono::milliseconds(0)) {
  collector::StepStats stats;
  long faults = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const bool ok = run_workers();
    cycle.sink.Reset();
    if (pause.count() > 0) std::this_thread::sleep_for(pause);
    rusage before{};
    ::getrusage(RUSAGE_SELF, &before);
    state.ResumeTiming();
    if (!ok) {
      state.SkipWithError("a worker failed");
      return;
    }
    stats = cycle.collector.Step(std::chrono::system_clock::now());
    state.PauseTiming();
    rusage after{};
    ::getrusage(RUSAGE_SELF, &after);
    faults += after.ru_minflt - before.ru_minflt + after.ru_majflt - before.ru_majflt;
    state.ResumeTiming();
  }
  state.counters["faults_per_cycle"] =
      static_cast<double>(faults) /
      static_cast<double>(std::max<benchmark::IterationCount>(1, state.iterations()));
  if (stats.meters < kWorkerMeters || stats.sent < kWorkerMeters) {
    state.SkipWithError("the cycle did not publish every counter");
  }
  Report(state, cycle.sink, stats, kWorkerMeters);
  state.counters["workers"] = workers;
}

// The segment of W workers, shared by items 6 and 8: built on first use
// with its registering round and the collector's first (validating) step;
// nullptr when a worker failed.
WorkerSegment* WorkersSegment(int workers) {
  static std::map<int, std::unique_ptr<WorkerSegment>> segments;
  auto& s = segments[workers];
  if (!s) {
    s = std::make_unique<WorkerSegment>(workers);
    if (!RunWorkers(s->segment.registry(), workers)) return nullptr;
    s->cycle.collector.Step(std::chrono::system_clock::now());
  }
  return s.get();
}

// Item 6: 10k counters written by W worker processes; one cycle per
// iteration, the workers' writes (fork, update, exit) untimed.
void BM_CollectorCycleWorkers(benchmark::State& state) {
  const int workers = static_cast<int>(state.range(0));
  WorkerSegment* s = WorkersSegment(workers);
  if (s == nullptr) {
    state.SkipWithError("a worker failed");
    return;
  }
  TimeWorkerCycles(state, s->cycle, workers,
                   [&] { return RunWorkers(s->segment.registry(), workers); });
}
BENCHMARK(BM_CollectorCycleWorkers)
    ->Arg(1)
    ->Arg(2)
    ->Arg(16)
    ->Arg(64)
    ->Unit(benchmark::kMillisecond);

// Item 6, diagnosed: the same cycle, but the W workers are forked by a
// separate long-lived process (as a pre-fork server's master forks them, not
// the collector), so the collector's own pages are never copy-on-write; and
// optionally the step starts only after a pause (as the collector sleeps
// until its next step). Arguments: W, pause in ms. Separates what forking
// from the collector's process costs (the faults) from what W process
// creations and exits just before the step cost (benchmarks/README.md,
// "Workers").
class WorkerForker {
 public:
  // The parent's ends of every live helper's pipes: a helper forked later
  // inherits them and must close them, or an earlier helper would never
  // see its command pipe close (and the run would hang at exit).
  static std::vector<int>& ParentEnds() {
    static std::vector<int> fds;
    return fds;
  }

  WorkerForker(Registry& registry, int workers) {
    int cmd[2], ack[2];
    if (::pipe(cmd) != 0) return;
    if (::pipe(ack) != 0) {
      ::close(cmd[0]);
      ::close(cmd[1]);
      return;
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(cmd[1]);
      ::close(ack[0]);
      for (int fd : ParentEnds()) ::close(fd);
      char c = 0;
      while (::read(cmd[0], &c, 1) == 1) {
        c = RunWorkers(registry, workers) ? 0 : 1;
        if (::write(ack[1], &c, 1) != 1) break;
      }
      ::_exit(0);  // no atexit handlers: they would remove the run's segments
    }
    ::close(cmd[0]);
    ::close(ack[1]);
    cmd_ = cmd[1];
    ack_ = ack[0];
    if (pid_ < 0) {
      ::close(cmd_);
      ::close(ack_);
      cmd_ = ack_ = -1;
      return;
    }
    ParentEnds().push_back(cmd_);
    ParentEnds().push_back(ack_);
  }
  ~WorkerForker() {
    std::vector<int>& ends = ParentEnds();
    ends.erase(std::remove_if(ends.begin(), ends.end(),
                              [this](int fd) { return fd == cmd_ || fd == ack_; }),
               ends.end());
    if (cmd_ >= 0) ::close(cmd_);  // the helper's read returns 0: it exits
    if (ack_ >= 0) ::close(ack_);
    if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
  }
  WorkerForker(const WorkerForker&) = delete;
  WorkerForker& operator=(const WorkerForker&) = delete;

  /// One round of workers (fork, update, exit), run by the helper.
  bool Run() {
    char c = 1;
    return cmd_ >= 0 && ::write(cmd_, &c, 1) == 1 && ::read(ack_, &c, 1) == 1 && c == 0;
  }

 private:
  pid_t pid_ = -1;
  int cmd_ = -1, ack_ = -1;
};

struct ApartSegment {
  explicit ApartSegment(int workers)
      : segment("apart" + std::to_string(workers), CounterSegmentOptions(kWorkerMeters)),
        forker(segment.registry(), workers),
        cycle(segment.registry()) {}
  BenchSegment segment;
  WorkerForker forker;  // forked before the collector exists
  Cycle cycle;
};

void BM_CollectorCycleWorkersApart(benchmark::State& state) {
  const int workers = static_cast<int>(state.range(0));
  const auto pause = std::chrono::milliseconds(state.range(1));
  static std::map<int, std::unique_ptr<ApartSegment>> segments;
  auto& s = segments[workers];
  if (!s) {
    s = std::make_unique<ApartSegment>(workers);
    if (!s->forker.Run()) {
      state.SkipWithError("a worker failed");
      return;
    }
    s->cycle.collector.Step(std::chrono::system_clock::now());
  }
  TimeWorkerCycles(state, s->cycle, workers, [&] { return s->forker.Run(); }, pause);
}
BENCHMARK(BM_CollectorCycleWorkersApart)
    ->Args({1, 0})
    ->Args({64, 0})
    ->Args({1, 20})
    ->Args({64, 20})
    ->Unit(benchmark::kMillisecond);

// Item 8's worker rows: a Prometheus scrape (text + streaming gzip, as the
// endpoint answers) of the same 10k counters written by W workers.
void BM_PrometheusScrapeWorkers(benchmark::State& state) {
  const int workers = static_cast<int>(state.range(0));
  WorkerSegment* s = WorkersSegment(workers);
  if (s == nullptr) {
    state.SkipWithError("a worker failed");
    return;
  }
  collector::PrometheusScraper scraper(s->segment.registry(), BenchOptions().common_tags,
                                       s->cycle.collector);
  std::string gzipped;
  collector::GzipStream stream;
  // The endpoint's answer to Prometheus; the first maps every name and
  // label set once.
  std::size_t text_bytes = collector::ScrapeBody(scraper, &stream, &gzipped);
  for (auto _ : state) {
    state.PauseTiming();
    const bool ok = RunWorkers(s->segment.registry(), workers);
    state.ResumeTiming();
    if (!ok) {
      state.SkipWithError("a worker failed");
      return;
    }
    text_bytes = collector::ScrapeBody(scraper, &stream, &gzipped);
  }
  state.counters["ops_per_iter"] = kWorkerMeters;
  state.counters["text_B"] = static_cast<double>(text_bytes);
  state.counters["gzip_B"] = static_cast<double>(gzipped.size());
  state.counters["workers"] = workers;
}
BENCHMARK(BM_PrometheusScrapeWorkers)
    ->Arg(1)
    ->Arg(2)
    ->Arg(16)
    ->Arg(64)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace spectator::bench
