#include "segment_fuzz.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "fuzz_setup.h"
#include "reliability_support.h"
#include "segment_layout.h"
#include "spectator/internal/reader.h"
#include "support/collector_reader.h"
#include "spectator/spectator.h"
#include "support/temp_segment.h"

namespace spectator::reliability {
namespace {

using namespace std::chrono_literals;
using internal::Entry;
using internal::SegmentHeader;
using testing::TempSegment;

void Quiet(LogLevel, std::string_view) {}

std::uint64_t Interesting(std::mt19937_64& rng, std::uint64_t value_words) {
  const std::uint64_t values[] = {
      0,
      1,
      7,
      8,
      0x7F,
      0xFF,
      0xFFFF,
      0xFFFFFFFFULL,
      0x80000000ULL,
      std::uint64_t{1} << 32,
      std::uint64_t{1} << 40,
      std::uint64_t{1} << 62,
      ~std::uint64_t{0},
      ~std::uint64_t{0} - 7,
      0x7FFFFFFFFFFFFFFFULL,
      0x8000000000000000ULL,
      internal::kReadyState,
      internal::kReadyState | 1,
      internal::kAbandonedState,
      // Claims whose lock nobody holds (the largest token, and one the
      // segment handed out): both dead.
      internal::ClaimedState(internal::kMaxClaimToken),
      internal::ClaimedState(1),
      internal::kMagic,
      internal::kReadyValue,
      value_words,
      value_words - 8,
      value_words + 8,
      value_words - 576,
      detail::kNaNBits,
      detail::ToBits(-1.0),
      detail::ToBits(1e300),
      detail::ToBits(-1e300),
      detail::ToBits(INFINITY),
  };
  return values[rng() % (sizeof values / sizeof values[0])];
}

// One corruption somewhere in [begin, end) of `bytes`.
void Mutate(std::mt19937_64& rng, char* bytes, std::size_t begin, std::size_t end,
            std::uint64_t value_words) {
  if (end <= begin) return;
  const std::size_t span = end - begin;
  const std::size_t at = begin + rng() % span;
  switch (rng() % 6) {
    case 0:  // one bit
      bytes[at] = static_cast<char>(bytes[at] ^ (1 << (rng() % 8)));
      break;
    case 1:  // one byte
      bytes[at] = static_cast<char>(rng());
      break;
    case 2:
    case 3: {  // an aligned word: an interesting value or noise
      const std::size_t word = at & ~std::size_t{7};
      if (word < begin || word + 8 > end) break;
      const std::uint64_t v = rng() % 4 == 0 ? rng() : Interesting(rng, value_words);
      std::memcpy(bytes + word, &v, 8);
      break;
    }
    case 4: {  // an aligned 32-bit field (table_slots, value_words of an entry, ...)
      const std::size_t word = at & ~std::size_t{3};
      if (word < begin || word + 4 > end) break;
      const auto v =
          static_cast<std::uint32_t>(rng() % 2 == 0 ? rng() : Interesting(rng, value_words));
      std::memcpy(bytes + word, &v, 4);
      break;
    }
    case 5: {  // a run of noise, up to a cache line
      const std::size_t n = std::min<std::size_t>(1 + rng() % 64, end - at);
      for (std::size_t i = 0; i < n; ++i) bytes[at + i] = static_cast<char>(rng());
      break;
    }
  }
}

// Checks one scan's readings against what any scan of any segment must
// satisfy. Returns false (after reporting) at the first violation.
bool CheckScan(SegmentReader& reader, SegmentReader::Mode mode, std::uint32_t slots,
               std::uint64_t seed, long iteration, std::mt19937_64& rng) {
  bool ok = true;
  const auto stats =
      reader.Scan(mode, std::chrono::system_clock::now(), [&](const MeterReading& r) {
        IdView view;
        const bool percentile = r.type == MeterType::kPercentileTimer ||
                                r.type == MeterType::kPercentileDistributionSummary;
        if (!ParseCanonicalId(r.id, &view) || r.slot >= slots ||
            static_cast<std::uint8_t>(r.type) < kMinMeterType ||
            static_cast<std::uint8_t>(r.type) > kMaxMeterType ||
            (r.buckets != nullptr) != percentile) {
          ok = false;
        }
        if (mode == SegmentReader::Mode::kTake) {
          if (rng() % 2 == 0) {
            reader.Commit(r);
          } else {
            reader.Restore(r);
          }
        }
      });
  if (stats.meters + stats.corrupt > slots) ok = false;
  EXPECT_TRUE(ok) << "a scan delivered an impossible reading (seed " << seed << ", iteration "
                  << iteration << ")";
  return ok;
}

// The worker side on the same bytes: looks up existing Ids, registers new
// ones, updates whatever it got. Live or no-op, it must not crash.
void Exercise(Registry& r, long iteration) {
  const std::string i = std::to_string(iteration % 5);
  r.GetCounter("fz.counter", {{"status", "200"}}).Increment();
  r.GetTimer("fz.timer", {{"method", "GET"}}).Record(1ms);
  r.GetPercentileTimer("fz.ptimer").Record(15ms);
  r.GetPercentileDistributionSummary("fz.psummary", {}, 0, 1000).Record(5);
  r.GetMaxGauge("fz.max").Set(1);
  r.GetGauge("fz.gauge").Set(2);
  r.GetCounter("fz.new", {{"i", i}}).Add(1);
  r.GetPercentileTimer("fz.newp", {{"i", i}}).Record(1s);
  (void)r.Info();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool WriteFresh(const std::string& path, const std::string& bytes) {
  ::unlink(path.c_str());
  const int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  const bool ok = ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  ::close(fd);
  return ok;
}

}  // namespace

void FuzzSegment(FuzzTarget target, long iterations, std::uint64_t seed) {
  TempSegment seg;
  SegmentOptions options = seg.options(/*max_meters=*/16, /*value_words=*/4096);
  options.logger = &Quiet;
  Registry registry(options);
  PopulateEveryMeterType(registry);
  RawSegment raw(seg.path());
  ASSERT_TRUE(raw.ok());
  const std::uint32_t slots = raw.slots();
  const std::uint64_t value_words = raw.header().value_words;
  const std::string pristine(raw.bytes(), raw.size());
  {
    testing::CollectorReader reader(registry);
    const ScanResult before = ScanSegment(reader, SegmentReader::Mode::kPeek);
    ASSERT_EQ(before.by_id.size(), 9u) << "every meter type should be in the pristine segment";
    ASSERT_EQ(before.stats.corrupt, 0u);
  }

  std::size_t begin = 0, end = 0;
  switch (target) {
    case FuzzTarget::kEntriesAndValues:
      begin = sizeof(SegmentHeader);
      end = raw.size();
      break;
    case FuzzTarget::kHeaderCounters:
      begin = offsetof(SegmentHeader, created_unix_ns);
      end = sizeof(SegmentHeader);
      break;
    case FuzzTarget::kHeaderGeometry:
      begin = 0;
      end = offsetof(SegmentHeader, created_unix_ns);
      break;
  }

  std::mt19937_64 rng(seed);
  for (long it = 0; it < iterations; ++it) {
    std::memcpy(raw.bytes(), pristine.data(), pristine.size());
    const int mutations = 1 + static_cast<int>(rng() % 8);
    for (int m = 0; m < mutations; ++m) Mutate(rng, raw.bytes(), begin, end, value_words);

    testing::CollectorReader reader(registry);
    if (!CheckScan(reader, SegmentReader::Mode::kPeek, slots, seed, it, rng)) return;
    if (!CheckScan(reader, SegmentReader::Mode::kTake, slots, seed, it, rng)) return;
    (void)reader.Info();
    Exercise(registry, it);
    // The same reader again: it caches validated entries, and must still be
    // safe after the worker side wrote into the corrupt segment.
    if (!CheckScan(reader, SegmentReader::Mode::kTake, slots, seed, it, rng)) return;
    if (!CheckScan(reader, SegmentReader::Mode::kPeek, slots, seed, it, rng)) return;
  }
  std::memcpy(raw.bytes(), pristine.data(), pristine.size());
  std::printf("[ reliability ] segment fuzz: %ld iterations, seed %llu\n", iterations,
              static_cast<unsigned long long>(seed));
}

void FuzzAttach(long iterations, std::uint64_t seed) {
  TempSegment seg;
  SegmentOptions options = seg.options(/*max_meters=*/16, /*value_words=*/4096);
  options.logger = &Quiet;
  {
    Registry creator(options);
    PopulateEveryMeterType(creator);
  }
  const std::string pristine = ReadFile(seg.path());
  ASSERT_GT(pristine.size(), sizeof(SegmentHeader));
  const std::uint64_t value_words = 4096;
  constexpr std::size_t kMagicEnd = offsetof(SegmentHeader, magic) + 8;
  constexpr std::size_t kReadyBegin = offsetof(SegmentHeader, ready);

  std::mt19937_64 rng(seed);
  long refused = 0, attached = 0;
  for (long it = 0; it < iterations; ++it) {
    std::string bytes = pristine;
    const int mutations = 1 + static_cast<int>(rng() % 8);
    for (int m = 0; m < mutations; ++m) {
      // Half in the header (all but the magic and ready words: a zero magic
      // or a missing ready flag make the attacher wait 2 s for a creator;
      // their own tests cover that), the rest anywhere after it.
      if (rng() % 2 == 0) {
        Mutate(rng, bytes.data(), kMagicEnd, kReadyBegin, value_words);
        Mutate(rng, bytes.data(), kReadyBegin + 4, sizeof(SegmentHeader), value_words);
      } else {
        Mutate(rng, bytes.data(), sizeof(SegmentHeader), bytes.size(), value_words);
      }
    }
    if (rng() % 10 == 0) {  // truncated or extended, never below a header
      bytes.resize(sizeof(SegmentHeader) + rng() % (pristine.size() + 4096));
    }
    ASSERT_TRUE(WriteFresh(seg.path(), bytes));
    try {
      Registry attacher(options);
      ++attached;
      testing::CollectorReader reader(attacher);
      const std::uint32_t slots = attacher.Info().table_slots;
      if (!CheckScan(reader, SegmentReader::Mode::kPeek, slots, seed, it, rng)) return;
      if (!CheckScan(reader, SegmentReader::Mode::kTake, slots, seed, it, rng)) return;
      Exercise(attacher, it);
    } catch (const Error& e) {
      ++refused;
      const std::string what = e.what();
      ASSERT_NE(what.find(seg.name()), std::string::npos)
          << "an Error must name the segment: " << what << " (seed " << seed << ", iteration " << it
          << ")";
      ASSERT_TRUE(ReadFile(seg.path()) == bytes)
          << "a refused segment was modified: " << what << " (seed " << seed << ", iteration " << it
          << ")";
    }
  }
  std::printf(
      "[ reliability ] attach fuzz: %ld iterations (%ld refused, %ld attached), seed %llu\n",
      iterations, refused, attached, static_cast<unsigned long long>(seed));
}

namespace {

std::string Escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    }
  }
  return out;
}

