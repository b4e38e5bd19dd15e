// The fast payload (payload.cc, json_writer.h) against the oracle
// (payload_oracle.h): the JSON writer on arbitrary bytes and doubles, then
// thousands of random batches of every meter type with hostile strings,
// common tags that meters override and cache slots that collide.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "json_writer.h"
#include "measurements.h"
#include "payload.h"
#include "payload_oracle.h"
#include "spectator/percentile_buckets.h"
#include "spectator/spectator.h"
#include "support/atlas_payload.h"
#include "support/collector_reader.h"
#include "support/temp_segment.h"

namespace spectator::collector {
namespace {

using Json = nlohmann::json;

std::string NlohmannString(const std::string& s) {
  return Json(s).dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string OurString(const std::string& s) {
  std::string out = "junk";
  out.clear();
  json::AppendString(&out, s);
  return out;
}

std::string NlohmannDouble(double v) { return Json(v).dump(); }

std::string OurDouble(double v) {
  std::string out;
  json::AppendDouble(&out, v);
  return out;
}

// Bytes that exercise every branch of the UTF-8 decoder: ASCII, the escaped
// characters, control bytes, lone continuation bytes, every lead byte, and
// valid and broken multi-byte sequences.
std::string HostileBytes(std::mt19937_64& rng, std::size_t max_len) {
  static const char* const kPieces[] = {
      "\"", "\\", "\b", "\t", "\n", "\f", "\r", "\x01", "\x1f", "\x7f", "/",
      "\xC3\xA9",          // é
      "\xE2\x82\xAC",      // €
      "\xF0\x9F\x98\x80",  // U+1F600
      "\xEF\xBF\xBD",      // U+FFFD itself
      "\xED\x9F\xBF",      // U+D7FF, below the surrogates
      "\xEE\x80\x80",      // U+E000, above them
      "\xF4\x8F\xBF\xBF",  // U+10FFFF
      "\xC0\xAF",          // overlong '/'
      "\xE0\x80\xAF",      // overlong
      "\xED\xA0\x80",      // a surrogate
      "\xF4\x90\x80\x80",  // above U+10FFFF
      "\xF5\x80",          // lead byte never valid
      "\xC3",              // truncated
      "\xE2\x82",          // truncated
      "\xF0\x9F\x98",      // truncated
      "\x80", "\xBF", "\xFE", "\xFF", "a", "Z", "0", "~", "^", "-", ".", "_", " ",
  };
  std::string s;
  const std::size_t len = rng() % (max_len + 1);
  while (s.size() < len) {
    if (rng() % 3 == 0) {
      s += static_cast<char>(rng() & 0xFF);  // any byte at all
    } else {
      s += kPieces[rng() % (sizeof kPieces / sizeof kPieces[0])];
    }
  }
  return s;
}

TEST(JsonWriter, EscapesLikeNlohmann) {
  const std::string cases[] = {
      "",
      "plain",
      "q\"uote",
      "back\\slash",
      std::string("nul\0byte", 8),
      "\x01\x02\x1e\x1f\x20\x7f",
      "\b\t\n\f\r",
      "\xC3\xA9t\xC3\xA9",
      "\xE0\x80",          // a broken sequence: two replacements
      "\xE2\x82",          // truncated at the end: one
      "\xE2\x82x",         // broken by 'x', which is kept
      "\xF0\x9F\x98\x80",  // a 4-byte character, kept
      "\xED\xA0\x80",      // a surrogate: three replacements
      "\xFF\xFE",
      std::string(5000, 'x') + "\"" + std::string(5000, '\x80'),
  };
  for (const std::string& s : cases) EXPECT_EQ(OurString(s), NlohmannString(s)) << s;
}

TEST(JsonWriter, EscapesArbitraryBytesLikeNlohmann) {
  std::mt19937_64 rng(20240601);
  for (int i = 0; i < 20000; ++i) {
    const std::string s = HostileBytes(rng, i % 100 == 0 ? 600 : 24);
    const std::string ours = OurString(s);
    ASSERT_EQ(ours, NlohmannString(s)) << "case " << i;
    // And it is valid JSON text that reads back as a string.
    ASSERT_TRUE(Json::parse(ours).is_string());
  }
}

TEST(JsonWriter, EveryByteAloneAndInPairs) {
  for (int a = 0; a < 256; ++a) {
    const std::string one(1, static_cast<char>(a));
    ASSERT_EQ(OurString(one), NlohmannString(one)) << a;
    for (int b = 0; b < 256; ++b) {
      const std::string two = one + static_cast<char>(b) + "x";
      ASSERT_EQ(OurString(two), NlohmannString(two)) << a << " " << b;
    }
  }
}

TEST(JsonWriter, IntegersAndDoubles) {
  char buf[json::kMaxNumber];
  EXPECT_EQ(std::string(buf, json::WriteUnsigned(buf, 0)), "0");
  EXPECT_EQ(std::string(buf, json::WriteUnsigned(buf, UINT64_MAX)), "18446744073709551615");
  EXPECT_EQ(std::string(buf, json::WriteInteger(buf, -10)), "-10");
  const double cases[] = {0.0,     -0.0,     1.0,    3.0,      0.5,    42.0,   1e15,
                          1e16,    1e21,     1e-4,   1e-5,     2.5e-5, 0.1,    1.0 / 3,
                          123456789012345.0,  1234567890123456.0, 5e-324, 1.7976931348623157e308,
                          -2.5,    1e100,    -1e-100, 4.35,   0.001,  100.25, 65536.0};
  for (double v : cases) EXPECT_EQ(OurDouble(v), NlohmannDouble(v)) << v;
  EXPECT_EQ(OurDouble(std::nan("")), "null");
  EXPECT_EQ(OurDouble(INFINITY), "null");
  EXPECT_EQ(OurDouble(-INFINITY), NlohmannDouble(-INFINITY));
}

TEST(JsonWriter, RandomDoublesReadBackAndAreNeverLongerThanNlohmanns) {
  std::mt19937_64 rng(7);
  int differing = 0;
  for (int i = 0; i < 200000; ++i) {
    double v;
    const std::uint64_t bits = rng();
    std::memcpy(&v, &bits, sizeof v);
    if (i % 2 == 0) v = static_cast<double>(rng() % 1000000) / static_cast<double>(1 + rng() % 1000);
    if (!std::isfinite(v)) continue;
    const std::string ours = OurDouble(v), theirs = NlohmannDouble(v);
    ASSERT_EQ(std::strtod(ours.c_str(), nullptr), v) << ours;
    // Both layouts agree; only Grisu2's digits may differ (more of them, or
    // as many but not the closest to the exact value).
    if (ours != theirs) {
      ++differing;
      ASSERT_LE(ours.size(), theirs.size()) << ours << " vs " << theirs;
      ASSERT_EQ(Json::parse(ours).get<double>(), Json::parse(theirs).get<double>());
    }
  }
  RecordProperty("differing", differing);
}

// --- the payload --------------------------------------------------------

const char kIdChars[] = "-._ABCXYZabcxyz0123456789~^";

std::string IdPart(std::mt19937_64& rng, std::size_t max_len) {
  std::string s;
  const std::size_t len = 1 + rng() % max_len;
  for (std::size_t i = 0; i < len; ++i) s += kIdChars[rng() % (sizeof kIdChars - 1)];
  return s;
}

// A canonical Id whose keys come partly from the common tags' keys, so that
// its own tags override them. Drawn again until ParseCanonicalId takes it
// (reserved keys such as statistic, the 448-byte limit).
std::string RandomId(std::mt19937_64& rng, const std::vector<std::string>& shared_keys) {
  for (;;) {
    std::map<std::string, std::string> tags;
    const int n = static_cast<int>(rng() % 6);
    for (int i = 0; i < n; ++i) {
      std::string key = rng() % 2 ? shared_keys[rng() % shared_keys.size()] : IdPart(rng, 8);
      tags[key] = rng() % 10 == 0 ? IdPart(rng, 200) : IdPart(rng, 12);
    }
    std::string id = IdPart(rng, 20);
    for (const auto& [k, v] : tags) id += "," + k + "=" + v;
    IdView check;
    if (ParseCanonicalId(id, &check)) return id;
  }
}

// `nice`: only values whose every text is the same in both formatters
// (small integers and quarters, NaN), so the batch can be compared bytewise.
MeterReading RandomReading(std::mt19937_64& rng, std::vector<std::uint64_t>* buckets, bool nice) {
  MeterReading r;
  r.type = static_cast<MeterType>(rng() % 9);
  auto value = [&rng, nice]() -> double {
    switch (rng() % (nice ? 4 : 6)) {
      case 0:
        return 0;
      case 1:
        return static_cast<double>(rng() % 100);
      case 2:
        return -static_cast<double>(rng() % 100) / 4;
      case 3:
        return NAN;
      case 4:
        return static_cast<double>(rng() % 1000000) / 7.0;
      default: {
        double v;
        const std::uint64_t bits = rng();
        std::memcpy(&v, &bits, sizeof v);
        return v;
      }
    }
  };
  r.count = value();
  r.total = value();
  r.total_of_squares = value();
  r.max = value();
  r.value = value();
  if (r.type == MeterType::kPercentileTimer || r.type == MeterType::kPercentileDistributionSummary) {
    buckets->assign(kPercentileBucketCount, 0);
    for (int i = 0; i < 5; ++i) (*buckets)[rng() % kPercentileBucketCount] = 1 + rng() % 50;
    r.buckets = buckets->data();
  }
  return r;
}

bool NiceNumbers(const std::vector<Measurement>& ms) {
  for (const Measurement& m : ms) {
    if (m.value != std::floor(m.value * 4) / 4 || std::fabs(m.value) > 1e6) return false;
  }
  return true;
}

TEST(PayloadDifferential, MatchesTheOracleOnRandomBatches) {
  std::mt19937_64 rng(12345);
  const std::vector<std::string> shared_keys = {"nf.app", "status", "nf.node", "percentile",
                                                "statistic", "zz"};
  int byte_equal = 0;
  const int kBatches = 3000;
  for (int batch = 0; batch < kBatches; ++batch) {
    // Common tags: usually one set for many batches (the cache keeps it),
    // sometimes a new one; hostile values, sometimes hostile keys, at times
    // unsorted and with a repeated key (the first wins).
    static CommonTags common;
    if (batch % 50 == 0) {
      common.clear();
      const int n = static_cast<int>(rng() % 6);
      for (int i = 0; i < n; ++i) {
        std::string key = rng() % 3 ? shared_keys[rng() % shared_keys.size()] : HostileBytes(rng, 8);
        if (key.empty() || key == "name") key = "k";
        common.emplace_back(key, rng() % 2 ? HostileBytes(rng, 30) : IdPart(rng, 10));
      }
      if (rng() % 2) std::sort(common.begin(), common.end());
    }
    // Meters: a pool per batch, some reused from earlier batches at the same
    // cache slot, some at a slot another Id had (a collision), some without.
    static std::vector<std::string> ids;  // owns the Id texts the measurements view
    static std::vector<std::uint32_t> slots;
    if (ids.empty() || batch % 200 == 0) {
      ids.clear();
      slots.clear();
      for (int i = 0; i < 300; ++i) {
        ids.push_back(RandomId(rng, shared_keys));
        slots.push_back(static_cast<std::uint32_t>(i));
      }
    }
    std::vector<std::string> statistics;  // hostile statistic texts, viewed below
    statistics.reserve(8);
    std::vector<std::vector<std::uint64_t>> bucket_store(64);
    std::vector<Measurement> ms;
    const int meters = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < meters; ++i) {
      const std::size_t which = rng() % ids.size();
      const std::size_t before = ms.size();
      MeterReading r =
          RandomReading(rng, &bucket_store[static_cast<std::size_t>(i) % 64], batch % 3 == 0);
      AppendMeasurements(r, ids[which], &ms);
      std::uint32_t slot = slots[which];
      switch (rng() % 8) {
        case 0:
          slot = Measurement::kNoSlot;
          break;
        case 1:
          slot = static_cast<std::uint32_t>(rng() % 300);  // maybe another meter's slot
          break;
        default:
          break;
      }
      for (std::size_t k = before; k < ms.size(); ++k) ms[k].cache_slot = slot;
      if (rng() % 10 == 0 && statistics.size() < 8) {
        // A statistic (and percentile) no reader produces: hostile bytes.
        statistics.push_back(HostileBytes(rng, 12));
        const std::string_view pct = rng() % 2 ? std::string_view(statistics.back()) : "";
        ms.push_back({ids[which], statistics.back(), pct, rng() % 2 ? Op::kAdd : Op::kMax,
                      static_cast<double>(rng() % 9), slot});
      }
    }
    // An Id that does not parse is left out by both.
    if (rng() % 20 == 0) ms.push_back({"bad id,,", "count", "", Op::kAdd, 1, 7});

    const std::string fast = BuildPayload(common, ms.data(), ms.data() + ms.size());
    const std::string oracle = testing::OraclePayload(common, ms.data(), ms.data() + ms.size());
    Json fast_doc, oracle_doc;
    ASSERT_NO_THROW(fast_doc = Json::parse(fast)) << fast;
    oracle_doc = Json::parse(oracle);
    ASSERT_EQ(fast_doc, oracle_doc) << "batch " << batch << "\nfast:   " << fast
                                    << "\noracle: " << oracle;
    if (NiceNumbers(ms)) {
      ASSERT_EQ(fast, oracle) << "batch " << batch;
      ++byte_equal;
    }
  }
  // The byte comparison ran on a good share of the batches.
  EXPECT_GE(byte_equal, kBatches / 3);
}

TEST(PayloadDifferential, EmptyBatchAndReusedBuffer) {
  std::string out = "previous contents";
  BuildPayload({{"nf.app", "x"}}, nullptr, nullptr, &out);
  EXPECT_EQ(out, R"([1,"name"])");
  const std::vector<Measurement> ms = {{"a,k=v", "count", "", Op::kAdd, 1, 0}};
  BuildPayload({}, ms.data(), ms.data() + 1, &out);
  EXPECT_EQ(out, testing::OraclePayload({}, ms.data(), ms.data() + 1));
}

// A batch again, with nothing new to intern (the steady state: strings are
// marked while rows are read) and with its meters at moved cache slots.
TEST(PayloadDifferential, TheSameBatchAgainAndAtMovedSlots) {
  std::vector<std::string> ids = {"a,k=v", "b,k=w,nf.app=own", "c", "d,x=1,y=2"};
  const CommonTags common = {{"nf.app", "common"}, {"zz", "\"quoted\""}};
  std::vector<Measurement> ms;
  for (std::uint32_t i = 0; i < ids.size(); ++i) {
    ms.push_back({ids[i], "count", "", Op::kAdd, 1.0 + i, i});
    ms.push_back({ids[i], "percentile", "T0042", Op::kAdd, 2, i});
  }
  const std::string expected = testing::OraclePayload(common, ms.data(), ms.data() + ms.size());
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(BuildPayload(common, ms.data(), ms.data() + ms.size()), expected) << round;
  }
  for (Measurement& m : ms) m.cache_slot = (m.cache_slot + 1) % 4;  // positions shifted
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(BuildPayload(common, ms.data(), ms.data() + ms.size()), expected) << round;
  }
}

