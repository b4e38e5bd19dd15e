// The reader treats the segment as untrusted: corrupt entries are skipped and
// counted, never dereferenced. Run under ASan to catch any stray read.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include "id_table.h"
#include "spectator/internal/reader.h"
#include "support/collector_reader.h"
#include "spectator/spectator.h"
#include "support/readings.h"
#include "support/temp_segment.h"

namespace spectator {
namespace {

using spectator::testing::ScanAll;
using spectator::testing::TempSegment;
using internal::Entry;

/// A second, independent mapping of a segment file, to scribble on it the way
/// a buggy or hostile process could.
class RawMapping {
 public:
  explicit RawMapping(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDWR);
    EXPECT_GE(fd, 0);
    struct stat st {};
    ::fstat(fd, &st);
    size_ = static_cast<std::size_t>(st.st_size);
    base_ = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    EXPECT_NE(base_, MAP_FAILED);
  }
  ~RawMapping() { ::munmap(base_, size_); }
  internal::TableView view() const { return internal::ViewOf(base_, -1); }
  // The bytes of an entry's Id in the arena, to scribble on.
  char* IdOf(const Entry& e) const { return view().ids + std::size_t{e.id_offset} * 8; }
  Entry* FindEntry(std::string_view id) const {
    const auto v = view();
    for (std::uint32_t i = 0; i < v.header->table_slots; ++i) {
      if (v.entries[i].state.load() != 0 && internal::IdBytes(v, v.entries[i]) == id) {
        return &v.entries[i];
      }
    }
    return nullptr;
  }

 private:
  void* base_ = nullptr;
  std::size_t size_ = 0;
};

class Reader : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 8; ++i) {
      registry_.GetCounter("c" + std::to_string(i)).Add(i + 1);
    }
  }
  SegmentReader::ScanStats ScanCount(std::size_t* good) {
    testing::CollectorReader reader(registry_);
    SegmentReader::ScanStats stats;
    *good = ScanAll(reader, SegmentReader::Mode::kPeek, std::chrono::system_clock::now(), &stats)
                .size();
    return stats;
  }
  TempSegment segment_;
  Registry registry_{segment_.options(64, 4096)};
  RawMapping raw_{segment_.path()};
};

TEST_F(Reader, ReadsEveryValidMeter) {
  std::size_t good = 0;
  EXPECT_EQ(ScanCount(&good).corrupt, 0u);
  EXPECT_EQ(good, 8u);
}

TEST_F(Reader, SkipsAndCountsEachKindOfCorruptEntry) {
  raw_.FindEntry("c0")->type = 0;                      // no such type
  raw_.FindEntry("c1")->type = 200;                    // no such type
  raw_.FindEntry("c2")->value_line = 1u << 31;     // far outside the value area
  raw_.FindEntry("c3")->value_words = 288;             // wrong size for a counter
  raw_.FindEntry("c4")->id_len = 60000;                // longer than an Id can be
  Entry* e5 = raw_.FindEntry("c5");
  raw_.IdOf(*e5)[0] = ',';                             // not canonical
  raw_.FindEntry("c6")->hash.store(12345);             // hash does not match the Id
  Entry* e7 = raw_.FindEntry("c7");
  e7->state.store(internal::kReadyState | 77);         // READY with stray bits
  std::size_t good = 99;
  EXPECT_EQ(ScanCount(&good).corrupt, 8u);
  EXPECT_EQ(good, 0u);
}

TEST_F(Reader, OffsetPlusLengthOverflowIsCaught) {
  Entry* e = raw_.FindEntry("c0");
  e->value_line = UINT32_MAX;  // past the value area, whatever its size
  std::size_t good = 0;
  EXPECT_EQ(ScanCount(&good).corrupt, 1u);
  EXPECT_EQ(good, 7u);
}

