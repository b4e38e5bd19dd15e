#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

// A deliberately small HTTP/1.x request-head parser: enough for a real
// keep-alive server, and nothing that needs the heap. It is a pure function
// over the bytes received so far, so the worker can call it again whenever
// more bytes arrive, and tests can feed it strings.
namespace prefork {

/// The request methods the server tells apart in its metrics. Anything else is
/// kOther, so a client cannot create meters at will; kUnknown means the
/// request line was unreadable.
enum class Method : std::uint8_t {
  kGet,
  kHead,
  kPost,
  kPut,
  kDelete,
  kOptions,
  kPatch,
  kConnect,
  kTrace,
  kOther,
  kUnknown,
};
inline constexpr std::size_t kMethodCount = 11;

/// The tag value for a method: "GET", ..., "OTHER", "UNKNOWN".
std::string_view MethodName(Method method) noexcept;

enum class ParseStatus : std::uint8_t {
  kIncomplete,       // no empty line yet: read more
  kComplete,         // a whole head; see ParsedRequest
  kBadRequest,       // 400: malformed request line or header
  kHeadersTooLarge,  // 431: no complete head within the size limit
  kNotImplemented,   // 501: Transfer-Encoding (request bodies only by Content-Length)
  kBadVersion,       // 505: not HTTP/1.x
};

struct ParsedRequest {
  ParseStatus status = ParseStatus::kIncomplete;
  /// Known as soon as the request line has been read, even on errors after it.
  Method method = Method::kUnknown;
  /// Views into the parser's input; valid while that buffer is unchanged.
  std::string_view method_token;
  std::string_view target;
  int minor_version = 1;  // HTTP/1.<minor_version>
  /// Whether the connection may carry another request after this one:
  /// HTTP/1.1 unless "Connection: close", HTTP/1.0 only with
  /// "Connection: keep-alive".
  bool keep_alive = true;
  /// Body bytes that follow the head (they belong to this request).
  std::uint64_t content_length = 0;
  /// "Expect: 100-continue": the client waits for an interim response before
  /// sending the body.
  bool expect_continue = false;
  /// Bytes of the head, including the empty line that ends it.
  std::size_t head_length = 0;
};

/// Parses the request head at the start of `input`. A head longer than
/// `max_head_bytes` (counting from the first byte of `input`) is
/// kHeadersTooLarge, whether or not it is complete. Empty lines before the
/// request line are skipped, as RFC 9112 allows; lines may end in CRLF or LF.
ParsedRequest ParseRequestHead(std::string_view input, std::size_t max_head_bytes) noexcept;

}  // namespace prefork
