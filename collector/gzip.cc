#include "gzip.h"

#include <zlib.h>

#ifdef SPECTATOR_HAVE_LIBDEFLATE
#include <libdeflate.h>
#endif
#ifdef SPECTATOR_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>

namespace spectator::collector {
namespace {

// zlib counts in uInt; feed larger inputs in pieces of this size so that a
// payload beyond 4 GiB would still be handled correctly.
constexpr std::size_t kMaxChunk = std::numeric_limits<uInt>::max();
constexpr std::size_t kOutChunk = std::size_t{64} * 1024;

// windowBits 15 is the largest window; +16 asks zlib for a gzip header and
// trailer instead of a raw zlib stream.
constexpr int kGzipWindowBits = 15 + 16;

Bytef* InPtr(std::string_view data, std::size_t offset) {
  // zlib's API is not const-correct but never writes to next_in.
  return reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + offset));
}

void GzipZlib(std::string_view data, std::string* out) {
  z_stream zs{};
  // Level 1: on publish payloads it compresses ~3x faster than the default
  // level 6 for ~28% more bytes (benchmarks/README.md, item 5).
  if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, kGzipWindowBits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("gzip: deflateInit2 failed");
  }
  out->clear();
  // JSON payloads typically shrink 5-10x; start with a guess and grow.
  out->reserve(std::max<std::size_t>(64, data.size() / 4));
  std::size_t consumed = 0;
  int rc = Z_OK;
  do {
    const std::size_t in_len = std::min(kMaxChunk, data.size() - consumed);
    zs.next_in = InPtr(data, consumed);
    zs.avail_in = static_cast<uInt>(in_len);
    const bool last = consumed + in_len == data.size();
    const int flush = last ? Z_FINISH : Z_NO_FLUSH;
    do {
      const std::size_t old_size = out->size();
      out->resize(old_size + kOutChunk);
      zs.next_out = reinterpret_cast<Bytef*>(out->data() + old_size);
      zs.avail_out = static_cast<uInt>(kOutChunk);
      rc = deflate(&zs, flush);
      out->resize(old_size + kOutChunk - zs.avail_out);
      if (rc == Z_STREAM_ERROR) {
        deflateEnd(&zs);
        throw std::runtime_error("gzip: deflate failed");
      }
    } while (zs.avail_out == 0);
    consumed += in_len - zs.avail_in;
  } while (rc != Z_STREAM_END);
  deflateEnd(&zs);
}

// A per-thread output buffer for the whole-buffer encoders, kept between
// calls and never zero-filled (std::string::resize would write every byte
// of a worst-case-sized buffer, 10x the output, before the encoder does).
class RawBuffer {
 public:
  char* Reserve(std::size_t n) {
    if (n > size_) {
      data_.reset(new char[n]);
      size_ = n;
    }
    return data_.get();
  }
  std::size_t size() const { return size_; }
  char* data() { return data_.get(); }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t size_ = 0;
};

#ifdef SPECTATOR_HAVE_LIBDEFLATE
void GzipLibdeflate(std::string_view data, std::string* out) {
  // One compressor per thread, kept: allocating one costs more than
  // compressing a small batch.
  struct Compressor {
    libdeflate_compressor* c = libdeflate_alloc_compressor(1);
    ~Compressor() { libdeflate_free_compressor(c); }
  };
  thread_local Compressor compressor;
  if (compressor.c == nullptr) throw std::runtime_error("gzip: libdeflate_alloc_compressor failed");
  thread_local RawBuffer buffer;
  const std::size_t bound = libdeflate_gzip_compress_bound(compressor.c, data.size());
  char* const raw = buffer.Reserve(bound);
  const std::size_t n = libdeflate_gzip_compress(compressor.c, data.data(), data.size(), raw, bound);
  if (n == 0) throw std::runtime_error("gzip: libdeflate_gzip_compress failed");
  out->assign(raw, n);
}
#endif

