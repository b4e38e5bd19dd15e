#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "spectator/registry.h"

namespace spectator::testing {

/// A segment name unique to this test, this process and this call, removed
/// (if it exists) on construction and on destruction.
class TempSegment {
 public:
  TempSegment() {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string test = info != nullptr ? std::string(info->test_suite_name()) + "." + info->name()
                                       : std::string("none");
    for (char& c : test) {
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) c = '_';
    }
    name_ = "spectator-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) +
            "-" + test.substr(0, 120);
    Registry::Remove(name_);
  }
  ~TempSegment() { Registry::Remove(name_); }
  TempSegment(const TempSegment&) = delete;
  TempSegment& operator=(const TempSegment&) = delete;

  const std::string& name() const { return name_; }
  std::string path() const { return "/dev/shm/" + name_; }

  /// Options for this segment, with small capacities unless told otherwise.
  SegmentOptions options(std::uint32_t max_meters = 256,
                         std::uint64_t value_words = std::uint64_t{1} << 16) const {
    SegmentOptions o;
    o.name = name_;
    o.max_meters = max_meters;
    o.value_words = value_words;
    return o;
  }

 private:
  std::string name_;
};

}  // namespace spectator::testing
