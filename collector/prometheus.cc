#include "prometheus.h"

#include <algorithm>
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

namespace {

// Writes `value` at `p` (at most 32 chars) and returns the end: integers
// (most values: counts) in plain digits by the integer path, several times
// faster than the shortest-double one (which would write 1e+14 for 10^14:
// the same value to a parser).
char* WriteValue(double value, char* p) {
  if (std::isnan(value)) return std::copy_n("NaN", 3, p);
  if (std::isinf(value)) return std::copy_n(value > 0 ? "+Inf" : "-Inf", 4, p);
  if (value == std::trunc(value) && std::fabs(value) < 1e15) {
    return std::to_chars(p, p + 32, static_cast<std::int64_t>(value)).ptr;
  }
  return std::to_chars(p, p + 32, value).ptr;
}

}  // namespace

void AppendSampleValue(double value, std::string* out) {
  char buf[32];
  out->append(buf, WriteValue(value, buf));
}

// Sample lines straight into a buffer whose size is its capacity (it only
// grows, so after the first scrapes no byte of it is allocated or cleared
// again), handed on in pieces: one capacity check per line instead of one
// per piece of a line.
class PrometheusText::Lines {
 public:
  Lines(std::string* buffer, const PieceSink& sink) : out_(buffer), sink_(sink) {}
  ~Lines() { Flush(); }
  Lines(const Lines&) = delete;
  Lines& operator=(const Lines&) = delete;

  // Where the text is now, for Rewind.
  std::size_t Mark() const { return size_; }
  // Back to `mark`, when no line was written since (only a line flushes).
  void Rewind(std::size_t mark) { size_ = mark; }
  std::size_t lines() const { return lines_; }  // written so far

  void Append(std::string_view s) {
    char* p = Room(s.size());
    size_ = static_cast<std::size_t>(std::copy(s.begin(), s.end(), p) - out_->data());
  }

  // head value, the head being `name{labels} `
  void Line(std::string_view head, double value) {
    char* p = Room(head.size() + 34);
    p = std::copy(head.begin(), head.end(), p);
    p = WriteValue(value, p);
    *p++ = '\n';
    Written(p);
  }

  // name suffix{labels,extra} value
  void Line(std::string_view name, std::string_view suffix, std::string_view labels,
            std::string_view extra, double value) {
    char* p = Room(name.size() + suffix.size() + labels.size() + extra.size() + 3 + 34);
    p = std::copy(name.begin(), name.end(), p);
    p = std::copy(suffix.begin(), suffix.end(), p);
    if (!labels.empty() || !extra.empty()) {
      *p++ = '{';
      p = std::copy(labels.begin(), labels.end(), p);
      if (!labels.empty() && !extra.empty()) *p++ = ',';
      p = std::copy(extra.begin(), extra.end(), p);
      *p++ = '}';
    }
    *p++ = ' ';
    p = WriteValue(value, p);
    *p++ = '\n';
    Written(p);
  }

 private:
  void Written(char* end) {
    size_ = static_cast<std::size_t>(end - out_->data());
    ++lines_;
    if (size_ >= kPieceBytes) Flush();
  }

  void Flush() {
    if (size_ > 0) sink_(std::string_view(out_->data(), size_));
    size_ = 0;
  }
  char* Room(std::size_t n) {
    if (size_ + n > out_->size()) out_->resize(std::max(out_->size() * 2, size_ + n + 4096));
    return out_->data() + size_;
  }

  std::string* out_;
  const PieceSink& sink_;
  std::size_t size_ = 0;   // bytes not yet flushed
  std::size_t lines_ = 0;
};

