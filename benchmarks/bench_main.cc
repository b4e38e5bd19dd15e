// Runs every benchmark and prints ONE table in which each figure is a ratio
// against a baseline measured in the same run. Absolute numbers on a shared,
// 2-core machine move by tens of percent from one minute to the next; a ratio
// of two measurements taken in the same interleaved run moves much less.
//
// Statistic: with --benchmark_repetitions=N, the figure of a benchmark is its
// best repetition (noise from other processes only ever adds time) and the
// "median" column repeats the ratio with medians, to show how stable it is.
// Raw per-repetition data: --benchmark_out=FILE (JSON).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench_util.h"

namespace spectator::bench {
namespace {

/// One row of the results table: the benchmark `bench` (function name, plus
/// "/arg" when it has one) compared with `baseline` measured in the same run.
/// The figure is the time per operation or, when `metric` is set, that user
/// counter (memory rows). A goal holds when every bound that is set holds.
struct Row {
  // A constructor rather than an aggregate, so rows can leave trailing
  // fields out without -Wmissing-field-initializers.
  Row(std::string label_, std::string bench_, std::string baseline_ = "", std::string metric_ = "",
      double max_ratio_ = 0, double min_ratio_ = 0, double max_ns_ = 0, std::string notes_ = "",
      std::string baseline_metric_ = "")
      : label(std::move(label_)),
        bench(std::move(bench_)),
        baseline(std::move(baseline_)),
        metric(std::move(metric_)),
        max_ratio(max_ratio_),
        min_ratio(min_ratio_),
        max_ns(max_ns_),
        notes(std::move(notes_)),
        baseline_metric(std::move(baseline_metric_)) {}

