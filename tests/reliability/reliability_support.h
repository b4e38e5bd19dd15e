#pragma once

// Helpers shared by the reliability tests: round counts from the environment,
// a second raw mapping of a segment file to scribble on, a shared anonymous
// mapping for children to leave witnesses in, and waiting for a child with a
// deadline.

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

namespace spectator::reliability {

using spectator::testing::EnvCount;

/// Rounds of the worker-death loops (SPECTATOR_RELIABILITY_ROUNDS).
inline int Rounds(int fallback) {
  return static_cast<int>(EnvCount("SPECTATOR_RELIABILITY_ROUNDS", fallback));
}

/// Iterations of the fuzz loops (SPECTATOR_FUZZ_ITERATIONS).
inline long FuzzIterations(long fallback) {
  return EnvCount("SPECTATOR_FUZZ_ITERATIONS", fallback);
}

/// A second, independent read-write mapping of /dev/shm/<name>: what a buggy
/// or hostile process sharing the segment could write to.
class RawSegment {
 public:
  explicit RawSegment(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_size > 0) {
      size_ = static_cast<std::size_t>(st.st_size);
      void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      base_ = p == MAP_FAILED ? nullptr : static_cast<char*>(p);
    }
    ::close(fd);
  }
  ~RawSegment() {
    if (base_ != nullptr) ::munmap(base_, size_);
  }
  RawSegment(const RawSegment&) = delete;
  RawSegment& operator=(const RawSegment&) = delete;

  bool ok() const { return base_ != nullptr; }
  char* bytes() const { return base_; }
  std::size_t size() const { return size_; }
  internal::SegmentHeader& header() const {
    return *reinterpret_cast<internal::SegmentHeader*>(base_);
  }
  // Geometry as the creator wrote it; read once, before any test scribbles.
  internal::Entry* entries() const {
    return reinterpret_cast<internal::Entry*>(base_ + sizeof(internal::SegmentHeader));
  }
  std::uint32_t slots() const {
    return static_cast<std::uint32_t>((values_offset() - sizeof(internal::SegmentHeader)) /
                                      sizeof(internal::Entry));
  }
  std::uint64_t values_offset() const { return header().values_offset; }

  char* ids() const { return base_ + header().ids_offset; }
  // The entry's Id in the arena (empty when its offset or length is off).
  std::string_view IdOf(const internal::Entry& e) const {
    const std::size_t at = header().ids_offset + std::size_t{e.id_offset} * 8;
    if (e.id_len > kMaxIdBytes || at > size_ || e.id_len > size_ - at) return {};
    return {base_ + at, e.id_len};
  }
  // The entry's value words (no bounds check: for entries the test made).
  std::atomic<std::uint64_t>* WordsOf(const internal::Entry& e) const {
    return reinterpret_cast<std::atomic<std::uint64_t>*>(base_ + values_offset()) +
           std::size_t{e.value_line} * 8;
  }

  internal::Entry* Find(std::string_view id) const {
    for (std::uint32_t i = 0; i < slots(); ++i) {
      internal::Entry& e = entries()[i];
      if (e.state.load() != 0 && IdOf(e) == id) return &e;
    }
    return nullptr;
  }

  struct Kinds {
    std::uint32_t empty = 0, claimed = 0, ready = 0, abandoned = 0;
    std::uint32_t NonEmpty() const { return claimed + ready + abandoned; }
  };
  Kinds CountKinds() const {
    Kinds k;
    for (std::uint32_t i = 0; i < slots(); ++i) {
      switch (internal::KindOf(entries()[i].state.load(std::memory_order_acquire))) {
        case internal::EntryKind::kEmpty:
          ++k.empty;
          break;
        case internal::EntryKind::kClaimed:
          ++k.claimed;
          break;
        case internal::EntryKind::kReady:
          ++k.ready;
          break;
        case internal::EntryKind::kAbandoned:
          ++k.abandoned;
          break;
      }
    }
    return k;
  }

 private:
  char* base_ = nullptr;
  std::size_t size_ = 0;
};

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

/// What WaitChildFor returns when the child did not exit before the deadline
/// (it has then been killed and reaped, so no test leaves a process behind).
inline constexpr int kChildTimedOut = -2;

/// Waits for a child until `deadline`: its exit code, 128 + signal if it was
/// killed, or kChildTimedOut. Polls waitpid with a short pause between polls:
/// the pause is not synchronisation, only a way to not spin on a core.
inline int WaitChildFor(pid_t pid, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
    if (r < 0 && errno != EINTR) return -1;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return kChildTimedOut;
    }
    const timespec pause{0, 200000};  // 200 us
    ::nanosleep(&pause, nullptr);
  }
}

/// Every reading of one scan, by canonical Id, plus how often each Id was
/// delivered (an Id delivered twice would be a duplicate entry).
struct ScanResult {
  struct Value {
    MeterType type = MeterType::kCounter;
    double count = 0, total = 0, max = 0, value = 0;
    std::uint64_t buckets_sum = 0;
    std::uint64_t buckets[kPercentileBucketCount] = {};
  };
  std::map<std::string, Value> by_id;
  std::map<std::string, int> deliveries;
  SegmentReader::ScanStats stats;

  /// The count read for `id`, or -1 when the scan did not deliver it.
  double Count(const std::string& id) const {
    const auto it = by_id.find(id);
    return it == by_id.end() ? -1 : it->second.count;
  }

  int Duplicates() const {
    int d = 0;
    for (const auto& [id, n] : deliveries) d += n > 1 ? n - 1 : 0;
    return d;
  }
};

/// Scans with `mode`; with kTake, commits every reading (a publish that
/// succeeded), so values are settled and never returned twice.
inline ScanResult ScanSegment(SegmentReader& reader, SegmentReader::Mode mode) {
  ScanResult out;
  out.stats = reader.Scan(mode, std::chrono::system_clock::now(), [&](const MeterReading& r) {
    const std::string id(r.id);
    ++out.deliveries[id];
    ScanResult::Value& v = out.by_id[id];
    v.type = r.type;
    v.count = r.count;
    v.total = r.total;
    v.max = r.max;
    v.value = r.value;
    if (r.buckets != nullptr) {
      for (std::size_t b = 0; b < kPercentileBucketCount; ++b) {
        v.buckets[b] = r.buckets[b];
        v.buckets_sum += r.buckets[b];
      }
    }
    if (mode == SegmentReader::Mode::kTake) reader.Commit(r);
  });
  return out;
}

}  // namespace spectator::reliability