// docs/protocol.md, "Common tags": a meter's own tag wins over a common tag with
// the same key, in the Atlas payload as on stdout; the losing common value
// is not even in the string table.
TEST(PayloadTags, AMetersOwnTagBeatsACommonTag) {
  ::spectator::testing::TempSegment segment;
  Registry registry(segment.options());
  ::spectator::testing::CollectorReader reader(registry);
  registry.GetCounter("server.requestCount", {{"nf.app", "own"}, {"status", "200"}}).Add(2);
  registry.GetCounter("server.other").Add(1);
  std::vector<Measurement> ms;
  std::vector<std::string> ids;
  ids.reserve(4);
  reader.Scan(SegmentReader::Mode::kTake, std::chrono::system_clock::now(),
              [&](const MeterReading& r) {
                ids.emplace_back(r.id);
                AppendMeasurements(r, ids.back(), &ms);
              });
  ASSERT_EQ(ms.size(), 2u);
  const CommonTags common = {{"nf.app", "common"}, {"nf.region", "us-east-1"}};
  const std::string json = BuildPayload(common, ms.data(), ms.data() + ms.size());
  const auto decoded = ::spectator::testing::DecodePayload(json);
  ASSERT_EQ(decoded.size(), 2u);
  for (const auto& m : decoded) {
    if (m.name == "server.requestCount") {
      EXPECT_EQ(m.tags.at("nf.app"), "own");
      EXPECT_EQ(m.tags.at("status"), "200");
    } else {
      EXPECT_EQ(m.tags.at("nf.app"), "common");  // no tag of its own: the common one
    }
    EXPECT_EQ(m.tags.at("nf.region"), "us-east-1");
  }
  EXPECT_EQ(json, testing::OraclePayload(common, ms.data(), ms.data() + ms.size()));

  // The stdout sink's line, through the same merge.
  IdView id;
  ASSERT_TRUE(ParseCanonicalId(ms[0].id, &id));
  const std::string line = FormatLine(common, id, ms[0]);
  const std::string expected_own =
      "server.requestCount{nf.app=own,nf.region=us-east-1,statistic=count,status=200} 2";
  const std::string expected_other =
      "server.other{nf.app=common,nf.region=us-east-1,statistic=count} 1";
  EXPECT_TRUE(line == expected_own || line == expected_other) << line;
}

