#pragma once

// Turning one meter's reading into Atlas measurements (protocol.md, "Meters
// and what one step publishes"), and the tags each measurement carries.

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
  std::string_view id;          // canonical Id: the name and the meter's own tags
  std::string_view statistic;   // "count", "totalTime", "gauge", ...
  std::string_view percentile;  // empty, or the bucket tag "T00A2" / "D00A2"
  Op op = Op::kAdd;
  double value = 0;
};

/// Appends the measurements of `reading` (whose canonical Id is `id`). A value
/// is left out unless it is finite and either its op is max or it is > 0;
/// a meter with nothing to say appends nothing.
void AppendMeasurements(const MeterReading& reading, std::string_view id,
                        std::vector<Measurement>* out);

using TagPair = std::pair<std::string_view, std::string_view>;

/// The tags of a measurement, sorted by key, name excluded: the common tags,
/// the meter's own tags (which win over a common tag with the same key), then
/// statistic and, for a bucket, percentile. `id` is the parsed m.id.
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
