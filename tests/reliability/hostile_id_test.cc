// Fault 4: hostile Ids. Each has a documented outcome -- a no-op meter
// counted in Info().invalid_ids (or type_mismatches), or the canonical form
// of id.h (every byte outside [-._A-Za-z0-9~^] becomes '_', the last value
// of a repeated key wins) -- and none crashes or writes outside its own
// entry and value block. Neighbouring meters are checked byte for byte.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "reliability_support.h"
#include "segment_layout.h"
#include "spectator/internal/reader.h"
#include "spectator/spectator.h"
#include "support/temp_segment.h"

namespace spectator::reliability {
namespace {

using namespace std::chrono_literals;
using testing::TempSegment;

class HostileId : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(raw_.ok());
    before_ = registry_.GetCounter("neighbour.before");
    before_.Add(5);
    timer_ = registry_.GetTimer("neighbour.timer");
    timer_.Record(3ms);
    pct_ = registry_.GetPercentileTimer("neighbour.pct");
    pct_.Record(20ms);
  }

  // Every byte of the id table and the value area (not the header, whose
  // counters are expected to move).
  std::string TableAndValues() const {
    return std::string(raw_.bytes() + sizeof(internal::SegmentHeader),
                       raw_.size() - sizeof(internal::SegmentHeader));
  }

  // The neighbours read back exactly, and the segment holds no corrupt entry.
  void ExpectNeighboursIntact() {
    SegmentReader reader(registry_);
    const ScanResult r = ScanSegment(reader, SegmentReader::Mode::kPeek);
    EXPECT_EQ(r.stats.corrupt, 0u);
    EXPECT_EQ(r.Duplicates(), 0);
    ASSERT_EQ(r.by_id.count("neighbour.before"), 1u);
    ASSERT_EQ(r.by_id.count("neighbour.timer"), 1u);
    ASSERT_EQ(r.by_id.count("neighbour.pct"), 1u);
    EXPECT_EQ(r.by_id.at("neighbour.before").count, 5);
    EXPECT_EQ(r.by_id.at("neighbour.timer").count, 1);
    EXPECT_DOUBLE_EQ(r.by_id.at("neighbour.timer").total, 0.003);
    EXPECT_EQ(r.by_id.at("neighbour.pct").count, 1);
    EXPECT_EQ(r.by_id.at("neighbour.pct").buckets[PercentileBucketIndex(20000000)], 1u);
    EXPECT_EQ(r.by_id.at("neighbour.pct").buckets_sum, 1u);
  }

  // Gets a meter of every type for (name, tags), updates each, and returns
  // how many were live.
  int GetAndUpdateEveryType(std::string_view name, TagList tags) {
    int live = 0;
    Counter c = registry_.GetCounter(name, tags);
    c.Increment();
    c.Add(2.5);
    live += c.IsLive();
    MonotonicCounter mc = registry_.GetMonotonicCounter(name, tags);
    mc.Set(10);
    live += mc.IsLive();
    Timer t = registry_.GetTimer(name, tags);
    t.Record(1s);
    live += t.IsLive();
    DistributionSummary d = registry_.GetDistributionSummary(name, tags);
    d.Record(7);
    live += d.IsLive();
    Gauge g = registry_.GetGauge(name, tags);
    g.Set(1);
    live += g.IsLive();
    MaxGauge mg = registry_.GetMaxGauge(name, tags);
    mg.Set(1);
    live += mg.IsLive();
    AgeGauge ag = registry_.GetAgeGauge(name, tags);
    ag.Reset();
    live += ag.IsLive();
    PercentileTimer pt = registry_.GetPercentileTimer(name, tags);
    pt.Record(1h);
    live += pt.IsLive();
    PercentileDistributionSummary pd = registry_.GetPercentileDistributionSummary(name, tags);
    pd.Record(1e30);
    live += pd.IsLive();
    return live;
  }