TEST_F(Reader, ValidatedEntriesAreCopiedSoLaterScribblesCannotMisleadIt) {
  testing::CollectorReader reader(registry_);
  ASSERT_EQ(ScanAll(reader, SegmentReader::Mode::kPeek).size(), 8u);
  raw_.FindEntry("c0")->value_line = 1u << 31;
  std::memset(raw_.IdOf(*raw_.FindEntry("c1")), 0xFF, 2);
  const auto again = ScanAll(reader, SegmentReader::Mode::kPeek);
  EXPECT_EQ(again.size(), 8u);
  EXPECT_EQ(again.count("c1"), 1u);
}

TEST_F(Reader, EveryReadingKeepsItsOwnIdAcrossLaterDiscoveries) {
  // The reader keeps its copies of the Ids in scan order and moves them when
  // later meters are found: each reading must still carry its own Id.
  testing::CollectorReader reader(registry_);
  ASSERT_EQ(ScanAll(reader, SegmentReader::Mode::kPeek).size(), 8u);
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 12; ++i) {
      const int n = 100 * (round + 1) + i;
      registry_.GetCounter("d" + std::to_string(n), {{"k", std::string(i + 1, 'v')}}).Add(n);
    }
    const auto all = ScanAll(reader, SegmentReader::Mode::kPeek);
    ASSERT_EQ(all.size(), 8u + 12u * static_cast<std::size_t>(round + 1));
    for (int i = 0; i < 8; ++i) EXPECT_EQ(all.at("c" + std::to_string(i)).count, i + 1);
    for (int r = 0; r <= round; ++r) {
      for (int i = 0; i < 12; ++i) {
        const int n = 100 * (r + 1) + i;
        const std::string id = "d" + std::to_string(n) + ",k=" + std::string(i + 1, 'v');
        ASSERT_EQ(all.count(id), 1u) << id;
        EXPECT_EQ(all.at(id).count, n) << id;
      }
    }
  }
}

TEST_F(Reader, RandomGarbageOverEntriesNeverCrashesIt) {
  // Fuzz with a fixed seed: overwrite random bytes of random entries, scan.
  std::mt19937_64 rng(20261125);
  const auto v = raw_.view();
  auto* entries = reinterpret_cast<unsigned char*>(v.entries);
  const std::size_t bytes = std::size_t{v.header->table_slots} * sizeof(Entry);
  for (int round = 0; round < 300; ++round) {
    for (int k = 0; k < 16; ++k) entries[rng() % bytes] = static_cast<unsigned char>(rng());
    if (round % 10 == 0) {
      // Whole entries of noise that look READY.
      Entry& e = v.entries[rng() % v.header->table_slots];
      for (std::size_t b = 8; b < sizeof(Entry); ++b) {
        reinterpret_cast<unsigned char*>(&e)[b] = static_cast<unsigned char>(rng());
      }
      e.state.store(internal::kReadyState);
    }
    testing::CollectorReader reader(registry_);
    SegmentReader::ScanStats stats;
    const auto got = ScanAll(reader, SegmentReader::Mode::kTake,
                             std::chrono::system_clock::now(), &stats);
    ASSERT_LE(got.size() + stats.corrupt, v.header->table_slots);
  }
}

TEST_F(Reader, WorkersRefuseACorruptEntryForTheirIdInsteadOfWritingOutOfBounds) {
  raw_.FindEntry("c0")->value_line = 1u << 31;
  Counter c = registry_.GetCounter("c0");
  c.Increment();  // into its overflow series, not out of bounds
  testing::CollectorReader reader(registry_);
  const auto r = ScanAll(reader, SegmentReader::Mode::kPeek);
  EXPECT_EQ(r.count("c0"), 0u) << "still corrupt";
  EXPECT_EQ(r.at("c0,spectator.overflow=true").count, 1);
}

TEST_F(Reader, HeartbeatIsVisibleInInfo) {
  testing::CollectorReader reader(registry_);
  reader.Heartbeat(4242, std::chrono::system_clock::time_point(std::chrono::seconds(7)));
  const SegmentInfo info = registry_.Info();
  EXPECT_EQ(info.collector_pid, 4242);
  EXPECT_EQ(info.collector_heartbeat_unix_ns, 7000000000u);
}

}  // namespace
}  // namespace spectator