#ifdef SPECTATOR_HAVE_ISAL
void GzipIsal(std::string_view data, std::string* out, int level) {
  // Level 1 needs a work buffer (ISAL_DEF_LVL1_DEFAULT, ~300 KiB): one per
  // thread, kept.
  thread_local std::string level_buf;
  if (level > 0) level_buf.resize(ISAL_DEF_LVL1_DEFAULT);
  isal_zstream zs;
  auto setup = [&](bool stateless) {
    if (stateless) {
      isal_deflate_stateless_init(&zs);
    } else {
      isal_deflate_init(&zs);
    }
    zs.gzip_flag = IGZIP_GZIP;  // a generic 10-byte gzip header and the CRC32/ISIZE trailer
    zs.level = static_cast<std::uint32_t>(level);
    if (level > 0) {
      zs.level_buf = reinterpret_cast<std::uint8_t*>(level_buf.data());
      zs.level_buf_size = static_cast<std::uint32_t>(level_buf.size());
    }
  };
  thread_local RawBuffer buffer;
  // Stored blocks bound the output at input + 5 bytes per 64 KiB + header;
  // the stateful loop grows the buffer anyway if that guess is ever short.
  buffer.Reserve(data.size() + data.size() / 64 + 1024);
  // One stateless call when the input fits a uint32 (always, for a batch):
  // it compresses straight from the input, where the stateful API copies it
  // through its history buffer first.
  if (data.size() < UINT32_MAX / 2 && buffer.size() <= UINT32_MAX) {
    setup(true);
    zs.next_in = reinterpret_cast<std::uint8_t*>(const_cast<char*>(data.data()));
    zs.avail_in = static_cast<std::uint32_t>(data.size());
    zs.end_of_stream = 1;
    zs.flush = NO_FLUSH;
    zs.next_out = reinterpret_cast<std::uint8_t*>(buffer.data());
    zs.avail_out = static_cast<std::uint32_t>(buffer.size());
    if (isal_deflate_stateless(&zs) == COMP_OK) {
      out->assign(buffer.data(), buffer.size() - zs.avail_out);
      return;
    }
    // STATELESS_OVERFLOW (the guess was short): the stateful loop below.
  }
  setup(false);
  std::size_t consumed = 0;
  std::size_t produced = 0;
  for (;;) {
    const std::size_t in_len = std::min<std::size_t>(UINT32_MAX, data.size() - consumed);
    zs.next_in = reinterpret_cast<std::uint8_t*>(const_cast<char*>(data.data() + consumed));
    zs.avail_in = static_cast<std::uint32_t>(in_len);
    zs.end_of_stream = consumed + in_len == data.size() ? 1 : 0;
    if (produced == buffer.size()) {
      std::unique_ptr<char[]> keep(new char[produced]);
      std::memcpy(keep.get(), buffer.data(), produced);
      buffer.Reserve(2 * produced);
      std::memcpy(buffer.data(), keep.get(), produced);
    }
    const std::size_t room = std::min<std::size_t>(UINT32_MAX, buffer.size() - produced);
    zs.next_out = reinterpret_cast<std::uint8_t*>(buffer.data() + produced);
    zs.avail_out = static_cast<std::uint32_t>(room);
    if (isal_deflate(&zs) != COMP_OK) throw std::runtime_error("gzip: isal_deflate failed");
    consumed += in_len - zs.avail_in;
    produced += room - zs.avail_out;
    if (zs.internal_state.state == ZSTATE_END) break;
  }
  out->assign(buffer.data(), produced);
}
#endif

}  // namespace

const char* ToString(GzipCodec codec) {
  switch (codec) {
    case GzipCodec::kZlib1:
      return "zlib-1";
    case GzipCodec::kLibdeflate1:
      return "libdeflate-1";
    case GzipCodec::kIsal0:
      return "isal-0";
    case GzipCodec::kIsal1:
      return "isal-1";
  }
  return "?";
}

bool GzipAvailable(GzipCodec codec) {
  switch (codec) {
    case GzipCodec::kZlib1:
      return true;
    case GzipCodec::kLibdeflate1:
#ifdef SPECTATOR_HAVE_LIBDEFLATE
      return true;
#else
      return false;
#endif
    case GzipCodec::kIsal0:
    case GzipCodec::kIsal1:
#ifdef SPECTATOR_HAVE_ISAL
      return true;
#else
      return false;
#endif
  }
  return false;
}

