#pragma once

// Helpers shared by the reliability tests: round counts from the environment
// and a shared anonymous mapping for children to leave witnesses in. The raw
// mapping of a segment (support/raw_segment.h), waiting for a child with a
// deadline (support/fork_helpers.h) and scans by Id (support/readings.h) are
// the shared test helpers, named here for the reliability namespace.

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <string>
#include <string_view>

#include "id_table.h"
#include "spectator/internal/reader.h"
#include "support/env_count.h"
#include "support/fork_helpers.h"
#include "support/raw_segment.h"
#include "support/readings.h"

namespace spectator::reliability {

using spectator::testing::EnvCount;
using spectator::testing::kChildTimedOut;
using spectator::testing::RawSegment;
using spectator::testing::ScanResult;
using spectator::testing::ScanSegment;
using spectator::testing::WaitChildFor;

/// Rounds of the worker-death loops (SPECTATOR_RELIABILITY_ROUNDS).
inline int Rounds(int fallback) {
  return static_cast<int>(EnvCount("SPECTATOR_RELIABILITY_ROUNDS", fallback));
}

/// Iterations of the fuzz loops (SPECTATOR_FUZZ_ITERATIONS).
inline long FuzzIterations(long fallback) {
  return EnvCount("SPECTATOR_FUZZ_ITERATIONS", fallback);
}

/// `n` atomic words in a MAP_SHARED anonymous mapping made before fork():
/// children write witnesses there, and the parent reads them after a kill.
/// The words are not part of any segment, so corrupting or killing anything
/// in the segment cannot touch them.
class SharedWords {
 public:
  explicit SharedWords(std::size_t n) : n_(n) {
    void* p = ::mmap(nullptr, n * sizeof(Word), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                     -1, 0);
    if (p == MAP_FAILED) std::abort();
    words_ = static_cast<Word*>(p);
    for (std::size_t i = 0; i < n; ++i) new (&words_[i]) Word(0);
  }
  ~SharedWords() { ::munmap(words_, n_ * sizeof(Word)); }
  SharedWords(const SharedWords&) = delete;
  SharedWords& operator=(const SharedWords&) = delete;

  using Word = std::atomic<std::uint64_t>;
  Word& operator[](std::size_t i) const { return words_[i]; }

 private:
  Word* words_;
  std::size_t n_;
};

}  // namespace spectator::reliability
