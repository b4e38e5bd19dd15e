// The payload decoder used by end-to-end assertions: it must read the
// docs/protocol.md example exactly and refuse every malformation loudly.
#include "support/atlas_payload.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "gzip.h"

namespace spectator::testing {
namespace {

// The example of docs/protocol.md, "Publish payload".
const char* const kExample =
    R"([8,"200","count","demo","name","nf.app","server.requestCount","statistic","status",)"
    R"( 4, 4,2, 6,1, 7,0, 3,5, 0, 3])";

TEST(AtlasPayload, DecodesTheProtocolExample) {
  const auto ms = DecodePayload(kExample);
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].name, "server.requestCount");
  const std::map<std::string, std::string> tags = {
      {"nf.app", "demo"}, {"statistic", "count"}, {"status", "200"}};
  EXPECT_EQ(ms[0].tags, tags);
  EXPECT_EQ(ms[0].op, 0);
  EXPECT_EQ(ms[0].value, 3);
}

TEST(AtlasPayload, DecodesSeveralMeasurementsSharingTheTable) {
  const auto ms = DecodePayload(R"([5,"a","count","max","name","statistic",)"
                                R"( 2, 4,1, 3,0, 0, 2.5,)"
                                R"( 2, 4,2, 3,0, 10, 7])");
  ASSERT_EQ(ms.size(), 2u);
  EXPECT_EQ(ms[1].op, 10);
  EXPECT_EQ(ms[1].tags.at("statistic"), "max");
  EXPECT_DOUBLE_EQ(Sum(ms, "a", "count"), 2.5);
  EXPECT_DOUBLE_EQ(Sum(ms, "a", "max"), 7);
  EXPECT_DOUBLE_EQ(Sum(ms, "b", "count"), 0);
}

TEST(AtlasPayload, AnEmptyBatchHasNoMeasurements) { EXPECT_TRUE(DecodePayload("[0]").empty()); }

TEST(AtlasPayload, RefusesMalformedPayloads) {
  const char* const bad[] = {
      "",                                               // not JSON
      "{}",                                             // not an array
      "[]",                                             // no string count
      R"([3,"a","name"])",                              // fewer strings than n
      R"([2,"name","a", 1, 0,1, 0, 1])",                // table not sorted
      R"([2,"a","a", 1, 0,1, 0, 1])",                   // table not unique
      R"([2,"a","name", 1, 1,2, 0, 1])",                // index out of range
      R"([2,"a","name", 1, 1,-1, 0, 1])",               // negative index
      R"([2,"a","name", 1, 0,0, 0, 1])",                // no name pair
      R"([3,"a","name","x", 2, 1,0, 2,0, 0, 1])",       // name pair not last
      R"([3,"a","name","x", 3, 2,0, 2,0, 1,0, 0, 1])",  // repeated tag key
      R"([2,"a","name", 0, 0, 1])",                     // zero pairs
      R"([2,"a","name", 1, 1,0, 0])",                   // value missing
      R"([2,"a","name", 2, 1,0, 0, 1])",                // count says more pairs
      R"([2,"a","name", 1, 1,0, 5, 1])",                // unknown op
      R"([2,"a","name", 1, 1,0, 0, "1"])",              // value not a number
      R"([2,"a","name", 1, 1,0, 0, 1, 1])",             // trailing partial measurement
      R"([2,"a",7, 1, 1,0, 0, 1])",                     // string entry not a string
  };
  for (const char* payload : bad) {
    EXPECT_THROW(DecodePayload(payload), std::runtime_error) << payload;
  }
}

TEST(AtlasPayload, ErrorsSayWhatIsWrong) {
  try {
    DecodePayload(R"([2,"name","a", 1, 0,1, 0, 1])");
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("sorted"), std::string::npos) << e.what();
  }
}

TEST(AtlasPayload, DecodeRequestsConcatenatesEveryGzippedBody) {
  HttpRequest a;
  a.headers = {{"Content-Encoding", "gzip"}};
  a.body = spectator::collector::Gzip(kExample);
  HttpRequest b = a;
  const auto ms = DecodeRequests({a, b});
  EXPECT_EQ(ms.size(), 2u);
  EXPECT_DOUBLE_EQ(Sum(ms, "server.requestCount", "count"), 6);

  HttpRequest broken;
  broken.body = "[1]";
  try {
    DecodeRequests({a, broken});
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("request 1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace spectator::testing
