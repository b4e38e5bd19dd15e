#include "spectator/registry.h"

#include <cstring>

#include "id_internal.h"
#include "registry_impl.h"
#include "spectator/internal/printable.h"

namespace spectator {

namespace detail {
Word g_noop_words[kNoopWords];
}  // namespace detail

using internal::IdTable;

namespace {

// A caller's name as it may appear in a log line: control and non-ASCII bytes
// replaced, at most 200 characters, so a hostile name can neither forge log
// lines nor flood the log.
std::string Printable(std::string_view text) {
  return internal::Printable(text, 200, /*with_length=*/true);
}

}  // namespace

void Registry::Impl::LogLimited(LogLevel level, const std::string& message) {
  // relaxed: a rate-limit counter, no ordering needed.
  const std::uint64_t n = log_lines.fetch_add(1, std::memory_order_relaxed);
  if (!log || (n >= 100 && n % 1000 != 0)) return;
  log(level, n >= 100 ? message + " (further messages are sampled)" : message);
}

Registry::Registry(const SegmentOptions& options) {
  Logger logger = options.logger ? options.logger : internal::DefaultLogger();
  auto segment = internal::Segment::Open(options, logger);
  impl_ = std::make_unique<Impl>(std::move(segment), std::move(logger));
}

Registry::~Registry() = default;

const std::string& Registry::segment_name() const noexcept { return impl_->segment->name(); }

bool Registry::Remove(const std::string& name) noexcept {
  try {
    internal::ValidateSegmentName(name);
  } catch (...) {
    return false;
  }
  return internal::RemoveSegment(name);
}

detail::Word* Registry::Register(std::string_view name, TagList tags, MeterType type,
                                 std::int64_t param_min, std::int64_t param_max,
                                 std::int64_t* out_min, std::int64_t* out_max) noexcept {
  internal::SegmentHeader& header = *impl_->segment->view().header;
  try {
    char buf[kMaxIdBytes];
    std::size_t len = 0;
    const IdError error = internal::CanonicalizeInto(name, tags, buf, &len);
    const std::string_view canonical(buf, len);
    if (error != IdError::kOk) {
      // relaxed: a statistic.
      header.invalid_ids.fetch_add(1, std::memory_order_relaxed);
      impl_->LogLimited(LogLevel::kWarning, "refusing meter '" + Printable(name) +
                                                "': " + ToString(error) + "; using a no-op meter");
      return nullptr;
    }
    IdTable::Result r = impl_->table.FindOrRegister(canonical, type, param_min, param_max);
    if (r.status == IdTable::Status::kFull) {
      // No place of its own: the updates go to the overflow meter of its
      // name and type, or, when even that cannot be placed, to the per-type
      // overflow meter placed at creation (segment_layout.h invariant 7).
      // relaxed: a statistic.
      header.overflow.fetch_add(1, std::memory_order_relaxed);
      const std::string_view id_name = canonical.substr(0, canonical.find(','));
      constexpr std::string_view kOverflowTag = ",spectator.overflow=true";
      char overflow_id[kMaxNameLength + kOverflowTag.size()];
      std::memcpy(overflow_id, id_name.data(), id_name.size());
      std::memcpy(overflow_id + id_name.size(), kOverflowTag.data(), kOverflowTag.size());
      r = impl_->table.FindOrRegister(
          std::string_view(overflow_id, id_name.size() + kOverflowTag.size()), type, param_min,
          param_max, IdTable::Tier::kOverflow);
      if (r.status != IdTable::Status::kOk) {
        r = impl_->table.FindOrRegister(internal::PerTypeOverflowId(type), type, param_min,
                                        param_max, IdTable::Tier::kLastResort);
      }
      if (r.status == IdTable::Status::kOk) {
        impl_->LogLimited(LogLevel::kWarning,
                          "segment '" + segment_name() + "' is full; meter '" +
                              std::string(canonical) + "' counts in '" +
                              std::string(internal::IdBytes(impl_->segment->view(), *r.entry)) +
                              "'");
      }
    }
    switch (r.status) {
      case IdTable::Status::kOk:
        if (type == MeterType::kPercentileTimer ||
            type == MeterType::kPercentileDistributionSummary) {
          // relaxed: immutable since READY, which FindOrRegister acquired.
          if (out_min != nullptr) {
            *out_min = static_cast<std::int64_t>(
                r.words[internal::kParamMinWord].load(std::memory_order_relaxed));
          }
          if (out_max != nullptr) {
            *out_max = static_cast<std::int64_t>(
                r.words[internal::kParamMaxWord].load(std::memory_order_relaxed));
          }
        }
        return r.words;
      case IdTable::Status::kTypeMismatch:
        impl_->LogLimited(LogLevel::kWarning, "meter '" + std::string(canonical) + "' is a " +
                                                  ToString(static_cast<MeterType>(r.entry->type)) +
                                                  ", not a " + ToString(type) +
                                                  "; using a no-op meter");
        return nullptr;
      case IdTable::Status::kFull:
        impl_->LogLimited(LogLevel::kWarning, "segment '" + segment_name() +
                                                  "' is full; no room for meter '" +
                                                  std::string(canonical) +
                                                  "' nor its overflow meters; using a no-op meter");
        return nullptr;
      case IdTable::Status::kNoClaimLock:
        impl_->LogLimited(LogLevel::kWarning,
                          "meter '" + std::string(canonical) +
                              "': cannot lock a claim in the segment file (is /proc mounted? out "
                              "of file descriptors?); using a no-op meter");
        return nullptr;
      case IdTable::Status::kTimedOut:
        impl_->LogLimited(LogLevel::kWarning,
                          "meter '" + std::string(canonical) +
                              "' is being registered by another process that does not finish; "
                              "using a no-op meter");
        return nullptr;
    }
  } catch (...) {
    // bad_alloc while building the Id: metrics never take the caller down.
  }
  return nullptr;
}

template <typename Meter>
Meter Registry::Get(std::string_view name, TagList tags, MeterType type) noexcept {
  detail::Word* w = Register(name, tags, type, 0, 0, nullptr, nullptr);
  return w != nullptr ? Meter(w) : Meter();
}

Counter Registry::GetCounter(std::string_view name, TagList tags) noexcept {
  return Get<Counter>(name, tags, MeterType::kCounter);
}

MonotonicCounter Registry::GetMonotonicCounter(std::string_view name, TagList tags) noexcept {
  return Get<MonotonicCounter>(name, tags, MeterType::kMonotonicCounter);
}

Timer Registry::GetTimer(std::string_view name, TagList tags) noexcept {
  return Get<Timer>(name, tags, MeterType::kTimer);
}

DistributionSummary Registry::GetDistributionSummary(std::string_view name, TagList tags) noexcept {
  return Get<DistributionSummary>(name, tags, MeterType::kDistributionSummary);
}

Gauge Registry::GetGauge(std::string_view name, TagList tags) noexcept {
  return Get<Gauge>(name, tags, MeterType::kGauge);
}

MaxGauge Registry::GetMaxGauge(std::string_view name, TagList tags) noexcept {
  return Get<MaxGauge>(name, tags, MeterType::kMaxGauge);
}

AgeGauge Registry::GetAgeGauge(std::string_view name, TagList tags) noexcept {
  return Get<AgeGauge>(name, tags, MeterType::kAgeGauge);
}

PercentileTimer Registry::GetPercentileTimer(std::string_view name, TagList tags,
                                             std::chrono::nanoseconds min,
                                             std::chrono::nanoseconds max) noexcept {
  if (min.count() < 0 || min > max) {
    impl_->LogLimited(LogLevel::kWarning, "percentile timer '" + Printable(name) +
                                              "': empty range; using a no-op meter");
    return PercentileTimer();
  }
  std::int64_t lo = 0, hi = 0;
  detail::Word* w =
      Register(name, tags, MeterType::kPercentileTimer, min.count(), max.count(), &lo, &hi);
  return w != nullptr ? PercentileTimer(w, lo, hi) : PercentileTimer();
}

PercentileDistributionSummary Registry::GetPercentileDistributionSummary(
    std::string_view name, TagList tags, std::int64_t min, std::int64_t max) noexcept {
  if (min < 0 || min > max) {
    impl_->LogLimited(LogLevel::kWarning, "percentile distribution summary '" + Printable(name) +
                                              "': empty range; using a no-op meter");
    return PercentileDistributionSummary();
  }
  std::int64_t lo = 0, hi = 0;
  detail::Word* w =
      Register(name, tags, MeterType::kPercentileDistributionSummary, min, max, &lo, &hi);
  return w != nullptr ? PercentileDistributionSummary(w, lo, hi) : PercentileDistributionSummary();
}

SegmentInfo Registry::Info() const {
  const internal::TableView& view = impl_->segment->view();
  const internal::SegmentHeader& h = *view.header;
  SegmentInfo info;
  info.name = segment_name();
  info.layout_version = h.layout_version;
  info.size_bytes = impl_->segment->size();
  info.max_meters = view.max_meters;  // the geometry validated on attach
  info.table_slots = view.table_slots;
  info.value_words = view.value_words;
  // relaxed, all: statistics read for display; no data depends on them.
  info.value_words_used = h.values_used.load(std::memory_order_relaxed);
  info.meters = static_cast<std::uint32_t>(h.meters.load(std::memory_order_relaxed));
  info.id_bytes = view.id_bytes;
  info.id_bytes_used = h.ids_used.load(std::memory_order_relaxed);
  info.reserve_meters = view.reserve_meters;
  info.overflow_meters =
      static_cast<std::uint32_t>(h.overflow_meters.load(std::memory_order_relaxed));
  info.overflow = h.overflow.load(std::memory_order_relaxed);
  info.invalid_ids = h.invalid_ids.load(std::memory_order_relaxed);
  info.type_mismatches = h.type_mismatches.load(std::memory_order_relaxed);
  info.recovered_claims = h.recovered_claims.load(std::memory_order_relaxed);
  info.created_unix_ns = h.created_unix_ns;
  info.collector_pid = h.collector_pid.load(std::memory_order_relaxed);
  info.collector_heartbeat_unix_ns = h.collector_heartbeat_unix_ns.load(std::memory_order_relaxed);
  return info;
}

}  // namespace spectator
