#pragma once

// A raw mapping of a segment file for white-box tests (includes src/).

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "id_table.h"
#include "segment_layout.h"
#include "spectator/id.h"

namespace spectator::testing {

/// A second, independent mapping of /dev/shm/<name>, behind the library's
/// back: read-write, what a buggy or hostile process sharing the segment
/// could write to; read-only, to look at collector-owned words (the pending
/// journal) that no API exposes.
class RawSegment {
 public:
  enum class Access { kReadWrite, kReadOnly };

  explicit RawSegment(const std::string& path, Access access = Access::kReadWrite) {
    const bool rw = access == Access::kReadWrite;
    const int fd = ::open(path.c_str(), (rw ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_size > 0) {
      size_ = static_cast<std::size_t>(st.st_size);
      void* p = ::mmap(nullptr, size_, rw ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
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
  /// The value words of the READY meter with canonical Id `id`, or nullptr.
  /// Bounds-checked against the live header: the test trusts the segment no
  /// more than the collector (usable on a read-only mapping).
  const detail::Word* ReadyValueWords(std::string_view id) const {
    if (base_ == nullptr || size_ < sizeof(internal::SegmentHeader)) return nullptr;
    const auto& h = *reinterpret_cast<const internal::SegmentHeader*>(base_);
    const std::uint64_t entries = h.entries_offset, values = h.values_offset;
    if (entries > size_ || values > size_ ||
        std::uint64_t{h.table_slots} * sizeof(internal::Entry) > size_ - entries) {
      return nullptr;
    }
    for (std::uint32_t s = 0; s < h.table_slots; ++s) {
      const auto& e =
          *reinterpret_cast<const internal::Entry*>(base_ + entries + s * sizeof(internal::Entry));
      // acquire: pairs with the claimer's READY release; the fields read next
      // were written before it.
      if (e.state.load(std::memory_order_acquire) != internal::kReadyState) continue;
      const std::uint64_t id_at = h.ids_offset + std::uint64_t{e.id_offset} * 8;
      if (e.id_len != id.size() || id_at > size_ || e.id_len > size_ - id_at ||
          std::string_view(base_ + id_at, e.id_len) != id) {
        continue;
      }
      const std::uint64_t offset = std::uint64_t{e.value_line} * 8;
      if (offset > (size_ - values) / 8 || e.value_words > (size_ - values) / 8 - offset ||
          e.value_words == 0) {
        return nullptr;
      }
      return reinterpret_cast<const detail::Word*>(base_ + values) + offset;
    }
    return nullptr;
  }

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

}  // namespace spectator::testing
