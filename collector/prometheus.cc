#include "prometheus.h"

#include <array>
#include <charconv>
#include <cmath>
#include <functional>

#include "log.h"
#include "measurements.h"
#include "spectator/id.h"
#include "spectator/percentile_buckets.h"

namespace spectator::collector {
namespace {

bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// The `le` label of every percentile bucket, `le="..."`: the bucket's upper
// bound, in seconds for timers (the bounds are nanoseconds).
struct BucketLabels {
  std::array<std::string, kPercentileBucketCount> timer;
  std::array<std::string, kPercentileBucketCount> summary;
  BucketLabels() {
    for (std::size_t i = 0; i < kPercentileBucketCount; ++i) {
      const double bound = static_cast<double>(kPercentileBucketBounds[i]);
      timer[i] = "le=\"";
      AppendSampleValue(bound / 1e9, &timer[i]);
      timer[i] += '"';
      summary[i] = "le=\"";
      AppendSampleValue(bound, &summary[i]);
      summary[i] += '"';
    }
  }
};
const BucketLabels& Buckets() {
  static const BucketLabels labels;
  return labels;
}

const char* TypeName(int kind) {
  static constexpr const char* kNames[] = {"counter", "gauge", "summary", "histogram"};
  return kNames[kind];
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// `stem` + `suffix`, unless stem already ends with it (a timer named
// "latency.seconds" is latency_seconds, not latency_seconds_seconds).
std::string WithSuffix(const std::string& stem, std::string_view suffix) {
  if (EndsWith(stem, suffix)) return stem;
  return stem + std::string(suffix);
}

// One sample line: name{labels,extra} value
void AppendLine(std::string* out, std::string_view name, std::string_view suffix,
                std::string_view labels, std::string_view extra, double value) {
  out->append(name).append(suffix);
  if (!labels.empty() || !extra.empty()) {
    *out += '{';
    out->append(labels);
    if (!labels.empty() && !extra.empty()) *out += ',';
    out->append(extra);
    *out += '}';
  }
  *out += ' ';
  AppendSampleValue(value, out);
  *out += '\n';
}

}  // namespace

std::string PrometheusName(std::string_view atlas_name) {
  std::string out;
  out.reserve(atlas_name.size() + 8);
  for (std::size_t i = 0; i < atlas_name.size(); ++i) {
    const char c = atlas_name[i];
    if (IsUpper(c)) {
      // A word starts at an upper-case letter after a lower-case letter or a
      // digit ("requestCount"), or before a lower-case one at the end of an
      // acronym ("HTTPServer").
      const char prev = i > 0 ? atlas_name[i - 1] : '\0';
      const char next = i + 1 < atlas_name.size() ? atlas_name[i + 1] : '\0';
      if (IsLower(prev) || IsDigit(prev) || (IsUpper(prev) && IsLower(next))) out += '_';
      out += static_cast<char>(c - 'A' + 'a');
    } else if (IsLower(c) || IsDigit(c) || c == '_') {
      out += c;
    } else {
      out += '_';
    }
  }
  if (out.empty() || IsDigit(out[0])) out.insert(out.begin(), '_');
  return out;
}

std::string PrometheusLabelName(std::string_view tag_key) {
  std::string out = PrometheusName(tag_key);
  if (out == "le" || out == "quantile" || out.rfind("__", 0) == 0) out.insert(0, "tag_");
  return out;
}

void AppendLabelValue(std::string_view value, std::string* out) {
  for (const char c : value) {
    switch (c) {
      case '\\':
        out->append("\\\\");
        break;
      case '"':
        out->append("\\\"");
        break;
      case '\n':
        out->append("\\n");
        break;
      default:
        *out += c;
    }
  }
}

void AppendSampleValue(double value, std::string* out) {
  if (std::isnan(value)) {
    out->append("NaN");
  } else if (std::isinf(value)) {
    out->append(value > 0 ? "+Inf" : "-Inf");
  } else {
    char buf[32];
    const auto res = std::to_chars(buf, buf + sizeof buf, value);
    out->append(buf, res.ptr);
  }
}

void PrometheusText::Add(const MeterReading& r, double last_step_max) {
  Sample s{r.id, r.position, r.type, 0, 0, 0, 0};
  const double max = std::fmax(r.max, last_step_max);  // NaN only when both are
  switch (r.type) {
    case MeterType::kCounter:
    case MeterType::kMonotonicCounter:
      s.a = r.cumulative_count;
      break;
    case MeterType::kTimer:
    case MeterType::kDistributionSummary:
      s.a = r.cumulative_count;
      s.b = r.cumulative_total;
      s.c = max;
      break;
    case MeterType::kPercentileTimer:
    case MeterType::kPercentileDistributionSummary:
      // The count is the buckets' sum, so that +Inf equals _count even when
      // a worker is between updating the count and its bucket.
      s.b = r.cumulative_total;
      s.c = max;
      if (r.cumulative_buckets == nullptr) return;  // cannot happen: the reader always has them
      s.buckets = bucket_arena_.size();
      bucket_arena_.insert(bucket_arena_.end(), r.cumulative_buckets,
                           r.cumulative_buckets + kPercentileBucketCount);
      break;
    case MeterType::kGauge:
    case MeterType::kAgeGauge:
      s.a = r.value;
      break;
    case MeterType::kMaxGauge:
      s.a = max;
      break;
  }
  samples_.push_back(s);
}

std::uint32_t PrometheusText::NewFamily(std::string name, Kind kind, std::string_view atlas_name,
                                        MeterType type) {
  Family f;
  f.help = "Atlas " + std::string(ToString(type)) + " " + std::string(atlas_name);
  f.kind = kind;
  f.name = std::move(name);
  families_.push_back(std::move(f));
  return static_cast<std::uint32_t>(families_.size() - 1);
}

std::uint32_t PrometheusText::SourceFor(std::string_view name, MeterType type) {
  std::string key;
  key.reserve(name.size() + 2);
  key += static_cast<char>('0' + static_cast<int>(type));
  key += ':';
  key.append(name);
  if (const auto it = source_index_.find(key); it != source_index_.end()) return it->second;

  // The families of this name and type, and every sample name they write.
  const std::string base = PrometheusName(name);
  struct Wanted {
    std::string name;
    Kind kind;
  };
  std::vector<Wanted> wanted;
  auto families_for = [&](const std::string& stem) {
    wanted.clear();
    switch (type) {
      case MeterType::kCounter:
      case MeterType::kMonotonicCounter:
        wanted.push_back({WithSuffix(stem, "_total"), Kind::kCounter});
        break;
      case MeterType::kTimer:
      case MeterType::kPercentileTimer: {
        const std::string s = WithSuffix(stem, "_seconds");
        wanted.push_back(
            {s, type == MeterType::kTimer ? Kind::kSummary : Kind::kHistogram});
        wanted.push_back({s + "_max", Kind::kGauge});
        break;
      }
      case MeterType::kDistributionSummary:
      case MeterType::kPercentileDistributionSummary:
        wanted.push_back({stem, type == MeterType::kDistributionSummary ? Kind::kSummary
                                                                         : Kind::kHistogram});
        wanted.push_back({stem + "_max", Kind::kGauge});
        break;
      case MeterType::kGauge:
      case MeterType::kMaxGauge:
        wanted.push_back({stem, Kind::kGauge});
        break;
      case MeterType::kAgeGauge:
        wanted.push_back({WithSuffix(stem, "_seconds"), Kind::kGauge});
        break;
    }
  };
  auto sample_names = [](const Wanted& w) {
    std::vector<std::string> names{w.name};
    if (w.kind == Kind::kSummary || w.kind == Kind::kHistogram) {
      names.push_back(w.name + "_count");
      names.push_back(w.name + "_sum");
    }
    if (w.kind == Kind::kHistogram) names.push_back(w.name + "_bucket");
    return names;
  };
  // The first free stem of base, base_2, base_3, ...: the name seen first
  // keeps the plain one.
  for (int n = 1;; ++n) {
    families_for(n == 1 ? base : base + "_" + std::to_string(n));
    bool free = true;
    for (const Wanted& w : wanted) {
      for (const std::string& s : sample_names(w)) free = free && taken_names_.count(s) == 0;
    }
    if (free) break;
  }
  Source source;
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    for (std::string& s : sample_names(wanted[i])) taken_names_.insert(std::move(s));
    const std::uint32_t f = NewFamily(wanted[i].name, wanted[i].kind, name, type);
    (i == 0 ? source.family : source.max_family) = f;
  }
  sources_.push_back(std::move(source));
  const auto index = static_cast<std::uint32_t>(sources_.size() - 1);
  source_index_.emplace(std::move(key), index);
  return index;
}

const PrometheusText::Series& PrometheusText::SeriesFor(const Sample& sample) {
  if (sample.position >= series_.size()) series_.resize(sample.position + 1);
  Series& series = series_[sample.position];
  if (series.id == sample.id) return series;

  series = Series{};
  series.id.assign(sample.id);
  IdView id;
  if (!ParseCanonicalId(sample.id, &id)) {  // the reader validated it
    series.dropped = true;
    return series;
  }
  series.source = SourceFor(id.name, sample.type);
  MeterTags merged;
  MergeMeterTags(common_, id, &merged);
  // Label names are unique in a series: after mapping, the first tag (in
  // key order) with a name keeps it and later ones are left out.
  std::vector<std::string> names;
  for (const auto& [key, value] : merged.tags) {
    std::string label = PrometheusLabelName(key);
    bool repeated = false;
    for (const std::string& n : names) repeated = repeated || n == label;
    if (repeated) continue;
    if (!series.labels.empty()) series.labels += ',';
    series.labels.append(label).append("=\"");
    AppendLabelValue(value, &series.labels);
    series.labels += '"';
    names.push_back(std::move(label));
  }
  // Two Ids of one name whose labels became equal: the first keeps the series.
  const std::hash<std::string_view> hash;
  const std::uint64_t label_hash = hash(series.labels);
  const std::uint64_t id_hash = hash(sample.id);
  Source& source = sources_[series.source];
  const auto [it, inserted] = source.label_sets.emplace(label_hash, id_hash);
  if (!inserted && it->second != id_hash) {
    series.dropped = true;
    ++duplicates_;
    Log(LogLevel::kWarning, "prometheus: leaving out " + series.id + ": its labels repeat those of "
                            "another series of " + families_[source.family].name);
  }
  return series;
}

void PrometheusText::WriteSample(const Sample& s, const Series& series) {
  const Source& source = sources_[series.source];
  Family& family = families_[source.family];
  const std::string_view labels = series.labels;
  std::string* out = &family.body;
  switch (s.type) {
    case MeterType::kCounter:
    case MeterType::kMonotonicCounter:
    case MeterType::kGauge:
    case MeterType::kAgeGauge:
    case MeterType::kMaxGauge:
      // A gauge without a value (never set, expired, no max this step) has
      // no sample, as it has no Atlas measurement.
      if (!std::isnan(s.a)) AppendLine(out, family.name, "", labels, "", s.a);
      return;
    case MeterType::kTimer:
    case MeterType::kDistributionSummary:
      AppendLine(out, family.name, "_count", labels, "", s.a);
      AppendLine(out, family.name, "_sum", labels, "", s.b);
      break;
    case MeterType::kPercentileTimer:
    case MeterType::kPercentileDistributionSummary: {
      const auto& le = s.type == MeterType::kPercentileTimer ? Buckets().timer : Buckets().summary;
      const std::uint64_t* buckets = bucket_arena_.data() + s.buckets;
      std::uint64_t count = 0;
      for (std::size_t i = 0; i < kPercentileBucketCount; ++i) {
        count += buckets[i];
        AppendLine(out, family.name, "_bucket", labels, le[i], static_cast<double>(count));
      }
      AppendLine(out, family.name, "_bucket", labels, "le=\"+Inf\"", static_cast<double>(count));
      AppendLine(out, family.name, "_count", labels, "", static_cast<double>(count));
      AppendLine(out, family.name, "_sum", labels, "", s.b);
      break;
    }
  }
  // Timers and summaries: the maximum of the last step and the running one,
  // 0 without a record in either (as Micrometer's time-window max reads 0
  // when idle).
  Family& max = families_[source.max_family];
  AppendLine(&max.body, max.name, "", labels, "", std::isfinite(s.c) ? s.c : 0);
}

void PrometheusText::Write(std::string* out) {
  for (const Sample& s : samples_) {
    const Series& series = SeriesFor(s);
    if (!series.dropped) WriteSample(s, series);
  }
  out->clear();
  for (Family& f : families_) {
    if (f.body.empty()) continue;
    out->append("# HELP ").append(f.name).append(" ");
    // HELP text escapes '\' and newline; Atlas names have neither, but keep
    // the format right whatever the name.
    for (const char c : f.help) {
      if (c == '\\') {
        out->append("\\\\");
      } else if (c == '\n') {
        out->append("\\n");
      } else {
        *out += c;
      }
    }
    out->append("\n# TYPE ").append(f.name).append(" ");
    out->append(TypeName(static_cast<int>(f.kind))).append("\n");
    out->append(f.body);
    f.body.clear();
  }
  samples_.clear();
  bucket_arena_.clear();
}

}  // namespace spectator::collector
