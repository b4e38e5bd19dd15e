#pragma once

// gzip (RFC 1952) compression of publish payloads. The encoder is the
// fastest library the build found (benchmarks/README.md, "Compression"):
// ISA-L's igzip, else libdeflate, else zlib; every one writes a standard
// gzip member that any gzip reader decodes. The collector never decodes
// (tests and benchmarks use tests/support/gunzip.h).

#include <memory>
#include <string>
#include <string_view>

namespace spectator::collector {

/// The encoders this file knows; which are built depends on what CMake
/// found (GzipAvailable).
enum class GzipCodec {
  kZlib1,        // zlib deflate, level 1 (Z_BEST_SPEED)
  kLibdeflate1,  // libdeflate, level 1
  kIsal0,        // ISA-L igzip, level 0 (its fastest)
  kIsal1,        // ISA-L igzip, level 1
};

/// "zlib-1", "libdeflate-1", "isal-0", "isal-1".
const char* ToString(GzipCodec codec);

/// Whether this build has `codec` (zlib always).
bool GzipAvailable(GzipCodec codec);

/// The codec Gzip uses: the fastest one available.
GzipCodec DefaultGzipCodec();

/// Replaces `*out` with one gzip member of `data`, made by `codec` (which
/// must be available; an unavailable one falls back to zlib). Reuses `out`'s
/// capacity. Throws std::runtime_error only when the library fails (out of
/// memory).
void GzipInto(std::string_view data, std::string* out, GzipCodec codec = DefaultGzipCodec());

/// Compresses `data` into a gzip member with DefaultGzipCodec().
std::string Gzip(std::string_view data);

/// One gzip member written piece by piece, for a text made in pieces (the
/// Prometheus endpoint's): each piece is compressed while it is still in
/// cache, instead of the whole text going to memory and back. With ISA-L
/// it streams (level 1); otherwise the pieces are kept and compressed at
/// Finish with GzipInto. Thread safety: one thread at a time.
class GzipStream {
 public:
  GzipStream();
  ~GzipStream();
  GzipStream(const GzipStream&) = delete;
  GzipStream& operator=(const GzipStream&) = delete;

  /// Starts a new member, written at the end of `*out` from now on (`out`
  /// must outlive the member).
  void Begin(std::string* out);
  /// Compresses `piece` (after the pieces before it).
  void Append(std::string_view piece);
  /// Ends the member: `*out` then holds it whole.
  void Finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spectator::collector