void PrometheusText::Add(const MeterReading& r, double last_step_max) {
  Sample s{r.id, r.slot, r.position, kNone, r.type, 0, 0, 0, 0};
  // The larger of the two maxima; NaN only when both are.
  const auto max = [&r, last_step_max] { return std::fmax(r.max, last_step_max); };
  switch (r.type) {
    case MeterType::kCounter:
    case MeterType::kMonotonicCounter:
      s.a = r.cumulative_count;
      break;
    case MeterType::kTimer:
    case MeterType::kDistributionSummary:
      s.a = r.cumulative_count;
      s.b = r.cumulative_total;
      s.c = max();
      break;
    case MeterType::kPercentileTimer:
    case MeterType::kPercentileDistributionSummary:
      // The count is the buckets' sum (Write), so that +Inf equals _count
      // even when a worker is between updating the count and its bucket.
      s.b = r.cumulative_total;
      s.c = max();
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
      s.a = max();
      break;
  }
  s.source = SeriesFor(s).source;
  samples_.push_back(s);
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
  std::vector<Family> wanted;
  auto families_for = [&](const std::string& stem) {
    wanted.clear();
    switch (type) {
      case MeterType::kCounter:
      case MeterType::kMonotonicCounter:
        wanted.push_back({WithSuffix(stem, "_total"), "", Kind::kCounter});
        break;
      case MeterType::kTimer:
      case MeterType::kPercentileTimer: {
        const std::string s = WithSuffix(stem, "_seconds");
        wanted.push_back({s, "", type == MeterType::kTimer ? Kind::kSummary : Kind::kHistogram});
        wanted.push_back({s + "_max", "", Kind::kGauge});
        break;
      }
      case MeterType::kDistributionSummary:
      case MeterType::kPercentileDistributionSummary:
        wanted.push_back({stem, "",
                          type == MeterType::kDistributionSummary ? Kind::kSummary
                                                                  : Kind::kHistogram});
        wanted.push_back({stem + "_max", "", Kind::kGauge});
        break;
      case MeterType::kGauge:
      case MeterType::kMaxGauge:
        wanted.push_back({stem, "", Kind::kGauge});
        break;
      case MeterType::kAgeGauge:
        wanted.push_back({WithSuffix(stem, "_seconds"), "", Kind::kGauge});
        break;
    }
  };
  auto sample_names = [](const Family& f) {
    std::vector<std::string> names{f.name};
    if (f.kind == Kind::kSummary || f.kind == Kind::kHistogram) {
      names.push_back(f.name + "_count");
      names.push_back(f.name + "_sum");
    }
    if (f.kind == Kind::kHistogram) names.push_back(f.name + "_bucket");
    return names;
  };
  // The first free stem of base, base_2, base_3, ...: the name seen first
  // keeps the plain one.
  for (int n = 1;; ++n) {
    families_for(n == 1 ? base : base + "_" + std::to_string(n));
    bool free = true;
    for (const Family& f : wanted) {
      for (const std::string& s : sample_names(f)) free = free && taken_names_.count(s) == 0;
    }
    if (free) break;
  }
  Source source;
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    for (std::string& s : sample_names(wanted[i])) taken_names_.insert(std::move(s));
    // HELP text escapes '\\' and newline; Atlas names have neither, but
    // keep the format right whatever the name.
    for (const char c : "Atlas " + std::string(ToString(type)) + " " + std::string(name)) {
      wanted[i].help += c == '\\' ? "\\\\" : c == '\n' ? "\\n" : std::string(1, c);
    }
    (i == 0 ? source.family : source.max_family) = static_cast<std::uint32_t>(families_.size());
    families_.push_back(std::move(wanted[i]));
  }
  sources_.push_back(std::move(source));
  const auto index = static_cast<std::uint32_t>(sources_.size() - 1);
  source_index_.emplace(std::move(key), index);
  return index;
}

const PrometheusText::Series& PrometheusText::SeriesFor(const Sample& sample) {
  if (sample.position >= series_.size()) series_.resize(sample.position + 1);
  Series& series = series_[sample.position];
  if (series.slot != sample.slot) {  // new, or moved here: built (again)
    if (series.slot != kNone) arena_live_ -= series.text_len;
    BuildSeries(sample, &series);
  }
  return series;
}

void PrometheusText::BuildSeries(const Sample& sample, Series* series) {
  order_valid_ = false;
  *series = Series{};
  series->slot = sample.slot;
  series->text_at = series->labels_at = static_cast<std::uint32_t>(arena_.size());
  IdView id;
  if (!ParseCanonicalId(sample.id, &id)) return;  // the reader validated it: cannot happen
  const std::uint32_t source = SourceFor(id.name, sample.type);
  MeterTags merged;
  MergeMeterTags(common_, id, &merged);
  const Family& family = families_[sources_[source].family];
  series->head = family.kind == Kind::kCounter || family.kind == Kind::kGauge;
  if (series->head) {
    arena_.append(family.name);
    if (!merged.tags.empty()) arena_ += '{';
  }
  series->labels_at = static_cast<std::uint32_t>(arena_.size());
  // Label names are unique in a series: after mapping, the first tag (in
  // key order) with a name keeps it and later ones are left out.
  std::vector<std::string> names;
  for (const auto& [key, value] : merged.tags) {
    std::string label = PrometheusLabelName(key);
    bool repeated = false;
    for (const std::string& n : names) repeated = repeated || n == label;
    if (repeated) continue;
    if (!names.empty()) arena_ += ',';
    arena_.append(label).append("=\"");
    AppendLabelValue(value, &arena_);
    arena_ += '"';
    names.push_back(std::move(label));
  }
  series->labels_len = static_cast<std::uint32_t>(arena_.size() - series->labels_at);
  if (series->head) arena_.append(merged.tags.empty() ? " " : "} ");
  series->text_len = static_cast<std::uint32_t>(arena_.size() - series->text_at);
  arena_live_ += series->text_len;
  // Two Ids of one name whose labels became equal: the first keeps the series.
  const auto [it, inserted] = sources_[source].label_sets.emplace(
      std::hash<std::string_view>()(View(series->labels_at, series->labels_len)), sample.slot);
  if (!inserted && it->second != sample.slot) {
    // Said once per meter, not again when its position moves.
    if (left_out_.insert(sample.slot).second) {
      Log(LogLevel::kWarning, "prometheus: leaving out " + std::string(sample.id) +
                                  ": its labels repeat those of another series of " +
                                  families_[sources_[source].family].name);
    }
    return;
  }
  series->source = source;
}