// MergeTags (stdout) and MergeMeterTags + ForEachTag (the payload) are one
// merge: statistic and percentile go in key order, and lose to a tag with
// their key (a reader's Id cannot have one; a common tag can).
TEST(PayloadTags, StatisticAndPercentileLoseToATagWithTheirKey) {
  const std::string id_text = "m,a=own,zz=own";
  IdView id;
  ASSERT_TRUE(ParseCanonicalId(id_text, &id));
  const Measurement m{id_text, "count", "T0001", Op::kAdd, 1};
  std::vector<TagPair> tags;  // views into the common tags: they must outlive it
  const CommonTags clashing = {
      {"a", "1"}, {"percentile", "mine"}, {"statistic", "mine"}, {"zz", "2"}};
  MergeTags(clashing, id, m, &tags);
  const std::vector<TagPair> overridden = {
      {"a", "own"}, {"percentile", "mine"}, {"statistic", "mine"}, {"zz", "own"}};
  EXPECT_EQ(tags, overridden);
  const CommonTags other = {{"b", "1"}};
  MergeTags(other, id, m, &tags);
  const std::vector<TagPair> placed = {
      {"a", "own"}, {"b", "1"}, {"percentile", "T0001"}, {"statistic", "count"}, {"zz", "own"}};
  EXPECT_EQ(tags, placed);
  const std::vector<Measurement> ms = {m};
  const CommonTags common = {{"percentile", "mine"}, {"statistic", "mine"}};
  EXPECT_EQ(BuildPayload(common, ms.data(), ms.data() + 1),
            testing::OraclePayload(common, ms.data(), ms.data() + 1));
}

}  // namespace
}  // namespace spectator::collector