  std::vector<std::string> logged_;
  TempSegment segment_;
  Registry registry_{[this] {
    SegmentOptions o = segment_.options(256, std::uint64_t{1} << 16);
    o.logger = [this](LogLevel, std::string_view m) { logged_.emplace_back(m); };
    return o;
  }()};
  RawSegment raw_{segment_.path()};
  Counter before_;
  Timer timer_;
  PercentileTimer pct_;
};

TEST_F(HostileId, RefusedIdsGiveNoOpMetersCountedInInvalidIdsAndWriteNothing) {
  const std::string name10k(10 * 1024, 'n');
  const std::string name1m(1024 * 1024, 'n');
  Tags thousands;
  for (int i = 0; i < 5000; ++i) thousands.emplace_back("k" + std::to_string(i), "v");
  Tags twenty_one;
  for (int i = 0; i < 21; ++i) twenty_one.emplace_back("k" + std::to_string(i), "v");
  Tags too_many_raw(81, {"k", "v"});  // one key, but more raw tags than are ever sorted
  Tags long_form = {{"a", std::string(255, 'v')}, {"b", std::string(255, 'v')}};
  struct Case {
    const char* what;
    std::string name;
    Tags tags;
  };
  const std::vector<Case> cases = {
      {"empty name", "", {}},
      {"name of 256", std::string(256, 'n'), {}},
      {"name of 10 KiB", name10k, {}},
      {"name of 1 MiB", name1m, {}},
      {"empty key", "m", {{"", "v"}}},
      {"empty value", "m", {{"k", ""}}},
      {"key of 256", "m", {{std::string(256, 'k'), "v"}}},
      {"value of 10 KiB", "m", {{"k", name10k}}},
      {"21 tags", "m", twenty_one},
      {"5000 tags", "m", thousands},
      {"81 copies of one tag", "m", too_many_raw},
      {"reserved key name", "m", {{"name", "x"}}},
      {"reserved key statistic", "m", {{"statistic", "count"}}},
      {"reserved key among others", "m", {{"a", "1"}, {"statistic", "max"}, {"z", "2"}}},
      {"canonical form over 448", "m", long_form},
  };
  const std::string bytes_before = TableAndValues();
  const std::uint64_t invalid_before = registry_.Info().invalid_ids;
  std::uint64_t attempts = 0;
  for (const Case& c : cases) {
    EXPECT_EQ(GetAndUpdateEveryType(c.name, c.tags), 0) << c.what;
    attempts += 9;
  }
  EXPECT_EQ(registry_.Info().invalid_ids - invalid_before, attempts);
  EXPECT_EQ(registry_.Info().meters, 3u);
  EXPECT_TRUE(TableAndValues() == bytes_before) << "a refused Id wrote into the segment";
  ExpectNeighboursIntact();
}

TEST_F(HostileId, BytesOutsideTheAlphabetBecomeUnderscoresNotRefusals) {
  struct Case {
    std::string name;
    Tags tags;
    std::string canonical;
  };
  const std::vector<Case> cases = {
      {"\xff\xfe\xc3(", {}, "____"},                           // invalid UTF-8
      {"caf\xc3\xa9", {}, "caf__"},                            // valid UTF-8, two bytes
      {std::string("a\0b", 3), {}, "a_b"},                     // NUL inside the view
      {"ctl\x01\t\n\x7f", {}, "ctl____"},                      // control characters
      {"m", {{std::string("k\0y", 3), "v\nw"}}, "m,k_y=v_w"},  // in tags too
      {"m", {{"a,b=c", "d=e,f"}}, "m,a_b_c=d_e_f"},            // separators cannot be forged
      {"../../etc/passwd", {}, ".._.._etc_passwd"},
  };
  for (const Case& c : cases) {
    std::string canonical;
    ASSERT_EQ(CanonicalizeId(c.name, c.tags, &canonical), IdError::kOk);
    EXPECT_EQ(canonical, c.canonical);
    Counter counter = registry_.GetCounter(c.name, c.tags);
    EXPECT_TRUE(counter.IsLive()) << c.canonical;
    counter.Increment();
  }
  // Two names that differ only outside the alphabet are one meter.
  registry_.GetCounter("a b").Increment();
  SegmentReader reader(registry_);
  const ScanResult r = ScanSegment(reader, SegmentReader::Mode::kPeek);
  for (const Case& c : cases) {
    ASSERT_EQ(r.by_id.count(c.canonical), 1u) << c.canonical;
  }
  EXPECT_EQ(r.by_id.at("a_b").count, 2);
  EXPECT_EQ(registry_.Info().invalid_ids, 0u);
  ExpectNeighboursIntact();
}

