// Fault 2: corrupt or hostile segments, met by Registry attach and by
// SegmentReader (peek and take). Each case ends in a clear Error naming the
// segment (and the file left as it was), or in bad entries skipped and
// counted in ScanStats.corrupt; never a crash or an access outside the
// mapping (the ASan+UBSan build proves the latter).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "id_table.h"
#include "reliability_support.h"
#include "segment_layout.h"
#include "spectator/internal/reader.h"
#include "support/collector_reader.h"
#include "spectator/spectator.h"
#include "support/fork_helpers.h"
#include "support/segment_holder.h"
#include "support/temp_segment.h"

namespace spectator::reliability {
namespace {

using namespace std::chrono_literals;
using internal::Entry;
using internal::SegmentHeader;
using testing::ForkChild;
using testing::TempSegment;

void Quiet(LogLevel, std::string_view) {}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, const std::string& bytes) {
  ::unlink(path.c_str());
  const int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

SegmentOptions QuietOptions(const TempSegment& seg, std::uint32_t max_meters = 64,
                            std::uint64_t value_words = 4096) {
  SegmentOptions o = seg.options(max_meters, value_words);
  o.logger = &Quiet;
  return o;
}

// Attaching must throw an Error whose message names the segment; returns its
// code. The segment file must be left exactly as it was. A file with our
// magic is held open meanwhile, as by a live process of another build:
// unheld, it would be replaced (HostileSegment.OurMagicOverNoiseNobodyHolds...).
ErrorCode ExpectRefused(const SegmentOptions& options, const std::string& path,
                        const std::string& fragment = "") {
  const std::string before = ReadFile(path);
  std::uint64_t magic = 0;
  if (before.size() >= sizeof magic) std::memcpy(&magic, before.data(), sizeof magic);
  std::optional<testing::SegmentHolder> holder;
  if (magic == internal::kMagic) holder.emplace(path);
  ErrorCode code = ErrorCode::kSystem;
  try {
    Registry r(options);
    ADD_FAILURE() << "attached to a hostile segment " << options.name;
  } catch (const Error& e) {
    code = e.code();
    const std::string what = e.what();
    EXPECT_NE(what.find(options.name), std::string::npos) << "does not name the segment: " << what;
    EXPECT_NE(what.find(fragment), std::string::npos) << "expected '" << fragment << "': " << what;
  }
  EXPECT_TRUE(ReadFile(path) == before) << "a refused segment was modified";
  return code;
}

// A valid segment file's bytes (no meters), made by a real Registry.
std::string ValidSegmentBytes(const TempSegment& seg, std::uint32_t max_meters = 64,
                              std::uint64_t value_words = 4096) {
  { Registry r(QuietOptions(seg, max_meters, value_words)); }
  return ReadFile(seg.path());
}

SegmentHeader& HeaderOf(std::string& bytes) {
  return *reinterpret_cast<SegmentHeader*>(bytes.data());
}

TEST(HostileSegment, RandomBytesAreRefusedAndLeftUntouched) {
  TempSegment seg;
  const std::size_t valid_size = ValidSegmentBytes(seg).size();
  std::mt19937_64 rng(0xBAD5EED);
  for (std::size_t size : {std::size_t{256}, std::size_t{4096}, valid_size, std::size_t{1} << 20}) {
    for (int round = 0; round < 10; ++round) {
      std::string bytes(size, '\0');
      for (char& c : bytes) c = static_cast<char>(rng());
      auto& h = HeaderOf(bytes);
      const std::uint64_t magic = h.magic.load();
      if (magic == 0 || magic == internal::kMagic) h.magic.store(0x0123456789ABCDEFULL);
      WriteFile(seg.path(), bytes);
      EXPECT_EQ(ExpectRefused(QuietOptions(seg), seg.path(), "not a spectator-shm segment"),
                ErrorCode::kForeignSegment);

      // Our magic and ready flag over noise: refused for version or size.
      h.magic.store(internal::kMagic);
      h.ready.store(internal::kReadyValue);
      WriteFile(seg.path(), bytes);
      const ErrorCode code = ExpectRefused(QuietOptions(seg), seg.path());
      EXPECT_TRUE(code == ErrorCode::kVersionMismatch || code == ErrorCode::kSizeMismatch);

      // ... and the right version too: refused for size.
      h.layout_version = kLayoutVersion;
      WriteFile(seg.path(), bytes);
      EXPECT_EQ(ExpectRefused(QuietOptions(seg), seg.path()), ErrorCode::kSizeMismatch);
    }
  }
}

// Noise under our magic that no process holds is a stale segment: replaced
// by a fresh one, never attached to and believed.
TEST(HostileSegment, OurMagicOverNoiseThatNobodyHoldsIsReplacedNotTrusted) {
  TempSegment seg;
  std::mt19937_64 rng(0x5EA1ED);
  for (std::size_t size : {std::size_t{16}, std::size_t{4096}, std::size_t{1} << 20}) {
    std::string bytes(size, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    std::memcpy(bytes.data(), &internal::kMagic, sizeof internal::kMagic);  // unaligned: memcpy
    WriteFile(seg.path(), bytes);
    Registry fresh(QuietOptions(seg));
    EXPECT_EQ(fresh.Info().layout_version, kLayoutVersion) << size;
    EXPECT_EQ(fresh.Info().meters, 0u) << size;
    EXPECT_NE(ReadFile(seg.path()), bytes) << size;
    Registry::Remove(seg.name());
  }
}

TEST(HostileSegment, ValidHeaderOverGarbageEntriesAttachesSkipsThemAndStillRegisters) {
  TempSegment seg;
  Registry creator(QuietOptions(seg, 64, 4096));
  for (int i = 0; i < 8; ++i) creator.GetCounter("keep", {{"i", std::to_string(i)}}).Add(i + 1);
  RawSegment raw(seg.path());
  ASSERT_TRUE(raw.ok());

  // Noise over every other empty entry, the state word included: forged
  // READY entries (some exactly kReadyState), claims whose lock nobody holds,
  // abandoned entries.
  std::mt19937_64 rng(0x6A7BA6E);
  std::uint32_t forged_ready = 0, garbled = 0;
  for (std::uint32_t i = 0; i < raw.slots(); ++i) {
    Entry& e = raw.entries()[i];
    if (e.state.load() != 0 || i % 2 != 0) continue;
    auto* b = reinterpret_cast<unsigned char*>(&e);
    for (std::size_t k = 0; k < sizeof(Entry); ++k) b[k] = static_cast<unsigned char>(rng());
    std::uint64_t state = e.state.load();
    if (i % 6 == 0) state = internal::kReadyState;
    e.state.store(state);
    if (internal::KindOf(state) == internal::EntryKind::kReady) ++forged_ready;
    ++garbled;
  }
  ASSERT_GT(forged_ready, 0u);

  // A second process attaches: the header is valid, so it must attach.
  Registry attacher(QuietOptions(seg));
  for (auto mode : {SegmentReader::Mode::kPeek, SegmentReader::Mode::kTake}) {
    testing::CollectorReader reader(attacher);
    const ScanResult r = ScanSegment(reader, mode);
    EXPECT_EQ(r.stats.corrupt, forged_ready);
    EXPECT_EQ(r.by_id.size(), 8u);
    for (int i = 0; i < 8; ++i) {
      const std::string id = "keep,i=" + std::to_string(i);
      ASSERT_EQ(r.by_id.count(id), 1u) << id;
      if (mode == SegmentReader::Mode::kPeek) {
        EXPECT_EQ(r.by_id.at(id).count, i + 1) << id;
      }
    }
  }

  // Registering among the garbage: each call returns promptly, and what is
  // live counts exactly.
  int live = 0;
  for (int i = 0; i < 40; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    Counter c = attacher.GetCounter("new", {{"i", std::to_string(i)}});
    // A stall would be the 2 s claim timeout; anything well below it is fine.
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms) << "registration " << i << " stalled";
    if (c.IsLive()) {
      ++live;
      c.Increment();
    }
  }
  EXPECT_EQ(live, 40) << "half of the table was still empty";
  testing::CollectorReader reader(attacher);
  const ScanResult r = ScanSegment(reader, SegmentReader::Mode::kPeek);
  EXPECT_EQ(r.stats.corrupt, forged_ready);
  EXPECT_EQ(r.Duplicates(), 0);
  EXPECT_EQ(r.by_id.size(), 8u + static_cast<std::size_t>(live));
  for (const auto& [id, v] : r.by_id) {
    if (id.rfind("new,", 0) == 0) {
      EXPECT_EQ(v.count, 1) << id;
    }
  }
  EXPECT_EQ(attacher.Info().overflow, 40u - static_cast<std::uint64_t>(live));
}

// One meter of each type, then each entry corrupted in another way. The
// reader skips and counts exactly the corrupted ones; the others read exact.
TEST(HostileSegment, EntryOffsetsAndLengthsOutsideTheMappingAreSkippedAndCounted) {
  TempSegment seg;
  Registry registry(QuietOptions(seg, 64, 4096));
  RawSegment raw(seg.path());
  ASSERT_TRUE(raw.ok());
  // In lines: the whole value area, the reserve for overflow meters included.
  const std::uint32_t lines =
      static_cast<std::uint32_t>((raw.header().value_words + raw.header().reserve_words) / 8);
  const std::uint64_t arena = raw.header().id_bytes + raw.header().reserve_id_bytes;
  struct Case {
    const char* id;
    void (*corrupt)(Entry&, std::uint32_t lines, std::uint64_t arena, char* ids);
  };
  const Case cases[] = {
      {"bad.offset.end", [](Entry& e, std::uint32_t n, std::uint64_t, char*) { e.value_line = n; }},
      {"bad.offset.straddles",
       [](Entry& e, std::uint32_t n, std::uint64_t, char*) { e.value_line = n - 1; }},
      {"bad.offset.huge",
       [](Entry& e, std::uint32_t, std::uint64_t, char*) { e.value_line = 1U << 31; }},
      {"bad.offset.wraps",
       [](Entry& e, std::uint32_t, std::uint64_t, char*) { e.value_line = ~0U; }},
      {"bad.words.huge",
       [](Entry& e, std::uint32_t, std::uint64_t, char*) { e.value_words = 0xFFFFFFFFU; }},
      {"bad.words.percentile",
       [](Entry& e, std::uint32_t, std::uint64_t, char*) { e.value_words = 288; }},
      {"bad.idlen.long",
       [](Entry& e, std::uint32_t, std::uint64_t, char*) { e.id_len = kMaxIdBytes + 1; }},
      {"bad.idlen.max", [](Entry& e, std::uint32_t, std::uint64_t, char*) { e.id_len = 0xFFFF; }},
      {"bad.idlen.zero", [](Entry& e, std::uint32_t, std::uint64_t, char*) { e.id_len = 0; }},
      {"bad.idoffset.end",
       [](Entry& e, std::uint32_t, std::uint64_t a, char*) {
         e.id_offset = static_cast<std::uint32_t>(a / 8);
       }},
      {"bad.idoffset.huge",
       [](Entry& e, std::uint32_t, std::uint64_t, char*) { e.id_offset = ~0U; }},
      {"bad.type.zero", [](Entry& e, std::uint32_t, std::uint64_t, char*) { e.type = 0; }},
      {"bad.type.high",
       [](Entry& e, std::uint32_t, std::uint64_t, char*) { e.type = kMaxMeterType + 1; }},
      {"bad.hash",
       [](Entry& e, std::uint32_t, std::uint64_t, char*) { e.hash.store(e.hash.load() ^ 2); }},
      {"bad.id.bytes",
       [](Entry& e, std::uint32_t, std::uint64_t, char* ids) {
         ids[std::size_t{e.id_offset} * 8 + 1] = '\n';
       }},
      {"bad.state", [](Entry& e, std::uint32_t, std::uint64_t, char*) {
         e.state.store(internal::kReadyState | 5);
       }},
  };
  // "bad.offset.straddles" is a percentile timer, so that the last line fits
  // a counter but not its 288 words; the rest are counters.
  for (const Case& c : cases) {
    if (std::string(c.id) == "bad.offset.straddles") {
      registry.GetPercentileTimer(c.id).Record(1s);
    } else {
      registry.GetCounter(c.id).Increment();
    }
  }
  Counter good = registry.GetCounter("good");
  good.Add(41);
  PercentileTimer good_pt = registry.GetPercentileTimer("good.pt");
  good_pt.Record(20ms);
  PercentileDistributionSummary bad_params =
      registry.GetPercentileDistributionSummary("bad.params");
  bad_params.Record(3);
  for (const Case& c : cases) {
    Entry* e = raw.Find(c.id);
    ASSERT_NE(e, nullptr) << c.id;
    c.corrupt(*e, lines, arena, raw.ids());
  }
  Entry* params = raw.Find("bad.params");
  ASSERT_NE(params, nullptr);
  raw.WordsOf(*params)[internal::kParamMinWord].store(10);
  raw.WordsOf(*params)[internal::kParamMaxWord].store(5);
  const std::size_t corrupted = sizeof cases / sizeof cases[0] + 1;

  for (auto mode : {SegmentReader::Mode::kPeek, SegmentReader::Mode::kTake}) {
    testing::CollectorReader reader(registry);
    const ScanResult r = ScanSegment(reader, mode);
    EXPECT_EQ(r.stats.corrupt, corrupted);
    EXPECT_EQ(r.by_id.size(), 2u);
    ASSERT_EQ(r.by_id.count("good"), 1u);
    ASSERT_EQ(r.by_id.count("good.pt"), 1u);
    EXPECT_EQ(r.by_id.at("good").count, 41);
    EXPECT_EQ(r.by_id.at("good.pt").buckets[PercentileBucketIndex(20000000)], 1u);
  }

  // The worker side meets the same entries: no storage is handed out past
  // the value area. A corrupt entry's Id gets no place of its own: its
  // updates go to its overflow meter, in the reserve, and every value word
  // of the meters' own area stays as it was.
  const std::size_t own_area = raw.header().value_words * 8;
  const std::string values_before(raw.bytes() + raw.values_offset(), own_area);
  for (const Case& c : cases) {
    const std::string id = c.id;
    if (id.rfind("bad.offset", 0) == 0 || id.rfind("bad.words", 0) == 0) {
      Counter counter = registry.GetCounter(c.id);
      counter.Increment();
    }
  }
  EXPECT_TRUE(std::string(raw.bytes() + raw.values_offset(), own_area) == values_before)
      << "a refused meter wrote into the value area";
  testing::CollectorReader reader(registry);
  const ScanResult after = ScanSegment(reader, SegmentReader::Mode::kPeek);
  EXPECT_EQ(after.Count("bad.offset.end,spectator.overflow=true"), 1);
  EXPECT_EQ(after.Count("bad.words.huge,spectator.overflow=true"), 1);
}

TEST(HostileSegment, HugeOrInconsistentHeaderCapacitiesAreRefused) {
  TempSegment seg;
  const std::string valid = ValidSegmentBytes(seg);
  internal::Layout huge;
  ASSERT_TRUE(internal::ComputeLayout(internal::kMaxMeters, internal::kMaxValueWords, &huge));
  struct Case {
    const char* what;
    void (*edit)(SegmentHeader&, const internal::Layout&);
    ErrorCode code;
  };
  const Case cases[] = {
      {"max_meters ~0", [](SegmentHeader& h, const internal::Layout&) { h.max_meters = ~0U; },
       ErrorCode::kSizeMismatch},
      {"value_words ~0", [](SegmentHeader& h, const internal::Layout&) { h.value_words = ~0ULL; },
       ErrorCode::kSizeMismatch},
      {"max_meters 0", [](SegmentHeader& h, const internal::Layout&) { h.max_meters = 0; },
       ErrorCode::kSizeMismatch},
      {"value_words 7", [](SegmentHeader& h, const internal::Layout&) { h.value_words = 7; },
       ErrorCode::kSizeMismatch},
      {"consistent but huge",
       [](SegmentHeader& h, const internal::Layout& l) {
         h.max_meters = internal::kMaxMeters;
         h.value_words = internal::kMaxValueWords;
         h.table_slots = l.table_slots;
         h.reserve_meters = l.reserve_meters;
         h.reserve_words = l.reserve_words;
         h.ids_offset = l.ids_offset;
         h.id_bytes = l.id_bytes;
         h.reserve_id_bytes = l.reserve_id_bytes;
         h.entries_offset = l.entries_offset;
         h.values_offset = l.values_offset;
         h.total_size = l.total_size;
       },
       ErrorCode::kSizeMismatch},
      {"table_slots doubled", [](SegmentHeader& h, const internal::Layout&) { h.table_slots *= 2; },
       ErrorCode::kSizeMismatch},
      {"table_slots 0", [](SegmentHeader& h, const internal::Layout&) { h.table_slots = 0; },
       ErrorCode::kSizeMismatch},
      {"entries_offset past the end",
       [](SegmentHeader& h, const internal::Layout&) { h.entries_offset = h.total_size; },
       ErrorCode::kSizeMismatch},
      {"values_offset ~0",
       [](SegmentHeader& h, const internal::Layout&) { h.values_offset = ~0ULL; },
       ErrorCode::kSizeMismatch},
      {"total_size ~0", [](SegmentHeader& h, const internal::Layout&) { h.total_size = ~0ULL; },
       ErrorCode::kSizeMismatch},
      {"header_size 0", [](SegmentHeader& h, const internal::Layout&) { h.header_size = 0; },
       ErrorCode::kSizeMismatch},
      {"entry_size 1", [](SegmentHeader& h, const internal::Layout&) { h.entry_size = 1; },
       ErrorCode::kSizeMismatch},
      {"layout_version ~0",
       [](SegmentHeader& h, const internal::Layout&) { h.layout_version = ~0U; },
       ErrorCode::kVersionMismatch},
  };
  for (const Case& c : cases) {
    std::string bytes = valid;
    c.edit(HeaderOf(bytes), huge);
    WriteFile(seg.path(), bytes);
    EXPECT_EQ(ExpectRefused(QuietOptions(seg), seg.path()), c.code) << c.what;
  }
  // The consistent-but-huge header names both sizes.
  std::string bytes = valid;
  cases[4].edit(HeaderOf(bytes), huge);
  WriteFile(seg.path(), bytes);
  ExpectRefused(QuietOptions(seg), seg.path(), std::to_string(huge.total_size));
  ExpectRefused(QuietOptions(seg), seg.path(), std::to_string(valid.size()));
}

TEST(HostileSegment, TruncatedOrExtendedFileIsRefused) {
  TempSegment seg;
  const std::string valid = ValidSegmentBytes(seg);
  std::string copy = valid;
  const std::uint64_t values_offset = HeaderOf(copy).values_offset;
  for (std::size_t size :
       {valid.size() - 8, valid.size() - 4096, static_cast<std::size_t>(values_offset),
        sizeof(SegmentHeader) + sizeof(Entry), sizeof(SegmentHeader), valid.size() + 4096}) {
    std::string bytes = valid;
    bytes.resize(size, '\0');
    WriteFile(seg.path(), bytes);
    EXPECT_EQ(ExpectRefused(QuietOptions(seg), seg.path(), std::to_string(size)),
              ErrorCode::kSizeMismatch)
        << size;
  }
  // Shorter than a header, with our magic.
  WriteFile(seg.path(), valid.substr(0, sizeof(SegmentHeader) - 1));
  EXPECT_EQ(ExpectRefused(QuietOptions(seg), seg.path(), "less than a header"),
            ErrorCode::kSizeMismatch);
}

TEST(HostileSegment, SymlinksAreRefusedAndTheirTargetsLeftAlone) {
  TempSegment seg;
  TempSegment real;
  { Registry r(QuietOptions(real)); }
  const std::string outside = "/tmp/spectator-reliability-target-" + std::to_string(::getpid());
  const std::string content = "not a segment, and must stay so\n";
  ::unlink(outside.c_str());
  {
    std::ofstream out(outside, std::ios::binary);
    out << content;
  }
  ASSERT_EQ(::chmod(outside.c_str(), 0644), 0);
  const std::string dangling = outside + ".missing";
  ::unlink(dangling.c_str());

  for (const std::string& target : {real.path(), outside, dangling}) {
    ::unlink(seg.path().c_str());
    ASSERT_EQ(::symlink(target.c_str(), seg.path().c_str()), 0) << target;
    for (bool create : {true, false}) {
      SegmentOptions o = QuietOptions(seg);
      o.create_if_missing = create;
      try {
        Registry r(o);
        ADD_FAILURE() << "followed a symlink to " << target;
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::kPermission) << e.what();
        EXPECT_NE(std::string(e.what()).find(seg.name()), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("symbolic link"), std::string::npos) << e.what();
      }
    }
    struct stat st {};
    EXPECT_EQ(::lstat(seg.path().c_str(), &st), 0);
    EXPECT_TRUE(S_ISLNK(st.st_mode)) << "the symlink itself must be left alone";
  }
  EXPECT_EQ(ReadFile(outside), content);
  struct stat st {};
  ASSERT_EQ(::stat(outside.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_NE(::access(dangling.c_str(), F_OK), 0) << "a dangling symlink's target was created";
  ::unlink(seg.path().c_str());
  ::unlink(outside.c_str());
}

// A FIFO or a directory in place of the segment: an Error, and no hang (a
// FIFO opened for reading could block): run in a child with a deadline.
TEST(HostileSegment, FifoOrDirectoryInPlaceOfTheSegmentIsRefusedWithoutHanging) {
  TempSegment seg;
  for (int kind = 0; kind < 2; ++kind) {
    ::unlink(seg.path().c_str());
    ::rmdir(seg.path().c_str());
    ASSERT_EQ(kind == 0 ? ::mkfifo(seg.path().c_str(), 0600) : ::mkdir(seg.path().c_str(), 0700),
              0);
    const pid_t child = ForkChild([&] {
      try {
        Registry r(QuietOptions(seg));
        return 1;
      } catch (const Error& e) {
        return std::string(e.what()).find(seg.name()) != std::string::npos ? 0 : 2;
      }
    });
    EXPECT_EQ(WaitChildFor(child, std::chrono::steady_clock::now() + 10s), 0)
        << (kind == 0 ? "fifo" : "directory") << " (" << kChildTimedOut << " = hung)";
  }
  ::rmdir(seg.path().c_str());
}

TEST(HostileSegment, SegmentOwnedByAnotherUserIsRefused) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root to chown the segment to another user (nobody, 65534)";
  }
  TempSegment seg;
  { Registry r(QuietOptions(seg)); }
  ASSERT_EQ(::chown(seg.path().c_str(), 65534, 65534), 0);
  EXPECT_EQ(ExpectRefused(QuietOptions(seg), seg.path(), "owned by uid 65534"),
            ErrorCode::kPermission);
  // Readable and writable by everyone: still not ours.
  ASSERT_EQ(::chmod(seg.path().c_str(), 0666), 0);
  EXPECT_EQ(ExpectRefused(QuietOptions(seg), seg.path(), "owned by uid 65534"),
            ErrorCode::kPermission);
}

// A claim naming token 0 was never handed out, and byte 0 of the file is the
// holders' lock that every user holds: it must be recovered at once, not
// waited on as if its claimer were alive.
TEST(HostileSegment, ClaimWithTokenZeroIsRecoveredWithoutStallingRegistration) {
  TempSegment seg;
  Registry registry(QuietOptions(seg));
  RawSegment raw(seg.path());
  ASSERT_TRUE(raw.ok());
  const std::uint64_t hash = internal::HashId("stall") | 1;
  Entry& e = raw.entries()[static_cast<std::uint32_t>(hash >> 7) & (raw.slots() - 1)];
  e.state.store(internal::ClaimedState(0));
  const auto t0 = std::chrono::steady_clock::now();
  Counter c = registry.GetCounter("stall");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms) << "waited out the 2 s claim timeout";
  EXPECT_TRUE(c.IsLive());
  EXPECT_EQ(registry.Info().recovered_claims, 1u);
}

