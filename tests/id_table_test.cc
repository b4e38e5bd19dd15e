// The Id table on heap memory: no shared memory, no processes. A second
// IdTable over the same bytes stands in for another process.
#include "id_table.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "process.h"
#include "support/heap_segment.h"

namespace spectator::internal {
namespace {

using spectator::testing::HeapSegment;
using Status = IdTable::Status;

std::uint64_t ZeroHash(std::string_view) noexcept { return 0; }

std::string DumpTable(const TableView& v) {
  std::string out;
  for (std::uint32_t i = 0; i < v.header->table_slots; ++i) {
    const Entry& e = v.entries[i];
    const std::uint64_t s = e.state.load(std::memory_order_relaxed);
    if (s == 0) continue;
    out += "slot " + std::to_string(i) + " kind " + std::to_string(s >> kKindShift) + " id " +
           std::string(IdBytes(v, e)) + "\n";
  }
  return out;
}

TEST(IdTable, RegisterThenFindReturnsTheSameWords) {
  HeapSegment seg(64, 4096);
  IdTable table(seg.view());
  const auto a = table.FindOrRegister("requests,status=200", MeterType::kCounter, 0, 0);
  ASSERT_EQ(a.status, Status::kOk);
  const auto b = table.FindOrRegister("requests,status=200", MeterType::kCounter, 0, 0);
  ASSERT_EQ(b.status, Status::kOk);
  EXPECT_EQ(a.words, b.words);
  EXPECT_EQ(seg.header().meters.load(), 1u);
}

TEST(IdTable, SecondTableOverSameBytesSeesEntries) {
  HeapSegment seg(64, 4096);
  IdTable first(seg.view());
  IdTable second(seg.view());  // "another process"
  const auto a = first.FindOrRegister("m", MeterType::kTimer, 0, 0);
  const auto b = second.FindOrRegister("m", MeterType::kTimer, 0, 0);
  ASSERT_EQ(b.status, Status::kOk);
  EXPECT_EQ(a.words, b.words);
}

TEST(IdTable, DegenerateHashStillKeepsIdsApart) {
  HeapSegment seg(64, 4096);
  IdTable table(seg.view(), &ZeroHash);
  std::vector<detail::Word*> words;
  for (int i = 0; i < 40; ++i) {
    const auto r = table.FindOrRegister("m" + std::to_string(i), MeterType::kCounter, 0, 0);
    ASSERT_EQ(r.status, Status::kOk) << i;
    words.push_back(r.words);
  }
  for (int i = 0; i < 40; ++i) {
    const auto r = table.FindOrRegister("m" + std::to_string(i), MeterType::kCounter, 0, 0);
    ASSERT_EQ(r.words, words[static_cast<std::size_t>(i)]) << DumpTable(seg.view());
  }
  EXPECT_EQ(std::set<detail::Word*>(words.begin(), words.end()).size(), 40u);
}

TEST(IdTable, FullTableRefusesNewIdsButTheReserveTakesOverflowMeters) {
  HeapSegment seg(10, 4096);
  IdTable table(seg.view(), &ZeroHash);
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(table.FindOrRegister("m" + std::to_string(i), MeterType::kCounter, 0, 0).status,
              Status::kOk);
  }
  EXPECT_EQ(table.FindOrRegister("one-more", MeterType::kCounter, 0, 0).status, Status::kFull);
  EXPECT_EQ(table.FindOrRegister("and-another", MeterType::kCounter, 0, 0).status,
            Status::kFull);
  const auto overflow = table.FindOrRegister("one-more,spectator.overflow=true",
                                             MeterType::kCounter, 0, 0, IdTable::Tier::kOverflow);
  ASSERT_EQ(overflow.status, Status::kOk);
  EXPECT_EQ(overflow.entry->flags, kOverflowMeter);
  EXPECT_EQ(seg.header().meters.load(), 10u);
  EXPECT_EQ(seg.header().overflow_meters.load(), 1u);
  // Existing meters keep working.
  EXPECT_EQ(table.FindOrRegister("m3", MeterType::kCounter, 0, 0).status, Status::kOk);
}

TEST(IdTable, TheLastPartOfTheReserveIsKeptForThePerTypeMeters) {
  HeapSegment seg(16, 4096);  // a reserve of 16 name-level overflow meters
  IdTable table(seg.view());
  int placed = 0;
  for (int i = 0; i < 40; ++i) {
    placed += table.FindOrRegister("n" + std::to_string(i) + ",spectator.overflow=true",
                                   MeterType::kCounter, 0, 0, IdTable::Tier::kOverflow)
                  .status == Status::kOk;
  }
  EXPECT_EQ(placed, 16);
  for (MeterType type : {MeterType::kCounter, MeterType::kTimer, MeterType::kGauge,
                         MeterType::kPercentileTimer, MeterType::kPercentileDistributionSummary}) {
    EXPECT_EQ(table.FindOrRegister(PerTypeOverflowId(type), type, 0, 100,
                                   IdTable::Tier::kLastResort)
                  .status,
              Status::kOk)
        << ToString(type);
  }
}

TEST(IdTable, FullValueAreaRefusesTheIdInEveryProcess) {
  // Room for two one-line meters only; a percentile timer needs 36 lines.
  HeapSegment seg(16, 16);
  IdTable table(seg.view());
  ASSERT_EQ(table.FindOrRegister("a", MeterType::kCounter, 0, 0).status, Status::kOk);
  EXPECT_EQ(table.FindOrRegister("p", MeterType::kPercentileTimer, 0, 100).status,
            Status::kFull);
  IdTable other(seg.view());
  EXPECT_EQ(other.FindOrRegister("p", MeterType::kPercentileTimer, 0, 100).status,
            Status::kFull);
  // A smaller meter still fits after the big one was refused.
  EXPECT_EQ(table.FindOrRegister("b", MeterType::kGauge, 0, 0).status, Status::kOk);
}

TEST(IdTable, SameIdOtherTypeIsAMismatch) {
  HeapSegment seg(64, 4096);
  IdTable table(seg.view());
  ASSERT_EQ(table.FindOrRegister("m", MeterType::kCounter, 0, 0).status, Status::kOk);
  const auto r = table.FindOrRegister("m", MeterType::kGauge, 0, 0);
  EXPECT_EQ(r.status, Status::kTypeMismatch);
  EXPECT_EQ(r.words, nullptr);
  EXPECT_EQ(seg.header().type_mismatches.load(), 1u);
}

TEST(IdTable, ClaimThatNobodyHoldsTheLockOfIsAbandonedAndProbedPast) {
  HeapSegment seg(64, 4096);
  IdTable table(seg.view(), &ZeroHash);
  seg.view().entries[0].state.store(ClaimedState(12345));  // its claimer died: no lock
  const auto r = table.FindOrRegister("m", MeterType::kCounter, 0, 0);
  ASSERT_EQ(r.status, Status::kOk);
  EXPECT_EQ(KindOf(seg.view().entries[0].state.load()), EntryKind::kAbandoned);
  EXPECT_EQ(seg.header().recovered_claims.load(), 1u);
}

TEST(IdTable, ClaimIsAliveExactlyAsLongAsItsLockIsHeld) {
  HeapSegment seg(64, 4096);
  IdTable table(seg.view(), &ZeroHash);
  table.set_claim_timeout(std::chrono::milliseconds(20));
  Entry& e = seg.view().entries[0];
  e.state.store(ClaimedState(777));
  e.hash.store(1);  // ZeroHash | 1: possibly our Id
  {
    ClaimLock live;  // another description of the file, as another process would hold
    ASSERT_EQ(live.Acquire(seg.fd(), 777), 0);
    EXPECT_TRUE(ClaimIsHeld(seg.fd(), 777));
    EXPECT_FALSE(ClaimIsHeld(seg.fd(), 778));
    EXPECT_EQ(table.FindOrRegister("m", MeterType::kCounter, 0, 0).status, Status::kTimedOut);
    EXPECT_EQ(KindOf(e.state.load()), EntryKind::kClaimed);
  }
  EXPECT_FALSE(ClaimIsHeld(seg.fd(), 777)) << "closing the description drops the lock";
  EXPECT_EQ(table.FindOrRegister("m", MeterType::kCounter, 0, 0).status, Status::kOk);
  EXPECT_EQ(KindOf(e.state.load()), EntryKind::kAbandoned);
}

TEST(IdTable, ClaimOfALiveProcessWithAnotherHashIsSkippedWithoutWaiting) {
  HeapSegment seg(64, 4096);
  IdTable table(seg.view(), &ZeroHash);
  table.set_claim_timeout(std::chrono::milliseconds(0));
  ClaimLock live;
  ASSERT_EQ(live.Acquire(seg.fd(), 5), 0);
  Entry& e = seg.view().entries[0];
  e.state.store(ClaimedState(5));
  e.hash.store(0x1234 | 1);  // not ZeroHash(...) | 1 == 1
  EXPECT_EQ(table.FindOrRegister("m", MeterType::kCounter, 0, 0).status, Status::kOk);
  EXPECT_EQ(KindOf(e.state.load()), EntryKind::kClaimed);  // left alone
}

TEST(IdTable, LiveClaimOfTheSameIdTimesOutInsteadOfDuplicating) {
  HeapSegment seg(64, 4096);
  IdTable table(seg.view(), &ZeroHash);
  table.set_claim_timeout(std::chrono::milliseconds(20));
  ClaimLock live;
  ASSERT_EQ(live.Acquire(seg.fd(), 9), 0);
  Entry& e = seg.view().entries[0];
  e.state.store(ClaimedState(9));
  e.hash.store(1);  // ZeroHash | 1: possibly our Id, being registered by a live process
  EXPECT_EQ(table.FindOrRegister("m", MeterType::kCounter, 0, 0).status, Status::kTimedOut);
  EXPECT_EQ(seg.header().meters.load(), 0u);
}

TEST(IdTable, RegistrationsUseDistinctClaimTokensAndReleaseTheirLocks) {
  HeapSegment seg(64, 4096);
  IdTable table(seg.view());
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(table.FindOrRegister("m" + std::to_string(i), MeterType::kCounter, 0, 0).status,
              Status::kOk);
  }
  EXPECT_EQ(seg.header().claim_tokens.load(), 5u);
  for (std::uint64_t token = 1; token <= 5; ++token) EXPECT_FALSE(ClaimIsHeld(seg.fd(), token));
}