char RandomChar(std::mt19937_64& rng) {
  static const char kAllowed[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~^";
  switch (rng() % 10) {
    case 0:
      return ',';
    case 1:
      return '=';
    case 2:
      return static_cast<char>(rng());  // any byte, NUL and UTF-8 included
    default:
      return kAllowed[rng() % (sizeof kAllowed - 1)];
  }
}

std::string RandomPart(std::mt19937_64& rng, std::size_t max_len) {
  std::string s(rng() % (max_len + 1), 'x');
  for (char& c : s) c = RandomChar(rng);
  return s;
}

// True (and nothing reported) when `s` is refused, or accepted and round-trips.
bool CheckParse(const std::string& s, std::uint64_t seed, long it) {
  IdView view;
  if (!ParseCanonicalId(s, &view)) return true;
  Tags tags;
  for (const auto& [k, v] : view.tags) tags.emplace_back(std::string(k), std::string(v));
  std::string again;
  const IdError error = CanonicalizeId(view.name, tags, &again);
  const bool ok = error == IdError::kOk && again == s && view.tags.size() <= kMaxUserTags;
  EXPECT_TRUE(ok) << "ParseCanonicalId accepted '" << Escape(s)
                  << "' but it does not round-trip: " << ToString(error) << ", '" << Escape(again)
                  << "' (seed " << seed << ", iteration " << it << ")";
  return ok;
}

}  // namespace