// The header's geometry is validated when a Registry attaches. A process
// that rewrites it later must not make the reader index past the table or
// the value area: it keeps the geometry it validated.
TEST(HostileSegment, ReaderKeepsTheTableSizeItValidatedWhenTheHeaderIsRewritten) {
  TempSegment seg;
  Registry registry(QuietOptions(seg, 64, 4096));
  for (int i = 0; i < 8; ++i) registry.GetCounter("c", {{"i", std::to_string(i)}}).Add(i + 1);
  RawSegment raw(seg.path());
  ASSERT_TRUE(raw.ok());
  raw.header().table_slots = std::uint32_t{1} << 24;  // 8 GiB of "entries"
  raw.header().max_meters = std::uint32_t{1} << 23;
  for (auto mode : {SegmentReader::Mode::kPeek, SegmentReader::Mode::kTake}) {
    testing::CollectorReader reader(registry);
    const ScanResult r = ScanSegment(reader, mode);
    EXPECT_EQ(r.stats.corrupt, 0u);
    EXPECT_EQ(r.by_id.size(), 8u);
    if (mode == SegmentReader::Mode::kPeek) {
      EXPECT_EQ(r.Count("c,i=7"), 8);
    }
  }
}

TEST(HostileSegment, ReaderKeepsTheValueCapacityItValidatedWhenTheHeaderIsRewritten) {
  TempSegment seg;
  Registry registry(QuietOptions(seg, 64, 4096));
  for (int i = 0; i < 8; ++i) registry.GetCounter("c", {{"i", std::to_string(i)}}).Add(i + 1);
  RawSegment raw(seg.path());
  ASSERT_TRUE(raw.ok());
  const std::uint64_t capacity = raw.header().value_words;
  raw.header().value_words = internal::kMaxValueWords;
  // An entry pointing 2 GiB past the real value area, inside the forged one.
  raw.Find("c,i=0")->value_line =
      static_cast<std::uint32_t>((capacity + (std::uint64_t{1} << 28)) / 8);
  for (auto mode : {SegmentReader::Mode::kPeek, SegmentReader::Mode::kTake}) {
    testing::CollectorReader reader(registry);
    const ScanResult r = ScanSegment(reader, mode);
    EXPECT_EQ(r.stats.corrupt, 1u);
    EXPECT_EQ(r.by_id.size(), 7u);
  }
}