GzipCodec DefaultGzipCodec() {
  // benchmarks/README.md, "Compression": the choice on real payloads.
#if defined(SPECTATOR_HAVE_ISAL)
  return GzipCodec::kIsal1;
#elif defined(SPECTATOR_HAVE_LIBDEFLATE)
  return GzipCodec::kLibdeflate1;
#else
  return GzipCodec::kZlib1;
#endif
}

void GzipInto(std::string_view data, std::string* out, GzipCodec codec) {
  switch (codec) {
    case GzipCodec::kZlib1:
      break;
    case GzipCodec::kLibdeflate1:
#ifdef SPECTATOR_HAVE_LIBDEFLATE
      GzipLibdeflate(data, out);
      return;
#else
      break;
#endif
    case GzipCodec::kIsal0:
    case GzipCodec::kIsal1:
#ifdef SPECTATOR_HAVE_ISAL
      GzipIsal(data, out, codec == GzipCodec::kIsal0 ? 0 : 1);
      return;
#else
      break;
#endif
  }
  GzipZlib(data, out);
}

std::string Gzip(std::string_view data) {
  std::string out;
  GzipInto(data, &out);
  return out;
}

#ifdef SPECTATOR_HAVE_ISAL
struct GzipStream::Impl {
  isal_zstream zs;
  std::string level_buf = std::string(ISAL_DEF_LVL1_DEFAULT, '\0');
  std::string* out = nullptr;

  // Runs the encoder over what it was given, growing *out as it goes.
  void Deflate() {
    for (;;) {
      const std::size_t old_size = out->size();
      out->resize(old_size + kOutChunk);
      zs.next_out = reinterpret_cast<std::uint8_t*>(out->data() + old_size);
      zs.avail_out = static_cast<std::uint32_t>(kOutChunk);
      if (isal_deflate(&zs) != COMP_OK) throw std::runtime_error("gzip: isal_deflate failed");
      out->resize(old_size + kOutChunk - zs.avail_out);
      const bool ended = zs.internal_state.state == ZSTATE_END;
      if (zs.avail_in == 0 && zs.avail_out != 0 && (ended || zs.end_of_stream == 0)) return;
    }
  }
};

GzipStream::GzipStream() : impl_(std::make_unique<Impl>()) {}
GzipStream::~GzipStream() = default;

void GzipStream::Begin(std::string* out) {
  Impl& m = *impl_;
  m.out = out;
  isal_deflate_init(&m.zs);
  m.zs.gzip_flag = IGZIP_GZIP;
  m.zs.level = 1;
  m.zs.level_buf = reinterpret_cast<std::uint8_t*>(m.level_buf.data());
  m.zs.level_buf_size = static_cast<std::uint32_t>(m.level_buf.size());
  m.zs.flush = NO_FLUSH;
}

void GzipStream::Append(std::string_view piece) {
  Impl& m = *impl_;
  while (!piece.empty()) {
    const std::size_t n = std::min<std::size_t>(piece.size(), UINT32_MAX / 2);
    m.zs.next_in = reinterpret_cast<std::uint8_t*>(const_cast<char*>(piece.data()));
    m.zs.avail_in = static_cast<std::uint32_t>(n);
    m.zs.end_of_stream = 0;
    m.Deflate();
    piece.remove_prefix(n);
  }
}

void GzipStream::Finish() {
  Impl& m = *impl_;
  m.zs.next_in = nullptr;
  m.zs.avail_in = 0;
  m.zs.end_of_stream = 1;
  m.Deflate();
}
#else
struct GzipStream::Impl {
  std::string text;
  std::string* out = nullptr;
};

GzipStream::GzipStream() : impl_(std::make_unique<Impl>()) {}
GzipStream::~GzipStream() = default;
void GzipStream::Begin(std::string* out) {
  impl_->out = out;
  impl_->text.clear();
}
void GzipStream::Append(std::string_view piece) { impl_->text.append(piece); }
void GzipStream::Finish() {
  std::string member;
  GzipInto(impl_->text, &member);
  impl_->out->append(member);
}
#endif

}  // namespace spectator::collector
