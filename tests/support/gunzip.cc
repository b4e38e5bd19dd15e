#include "support/gunzip.h"

#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <limits>

namespace spectator::testing {
namespace {

// zlib counts in uInt; feed larger inputs in pieces of this size so that a
// payload beyond 4 GiB would still be handled correctly.
constexpr std::size_t kMaxChunk = std::numeric_limits<uInt>::max();
constexpr std::size_t kOutChunk = std::size_t{64} * 1024;

// windowBits 15 is the largest window; +32 detects a gzip or zlib header.
constexpr int kAutoDetectWindowBits = 15 + 32;

Bytef* InPtr(std::string_view data, std::size_t offset) {
  // zlib's API is not const-correct but never writes to next_in.
  return reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + offset));
}

}  // namespace

bool Gunzip(std::string_view data, std::string* out) {
  out->clear();
  z_stream zs{};
  if (inflateInit2(&zs, kAutoDetectWindowBits) != Z_OK) return false;
  std::size_t consumed = 0;
  bool ok = false;
  for (;;) {
    if (zs.avail_in == 0) {
      const std::size_t in_len = std::min(kMaxChunk, data.size() - consumed);
      zs.next_in = InPtr(data, consumed);
      zs.avail_in = static_cast<uInt>(in_len);
      consumed += in_len;
    }
    const std::size_t old_size = out->size();
    out->resize(old_size + kOutChunk);
    zs.next_out = reinterpret_cast<Bytef*>(out->data() + old_size);
    zs.avail_out = static_cast<uInt>(kOutChunk);
    const int rc = inflate(&zs, Z_NO_FLUSH);
    out->resize(old_size + kOutChunk - zs.avail_out);
    if (rc == Z_STREAM_END) {
      // RFC 1952 allows several members back to back (as `cat a.gz b.gz`
      // produces); decode each until the input is used up.
      if (zs.avail_in == 0 && consumed == data.size()) {
        ok = true;
        break;
      }
      if (inflateReset(&zs) != Z_OK) break;
      continue;
    }
    if (rc != Z_OK) break;  // Z_DATA_ERROR, Z_MEM_ERROR, Z_NEED_DICT, Z_BUF_ERROR
    // No progress possible: the input ended inside a member (truncated).
    if (zs.avail_in == 0 && consumed == data.size() && zs.avail_out != 0) break;
  }
  inflateEnd(&zs);
  return ok;
}

}  // namespace spectator::testing