// Series built again (their position moved) leave their old strings behind:
// once those are most of the arena, copy the live ones into a new one.
void PrometheusText::CompactArena() {
  if (arena_.size() < (std::size_t{1} << 20) || arena_live_ * 2 > arena_.size()) return;
  std::string fresh;
  fresh.reserve(arena_live_);
  for (Series& s : series_) {
    const auto text_at = static_cast<std::uint32_t>(fresh.size());
    fresh.append(View(s.text_at, s.text_len));
    s.labels_at = text_at + (s.labels_at - s.text_at);
    s.text_at = text_at;
  }
  arena_.swap(fresh);
  arena_live_ = arena_.size();
}

void PrometheusText::WriteFamily(std::uint32_t family, const std::uint32_t* run, std::size_t n,
                                 bool max, Lines* out) const {
  const Family& f = families_[family];
  const std::size_t start = out->Mark();
  out->Append("# HELP ");
  out->Append(f.name);
  out->Append(" ");
  out->Append(f.help);  // escaped when the family was made
  out->Append("\n# TYPE ");
  out->Append(f.name);
  out->Append(" ");
  out->Append(TypeName(static_cast<int>(f.kind)));
  out->Append("\n");
  const std::size_t head = out->lines();
  const std::string_view name = f.name;
  for (std::size_t k = 0; k < n; ++k) {
    const Sample& s = samples_[run[k]];
    const Series& series = series_[s.position];
    const std::string_view labels = View(series.labels_at, series.labels_len);
    if (max) {
      // The larger of the last step's maximum and the running step's; 0
      // without a record in either (as Micrometer's time-window max reads 0
      // when idle).
      out->Line(name, "", labels, "", std::isfinite(s.c) ? s.c : 0);
      continue;
    }
    switch (s.type) {
      case MeterType::kCounter:
      case MeterType::kMonotonicCounter:
      case MeterType::kGauge:
      case MeterType::kAgeGauge:
      case MeterType::kMaxGauge:
        // A gauge without a value (never set, expired, no maximum in the
        // last two steps) has no sample, as it has no Atlas measurement.
        if (!std::isnan(s.a)) out->Line(View(series.text_at, series.text_len), s.a);
        break;
      case MeterType::kTimer:
      case MeterType::kDistributionSummary:
        out->Line(name, "_count", labels, "", s.a);
        out->Line(name, "_sum", labels, "", s.b);
        break;
      case MeterType::kPercentileTimer:
      case MeterType::kPercentileDistributionSummary: {
        const auto& le =
            s.type == MeterType::kPercentileTimer ? Buckets().timer : Buckets().summary;
        const std::uint64_t* buckets = bucket_arena_.data() + s.buckets;
        std::uint64_t count = 0;
        for (std::size_t i = 0; i < kPercentileBucketCount; ++i) {
          count += buckets[i];
          out->Line(name, "_bucket", labels, le[i], static_cast<double>(count));
        }
        out->Line(name, "_bucket", labels, "le=\"+Inf\"", static_cast<double>(count));
        out->Line(name, "_count", labels, "", static_cast<double>(count));
        out->Line(name, "_sum", labels, "", s.b);
        break;
      }
    }
  }
  if (out->lines() == head) out->Rewind(start);  // no sample: no family
}

void PrometheusText::Write(const PieceSink& piece) {
  CompactArena();
  // The samples grouped by source, in the order the sources were first seen
  // (a counting sort): each family's lines together, families in order. The
  // same meters in the same positions as last time (no series built since)
  // keep last time's order.
  if (!order_valid_ || samples_.size() != ordered_samples_) {
    counts_.assign(sources_.size() + 1, 0);
    for (const Sample& s : samples_) {
      if (s.source != kNone) ++counts_[s.source + 1];
    }
    for (std::size_t i = 1; i < counts_.size(); ++i) counts_[i] += counts_[i - 1];
    order_.resize(counts_.back());
    for (std::uint32_t i = 0; i < samples_.size(); ++i) {
      if (samples_[i].source != kNone) order_[counts_[samples_[i].source]++] = i;
    }
    order_valid_ = true;
    ordered_samples_ = samples_.size();
  }
  Lines lines(&buffer_, piece);
  // counts_[src] is now where src's run ends; it starts where src - 1's ends.
  for (std::uint32_t src = 0, begin = 0; src < sources_.size(); begin = counts_[src++]) {
    const std::size_t n = counts_[src] - begin;
    if (n == 0) continue;
    WriteFamily(sources_[src].family, order_.data() + begin, n, /*max=*/false, &lines);
    if (sources_[src].max_family != kNone) {
      WriteFamily(sources_[src].max_family, order_.data() + begin, n, /*max=*/true, &lines);
    }
  }
  samples_.clear();
  bucket_arena_.clear();
}

}  // namespace spectator::collector
