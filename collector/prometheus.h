#pragma once

// The Prometheus text exposition (format 0.0.4) of a segment's meters:
// names, labels, families and values, as docs/prometheus.md maps them.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "options.h"
#include "spectator/internal/reader.h"
#include "spectator/meter_type.h"

namespace spectator::collector {

/// A metric name from an Atlas name: every character outside [A-Za-z0-9_]
/// becomes '_', camelCase becomes snake_case ("requestCount" →
/// "request_count", "HTTPServer" → "http_server"), all lower case, and a
/// leading digit gets a '_' in front. Deterministic; different names may
/// meet (PrometheusText resolves that).
std::string PrometheusName(std::string_view atlas_name);

/// A label name from a tag key: as PrometheusName, and the names that
/// Prometheus reserves ("le", "quantile", anything starting "__") get a
/// "tag_" in front.
std::string PrometheusLabelName(std::string_view tag_key);

/// Appends a label value with '\', '"' and newline escaped.
void AppendLabelValue(std::string_view value, std::string* out);

/// Appends a sample value: the shortest text that reads back as the same
/// double, "+Inf", "-Inf" or "NaN".
void AppendSampleValue(double value, std::string* out);

/// Builds the text of one scrape from readings of a peek. It remembers, for
/// as long as it lives, which metric family each Atlas name got, so that the
/// resolution of name collisions is stable from scrape to scrape (first seen,
/// i.e. registered first, keeps the plain name).
///
/// Add copies what the text needs and is cheap, so that it can run while
/// the step is held off (prometheus_endpoint.h); Write does the rest.
///
/// Thread safety: one thread at a time.
class PrometheusText {
 public:
  explicit PrometheusText(CommonTags common) : common_(std::move(common)) {}

  /// One reading of this scrape. Its Id must stay valid until Write.
  /// `last_step_max`: what the last step took as the meter's maximum
  /// (Collector::last_step_max); a maximum is the larger of it and the
  /// running step's.
  void Add(const MeterReading& reading, double last_step_max = std::nan(""));

  /// Writes the text of the readings added since the last Write (families in
  /// the order they were first seen, each family's samples together after
  /// its HELP and TYPE lines), which are then forgotten. The text goes to
  /// `piece` in consecutive pieces of about kPieceBytes, each valid during
  /// its call: small enough to stay in cache for whoever consumes it (gzip),
  /// and written in a buffer kept between scrapes.
  using PieceSink = std::function<void(std::string_view piece)>;
  static constexpr std::size_t kPieceBytes = 256 * 1024;
  void Write(const PieceSink& piece);

  /// Series dropped because, after their names were mapped, they would have
  /// repeated another series of their family (e.g. tags "a.b" and "a_b").
  std::size_t duplicates() const { return left_out_.size(); }

 private:
  enum class Kind : std::uint8_t { kCounter, kGauge, kSummary, kHistogram };
  static constexpr std::uint32_t kNone = ~std::uint32_t{0};

  // A TYPE line: one metric family.
  struct Family {
    std::string name;
    std::string help;
    Kind kind;
  };

  // One Atlas name of one meter type: its families (e.g. a timer's summary
  // and its _max gauge, created one after the other), and the label sets
  // its series have taken.
  struct Source {
    std::uint32_t family = 0;
    std::uint32_t max_family = kNone;  // timers and summaries: the _max gauge
    std::unordered_map<std::uint64_t, std::uint32_t> label_sets;  // labels' hash → slot
  };

  // One meter, cached by its position in the reader and checked against
  // its entry's slot on every use (positions move when meters are
  // registered; a slot's Id never changes). Its labels live in arena_, in
  // position order, so that a scrape streams them.
  // A series of a counter or gauge family (one line per sample) keeps its
  // whole line head, `name{labels} ` (or `name `), with its labels in it:
  // its line is then one copy and a value.
  struct Series {
    std::uint32_t slot = kNone;
    std::uint32_t text_at = 0, text_len = 0;      // in arena_: the head, or the labels alone
    std::uint32_t labels_at = 0, labels_len = 0;  // `k="v",...` without braces, in the text
    std::uint32_t source = kNone;                 // kNone: left out
    bool head = false;                            // the text is a line head
  };

  // What a reading leaves for Write.
  struct Sample {
    std::string_view id;
    std::uint32_t slot;
    std::uint32_t position;
    std::uint32_t source;  // its series' (SeriesFor)
    MeterType type;
    double a;  // counter: total; timer, summary: count; gauges: value
    double b;  // timer, summary: sum
    double c;  // timer, summary: max
    std::size_t buckets;  // percentile meters: offset in bucket_arena_
  };

  std::string_view View(std::uint32_t at, std::uint32_t len) const {
    return std::string_view(arena_).substr(at, len);
  }
  const Series& SeriesFor(const Sample& sample);
  void BuildSeries(const Sample& sample, Series* series);
  void CompactArena();
  std::uint32_t SourceFor(std::string_view name, MeterType type);
  // Writes `family` with one sample line set per sample of `run` (the
  // family's main lines, or with `max` its _max gauge); nothing when no
  // sample has a value.
  class Lines;  // a fast appender of sample lines (prometheus.cc)
  void WriteFamily(std::uint32_t family, const std::uint32_t* run, std::size_t n, bool max,
                   Lines* out) const;

  CommonTags common_;
  std::vector<Sample> samples_;
  std::vector<std::uint64_t> bucket_arena_;
  std::vector<std::uint32_t> counts_, order_;  // Write's grouping of samples by source
  bool order_valid_ = false;                   // no series was built since it was made
  std::size_t ordered_samples_ = 0;
  std::vector<Series> series_;                  // by position
  std::string arena_;                           // the labels of series_
  std::size_t arena_live_ = 0;                  // bytes of arena_ still in use
  std::vector<Source> sources_;
  std::unordered_map<std::string, std::uint32_t> source_index_;  // type, ':', Atlas name
  std::vector<Family> families_;
  std::unordered_set<std::string> taken_names_;  // every family and sample name in use
  std::unordered_set<std::uint32_t> left_out_;  // slots of the series left out
  std::string buffer_;  // Write's pieces are made here: its size is its capacity
};

}  // namespace spectator::collector
