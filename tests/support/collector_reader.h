#pragma once

// A SegmentReader that may take, as the collector's: it holds the segment's
// collector lock (shared with any other holder in this test process; another
// process, e.g. a spectator-collector the test starts, is refused it).

#include <string>

#include "spectator/internal/collector_lock.h"
#include "spectator/internal/reader.h"
#include "spectator/registry.h"

namespace spectator::testing {

namespace internal_ {
struct HeldCollectorLock {
  explicit HeldCollectorLock(const std::string& segment) : lock(segment) {}
  CollectorLock lock;
};
}  // namespace internal_

/// \throw Error when another process holds the lock.
class CollectorReader : private internal_::HeldCollectorLock, public SegmentReader {
 public:
  explicit CollectorReader(Registry& registry)
      : HeldCollectorLock(registry.segment_name()), SegmentReader(registry, lock) {}
};

}  // namespace spectator::testing
