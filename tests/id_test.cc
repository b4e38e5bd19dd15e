#include "spectator/id.h"

#include <gtest/gtest.h>

#include <random>

namespace spectator {
namespace {

std::string Canon(std::string_view name, const Tags& tags) {
  std::string out;
  const IdError e = CanonicalizeId(name, tags, &out);
  EXPECT_EQ(e, IdError::kOk) << ToString(e);
  return out;
}

IdError Refusal(std::string_view name, const Tags& tags) {
  std::string out = "untouched";
  const IdError e = CanonicalizeId(name, tags, &out);
  if (e != IdError::kOk) {
    EXPECT_EQ(out, "untouched");
  }
  return e;
}

TEST(Id, TagsAreSortedByKey) {
  EXPECT_EQ(Canon("server.requestCount", {{"status", "200"}, {"method", "GET"}}),
            "server.requestCount,method=GET,status=200");
}

TEST(Id, SameIdWhateverTheTagOrder) {
  EXPECT_EQ(Canon("m", {{"a", "1"}, {"b", "2"}, {"c", "3"}}),
            Canon("m", {{"c", "3"}, {"a", "1"}, {"b", "2"}}));
}

TEST(Id, InvalidCharactersBecomeUnderscore) {
  EXPECT_EQ(Canon("a b/c", {{"k y", "v,=\x01"}}), "a_b_c,k_y=v___");
  EXPECT_EQ(Canon("ok-._~^AZaz09", {}), "ok-._~^AZaz09");
}

TEST(Id, EachByteOfMultiByteUtf8IsReplaced) {
  EXPECT_EQ(Canon("caf\xC3\xA9", {}), "caf__");
  EXPECT_EQ(Canon("bad\xFF\xFEutf8", {}), "bad__utf8");
}

TEST(Id, DuplicateKeyLastValueWins) {
  EXPECT_EQ(Canon("m", {{"k", "first"}, {"k", "second"}}), "m,k=second");
}

TEST(Id, KeysEqualAfterSanitisingAreOneKey) {
  EXPECT_EQ(Canon("m", {{"a b", "1"}, {"a_b", "2"}}), "m,a_b=2");
}

TEST(Id, RefusesEmptyAndOversizedParts) {
  EXPECT_EQ(Refusal("", {}), IdError::kEmptyName);
  EXPECT_EQ(Refusal(std::string(256, 'n'), {}), IdError::kNameTooLong);
  EXPECT_EQ(Refusal(std::string(10240, 'n'), {}), IdError::kNameTooLong);
  EXPECT_EQ(Refusal("m", {{"", "v"}}), IdError::kEmptyTagKey);
  EXPECT_EQ(Refusal("m", {{"k", ""}}), IdError::kEmptyTagValue);
  EXPECT_EQ(Refusal("m", {{"k", std::string(256, 'v')}}), IdError::kTagTooLong);
  EXPECT_EQ(Canon(std::string(255, 'n'), {}), std::string(255, 'n'));
}

TEST(Id, RefusesReservedKeys) {
  EXPECT_EQ(Refusal("m", {{"statistic", "count"}}), IdError::kReservedTagKey);
  EXPECT_EQ(Refusal("m", {{"name", "x"}}), IdError::kReservedTagKey);
}

TEST(Id, TwentyTagsAreAllowedTwentyOneAreNot) {
  Tags tags;
  for (int i = 0; i < 20; ++i) tags.emplace_back("k" + std::to_string(i), "v");
  EXPECT_EQ(Refusal("m", tags), IdError::kOk);
  tags.emplace_back("k20", "v");
  EXPECT_EQ(Refusal("m", tags), IdError::kTooManyTags);
}

TEST(Id, ThousandsOfTagsAreRefusedCheaply) {
  Tags tags;
  for (int i = 0; i < 5000; ++i) tags.emplace_back("k" + std::to_string(i), "v");
  EXPECT_EQ(Refusal("m", tags), IdError::kTooManyTags);
}

TEST(Id, CanonicalFormLongerThanASlotIsRefused) {
  Tags tags;
  for (int i = 0; i < 3; ++i) tags.emplace_back("k" + std::to_string(i), std::string(200, 'v'));
  EXPECT_EQ(Refusal("m", tags), IdError::kIdTooLong);
}

TEST(Id, ParseRoundTripsCanonicalForm) {
  const std::string c = Canon("name", {{"b", "2"}, {"a", "1"}});
  IdView view;
  ASSERT_TRUE(ParseCanonicalId(c, &view));
  EXPECT_EQ(view.name, "name");
  ASSERT_EQ(view.tags.size(), 2u);
  EXPECT_EQ(view.tags[0].first, "a");
  EXPECT_EQ(view.tags[0].second, "1");
  EXPECT_EQ(view.tags[1].first, "b");
  EXPECT_EQ(view.tags[1].second, "2");
}

TEST(Id, ParseRejectsWhatCanonicalizeNeverProduces) {
  IdView view;
  for (const char* bad : {"", ",a=1", "m,", "m,a", "m,a=", "m,=1", "m,b=1,a=2", "m,a=1,a=2",
                          "m a", "m,statistic=count", "m,a=1=2", "m,,a=1"}) {
    EXPECT_FALSE(ParseCanonicalId(bad, &view)) << bad;
  }
  EXPECT_FALSE(ParseCanonicalId(std::string(kMaxIdBytes + 1, 'a'), &view));
}

// Fuzz-style: random bytes never crash the parser, and whatever it accepts is
// a fixed point of canonicalisation.
TEST(Id, ParserSurvivesRandomInputAndAcceptsOnlyCanonicalForms) {
  std::mt19937 rng(7);
  const std::string alphabet = "ab.,=_-~^\x01\xff Z9";
  for (int i = 0; i < 100000; ++i) {
    std::string s(rng() % 40, ' ');
    for (char& c : s) c = alphabet[rng() % alphabet.size()];
    IdView view;
    if (!ParseCanonicalId(s, &view)) continue;
    Tags tags;
    for (const auto& [k, v] : view.tags) tags.emplace_back(std::string(k), std::string(v));
    std::string again;
    ASSERT_EQ(CanonicalizeId(view.name, tags, &again), IdError::kOk) << s;
    ASSERT_EQ(again, s);
  }
}

}  // namespace
}  // namespace spectator
