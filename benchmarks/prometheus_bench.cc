// Item 8: a Prometheus scrape (collector/prometheus_endpoint.h) of N
// counters, as the endpoint answers one: the peek under the take mutex, the
// text, and gzip (Prometheus asks for it). Its baseline is the Atlas step of
// the same segment, BM_CollectorCycle/N, measured in the same run; the goal is
// a scrape no dearer than a step. HTTP itself is left out of both.

#include <benchmark/benchmark.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "collector.h"
#include "collector_fixture.h"
#include "gzip.h"
#include "prometheus_endpoint.h"
#include "sinks.h"

namespace spectator::bench {
namespace {

// A collector (whose take mutex a scrape holds, and which never steps here)
// and a scraper, with the common tags the Atlas rows use.
struct Scrape {
  explicit Scrape(Registry& registry)
      : collector(registry, Options(), static_cast<collector::Sink*>(nullptr)),
        scraper(registry, Options().common_tags, collector) {}
  static collector::CollectorOptions Options() {
    collector::CollectorOptions options;
    options.common_tags = {{"nf.app", "prefork"},
                           {"nf.cluster", "prefork-main"},
                           {"nf.node", "i-0123456789abcdef0"},
                           {"nf.region", "us-east-1"}};
    return options;
  }
  collector::Collector collector;
  collector::PrometheusScraper scraper;
};

void RunScrape(benchmark::State& state, bool gzip) {
  CounterSegment& s = CountersSegment(static_cast<std::uint32_t>(state.range(0)));
  s.Touch();
  static std::map<std::uint32_t, std::unique_ptr<Scrape>> scrapes;
  auto& c = scrapes[s.meters];
  std::size_t text_bytes = 0;
  std::string gzipped;
  collector::GzipStream stream;
  // With gzip, exactly the endpoint's answer to Prometheus (which asks for
  // gzip); without, the text alone, only counted.
  const auto scrape = [&] {
    if (gzip) {
      text_bytes = collector::ScrapeBody(c->scraper, &stream, &gzipped);
    } else {
      text_bytes = 0;
      c->scraper.Scrape([&](std::string_view piece) { text_bytes += piece.size(); });
    }
  };
  if (!c) {
    // The first scrape maps every name and label set once (then cached).
    c = std::make_unique<Scrape>(s.segment.registry());
    if (c->scraper.ScrapeText().find("_total{") == std::string::npos) {
      state.SkipWithError("no counter in the scrape");
      return;
    }
  }
  for (auto _ : state) {
    scrape();
    benchmark::DoNotOptimize(gzipped.data());
  }
  state.counters["ops_per_iter"] = s.meters;  // bench_main: figures are per meter
  state.counters["text_B"] = static_cast<double>(text_bytes);
  state.counters["gzip_B"] = static_cast<double>(gzipped.size());
}
void BM_PrometheusScrape(benchmark::State& state) { RunScrape(state, true); }
BENCHMARK(BM_PrometheusScrape)
    ->Arg(1000)
    ->Arg(10'000)
    ->Arg(100'000)
    ->Unit(benchmark::kMillisecond);

// The 100k scrape without gzip: what the text costs alone.
void BM_PrometheusScrapeNoGzip(benchmark::State& state) { RunScrape(state, false); }
BENCHMARK(BM_PrometheusScrapeNoGzip)->Arg(100'000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace spectator::bench