  std::string label;
  std::string bench;
  std::string baseline;  // empty: the row is itself a baseline
  std::string metric;    // empty: time per operation
  double max_ratio;
  double min_ratio;
  double max_ns;                // time rows: absolute bound on the best figure
  std::string notes;            // user counters to print, comma-separated; "cycle" prints the
                                // time per iteration
  std::string baseline_metric;  // empty: the same as `metric`
  double max_iter_ns = 0;       // bound on the best time per iteration (a whole cycle)
};

struct Section {
  const char* title;
  std::vector<Row> rows;
};

std::vector<Section> Table() {
  std::vector<Section> table = {
      {"1. update through a handle vs a bare relaxed fetch_add on a shm word (uncontended)",
       {
           {"bare fetch_add, /dev/shm word (baseline)", "BM_BareAtomic"},
           {"counter Increment()", "BM_CounterIncrement", "BM_BareAtomic", "", 1.5},
           {"counter Add(3.0) whole", "BM_CounterAddWhole", "BM_BareAtomic"},
           {"counter Add(0.25) fractional", "BM_CounterAddFraction", "BM_BareAtomic"},
           {"  (bare CAS double add, the floor of the above)", "BM_BareAtomicDoubleAdd",
            "BM_BareAtomic"},
           {"timer Record", "BM_TimerRecord", "BM_BareAtomic", "", 3.5},
           {"distribution summary Record", "BM_DistributionSummaryRecord", "BM_BareAtomic"},
           {"gauge Set", "BM_GaugeSet", "BM_BareAtomic"},
           {"max gauge Set (steady state: no new max)", "BM_MaxGaugeSet", "BM_BareAtomic"},
           {"percentile timer Record", "BM_PercentileTimerRecord", "BM_BareAtomic", "", 5},
       }},
      {"2. contention: 2 fork()ed processes x 20M increments each, ns/op of the slower",
       {
           {"bare fetch_add, own cache line each (baseline)", "BM_Contended_BareOwnLine", "", "", 0,
            0, 0, "overlap_pct"},
           {"bare fetch_add, same word (contention cost)", "BM_Contended_BareSameWord",
            "BM_Contended_BareOwnLine", "", 0, 0, 0, "overlap_pct"},
           {"counter Increment, different counters", "BM_Contended_CounterOwn",
            "BM_Contended_BareOwnLine", "", 1.5, 0, 0, "overlap_pct"},
           {"counter Increment, same counter", "BM_Contended_CounterSame",
            "BM_Contended_BareSameWord", "", 1.5, 0, 0, "overlap_pct"},
       }},
      {"3. what users would pick instead; ratio = cost / counter Increment()",
       {
           {"mutex + unordered_map<string,double> add", "BM_MutexMapAdd", "BM_CounterIncrement"},
           {"sidecar: format + sendto UDP 127.0.0.1", "BM_SidecarUdp", "BM_CounterIncrement", "", 0,
            500, 0, "loss_pct,sent,received"},
           {"sidecar: format + sendto unix dgram", "BM_SidecarUnix", "BM_CounterIncrement", "", 0,
            500, 0, "loss_pct,sent,received"},
           {"sidecar: same, blocking send", "BM_SidecarUnixBlocking", "BM_CounterIncrement", "", 0,
            500, 0, "loss_pct,sent,received"},
       }},
      {"4. GetCounter(name, 3 tags) on a 100k-meter table vs mutex+unordered_map, same Id building",
       {
           {"map lookup, 10k Ids, 4096 cycled (baseline)", "BM_MapLookupExisting/10/4096"},
           {"GetCounter existing, 10% fill, 4096 cycled", "BM_LookupExisting/10/4096",
            "BM_MapLookupExisting/10/4096", "", 0, 0, 200},
           {"  same, braced literal tags", "BM_LookupLiteralTags/10/4096",
            "BM_MapLookupExisting/10/4096", "", 0, 0, 200},
           {"map lookup, 90k Ids, 4096 cycled (baseline)", "BM_MapLookupExisting/90/4096"},
           {"GetCounter existing, 90% fill, 4096 cycled", "BM_LookupExisting/90/4096",
            "BM_MapLookupExisting/90/4096", "", 0, 0, 200},
           {"  same, braced literal tags", "BM_LookupLiteralTags/90/4096",
            "BM_MapLookupExisting/90/4096", "", 0, 0, 200},
           {"map lookup, 90k Ids, 64 hot (baseline)", "BM_MapLookupExisting/90/64"},
           {"GetCounter existing, 90% fill, 64 hot", "BM_LookupExisting/90/64",
            "BM_MapLookupExisting/90/64", "", 0, 0, 200},
           {"  same, braced literal tags", "BM_LookupLiteralTags/90/64",
            "BM_MapLookupExisting/90/64", "", 0, 0, 200},
           {"map insert new Id (baseline)", "BM_MapRegisterNew"},
           {"GetCounter new Id (registration)", "BM_RegisterNew", "BM_MapRegisterNew", "", 0, 0, 0,
            "faults_per_reg"},
       }},
  };
  Section collect{
      "5. collector, N counters (3 tags each); cycle = Collector::Step: take + measurements + "
      "JSON + gzip + commit;\n   figure = ns per meter; ratio = per-meter cost vs 1k (1.0 = "
      "linear); cycle= in notes: the whole step",
      {}};
  // One row per size; each size's per-meter cost is compared with 1k's.
  // Goals (0: none): the whole 100k and 1M steps, and the per-meter ratio
  // of every size against 1k.
  auto sizes = [&collect](const std::string& what, const std::string& bench,
                          const std::string& notes, double goal_100k, double goal_1m = 0,
                          double goal_ratio = 0) {
    for (int n : {1000, 10'000, 100'000, 1'000'000}) {
      Row row{what + ", " + std::to_string(n / 1000) + "k", bench + "/" + std::to_string(n)};
      if (n == 1000) {
        row.label += " (baseline)";
      } else {
        row.baseline = bench + "/1000";
        row.max_ratio = goal_ratio;
      }
      row.notes = notes;
      if (n == 100'000) row.max_iter_ns = goal_100k;
      if (n == 1'000'000) row.max_iter_ns = goal_1m;
      collect.rows.push_back(row);
    }
  };
#ifdef SPECTATOR_BENCH_COLLECTOR
  sizes("cycle", "BM_CollectorCycle", "cycle,json_B,gzip_B", 30e6, 300e6, 1.3);
  // Where the 100k cycle's time goes, and the proposed fix for its goal:
  // ratios against the full 100k cycle.
  collect.rows.push_back({"  cycle, 100k, without gzip", "BM_CollectorCycleNoGzip/100000",
                          "BM_CollectorCycle/100000", "", 0, 0, 0, "cycle"});
  collect.rows.push_back({"  cycle, 100k, zlib level 1 (the encoder before)",
                          "BM_CollectorCycleZlib1/100000", "BM_CollectorCycle/100000", "", 0, 0, 0,
                          "cycle,gzip_B"});
  collect.rows.push_back({"  cycle, 100k, zlib level 6 instead",
                          "BM_CollectorCycleGzip6/100000", "BM_CollectorCycle/100000", "", 0, 0, 0,
                          "cycle,gzip_B"});
  // Compression alone on the 100k step's payload batches (12.9 MB of JSON):
  // time per step against zlib level 1. README "Compression".
  collect.rows.push_back({"compress 100k step's payloads: zlib 1 (baseline)", "BM_Compress/0", "",
                          "", 0, 0, 0, "cycle,gzip_B,ratio_pct"});
  collect.rows.push_back({"  libdeflate 1", "BM_Compress/1", "BM_Compress/0", "", 0, 0, 0,
                          "cycle,gzip_B,ratio_pct"});
  collect.rows.push_back({"  ISA-L igzip 0", "BM_Compress/2", "BM_Compress/0", "", 0, 0, 0,
                          "cycle,gzip_B,ratio_pct"});
  collect.rows.push_back({"  ISA-L igzip 1 (the collector's)", "BM_Compress/3", "BM_Compress/0",
                          "", 0, 0, 0, "cycle,gzip_B,ratio_pct"});
#endif
  sizes("scan alone (take + commit)", "BM_ScanTake", "cycle", 0);
  sizes("first scan (a new reader validates all)", "BM_ScanFirst", "cycle", 0);
  table.push_back(collect);
#ifdef SPECTATOR_BENCH_COLLECTOR
  table.push_back(
      {"6. collector cycle, 10k counters written by W fork()ed workers; figure = ns per meter; "
       "ratio vs 1 worker",
       {
           {"cycle, 10k counters, 1 worker (baseline)", "BM_CollectorCycleWorkers/1", "", "", 0, 0,
            0, "cycle,meters,faults_per_cycle"},
           {"cycle, 10k counters, 2 workers", "BM_CollectorCycleWorkers/2",
            "BM_CollectorCycleWorkers/1", "", 1.2, 0, 0, "cycle,meters,faults_per_cycle"},
           {"cycle, 10k counters, 16 workers", "BM_CollectorCycleWorkers/16",
            "BM_CollectorCycleWorkers/1", "", 1.2, 0, 0, "cycle,meters,faults_per_cycle"},
           {"cycle, 10k counters, 64 workers", "BM_CollectorCycleWorkers/64",
            "BM_CollectorCycleWorkers/1", "", 1.2, 0, 0, "cycle,meters,faults_per_cycle"},
           {"  1 worker forked by another process (baseline)", "BM_CollectorCycleWorkersApart/1/0",
            "", "", 0, 0, 0, "cycle,faults_per_cycle"},
           {"  64 workers forked by another process", "BM_CollectorCycleWorkersApart/64/0",
            "BM_CollectorCycleWorkersApart/1/0", "", 0, 0, 0, "cycle,faults_per_cycle"},
           {"  1 worker, another process, step after 20 ms (baseline)",
            "BM_CollectorCycleWorkersApart/1/20", "", "", 0, 0, 0, "cycle,faults_per_cycle"},
           {"  64 workers, another process, step after 20 ms",
            "BM_CollectorCycleWorkersApart/64/20", "BM_CollectorCycleWorkersApart/1/20", "", 0, 0,
            0, "cycle,faults_per_cycle"},
       }});
  table.push_back(
      {"8. Prometheus scrape (text + gzip) vs the Atlas step of the same counters; figure = ns "
       "per meter",
       {
           {"scrape, 1k (vs the 1k step)", "BM_PrometheusScrape/1000", "BM_CollectorCycle/1000",
            "", 0, 0, 0, "cycle,text_B,gzip_B"},
           {"scrape, 10k (vs the 10k step)", "BM_PrometheusScrape/10000",
            "BM_CollectorCycle/10000", "", 0, 0, 0, "cycle,text_B,gzip_B"},
           {"scrape, 100k (vs the 100k step)", "BM_PrometheusScrape/100000",
            "BM_CollectorCycle/100000", "", 1.0, 0, 0, "cycle,text_B,gzip_B"},
           {"  scrape, 100k, text only (no gzip)", "BM_PrometheusScrapeNoGzip/100000",
            "BM_CollectorCycle/100000", "", 0, 0, 0, "cycle"},
           {"scrape, 10k counters, 1 worker (baseline)", "BM_PrometheusScrapeWorkers/1", "", "",
            0, 0, 0, "cycle"},
           {"scrape, 10k counters, 2 workers", "BM_PrometheusScrapeWorkers/2",
            "BM_PrometheusScrapeWorkers/1", "", 1.2, 0, 0, "cycle"},
           {"scrape, 10k counters, 16 workers", "BM_PrometheusScrapeWorkers/16",
            "BM_PrometheusScrapeWorkers/1", "", 1.2, 0, 0, "cycle"},
           {"scrape, 10k counters, 64 workers", "BM_PrometheusScrapeWorkers/64",
            "BM_PrometheusScrapeWorkers/1", "", 1.2, 0, 0, "cycle"},
       }});
#endif
  table.push_back(
      {"7. memory per meter, default SegmentOptions (bytes; ratio vs an unordered_map entry)",
       {
           {"unordered_map<string,double> entry, heap (baseline)", "BM_MemoryMapEntry", "",
            "heap_B"},
           {"counter: header + entry + value block + Id", "BM_MemoryCounter",
            "BM_MemoryMapEntry", "provisioned_B", 0, 0, 0,
            "meters,entry_share_B,value_block_B,id_B,resident_B,segment_MiB", "heap_B"},
           {"percentile timer: header + entry + value block + Id", "BM_MemoryPercentileTimer",
            "BM_MemoryMapEntry", "provisioned_B", 0, 0, 0,
            "meters,entry_share_B,value_block_B,id_B,resident_B", "heap_B"},
       }});
  return table;
}

struct Samples {
  std::vector<double> figures;
  std::vector<double> iteration_ns;  // time per iteration, before dividing by ops_per_iter
  std::map<std::string, std::vector<double>> counters;
};

double Best(std::vector<double> v) { return *std::min_element(v.begin(), v.end()); }
double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string FormatTime(double ns) {
  char buf[32];
  if (ns < 10) {
    std::snprintf(buf, sizeof buf, "%.2f ns", ns);
  } else if (ns < 1e3) {
    std::snprintf(buf, sizeof buf, "%.1f ns", ns);
  } else if (ns < 1e6) {
    std::snprintf(buf, sizeof buf, "%.2f us", ns / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f ms", ns / 1e6);
  }
  return buf;
}

std::string FormatNumber(double v) {
  char buf[32];
  if (std::fabs(v) >= 1e7) {
    std::snprintf(buf, sizeof buf, "%.3g", v);
  } else if (v == std::floor(v) || std::fabs(v) >= 100) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.3g", v);
  }
  return buf;
}

// Collects every repetition of every benchmark; prints a progress dot on
// stderr per benchmark run and the table at the end.
class TableReporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration) continue;
      std::string key = run.run_name.function_name;
      if (!run.run_name.args.empty()) key += "/" + run.run_name.args;
      if (run.error_occurred) {
        errors_[key] = run.error_message;
        continue;
      }
      Samples& s = samples_[key];
      double ns = run.real_accumulated_time / static_cast<double>(run.iterations) * 1e9;
      s.iteration_ns.push_back(ns);
      if (auto it = run.counters.find("ops_per_iter"); it != run.counters.end() && it->second > 0) {
        ns /= it->second;
      }
      s.figures.push_back(ns);
      for (const auto& [name, counter] : run.counters) s.counters[name].push_back(counter.value);
    }
    std::fputc('.', stderr);
    std::fflush(stderr);
  }

  void Finalize() override { std::fputc('\n', stderr); }

  // The figure of `bench` for `metric`: the best (or median) of its
  // repetitions. Memory metrics do not vary between repetitions.
  bool Figure(const std::string& bench, const std::string& metric, bool median, double* out) const {
    auto it = samples_.find(bench);
    if (it == samples_.end()) return false;
    if (metric.empty()) {
      *out = median ? Median(it->second.figures) : Best(it->second.figures);
      return true;
    }
    auto c = it->second.counters.find(metric);
    if (c == it->second.counters.end()) return false;
    *out = Median(c->second);
    return true;
  }

  // Returns the number of goals missed.
  int PrintTable(const std::vector<Section>& table) const {
    int missed = 0;
    std::printf("%-56s %11s %11s %9s %9s %-21s %s\n", "benchmark", "figure", "baseline", "ratio",
                "(median)", "goal", "notes");
    for (const Section& section : table) {
      std::printf("\n%s\n", section.title);
      for (const Row& row : section.rows) {
        const bool is_time = row.metric.empty();
        double fig = 0, base = 0, fig_med = 0, base_med = 0;
        if (!Figure(row.bench, row.metric, false, &fig)) {
          auto e = errors_.find(row.bench);
          std::printf("  %-54s %s\n", row.label.c_str(),
                      e != errors_.end() ? ("ERROR: " + e->second).c_str() : "(not run)");
          continue;
        }
        Figure(row.bench, row.metric, true, &fig_med);
        const std::string& base_metric =
            row.baseline_metric.empty() ? row.metric : row.baseline_metric;
        if (!row.baseline.empty() && (!Figure(row.baseline, base_metric, false, &base) ||
                                      !Figure(row.baseline, base_metric, true, &base_med))) {
          base = base_med = 0;
        }
        const bool ratio_ok = base > 0;
        const double ratio = ratio_ok ? fig / base : 0;
        const double ratio_med = ratio_ok && base_med > 0 ? fig_med / base_med : 0;

        std::string goal;
        bool met = true;
        char buf[64];
        if (row.max_ratio > 0) {
          std::snprintf(buf, sizeof buf, "<=%gx", row.max_ratio);
          goal += buf;
          met = met && ratio_ok && ratio <= row.max_ratio;
        }
        if (row.min_ratio > 0) {
          std::snprintf(buf, sizeof buf, ">=%gx", row.min_ratio);
          goal += buf;
          met = met && ratio_ok && ratio >= row.min_ratio;
        }
        if (row.max_ns > 0) {
          goal += "<=" + FormatTime(row.max_ns);
          met = met && fig <= row.max_ns;
        }
        const double cycle = Best(samples_.at(row.bench).iteration_ns);
        if (row.max_iter_ns > 0) {
          goal += (goal.empty() ? "" : " ") + std::string("cycle<=") + FormatTime(row.max_iter_ns);
          met = met && cycle <= row.max_iter_ns;
        }
        if (!goal.empty()) {
          goal += met ? " ok" : " MISS";
          if (!met) ++missed;
        }

        std::string notes;
        const std::string wanted = row.notes;
        auto it = samples_.find(row.bench);
        for (std::size_t pos = 0; pos < wanted.size();) {
          std::size_t end = wanted.find(',', pos);
          if (end == std::string::npos) end = wanted.size();
          const std::string name = wanted.substr(pos, end - pos);
          pos = end + 1;
          if (name == "cycle") {
            notes += "cycle=" + FormatTime(cycle) + " ";
            continue;
          }
          auto c = it->second.counters.find(name);
          if (c == it->second.counters.end()) continue;
          notes += name + "=" + FormatNumber(Median(c->second)) + " ";
        }

        const std::string fig_s = is_time ? FormatTime(fig) : FormatNumber(fig);
        const std::string base_s = !ratio_ok ? "" : is_time ? FormatTime(base) : FormatNumber(base);
        char ratio_s[16] = "", med_s[16] = "";
        if (ratio_ok) {
          std::snprintf(ratio_s, sizeof ratio_s, ratio < 10 ? "%.2fx" : "%.0fx", ratio);
          std::snprintf(med_s, sizeof med_s, ratio_med < 10 ? "%.2fx" : "%.0fx", ratio_med);
        }
        std::printf("  %-54s %11s %11s %9s %9s %-21s %s\n", row.label.c_str(), fig_s.c_str(),
                    base_s.c_str(), ratio_s, med_s, goal.c_str(), notes.c_str());
      }
    }
    return missed;
  }

 private:
  std::map<std::string, Samples> samples_;
  std::map<std::string, std::string> errors_;
};

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

}  // namespace
}  // namespace spectator::bench

int main(int argc, char** argv) {
  using namespace spectator::bench;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const std::string load_before = LoadAverage();
  TableReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::printf(
      "machine: %u CPUs (std::thread::hardware_concurrency), %s; load average %s before, "
      "%s after\n"
      "figure = best of the repetitions; ratio = figure / baseline, both from this run\n\n",
      std::thread::hardware_concurrency(), CpuModel().c_str(), load_before.c_str(),
      LoadAverage().c_str());
  const int missed = reporter.PrintTable(Table());
  std::printf("\n%d goal(s) missed\n", missed);
  benchmark::Shutdown();
  RunCleanups();
  return 0;
}
