#include "gzip.h"

#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <limits>
#include <stdexcept>

namespace spectator::collector {
namespace {

// zlib counts in uInt; feed larger inputs in pieces of this size so that a
// payload beyond 4 GiB would still be handled correctly.
constexpr std::size_t kMaxChunk = std::numeric_limits<uInt>::max();
constexpr std::size_t kOutChunk = std::size_t{64} * 1024;

// windowBits 15 is the largest window; +16 asks zlib for a gzip header and
// trailer instead of a raw zlib stream; +32 on inflate detects gzip or zlib.
constexpr int kGzipWindowBits = 15 + 16;
constexpr int kAutoDetectWindowBits = 15 + 32;

Bytef* InPtr(std::string_view data, std::size_t offset) {
  // zlib's API is not const-correct but never writes to next_in.
  return reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + offset));
}

}  // namespace

std::string Gzip(std::string_view data) {
  z_stream zs{};
  // Level 1: on publish payloads it compresses ~3x faster than the default
  // level 6 for ~28% more bytes (benchmarks/README.md, item 5); the
  // collector's CPU is the scarcer resource next to a busy server.
  if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, kGzipWindowBits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("gzip: deflateInit2 failed");
  }
  std::string out;
  // JSON payloads typically shrink 5-10x; start with a guess and grow.
  out.reserve(std::max<std::size_t>(64, data.size() / 4));
  std::size_t consumed = 0;
  int rc = Z_OK;
  do {
    const std::size_t in_len = std::min(kMaxChunk, data.size() - consumed);
    zs.next_in = InPtr(data, consumed);
    zs.avail_in = static_cast<uInt>(in_len);
    const bool last = consumed + in_len == data.size();
    const int flush = last ? Z_FINISH : Z_NO_FLUSH;
    do {
      const std::size_t old_size = out.size();
      out.resize(old_size + kOutChunk);
      zs.next_out = reinterpret_cast<Bytef*>(out.data() + old_size);
      zs.avail_out = static_cast<uInt>(kOutChunk);
      rc = deflate(&zs, flush);
      out.resize(old_size + kOutChunk - zs.avail_out);
      if (rc == Z_STREAM_ERROR) {
        deflateEnd(&zs);
        throw std::runtime_error("gzip: deflate failed");
      }
    } while (zs.avail_out == 0);
    consumed += in_len - zs.avail_in;
  } while (rc != Z_STREAM_END);
  deflateEnd(&zs);
  return out;
}

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

}  // namespace spectator::collector
