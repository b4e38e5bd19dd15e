#include "dump.h"

#include <cstdint>
#include <string>
#include <string_view>

#include "measurements.h"
#include "spectator/id.h"
#include "spectator/percentile_buckets.h"

namespace spectator::collector {
namespace {

// "name{k=v,...}" for a canonical Id.
std::string Readable(std::string_view canonical) {
  IdView id;
  if (!ParseCanonicalId(canonical, &id)) return std::string(canonical);
  return FormatId(id.name, id.tags);
}

}  // namespace

void Dump(SegmentReader& reader, std::FILE* out, std::chrono::system_clock::time_point now) {
  const SegmentInfo info = reader.Info();
  std::fprintf(out,
               "segment %s: layout %u, %llu bytes, %u/%u meters, %llu/%llu value words, "
               "overflow %llu, invalid ids %llu, type mismatches %llu, recovered claims %llu",
               info.name.c_str(), info.layout_version,
               static_cast<unsigned long long>(info.size_bytes), info.meters, info.max_meters,
               static_cast<unsigned long long>(info.value_words_used),
               static_cast<unsigned long long>(info.value_words),
               static_cast<unsigned long long>(info.overflow),
               static_cast<unsigned long long>(info.invalid_ids),
               static_cast<unsigned long long>(info.type_mismatches),
               static_cast<unsigned long long>(info.recovered_claims));
  if (info.collector_pid != 0) {
    const auto now_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
    const double age =
        static_cast<double>(now_ns - static_cast<std::int64_t>(info.collector_heartbeat_unix_ns)) /
        1e9;
    std::fprintf(out, ", collector pid %lld (last step %.1f s ago)",
                 static_cast<long long>(info.collector_pid), age);
  }
  std::fputc('\n', out);

  const auto stats = reader.Scan(SegmentReader::Mode::kPeek, now, [&](const MeterReading& r) {
    std::string line = ToString(r.type);
    line += ' ';
    line += Readable(r.id);
    auto field = [&](const char* name, double v) {
      line.append(" ").append(name).append("=").append(FormatValue(v));
    };
    switch (r.type) {
      case MeterType::kCounter:
      case MeterType::kMonotonicCounter:
        field("count", r.count);
        break;
      case MeterType::kTimer:
      case MeterType::kPercentileTimer:
      case MeterType::kDistributionSummary:
      case MeterType::kPercentileDistributionSummary: {
        const bool timer = r.type == MeterType::kTimer || r.type == MeterType::kPercentileTimer;
        field("count", r.count);
        field(timer ? "totalTime" : "totalAmount", r.total);
        field("totalOfSquares", r.total_of_squares);
        field("max", r.max);
        break;
      }
      case MeterType::kGauge:
      case MeterType::kAgeGauge:
        field("value", r.value);
        break;
      case MeterType::kMaxGauge:
        field("max", r.max);
        break;
    }
    if (r.buckets != nullptr) {
      std::size_t used = 0;
      for (std::size_t b = 0; b < kPercentileBucketCount; ++b) used += r.buckets[b] != 0;
      line += " buckets=" + std::to_string(used);
    }
    line += '\n';
    std::fputs(line.c_str(), out);
  });
  if (stats.corrupt > 0) std::fprintf(out, "corrupt entries skipped: %zu\n", stats.corrupt);
  std::fflush(out);
}

}  // namespace spectator::collector