TEST_F(HostileId, RepeatedAndCollidingTagKeysKeepTheLastValue) {
  Tags sixty;  // 60 raw tags over 20 keys: allowed, each key's last value wins
  for (int round = 0; round < 3; ++round) {
    for (int k = 0; k < 20; ++k) {
      sixty.emplace_back("k" + std::to_string(100 + k), "r" + std::to_string(round));
    }
  }
  std::string expected_sixty = "m";
  for (int k = 0; k < 20; ++k) expected_sixty += ",k" + std::to_string(100 + k) + "=r2";
  registry_.GetCounter("m", sixty).Increment();
  registry_.GetCounter("m", {{"k", "1"}, {"k", "2"}}).Increment();
  registry_.GetCounter("n", {{"a b", "1"}, {"a_b", "2"}}).Increment();  // same key once sanitised
  registry_.GetCounter("o", {{"Name", "x"}, {"Statistic", "y"}}).Increment();  // not reserved
  SegmentReader reader(registry_);
  const ScanResult r = ScanSegment(reader, SegmentReader::Mode::kPeek);
  EXPECT_EQ(r.by_id.count(expected_sixty), 1u);
  EXPECT_EQ(r.by_id.count("m,k=2"), 1u);
  EXPECT_EQ(r.by_id.count("n,a_b=2"), 1u);
  EXPECT_EQ(r.by_id.count("o,Name=x,Statistic=y"), 1u);
  EXPECT_EQ(r.by_id.size(), 3u + 4u);
  EXPECT_EQ(registry_.Info().invalid_ids, 0u);
  ExpectNeighboursIntact();
}

// An Id of exactly kMaxIdBytes fills its entry's Id field to the last byte:
// registering it changes that one entry and its own value block, nothing else.
TEST_F(HostileId, LongestIdChangesOnlyItsOwnEntryAndBlock) {
  const std::string name(kMaxNameLength, 'n');
  const std::string value(kMaxIdBytes - kMaxNameLength - 3, 'v');  // ",k=" + value
  std::string canonical;
  ASSERT_EQ(CanonicalizeId(name, {{"k", value}}, &canonical), IdError::kOk);
  ASSERT_EQ(canonical.size(), kMaxIdBytes);
  ASSERT_EQ(CanonicalizeId(name, {{"k", value + "v"}}, &canonical), IdError::kIdTooLong);

  for (bool percentile : {false, true}) {
    const std::string before = TableAndValues();
    const std::string n = percentile ? std::string(kMaxNameLength, 'p') : name;
    if (percentile) {
      PercentileTimer pt = registry_.GetPercentileTimer(n, {{"k", value}});
      ASSERT_TRUE(pt.IsLive());
      pt.Record(1h);
    } else {
      Counter c = registry_.GetCounter(n, {{"k", value}});
      ASSERT_TRUE(c.IsLive());
      c.Add(7);
    }
    const std::string after = TableAndValues();
    internal::Entry* e = raw_.Find(n + ",k=" + value);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->id_len, kMaxIdBytes);
    const std::size_t header = sizeof(internal::SegmentHeader);
    const std::size_t entry_begin =
        static_cast<std::size_t>(reinterpret_cast<char*>(e) - raw_.bytes()) - header;
    const std::size_t block_begin = static_cast<std::size_t>(raw_.values_offset()) - header +
                                    std::size_t{e->value_line} * 64;
    const std::size_t block_end = block_begin + std::size_t{e->value_words} * 8;
    const std::size_t id_begin = static_cast<std::size_t>(raw_.header().ids_offset) - header +
                                 std::size_t{e->id_offset} * 8;
    for (std::size_t i = 0; i < after.size(); ++i) {
      const bool own = (i >= entry_begin && i < entry_begin + sizeof(internal::Entry)) ||
                       (i >= block_begin && i < block_end) ||
                       (i >= id_begin && i < id_begin + kMaxIdBytes);
      if (!own && after[i] != before[i]) {
        ADD_FAILURE() << "byte " << i << " outside the new entry and block changed";
        break;
      }
    }
    // The one-byte-longer Id is refused and writes nothing.
    const std::string refused_before = TableAndValues();
    EXPECT_EQ(GetAndUpdateEveryType(n, {{"k", value + "v"}}), 0);
    EXPECT_TRUE(TableAndValues() == refused_before);
  }
  ExpectNeighboursIntact();
}

