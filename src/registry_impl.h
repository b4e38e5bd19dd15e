#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "id_table.h"
#include "segment.h"
#include "spectator/registry.h"

namespace spectator {

struct Registry::Impl {
  std::unique_ptr<internal::Segment> segment;
  internal::IdTable table;
  Logger log;
  std::atomic<std::uint64_t> log_lines{0};

  Impl(std::unique_ptr<internal::Segment> seg, Logger logger)
      : segment(std::move(seg)), table(segment->view()), log(std::move(logger)) {}

  /// Logs a registration problem; after 100 lines only every 1000th, so a hot
  /// loop asking for a bad Id cannot flood the log. The segment counters keep
  /// the exact numbers.
  void LogLimited(LogLevel level, const std::string& message);
};

}  // namespace spectator
