#pragma once

// One collector per segment: an exclusive flock(2) on the segment file
// itself (/dev/shm/NAME). The kernel drops it when the holder exits, however
// it exits, so a kill -9'd collector never leaves a stale lock behind.
//
// Internal (include-internal/, never installed): holding it is what grants
// a SegmentReader the right to take (reader.h), so only code built with the
// library, the collector and the tests, can take values out of a segment.

#include <string>

#include "spectator/export.h"

namespace spectator {

/// The lock is a process's: a process that holds it on a file and locks the
/// same file again shares it (a count, released with the last holder), and
/// another process is refused until then. Thread safety: any thread; one
/// object is used by one thread at a time.
class SPECTATOR_EXPORT CollectorLock {
 public:
  CollectorLock() = default;
  /// Takes the lock of segment `name` without waiting. \throw Error
  /// (kPermission) when another process holds it, with TryAcquire's reason.
  explicit CollectorLock(const std::string& name);
  ~CollectorLock();
  CollectorLock(const CollectorLock&) = delete;
  CollectorLock& operator=(const CollectorLock&) = delete;

  /// Takes the lock of segment `name` without waiting (releasing any held
  /// before). Returns false with a one-line reason in *error when another
  /// process holds it or the file cannot be opened.
  bool TryAcquire(const std::string& name, std::string* error);

  bool held() const noexcept { return held_ != nullptr; }

  /// Whether the lock is held on the very file open as `fd` (same device
  /// and inode), e.g. the segment a Registry maps.
  bool Covers(int fd) const noexcept;

  struct Held;  // the process-wide record of one locked file

 private:
  void Release() noexcept;
  Held* held_ = nullptr;
};

}  // namespace spectator
