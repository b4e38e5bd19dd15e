#pragma once

// gzip decoding (zlib) for tests and benchmarks: the collector only ever
// encodes, so the decoder lives here rather than in its library.

#include <string>
#include <string_view>

namespace spectator::testing {

/// Decompresses one or more gzip members (RFC 1952, back to back as
/// `cat a.gz b.gz` makes them) into `*out`. Returns false on malformed,
/// truncated or trailing-garbage input; `out` is then unspecified.
bool Gunzip(std::string_view data, std::string* out);

}  // namespace spectator::testing
