#pragma once

// Helpers shared by the benchmarks: unique shared-memory names, a bare
// MAP_SHARED word area for the baselines, cleanup of everything a run creates,
// and the row table that bench_main.cc turns into the one results table.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "spectator/registry.h"

namespace spectator::bench {

/// "spectator-bench-<pid>-<tag>-<n>": unique per process and call, so two runs
/// (or two engineers) never share a segment, and scripts/bench can remove
/// whatever a crashed run left behind by its pid.
std::string UniqueName(const std::string& tag);

/// The i-th Id of the registry and collector benchmarks: a realistic name
/// and three tags, one of them high-cardinality (a URI).
struct IdSpec {
  std::string name;
  Tags tags;
};
IdSpec MakeId(std::uint32_t i);

/// Runs `fn` at the end of main (or at exit), in reverse order of
/// registration. Used to remove every segment and shm file a run creates.
void AddCleanup(std::function<void()> fn);
void RunCleanups();

/// A registry on a fresh, uniquely named segment that is removed at the end
/// of the run (or earlier, when the object is destroyed).
class BenchSegment {
 public:
  explicit BenchSegment(const std::string& tag, SegmentOptions options = {});
  ~BenchSegment();
  BenchSegment(const BenchSegment&) = delete;
  BenchSegment& operator=(const BenchSegment&) = delete;

  Registry& registry() { return *registry_; }
  const std::string& name() const { return name_; }
  /// Bytes of /dev/shm actually allocated to the segment (tmpfs allocates a
  /// page when it is first touched), from st_blocks.
  std::uint64_t ResidentBytes() const;

 private:
  std::string name_;
  std::unique_ptr<Registry> registry_;
};

/// `words` 8-byte atomics in a real /dev/shm file mapped MAP_SHARED, the
/// same kind of memory the segment lives in: the bare-atomic baseline. The
/// mapping is inherited by fork()ed children. Word i is at byte 8 * i; the
/// area starts on a page boundary.
class ShmWords {
 public:
  explicit ShmWords(std::size_t words);
  ~ShmWords();
  ShmWords(const ShmWords&) = delete;
  ShmWords& operator=(const ShmWords&) = delete;

  std::atomic<std::uint64_t>* word(std::size_t i) { return base_ + i; }

 private:
  std::string name_;
  std::size_t bytes_;
  std::atomic<std::uint64_t>* base_;
};

}  // namespace spectator::bench
