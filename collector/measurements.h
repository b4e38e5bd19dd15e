#pragma once

// Turning one meter's reading into Atlas measurements (docs/protocol.md, "Meters
// and what one step publishes"), and the tags each measurement carries.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "options.h"
#include "spectator/id.h"
#include "spectator/internal/reader.h"

namespace spectator::collector {

enum class Op : int { kAdd = 0, kMax = 10 };

/// One value to publish. The strings are views: `id` into the step's copy of
/// the meter's canonical Id, `statistic` and `percentile` into static tables.
struct Measurement {
  Measurement() = default;
  Measurement(std::string_view id_, std::string_view statistic_, std::string_view percentile_,
              Op op_, double value_, std::uint32_t cache_slot_ = kNoSlot)
      : id(id_),
        statistic(statistic_),
        percentile(percentile_),
        op(op_),
        cache_slot(cache_slot_),
        value(value_) {}

  static constexpr std::uint32_t kNoSlot = UINT32_MAX;

  std::string_view id;          // canonical Id: the name and the meter's own tags
  std::string_view statistic;   // "count", "totalTime", "gauge", ...
  std::string_view percentile;  // empty, or the bucket tag "T00A2" / "D00A2"
  Op op = Op::kAdd;
  /// Where the payload caches the meter's merged tags (a meter's Id never
  /// changes): MeterReading::position, dense and in the order of the step,
  /// so the cache is walked in order; kNoSlot: not cached. Every use checks
  /// the cached entry against the Id, so a key that moved (positions shift
  /// when meters are registered) costs time, never correctness. (Next to op,
  /// so that a Measurement stays 64 bytes: a step writes one per value.)
  std::uint32_t cache_slot = kNoSlot;
  double value = 0;
};
static_assert(sizeof(Measurement) <= 64, "a step writes and reads one per measurement");

/// Appends the measurements of `reading` (whose canonical Id is `id`). A value
/// is left out unless it is finite and either its op is max or it is > 0;
/// a meter with nothing to say appends nothing.
void AppendMeasurements(const MeterReading& reading, std::string_view id,
                        std::vector<Measurement>* out);

using TagPair = std::pair<std::string_view, std::string_view>;

/// Where a measurement's statistic and percentile tags go among its meter's
/// merged tags (MeterTags), and whether they go at all: a tag of the meter
/// (or a common tag) with that key wins over them.
struct TagLayout {
  std::size_t count = 0;          // merged tags
  std::size_t percentile_at = 0;  // "percentile" goes before merged[percentile_at]
  std::size_t statistic_at = 0;   // "statistic" before merged[statistic_at]; >= percentile_at
  bool has_percentile = false;    // a merged tag has key "percentile"
  bool has_statistic = false;     // a merged tag has key "statistic"
};

/// THE tag merge of every sink (docs/protocol.md, "Common tags"): a meter's own
/// tags and the common tags, sorted by key, one tag per key, the meter's own
/// tag winning over a common tag with the same key (and, among common tags
/// with the same key, the first), name excluded. A measurement adds its
/// statistic and, for a bucket, percentile tags where `layout` says.
struct MeterTags {
  std::vector<TagPair> tags;
  TagLayout layout;
};
void MergeMeterTags(const CommonTags& common, const IdView& id, MeterTags* out);

/// Visits a measurement's tags in key order: tag(i) for merged tag i,
/// statistic() and (when the measurement is a bucket) percentile() where
/// they go, unless a merged tag has their key.
template <typename TagFn, typename StatisticFn, typename PercentileFn>
void ForEachTag(const TagLayout& layout, bool bucket, TagFn tag, StatisticFn statistic,
                PercentileFn percentile) {
  for (std::size_t i = 0; i < layout.percentile_at; ++i) tag(i);
  if (bucket && !layout.has_percentile) percentile();
  for (std::size_t i = layout.percentile_at; i < layout.statistic_at; ++i) tag(i);
  if (!layout.has_statistic) statistic();
  for (std::size_t i = layout.statistic_at; i < layout.count; ++i) tag(i);
}

/// The tags of a measurement, sorted by key, name excluded: MergeMeterTags
/// of its meter, then its statistic and percentile tags by ForEachTag.
/// `id` is the parsed m.id.
void MergeTags(const CommonTags& common, const IdView& id, const Measurement& m,
               std::vector<TagPair>* out);

/// Parses the canonical Ids of a run of measurements, remembering the last
/// one: consecutive measurements of one meter parse it once.
class IdParser {
 public:
  /// nullptr when `id` is not a canonical Id (the reader validated it, so
  /// this does not happen).
  const IdView* Parse(std::string_view id) {
    if (id.data() != last_.data() || id.size() != last_.size()) {
      last_ = id;
      ok_ = ParseCanonicalId(id, &view_);
    }
    return ok_ ? &view_ : nullptr;
  }

 private:
  std::string_view last_;
  IdView view_;
  bool ok_ = false;
};

/// `name{k=v,...}`, or just `name` without tags: how the stdout sink and
/// --dump show an Id.
std::string FormatId(std::string_view name, const std::vector<TagPair>& tags);

/// The stdout sink's line: `name{k=v,...,statistic=count} 42`.
std::string FormatLine(const CommonTags& common, const IdView& id, const Measurement& m);

/// Shortest text that reads back as the same double ("42", "0.5", "1e+21").
std::string FormatValue(double v);

}  // namespace spectator::collector
