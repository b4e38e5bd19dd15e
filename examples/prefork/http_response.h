#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace prefork {

/// The statuses this server answers with. A fixed set keeps the metrics' tag
/// values (and so the segment's size) bounded whatever clients send.
enum class Status : std::uint8_t {
  kOk,                   // 200
  kBadRequest,           // 400
  kHeadersTooLarge,      // 431
  kNotImplemented,       // 501
  kVersionNotSupported,  // 505
};
inline constexpr std::size_t kStatusCount = 5;

int StatusCode(Status status) noexcept;

/// The status code as text, for the status tag: "200", "400", ...
std::string_view StatusTagValue(Status status) noexcept;

/// A response is at most this long (status line, three headers, short body).
inline constexpr std::size_t kMaxResponseBytes = 256;

/// Writes a complete response into `out` (kMaxResponseBytes bytes) and
/// returns its length. `keep_alive` picks the Connection header;
/// `with_body` is false for HEAD, whose response has the same headers.
std::size_t BuildResponse(Status status, bool keep_alive, bool with_body, char* out) noexcept;

/// The interim response to "Expect: 100-continue".
inline constexpr std::string_view kContinueResponse = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace prefork
