// gzip of publish payloads: what Gzip writes, Gunzip (and any gzip reader)
// reads back byte for byte; malformed input is refused, not half-decoded.
#include "gzip.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

#include "support/gunzip.h"

namespace spectator::collector {
namespace {

using spectator::testing::Gunzip;

std::string RoundTrip(const std::string& data) {
  std::string out = "garbage";
  EXPECT_TRUE(Gunzip(Gzip(data), &out));
  return out;
}

TEST(Gzip, EmptyInputRoundTrips) { EXPECT_EQ(RoundTrip(""), ""); }

TEST(Gzip, WritesAGzipHeader) {
  const std::string z = Gzip("[1,\"a\"]");
  ASSERT_GE(z.size(), 18u);  // 10-byte header + 8-byte trailer at least
  EXPECT_EQ(static_cast<unsigned char>(z[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(z[1]), 0x8b);
  EXPECT_EQ(z[2], 8);  // deflate
}

TEST(Gzip, LargeRepetitiveInputRoundTripsAndShrinks) {
  std::string json = "[";
  for (int i = 0; i < 200000; ++i) json += "\"server.requestCount\",";
  json += "0]";
  const std::string z = Gzip(json);
  EXPECT_LT(z.size(), json.size() / 10);
  std::string back;
  ASSERT_TRUE(Gunzip(z, &back));
  EXPECT_EQ(back, json);
}

TEST(Gzip, BinaryInputLargerThanOneBufferRoundTrips) {
  std::mt19937 rng(42);
  std::string data(3 * 64 * 1024 + 17, '\0');
  for (char& c : data) c = static_cast<char>(rng() & 0xff);
  EXPECT_EQ(RoundTrip(data), data);
}

// Every encoder of the build writes standard gzip (RFC 1952) that zlib
// reads back, on empty, small, JSON-like and incompressible inputs; one
// output buffer is reused throughout.
TEST(Gzip, EveryAvailableCodecWritesGzipThatZlibReads) {
  std::mt19937 rng(7);
  std::string random(300 * 1024 + 3, '\0');
  for (char& c : random) c = static_cast<char>(rng() & 0xff);
  std::string json = "[";
  for (int i = 0; i < 100000; ++i) json += std::to_string(i % 977) + ",";
  json += "0]";
  const std::string inputs[] = {"", "x", "[1,\"a\"]", json, random};
  int codecs = 0;
  for (GzipCodec codec : {GzipCodec::kZlib1, GzipCodec::kLibdeflate1, GzipCodec::kIsal0,
                          GzipCodec::kIsal1}) {
    if (!GzipAvailable(codec)) continue;
    ++codecs;
    std::string z = "stale";
    for (const std::string& in : inputs) {
      GzipInto(in, &z, codec);
      ASSERT_GE(z.size(), 18u) << ToString(codec);
      EXPECT_EQ(static_cast<unsigned char>(z[0]), 0x1f) << ToString(codec);
      EXPECT_EQ(static_cast<unsigned char>(z[1]), 0x8b) << ToString(codec);
      EXPECT_EQ(z[2], 8) << ToString(codec);
      std::string back = "garbage";
      ASSERT_TRUE(Gunzip(z, &back)) << ToString(codec) << " " << in.size();
      EXPECT_EQ(back, in) << ToString(codec);
    }
    GzipInto(json, &z, codec);
    EXPECT_LT(z.size(), json.size() / 3) << ToString(codec);
  }
  EXPECT_GE(codecs, 1);
  EXPECT_TRUE(GzipAvailable(DefaultGzipCodec()));
}

TEST(Gunzip, ReadsConcatenatedMembers) {
  std::string out;
  ASSERT_TRUE(Gunzip(Gzip("hello, ") + Gzip("") + Gzip("world"), &out));
  EXPECT_EQ(out, "hello, world");
}

TEST(Gunzip, RefusesEmptyInput) {
  std::string out;
  EXPECT_FALSE(Gunzip("", &out));
}

TEST(Gunzip, RefusesDataThatIsNotGzip) {
  std::string out;
  EXPECT_FALSE(Gunzip("[8,\"200\",\"count\"]", &out));
}

TEST(Gunzip, RefusesATruncatedMember) {
  const std::string z = Gzip(std::string(10000, 'x') + "end");
  std::string out;
  EXPECT_FALSE(Gunzip(z.substr(0, z.size() - 4), &out));  // trailer cut
  EXPECT_FALSE(Gunzip(z.substr(0, z.size() / 2), &out));
}

TEST(Gunzip, RefusesACorruptChecksum) {
  std::string z = Gzip("some payload that is long enough to matter");
  z[z.size() - 6] = static_cast<char>(z[z.size() - 6] ^ 0x55);  // inside the CRC32
  std::string out;
  EXPECT_FALSE(Gunzip(z, &out));
}

TEST(Gunzip, RefusesTrailingGarbage) {
  std::string out;
  EXPECT_FALSE(Gunzip(Gzip("x") + "trailing", &out));
}

}  // namespace
}  // namespace spectator::collector