void FuzzCanonicalId(long iterations, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  long accepted = 0;
  for (long it = 0; it < iterations; ++it) {
    std::string s;
    if (rng() % 4 == 0) {
      s = RandomPart(rng, 500);  // pure noise
    } else {
      // A random Id, canonicalised: must parse and round-trip...
      Tags tags;
      // Mostly a few short tags; sometimes many, or long parts, to reach the limits.
      const std::size_t n = rng() % 4 == 0 ? rng() % 24 : rng() % 6;
      for (std::size_t t = 0; t < n; ++t) {
        tags.emplace_back(RandomPart(rng, rng() % 10 == 0 ? 300 : 12),
                          RandomPart(rng, rng() % 10 == 0 ? 300 : 12));
      }
      const std::string name = RandomPart(rng, rng() % 4 == 0 ? 300 : 20);
      if (CanonicalizeId(name, tags, &s) == IdError::kOk) {
        IdView view;
        ASSERT_TRUE(ParseCanonicalId(s, &view))
            << "a canonical Id was refused: '" << Escape(s) << "' (seed " << seed << ", iteration "
            << it << ")";
        if (!CheckParse(s, seed, it)) return;
        ++accepted;
      } else {
        s = name;
        for (const auto& [k, v] : tags) s += "," + k + "=" + v;
      }
      // ...then mutated: still never a crash, and whatever is accepted round-trips.
      const int mutations = 1 + static_cast<int>(rng() % 4);
      for (int m = 0; m < mutations && !s.empty(); ++m) {
        const std::size_t at = rng() % s.size();
        switch (rng() % 7) {
          case 0:
            s[at] = RandomChar(rng);
            break;
          case 1:
            s.insert(at, 1, RandomChar(rng));
            break;
          case 2:
            s.erase(at, 1 + rng() % 8);
            break;
          case 3:
            s += s.substr(s.find(',') == std::string::npos ? 0 : s.find(','));
            break;
          case 4:
            s.insert(at, ",name=x");
            break;
          case 5:
            s.insert(at, std::string(1 + rng() % 300, 'a'));
            break;
          case 6: {  // swap the first two tags
            const std::size_t a = s.find(',');
            const std::size_t b = a == std::string::npos ? a : s.find(',', a + 1);
            if (b != std::string::npos) {
              const std::size_t c = s.find(',', b + 1);
              const std::string first = s.substr(a, b - a);
              const std::string second = s.substr(b, c == std::string::npos ? c : c - b);
              s = s.substr(0, a) + second + first + (c == std::string::npos ? "" : s.substr(c));
            }
            break;
          }
        }
      }
    }
    if (!CheckParse(s, seed, it)) return;
  }
  std::printf("[ reliability ] canonical Id fuzz: %ld iterations (%ld valid Ids), seed %llu\n",
              iterations, accepted, static_cast<unsigned long long>(seed));
}

}  // namespace spectator::reliability
