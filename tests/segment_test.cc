// Creating and attaching real shared-memory segments, and refusing the ones
// that are not ours.
#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <vector>

#include "segment_layout.h"
#include "spectator/internal/reader.h"
#include "support/collector_reader.h"
#include "spectator/spectator.h"
#include "support/fork_helpers.h"
#include "support/segment_holder.h"
#include "support/temp_segment.h"

namespace spectator {
namespace {

using spectator::testing::Barrier;
using spectator::testing::ForkChild;
using spectator::testing::SegmentHolder;
using spectator::testing::TempSegment;
using spectator::testing::WaitChild;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, const std::string& bytes, mode_t mode = 0600) {
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, mode);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

ino_t InodeOf(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// A segment of this build with `edit` applied to its header bytes, as a
// build of another layout (or a crash) would leave it.
template <typename Edit>
std::string StaleSegment(const TempSegment& seg, Edit edit) {
  {
    Registry r(seg.options());
    r.GetCounter("old.meter").Increment();
  }
  std::string bytes = ReadFile(seg.path());
  edit(reinterpret_cast<internal::SegmentHeader*>(bytes.data()));
  WriteFile(seg.path(), bytes);
  return bytes;
}

// Expects opening `name` to fail with `code` and a message naming the
// segment and containing `fragment`.
void ExpectRefused(const SegmentOptions& o, ErrorCode code, const std::string& fragment) {
  try {
    Registry r(o);
    FAIL() << "opened " << o.name;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(o.name), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Segment, CreatorAndAttacherShareMeters) {
  TempSegment seg;
  Registry creator(seg.options());
  Registry attacher(seg.options());
  creator.GetCounter("c").Add(2);
  attacher.GetCounter("c").Add(3);
  testing::CollectorReader reader(attacher);
  double total = 0;
  reader.Scan(SegmentReader::Mode::kTake, std::chrono::system_clock::now(),
              [&](const MeterReading& r) { total += r.count; });
  EXPECT_EQ(total, 5);
}

TEST(Segment, AttacherTakesTheCapacitiesOfTheHeaderAndLogsTheDifference) {
  TempSegment seg;
  Registry creator(seg.options(100, 1024));
  std::vector<std::string> logged;
  SegmentOptions o = seg.options(5000, 99999);
  o.logger = [&](LogLevel, std::string_view m) { logged.emplace_back(m); };
  Registry attacher(o);
  EXPECT_EQ(attacher.Info().max_meters, 100u);
  EXPECT_EQ(attacher.Info().value_words, 1024u);
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_NE(logged[0].find("max_meters 100"), std::string::npos) << logged[0];
}

TEST(Segment, CreatedWithMode0600WhateverTheUmask) {
  TempSegment seg;
  const mode_t old = ::umask(0);
  { Registry r(seg.options()); }
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::stat(seg.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(Segment, ModeIsConfigurable) {
  TempSegment seg;
  SegmentOptions o = seg.options();
  o.mode = 0640;
  { Registry r(o); }
  struct stat st {};
  ASSERT_EQ(::stat(seg.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  o.mode = 0400;  // the owner must be able to read and write
  TempSegment other;
  o.name = other.name();
  ExpectRefused(o, ErrorCode::kInvalidArgument, "mode");
}

TEST(Segment, RefusesUnsafeNames) {
  for (const std::string& name : std::vector<std::string>{
           "", "a/b", "..", "../x", ".hidden", "sp ace", "t\xC3\xA9", std::string(201, 'n')}) {
    SegmentOptions o;
    o.name = name;
    try {
      Registry r(o);
      ADD_FAILURE() << "accepted '" << name << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    }
  }
}

TEST(Segment, RefusesOutOfRangeCapacities) {
  TempSegment seg;
  ExpectRefused(seg.options(0, 1024), ErrorCode::kInvalidArgument, "max_meters");
  ExpectRefused(seg.options(10, 1), ErrorCode::kInvalidArgument, "value_words");
}

TEST(Segment, MissingSegmentWithoutCreateIsAnError) {
  TempSegment seg;
  SegmentOptions o = seg.options();
  o.create_if_missing = false;
  ExpectRefused(o, ErrorCode::kSystem, "does not exist");
}

TEST(Segment, ForeignFileIsRefusedAndLeftUntouched) {
  TempSegment seg;
  const std::string junk(8192, 'Z');
  WriteFile(seg.path(), junk);
  ExpectRefused(seg.options(), ErrorCode::kForeignSegment, "0x5a5a5a5a5a5a5a5a");
  ExpectRefused(seg.options(), ErrorCode::kForeignSegment, "0x4d48535443455053");
  EXPECT_EQ(ReadFile(seg.path()), junk);
}

TEST(Segment, OtherLayoutVersionThatAProcessHasOpenIsRefusedAndLeftUntouched) {
  TempSegment seg;
  const std::string bytes = StaleSegment(seg, [](auto* h) { h->layout_version = 99; });
  SegmentHolder old_server(seg.path());
  ExpectRefused(seg.options(), ErrorCode::kVersionMismatch, "version 99");
  ExpectRefused(seg.options(), ErrorCode::kVersionMismatch, "open in another process");
  EXPECT_EQ(ReadFile(seg.path()), bytes);
}

TEST(Segment, OtherLayoutVersionThatNobodyHasOpenIsReplacedWithOneLogLine) {
  TempSegment seg;
  const ino_t stale = [&] {
    StaleSegment(seg, [](auto* h) { h->layout_version = 1; });
    return InodeOf(seg.path());
  }();
  std::vector<std::string> lines;
  SegmentOptions o = seg.options();
  o.logger = [&](LogLevel level, std::string_view line) {
    if (level >= LogLevel::kWarning) lines.emplace_back(line);
  };
  Registry fresh(o);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("replaced stale segment '" + seg.name() + "'"), std::string::npos)
      << lines[0];
  EXPECT_NE(lines[0].find("layout version 1, this library uses version 2"), std::string::npos)
      << lines[0];
  EXPECT_NE(InodeOf(seg.path()), stale);
  EXPECT_EQ(fresh.Info().layout_version, kLayoutVersion);
  EXPECT_TRUE(fresh.GetCounter("new.meter").IsLive());
}

TEST(Segment, DamagedHeaderThatNobodyHasOpenIsReplacedAndTheLogCountsItsMeters) {
  TempSegment seg;
  StaleSegment(seg, [](auto*) {});
  ASSERT_EQ(::truncate(seg.path().c_str(), 4096 * 8), 0);  // header and size disagree
  std::string line;
  SegmentOptions o = seg.options();
  o.logger = [&](LogLevel level, std::string_view l) {
    if (level >= LogLevel::kWarning) line = l;
  };
  Registry fresh(o);
  EXPECT_NE(line.find("discarded its 1 meters"), std::string::npos) << line;
  EXPECT_EQ(fresh.Info().meters, 0u);
}

TEST(Segment, AStaleSegmentIsNotReplacedByAnOpenThatMayNotCreate) {
  TempSegment seg;
  const std::string bytes = StaleSegment(seg, [](auto* h) { h->layout_version = 99; });
  SegmentOptions o = seg.options();
  o.create_if_missing = false;  // --dump: it only looks
  ExpectRefused(o, ErrorCode::kVersionMismatch, "not replacing it");
  EXPECT_EQ(ReadFile(seg.path()), bytes);
}

// The previous deployment's master is gone, but one of its workers is still
// draining requests: it holds the segment through the descriptor it
// inherited. The new deployment must wait for it, not pull the segment from
// under it; once it exits, the segment is replaced.
TEST(Segment, NeverReplacedWhileADrainingWorkerOfThePreviousDeploymentHasItOpen) {
  TempSegment seg;
  int release[2];
  ASSERT_EQ(::pipe(release), 0);
  Barrier ready;
  const pid_t master = ForkChild([&] {
    Registry old(seg.options());
    const pid_t worker = ForkChild([&] {
      ::close(release[1]);
      old.GetCounter("draining").Increment();
      ready.Release();
      char c;
      while (::read(release[0], &c, 1) < 0) {
      }
      old.GetCounter("draining").Increment();  // still writing into its segment
      return 0;
    });
    return worker > 0 ? 0 : 1;  // the master exits, its worker goes on
  });
  ASSERT_EQ(WaitChild(master), 0);
  ready.Wait();
  // The new build sees another layout version (rewritten in place here).
  {
    const int fd = ::open(seg.path().c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    const std::uint32_t other = 99;
    ASSERT_EQ(::pwrite(fd, &other, sizeof other, 8), 4);
    ::close(fd);
  }
  const ino_t before = InodeOf(seg.path());
  ExpectRefused(seg.options(), ErrorCode::kVersionMismatch, "open in another process");
  EXPECT_EQ(InodeOf(seg.path()), before) << "unlinked while a worker had it open";
  ::close(release[1]);  // the worker finishes and exits
  ::close(release[0]);
  // It is the master's grandchild: not ours to wait for; poll for the lock.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::unique_ptr<Registry> fresh;
  while (!fresh && std::chrono::steady_clock::now() < deadline) {
    try {
      fresh = std::make_unique<Registry>(seg.options());
    } catch (const Error&) {
    }
  }
  ASSERT_TRUE(fresh) << "never replaced after the last holder exited";
  EXPECT_NE(InodeOf(seg.path()), before);
}

// Several servers start at once on a stale segment: they must end up in one
// fresh segment, not each in a segment of its own.
TEST(Segment, OpenersRacingToReplaceAStaleSegmentMakeOneSegment) {
  TempSegment seg;
  for (int round = 0; round < 10; ++round) {
    StaleSegment(seg, [](auto* h) { h->layout_version = 1; });
    Barrier start;
    std::vector<pid_t> children;
    constexpr int kOpeners = 6;
    for (int i = 0; i < kOpeners; ++i) {
      children.push_back(ForkChild([&] {
        start.Wait();
        SegmentOptions o = seg.options();
        o.logger = [](LogLevel, std::string_view) {};
        Registry r(o);
        r.GetCounter("opened").Increment();
        return 0;
      }));
    }
    start.Release();
    for (pid_t c : children) ASSERT_EQ(WaitChild(c), 0) << "round " << round;
    Registry after(seg.options());
    testing::CollectorReader reader(after);
    double opened = 0;
    reader.Scan(SegmentReader::Mode::kPeek, std::chrono::system_clock::now(),
                [&](const MeterReading& r) {
                  if (r.id == "opened") opened = r.count;
                });
    EXPECT_EQ(opened, kOpeners) << "round " << round << ": openers ended in different segments";
    Registry::Remove(seg.name());
  }
}

TEST(Segment, FileSizeThatDisagreesWithTheHeaderIsRefusedWhileHeld) {
  TempSegment seg;
  { Registry r(seg.options()); }
  const std::string bytes = ReadFile(seg.path());
  ASSERT_EQ(::truncate(seg.path().c_str(), static_cast<off_t>(bytes.size() - 4096)), 0);
  SegmentHolder holder(seg.path());
  ExpectRefused(seg.options(), ErrorCode::kSizeMismatch, std::to_string(bytes.size()));
}

TEST(Segment, HugeClaimedCapacitiesAreRefusedWhileHeld) {
  TempSegment seg;
  StaleSegment(seg, [](auto* h) {
    h->max_meters = 0xFFFFFFFF;
    h->value_words = ~0ull;
  });
  SegmentHolder holder(seg.path());
  ExpectRefused(seg.options(), ErrorCode::kSizeMismatch, "inconsistent header");
}

TEST(Segment, FilesWithoutOurMagicAreRefusedWhateverTheirSize) {
  TempSegment seg;
  for (std::size_t size : {std::size_t{0}, std::size_t{5}, std::size_t{100}, std::size_t{4096}}) {
    const std::string zeros(size, '\0');
    WriteFile(seg.path(), zeros);
    ExpectRefused(seg.options(), ErrorCode::kForeignSegment, "not a spectator-shm segment");
    EXPECT_EQ(ReadFile(seg.path()), zeros);
  }
}

TEST(Segment, CreationReservesEveryPageOfTheFile) {
  TempSegment seg;
  Registry r(seg.options(1024, 1 << 16));
  struct stat st {};
  ASSERT_EQ(::stat(seg.path().c_str(), &st), 0);
  EXPECT_GE(static_cast<std::uint64_t>(st.st_blocks) * 512, static_cast<std::uint64_t>(st.st_size))
      << "pages not allocated: a later first touch could SIGBUS on a full /dev/shm";
}

TEST(Segment, NoTemporaryFileIsLeftBehind) {
  TempSegment seg;
  { Registry r(seg.options()); }
  const std::string prefix = ".spectator-new-" + std::to_string(::getpid()) + "-";
  DIR* dir = ::opendir("/dev/shm");
  ASSERT_NE(dir, nullptr);
  while (dirent* d = ::readdir(dir)) EXPECT_NE(std::string(d->d_name).rfind(prefix, 0), 0u);
  ::closedir(dir);
}

TEST(Segment, SymlinkInPlaceOfTheSegmentIsRefused) {
  TempSegment seg;
  TempSegment target;
  { Registry r(target.options()); }
  ASSERT_EQ(::symlink(target.path().c_str(), seg.path().c_str()), 0);
  ExpectRefused(seg.options(), ErrorCode::kPermission, "symbolic link");
  ::unlink(seg.path().c_str());
}

TEST(Segment, RemoveDeletesTheFile) {
  TempSegment seg;
  { Registry r(seg.options()); }
  EXPECT_TRUE(Registry::Remove(seg.name()));
  EXPECT_NE(::access(seg.path().c_str(), F_OK), 0);
  EXPECT_FALSE(Registry::Remove(seg.name()));
  EXPECT_FALSE(Registry::Remove("../etc"));
}

}  // namespace
}  // namespace spectator
