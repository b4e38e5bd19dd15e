#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "id_table.h"

namespace spectator::testing {

/// A segment laid out in heap memory, for testing the table without shared
/// memory. A second IdTable over the same bytes plays a second process. Claim
/// locks live on an anonymous file (memfd) that stands for the segment file.
class HeapSegment {
 public:
  HeapSegment(std::uint32_t max_meters, std::uint64_t value_words) {
    if (!internal::ComputeLayout(max_meters, value_words, &layout_)) std::abort();
    bytes_ = static_cast<char*>(std::aligned_alloc(64, layout_.total_size));
    std::memset(bytes_, 0, layout_.total_size);
    internal::InitializeSegment(bytes_, max_meters, value_words, layout_, 1);
    fd_ = ::memfd_create("heap-segment", MFD_CLOEXEC);
    if (fd_ < 0) std::abort();
  }
  ~HeapSegment() {
    std::free(bytes_);
    ::close(fd_);
  }
  HeapSegment(const HeapSegment&) = delete;
  HeapSegment& operator=(const HeapSegment&) = delete;

  internal::TableView view() const { return internal::ViewOf(bytes_, fd_); }
  int fd() const { return fd_; }
  internal::SegmentHeader& header() const { return *view().header; }
  char* bytes() const { return bytes_; }
  const internal::Layout& layout() const { return layout_; }

 private:
  internal::Layout layout_;
  char* bytes_ = nullptr;
  int fd_ = -1;
};

}  // namespace spectator::testing
