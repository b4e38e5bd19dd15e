#pragma once

#include <cstdint>

namespace spectator {

/// The kind of a meter. The numeric values are stored in the segment: never
/// renumber them without bumping kLayoutVersion.
enum class MeterType : std::uint8_t {
  kCounter = 1,
  kTimer = 2,
  kDistributionSummary = 3,
  kGauge = 4,
  kMaxGauge = 5,
  kAgeGauge = 6,
  kMonotonicCounter = 7,
  kPercentileTimer = 8,
  kPercentileDistributionSummary = 9,
};

inline constexpr std::uint8_t kMinMeterType = 1;
inline constexpr std::uint8_t kMaxMeterType = 9;

/// "counter", "timer", ... (stable strings, used by --dump and logs).
inline constexpr const char* ToString(MeterType type) noexcept {
  switch (type) {
    case MeterType::kCounter: return "counter";
    case MeterType::kTimer: return "timer";
    case MeterType::kDistributionSummary: return "distribution-summary";
    case MeterType::kGauge: return "gauge";
    case MeterType::kMaxGauge: return "max-gauge";
    case MeterType::kAgeGauge: return "age-gauge";
    case MeterType::kMonotonicCounter: return "monotonic-counter";
    case MeterType::kPercentileTimer: return "percentile-timer";
    case MeterType::kPercentileDistributionSummary: return "percentile-distribution-summary";
  }
  return "unknown";
}

}  // namespace spectator
