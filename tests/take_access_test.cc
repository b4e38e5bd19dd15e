// Taking values out of a segment is the collector's alone: a SegmentReader
// takes only when opened with the segment's CollectorLock, held by this
// process on the very file it maps. Peeking needs nothing and changes nothing.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

#include "spectator/internal/collector_lock.h"
#include "spectator/internal/reader.h"
#include "spectator/spectator.h"
#include "support/collector_reader.h"
#include "support/readings.h"
#include "support/temp_segment.h"

namespace spectator {
namespace {

using testing::CollectorReader;
using testing::Peek;
using testing::Take;
using testing::TempSegment;

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(TakeAccess, AReaderWithoutTheLockPeeksButCannotTakeOrSettle) {
  TempSegment seg;
  Registry registry(seg.options());
  registry.GetCounter("c").Add(3);
  registry.GetPercentileTimer("p").Record(std::chrono::milliseconds(20));
  SegmentReader peek(registry);
  EXPECT_FALSE(peek.can_take());
  const std::string before = FileBytes(seg.path());

  EXPECT_EQ(Peek(peek).at("c").count, 3);
  EXPECT_THROW(peek.Scan(SegmentReader::Mode::kTake, std::chrono::system_clock::now(),
                         [](const MeterReading&) { ADD_FAILURE() << "a reading was taken"; }),
               std::logic_error);
  MeterReading reading;
  peek.Scan(SegmentReader::Mode::kPeek, std::chrono::system_clock::now(),
            [&](const MeterReading& r) {
              if (r.id == "p") reading = r;
            });
  peek.Commit(reading);
  peek.Commit(0, 2);
  peek.Restore(reading);
  peek.Heartbeat(4242, std::chrono::system_clock::now());
  EXPECT_TRUE(FileBytes(seg.path()) == before) << "a peek-only reader changed the segment";

  CollectorReader collector(registry);
  EXPECT_TRUE(collector.can_take());
  EXPECT_EQ(Take(collector).at("c").count, 3) << "nothing was taken or lost before";
}

TEST(TakeAccess, OnlyTheLockOfTheSameSegmentFileGrantsTheTake) {
  TempSegment a, b;
  Registry ra(a.options());
  Registry rb(b.options());
  CollectorLock lock_a(a.name());
  ASSERT_TRUE(lock_a.held());
  try {
    SegmentReader reader(rb, lock_a);
    ADD_FAILURE() << "the lock of another segment granted a take";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find(b.name()), std::string::npos) << e.what();
  }
  CollectorLock unheld;
  EXPECT_FALSE(unheld.held());
  EXPECT_THROW(SegmentReader(ra, unheld), Error);
  EXPECT_TRUE(SegmentReader(ra, lock_a).can_take());
}

TEST(TakeAccess, ALockOnARemovedAndRecreatedSegmentGrantsNothing) {
  TempSegment seg;
  CollectorLock lock;
  {
    Registry old(seg.options());
    std::string error;
    ASSERT_TRUE(lock.TryAcquire(seg.name(), &error)) << error;
  }
  Registry::Remove(seg.name());
  Registry fresh(seg.options());  // the same name, another file
  EXPECT_THROW(SegmentReader(fresh, lock), Error);
}

TEST(TakeAccess, TheLockIsSharedWithinAProcessAndReleasedWithItsLastHolder) {
  TempSegment seg;
  Registry registry(seg.options());
  std::string error;
  {
    CollectorLock first(seg.name());
    CollectorLock second;
    EXPECT_TRUE(second.TryAcquire(seg.name(), &error)) << error;
    EXPECT_TRUE(SegmentReader(registry, first).can_take());
  }
  CollectorLock again;
  EXPECT_TRUE(again.TryAcquire(seg.name(), &error)) << error;
}

TEST(TakeAccess, AMissingSegmentCannotBeLocked) {
  TempSegment seg;
  CollectorLock lock;
  std::string error;
  EXPECT_FALSE(lock.TryAcquire(seg.name(), &error));
  EXPECT_NE(error.find("cannot open /dev/shm/" + seg.name()), std::string::npos) << error;
  EXPECT_THROW(CollectorLock{seg.name()}, Error);
}

}  // namespace
}  // namespace spectator