TEST(IdTable, ConcurrentRegistrationFromThreadsMakesOneEntryPerId) {
  HeapSegment seg(2048, 1 << 16);
  std::vector<std::thread> threads;
  std::vector<std::vector<detail::Word*>> seen(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      IdTable table(seg.view());
      for (int i = 0; i < 500; ++i) {
        const int id = (i * 7 + t * 13) % 500;  // different orders per thread
        seen[static_cast<std::size_t>(t)].resize(500);
        seen[static_cast<std::size_t>(t)][static_cast<std::size_t>(id)] =
            table.FindOrRegister("id" + std::to_string(id), MeterType::kCounter, 0, 0).words;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (std::size_t id = 0; id < 500; ++id) {
    ASSERT_NE(seen[0][id], nullptr);
    for (int t = 1; t < 4; ++t) ASSERT_EQ(seen[static_cast<std::size_t>(t)][id], seen[0][id]);
  }
  EXPECT_EQ(seg.header().meters.load(), 500u);
}

TEST(IdTable, HashIsStableAcrossBuilds) {
  // Part of the layout: a change here must bump kLayoutVersion.
  EXPECT_EQ(HashId(""), 0x9CA066F1A4AB2EEAULL) << std::hex << HashId("");
  EXPECT_EQ(HashId("server.requestCount,status=200"), 0x9D2724DF9A83D45CULL)
      << std::hex << HashId("server.requestCount,status=200");
}

}  // namespace
}  // namespace spectator::internal

namespace spectator::internal {
namespace {

// Past max_meters, asking again and again for new Ids must not use up the
// Id arena (which would starve registrations racing for a slot given back).
TEST(IdTableArena, AFullTableDoesNotDrainTheArena) {
  testing::HeapSegment seg(4, 4096);
  IdTable table(seg.view());
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(table.FindOrRegister("m" + std::to_string(i), MeterType::kCounter, 0, 0).status,
              IdTable::Status::kOk);
  }
  const std::uint64_t used = seg.header().ids_used.load();
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(table.FindOrRegister("new" + std::to_string(i), MeterType::kCounter, 0, 0).status,
              IdTable::Status::kFull);
  }
  EXPECT_EQ(seg.header().ids_used.load(), used);
}

}  // namespace
}  // namespace spectator::internal