TEST_F(HostileId, SameIdAsAnotherTypeGivesNoOpsCountedInTypeMismatches) {
  Counter c = registry_.GetCounter("typed");
  c.Increment();
  // The counter itself is live; the eight other types are refused.
  EXPECT_EQ(GetAndUpdateEveryType("typed", {}), 1);
  EXPECT_EQ(registry_.Info().type_mismatches, 8u);
  SegmentReader reader(registry_);
  const ScanResult r = ScanSegment(reader, SegmentReader::Mode::kPeek);
  EXPECT_EQ(r.by_id.at("typed").count, 1 + 1 + 2.5);  // only the counter's own updates
  ExpectNeighboursIntact();
}

TEST_F(HostileId, EmptyOrNegativePercentileRangesGiveNoOps) {
  const std::string bytes_before = TableAndValues();
  PercentileTimer a = registry_.GetPercentileTimer("pt", {}, 2s, 1s);
  PercentileTimer b = registry_.GetPercentileTimer("pt", {}, -1s, 1s);
  PercentileDistributionSummary c = registry_.GetPercentileDistributionSummary("pd", {}, 5, 4);
  PercentileDistributionSummary d = registry_.GetPercentileDistributionSummary("pd", {}, -5, 4);
  EXPECT_FALSE(a.IsLive() || b.IsLive() || c.IsLive() || d.IsLive());
  a.Record(1s);
  b.Record(1s);
  c.Record(1);
  d.Record(1);
  EXPECT_TRUE(TableAndValues() == bytes_before);
  ExpectNeighboursIntact();
}

// The refusal log line quotes the name the caller gave. A hostile name must
// not be able to forge log lines (newlines, terminal escapes) or flood the
// log with one huge line.
TEST_F(HostileId, RefusalLogLinesAreBoundedAndFreeOfControlCharacters) {
  logged_.clear();
  registry_.GetCounter("x\nspectator: error: forged line\x1b[2J", {{"k", ""}});
  registry_.GetCounter(std::string(1024 * 1024, 'n'));
  registry_.GetCounter(std::string("nul\0inside", 10), {{"statistic", "x"}});
  ASSERT_EQ(logged_.size(), 3u);
  for (const std::string& line : logged_) {
    EXPECT_LE(line.size(), 1024u) << "a log line of " << line.size() << " bytes";
    for (unsigned char ch : line) {
      if (ch < 0x20 || ch == 0x7f) {
        ADD_FAILURE() << "control character " << static_cast<int>(ch) << " in a log line";
        break;
      }
    }
  }
}

}  // namespace
}  // namespace spectator::reliability
