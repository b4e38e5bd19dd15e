// Creating and attaching real shared-memory segments, and refusing the ones
// that are not ours.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include "segment_layout.h"
#include "spectator/snapshot.h"
#include "spectator/spectator.h"
#include "support/temp_segment.h"

namespace spectator {
namespace {

using spectator::testing::TempSegment;

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
  SegmentReader reader(attacher);
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

TEST(Segment, OtherLayoutVersionIsRefusedAndLeftUntouched) {
  TempSegment seg;
  { Registry r(seg.options()); }
  std::string bytes = ReadFile(seg.path());
  internal::SegmentHeader* h = reinterpret_cast<internal::SegmentHeader*>(bytes.data());
  h->layout_version = 99;
  WriteFile(seg.path(), bytes);
  ExpectRefused(seg.options(), ErrorCode::kVersionMismatch, "version 99");
  ExpectRefused(seg.options(), ErrorCode::kVersionMismatch,
                "version " + std::to_string(kLayoutVersion));
  EXPECT_EQ(ReadFile(seg.path()), bytes);
}

TEST(Segment, FileSizeThatDisagreesWithTheHeaderIsRefused) {
  TempSegment seg;
  { Registry r(seg.options()); }
  const std::string bytes = ReadFile(seg.path());
  ASSERT_EQ(::truncate(seg.path().c_str(), static_cast<off_t>(bytes.size() - 4096)), 0);
  ExpectRefused(seg.options(), ErrorCode::kSizeMismatch, std::to_string(bytes.size()));
}

TEST(Segment, HugeClaimedCapacitiesAreRefused) {
  TempSegment seg;
  { Registry r(seg.options()); }
  std::string bytes = ReadFile(seg.path());
  auto* h = reinterpret_cast<internal::SegmentHeader*>(bytes.data());
  h->max_meters = 0xFFFFFFFF;
  h->value_words = ~0ull;
  WriteFile(seg.path(), bytes);
  ExpectRefused(seg.options(), ErrorCode::kSizeMismatch, "inconsistent header");
}

TEST(Segment, HeaderOnlyPartlyWrittenIsReportedAsNotInitialised) {
  TempSegment seg;
  WriteFile(seg.path(), std::string(100, '\0'));  // shorter than a header
  ExpectRefused(seg.options(), ErrorCode::kNotInitialised, "creator may have died");
  WriteFile(seg.path(), std::string(4096, '\0'));  // zeros: never initialised
  ExpectRefused(seg.options(), ErrorCode::kNotInitialised, "never initialised");
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
