#pragma once

// One collector per segment: an exclusive flock(2) on the segment file
// itself (/dev/shm/NAME). The kernel drops it when the holder exits, however
// it exits, so a kill -9'd collector never leaves a stale lock behind.

#include <string>

namespace spectator::collector {

class CollectorLock {
 public:
  CollectorLock() = default;
  ~CollectorLock();
  CollectorLock(const CollectorLock&) = delete;
  CollectorLock& operator=(const CollectorLock&) = delete;

  /// Takes the lock of segment `name` without waiting. Returns false with a
  /// one-line reason in *error when another process holds it or the file
  /// cannot be opened.
  bool TryAcquire(const std::string& name, std::string* error);

 private:
  int fd_ = -1;
};

}  // namespace spectator::collector