TEST(HostileSegment, RegistrationKeepsTheTableSizeItValidatedWhenTheHeaderIsRewritten) {
  TempSegment seg;
  Registry registry(QuietOptions(seg, 64, 4096));
  RawSegment raw(seg.path());
  ASSERT_TRUE(raw.ok());
  raw.header().table_slots = std::uint32_t{1} << 24;
  raw.header().max_meters = std::uint32_t{1} << 23;
  int live = 0;
  for (int i = 0; i < 32; ++i) {
    Counter c = registry.GetCounter("new", {{"i", std::to_string(i)}});
    if (c.IsLive()) {
      c.Increment();
      ++live;
    }
  }
  EXPECT_EQ(live, 32) << "the validated table has room for all of them";
  raw.header().table_slots = raw.slots();
  testing::CollectorReader reader(registry);
  const ScanResult r = ScanSegment(reader, SegmentReader::Mode::kPeek);
  EXPECT_EQ(r.by_id.size(), static_cast<std::size_t>(live));
  EXPECT_EQ(r.stats.corrupt, 0u);
}

TEST(HostileSegment, RegistrationKeepsTheValueCapacityItValidatedWhenTheHeaderIsRewritten) {
  TempSegment seg;
  Registry registry(QuietOptions(seg, 64, 4096));
  Counter before = registry.GetCounter("before");
  RawSegment raw(seg.path());
  ASSERT_TRUE(raw.ok());
  const std::uint64_t capacity = raw.header().value_words;
  // The real value area is used up; the header claims a far larger one.
  raw.header().values_used.store(capacity);
  raw.header().value_words = internal::kMaxValueWords;
  const std::uint64_t overflow = registry.Info().overflow;
  Counter c = registry.GetCounter("past.the.end");
  c.Increment();  // into its overflow series, in the reserve the attacher validated
  EXPECT_EQ(registry.Info().overflow, overflow + 1);
  before.Increment();
  raw.header().value_words = capacity;
  testing::CollectorReader reader(registry);
  const ScanResult r = ScanSegment(reader, SegmentReader::Mode::kPeek);
  EXPECT_EQ(r.Count("before"), 1);
  EXPECT_EQ(r.Count("past.the.end"), -1) << "storage was handed out past the value area";
  EXPECT_EQ(r.Count("past.the.end,spectator.overflow=true"), 1);
  EXPECT_EQ(r.stats.corrupt, 0u);
}

