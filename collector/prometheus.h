#pragma once

// The Prometheus text exposition (format 0.0.4) of a segment's meters:
// names, labels, families and values, as docs/prometheus.md maps them.

#include <cmath>
#include <cstddef>
#include <cstdint>
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

  /// Replaces `*out` with the text of the readings added since the last
  /// Write (families in the order they were first seen, each family's
  /// samples together after its HELP and TYPE lines), and forgets them.
  void Write(std::string* out);

  /// Series dropped because, after their names were mapped, they would have
  /// repeated another series of their family (e.g. tags "a.b" and "a_b").
  std::size_t duplicates() const { return duplicates_; }

 private:
  enum class Kind : std::uint8_t { kCounter, kGauge, kSummary, kHistogram };

  // One family: a TYPE line and its samples, written as they come.
  struct Family {
    std::string name;
    std::string help;
    Kind kind;
    std::string body;  // this scrape's samples
  };

  // One Atlas name of one meter type: its families (e.g. a timer's summary
  // and its _max gauge), and the label sets its series have taken.
  struct Source {
    std::uint32_t family = 0;
    std::uint32_t max_family = kNone;  // timers and summaries: the _max gauge
    std::unordered_map<std::uint64_t, std::uint64_t> label_sets;  // hash → Id hash
  };

  // One meter, cached by its position in the reader (checked against its
  // Id on every use, since positions move when meters are registered).
  struct Series {
    std::string id;
    std::uint32_t source = 0;
    bool dropped = false;  // a duplicate of another series
    std::string labels;    // `k="v",...` without braces; empty for none
  };

  // What a reading leaves for Write.
  struct Sample {
    std::string_view id;
    std::uint32_t position;
    MeterType type;
    double a;  // counter: total; timer, summary: count; gauges: value
    double b;  // timer, summary: sum
    double c;  // timer, summary: max
    std::size_t buckets;  // percentile meters: offset in bucket_arena_
  };

  static constexpr std::uint32_t kNone = ~std::uint32_t{0};

  const Series& SeriesFor(const Sample& sample);
  std::uint32_t SourceFor(std::string_view name, MeterType type);
  std::uint32_t NewFamily(std::string name, Kind kind, std::string_view atlas_name,
                          MeterType type);
  void WriteSample(const Sample& sample, const Series& series);

  CommonTags common_;
  std::vector<Sample> samples_;
  std::vector<std::uint64_t> bucket_arena_;
  std::vector<Series> series_;  // by position
  std::vector<Source> sources_;
  std::unordered_map<std::string, std::uint32_t> source_index_;  // type, ':', Atlas name
  std::vector<Family> families_;
  std::unordered_set<std::string> taken_names_;  // every family and sample name in use
  std::size_t duplicates_ = 0;
};

}  // namespace spectator::collector
