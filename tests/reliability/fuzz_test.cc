// Fault 3: randomised corruption with fixed seeds. The reader (peek and
// take), Info() and the worker side on a segment whose bytes were flipped or
// overwritten; attaching to a corrupted segment file; ParseCanonicalId on
// random and mutated strings. The ASan+UBSan build proves there is no stray
// read, write or undefined behaviour on the way.
#include <gtest/gtest.h>

#include "reliability_support.h"
#include "segment_fuzz.h"

namespace spectator::reliability {
namespace {

TEST(Fuzz, ReaderAndWorkersSurviveCorruptEntriesAndValues) {
  FuzzSegment(FuzzTarget::kEntriesAndValues, FuzzIterations(20000), 0xF0221);
}

TEST(Fuzz, ReaderAndWorkersSurviveCorruptHeaderCounters) {
  FuzzSegment(FuzzTarget::kHeaderCounters, FuzzIterations(5000), 0xF0222);
}

// The header's geometry (table_slots, value_words, ...) is validated when a
// Registry attaches; a process that rewrites it afterwards must not make the
// reader or a worker index past the mapping.
TEST(Fuzz, ReaderAndWorkersSurviveHeaderGeometryRewrittenAfterAttach) {
  FuzzSegment(FuzzTarget::kHeaderGeometry, FuzzIterations(5000), 0xF0223);
}

TEST(Fuzz, AttachRefusesOrSurvivesACorruptSegmentFile) {
  FuzzAttach(FuzzIterations(20000) / 10, 0xF0224);
}

TEST(Fuzz, ParseCanonicalIdNeverCrashesAndWhatItAcceptsRoundTrips) {
  FuzzCanonicalId(FuzzIterations(20000) * 2, 0xF0225);
}

}  // namespace
}  // namespace spectator::reliability
