#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "process.h"

namespace spectator::testing {

/// Plays a live process (of this build or another) that has a segment file
/// open: holds the shared holders' lock through a descriptor of its own
/// (src/process.h), as every Registry does. A segment someone holds is never
/// replaced.
class SegmentHolder {
 public:
  explicit SegmentHolder(const std::string& path)
      : fd_(::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC)) {
    EXPECT_GE(fd_, 0) << path;
    if (fd_ >= 0) {
      EXPECT_EQ(internal::LockShared(fd_), 0) << path;
    }
  }
  ~SegmentHolder() {
    if (fd_ >= 0) ::close(fd_);  // drops the lock
  }
  SegmentHolder(const SegmentHolder&) = delete;
  SegmentHolder& operator=(const SegmentHolder&) = delete;

 private:
  int fd_;
};

}  // namespace spectator::testing
