#include "measurements.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "spectator/percentile_buckets.h"

namespace spectator::collector {
namespace {

// "T0000".."T0113" and "D0000".."D0113": built once, viewed by measurements.
struct PercentileTags {
  std::array<std::array<char, 6>, kPercentileBucketCount> timer{};
  std::array<std::array<char, 6>, kPercentileBucketCount> summary{};
  PercentileTags() {
    for (std::size_t i = 0; i < kPercentileBucketCount; ++i) {
      std::snprintf(timer[i].data(), 6, "T%04zX", i);
      std::snprintf(summary[i].data(), 6, "D%04zX", i);
    }
  }
};
const PercentileTags& Percentiles() {
  static const PercentileTags tags;
  return tags;
}

class Appender {
 public:
  Appender(std::string_view id, std::uint32_t slot, std::vector<Measurement>* out)
      : id_(id), slot_(slot), out_(out) {}

  // docs/protocol.md: sent only when finite, and positive unless the op is max.
  void Add(std::string_view statistic, Op op, double value, std::string_view percentile = {}) {
    if (!std::isfinite(value)) return;
    if (op == Op::kAdd && value <= 0) return;
    out_->push_back({id_, statistic, percentile, op, value, slot_});
  }

  // Timer and summary statistics. A step without records publishes nothing
  // (not even max 0), as Spectator does. A record that straddled the take
  // (its count went with the last step, its total comes with this one) is
  // the exception: what it left is published, or it would be lost for good.
  void Stats(const MeterReading& r, bool timer) {
    if (!(r.count > 0) && !(r.total > 0) && !(r.total_of_squares > 0)) return;
    Add("count", Op::kAdd, r.count);
    Add(timer ? "totalTime" : "totalAmount", Op::kAdd, r.total);
    Add("totalOfSquares", Op::kAdd, r.total_of_squares);
    Add("max", Op::kMax, r.max);
  }

  void Buckets(const MeterReading& r, bool timer) {
    if (r.buckets == nullptr) return;
    const auto& tags = timer ? Percentiles().timer : Percentiles().summary;
    for (std::size_t i = 0; i < kPercentileBucketCount; ++i) {
      if (r.buckets[i] != 0) {
        Add("percentile", Op::kAdd, static_cast<double>(r.buckets[i]),
            std::string_view(tags[i].data(), 5));
      }
    }
  }

 private:
  std::string_view id_;
  std::uint32_t slot_;
  std::vector<Measurement>* out_;
};

}  // namespace

void AppendMeasurements(const MeterReading& r, std::string_view id, std::vector<Measurement>* out) {
  // The position, not the slot: slots are hash positions (random order),
  // positions follow the step, so the payload's cache is read in order.
  Appender a(id, r.position, out);
  switch (r.type) {
    case MeterType::kCounter:
    case MeterType::kMonotonicCounter:
      a.Add("count", Op::kAdd, r.count);
      break;
    case MeterType::kTimer:
      a.Stats(r, true);
      break;
    case MeterType::kDistributionSummary:
      a.Stats(r, false);
      break;
    case MeterType::kPercentileTimer:
      a.Stats(r, true);
      a.Buckets(r, true);
      break;
    case MeterType::kPercentileDistributionSummary:
      a.Stats(r, false);
      a.Buckets(r, false);
      break;
    case MeterType::kGauge:
    case MeterType::kAgeGauge:
      a.Add("gauge", Op::kMax, r.value);
      break;
    case MeterType::kMaxGauge:
      a.Add("max", Op::kMax, r.max);
      break;
  }
}

void MergeMeterTags(const CommonTags& common, const IdView& id, MeterTags* out) {
  std::vector<TagPair>& tags = out->tags;
  tags.clear();
  // Own tags first, so that the stable sort keeps them ahead of a common tag
  // with the same key and unique() drops the common one.
  tags.insert(tags.end(), id.tags.begin(), id.tags.end());
  for (const auto& [k, v] : common) tags.emplace_back(k, v);
  std::stable_sort(tags.begin(), tags.end(),
                   [](const TagPair& a, const TagPair& b) { return a.first < b.first; });
  tags.erase(std::unique(tags.begin(), tags.end(),
                         [](const TagPair& a, const TagPair& b) { return a.first == b.first; }),
             tags.end());
  // The statistic and percentile tags sort after every tag with a key not
  // greater than theirs (as if appended, then stably sorted), and lose to a
  // tag with their key.
  auto place = [&tags](std::string_view key, bool* present) {
    const auto it = std::upper_bound(tags.begin(), tags.end(), key,
                                     [](std::string_view k, const TagPair& t) { return k < t.first; });
    *present = it != tags.begin() && std::prev(it)->first == key;
    return static_cast<std::size_t>(it - tags.begin());
  };
  TagLayout& layout = out->layout;
  layout.count = tags.size();
  layout.percentile_at = place("percentile", &layout.has_percentile);
  layout.statistic_at = place("statistic", &layout.has_statistic);
}

void MergeTags(const CommonTags& common, const IdView& id, const Measurement& m,
               std::vector<TagPair>* out) {
  MeterTags merged;
  MergeMeterTags(common, id, &merged);
  out->clear();
  ForEachTag(
      merged.layout, !m.percentile.empty(), [&](std::size_t i) { out->push_back(merged.tags[i]); },
      [&] { out->emplace_back("statistic", m.statistic); },
      [&] { out->emplace_back("percentile", m.percentile); });
}

std::string FormatValue(double v) {
  char buf[32];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

std::string FormatId(std::string_view name, const std::vector<TagPair>& tags) {
  std::string out(name);
  for (std::size_t i = 0; i < tags.size(); ++i) {
    out += i == 0 ? '{' : ',';
    out.append(tags[i].first).append("=").append(tags[i].second);
  }
  if (!tags.empty()) out += '}';
  return out;
}

std::string FormatLine(const CommonTags& common, const IdView& id, const Measurement& m) {
  std::vector<TagPair> tags;
  MergeTags(common, id, m, &tags);
  std::string line = FormatId(id.name, tags);
  line += ' ';
  line += FormatValue(m.value);
  return line;
}

}  // namespace spectator::collector
