#pragma once

// gzip (RFC 1952) compression of publish payloads, with zlib.

#include <string>
#include <string_view>

namespace spectator::collector {

/// Compresses `data` into a gzip member. Throws std::runtime_error only when
/// zlib itself fails (out of memory).
std::string Gzip(std::string_view data);

/// Decompresses one or more gzip members (tests, and gzip'd HTTP responses).
/// Returns false on malformed input; `out` is then unspecified.
bool Gunzip(std::string_view data, std::string* out);

}  // namespace spectator::collector