// Value words are as hostile as entries: times far in the future or with the
// sign bit set must not overflow the reader's arithmetic (UBSan checks).
TEST(HostileSegment, HostileTimeWordsDoNotOverflowTheReadersArithmetic) {
  TempSegment seg;
  Registry registry(QuietOptions(seg));
  AgeGauge age = registry.GetAgeGauge("age");
  Gauge gauge = registry.GetGauge("gauge");
  age.Reset();
  gauge.Set(3);
  {
    testing::CollectorReader reader(registry);
    ScanSegment(reader, SegmentReader::Mode::kTake);  // the collector saw the gauge's sequence
  }
  RawSegment raw(seg.path());
  ASSERT_TRUE(raw.ok());
  auto words = [&](const char* id) {
    return raw.WordsOf(*raw.Find(id));
  };
  for (std::uint64_t hostile : {0x8000000000000000ULL, 0x8000000000000001ULL, ~0ULL}) {
    words("age")[detail::layout::kAgeGaugeTimeNs].store(hostile);
    words("gauge")[detail::layout::kGaugeSeenAtNs].store(hostile);
    for (auto mode : {SegmentReader::Mode::kPeek, SegmentReader::Mode::kTake}) {
      testing::CollectorReader reader(registry);
      const ScanResult r = ScanSegment(reader, mode);
      EXPECT_EQ(r.by_id.size(), 2u);
      const double a = r.by_id.at("age").value;
      const double g = r.by_id.at("gauge").value;
      EXPECT_TRUE(std::isnan(a) || a >= 0) << a;
      EXPECT_TRUE(std::isnan(g) || g == 3) << g;
    }
  }
}

}  // namespace
}  // namespace spectator::reliability
