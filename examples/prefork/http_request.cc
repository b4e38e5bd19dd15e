#include "http_request.h"

#include <array>

namespace prefork {
namespace {

// RFC 9110 token characters: what a method or a header name may contain.
constexpr bool IsTokenChar(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

constexpr bool IsToken(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

// Header values may hold visible characters, spaces, tabs and obs-text; any
// other control character is how request smuggling starts, so it is refused.
constexpr bool IsFieldValue(std::string_view s) noexcept {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7F) return false;
  }
  return true;
}

constexpr char Lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

constexpr bool EqualsIgnoreCase(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

constexpr std::string_view TrimWhitespace(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

constexpr std::array<std::string_view, kMethodCount> kMethodNames = {
    "GET",   "HEAD",    "POST",  "PUT",   "DELETE", "OPTIONS",
    "PATCH", "CONNECT", "TRACE", "OTHER", "UNKNOWN"};

Method ClassifyMethod(std::string_view token) noexcept {
  // Methods are case-sensitive (RFC 9110 9.1): "get" is some other method.
  for (std::size_t i = 0; i < static_cast<std::size_t>(Method::kOther); ++i) {
    if (token == kMethodNames[i]) return static_cast<Method>(i);
  }
  return Method::kOther;
}

// "METHOD SP target SP HTTP/d.d", nothing more, nothing less.
ParseStatus ParseRequestLine(std::string_view line, ParsedRequest* out) noexcept {
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return ParseStatus::kBadRequest;
  const std::string_view method = line.substr(0, sp1);
  if (!IsToken(method)) return ParseStatus::kBadRequest;
  out->method_token = method;
  out->method = ClassifyMethod(method);

  const std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return ParseStatus::kBadRequest;
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (target.empty()) return ParseStatus::kBadRequest;
  for (char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7F) return ParseStatus::kBadRequest;
  }
  out->target = target;

  const std::string_view version = line.substr(sp2 + 1);
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
    return ParseStatus::kBadRequest;
  }
  if (version[5] != '1') return ParseStatus::kBadVersion;
  out->minor_version = version[7] - '0';
  return ParseStatus::kComplete;
}

struct HeaderState {
  bool connection_close = false;
  bool connection_keep_alive = false;
  bool has_content_length = false;
};

// Connection is a comma-separated list of tokens; only two of them matter here.
void ParseConnection(std::string_view value, HeaderState* state) noexcept {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    const std::string_view item = TrimWhitespace(value.substr(0, comma));
    if (EqualsIgnoreCase(item, "close")) state->connection_close = true;
    if (EqualsIgnoreCase(item, "keep-alive")) state->connection_keep_alive = true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

ParseStatus ParseContentLength(std::string_view value, HeaderState* state,
                               ParsedRequest* out) noexcept {
  // Digits only and at most 18 of them, so the sum cannot overflow; a second
  // Content-Length must agree with the first (RFC 9112 6.3).
  if (value.empty() || value.size() > 18) return ParseStatus::kBadRequest;
  std::uint64_t n = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return ParseStatus::kBadRequest;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (state->has_content_length && n != out->content_length) return ParseStatus::kBadRequest;
  state->has_content_length = true;
  out->content_length = n;
  return ParseStatus::kComplete;
}

ParseStatus ParseHeaderLine(std::string_view line, HeaderState* state,
                            ParsedRequest* out) noexcept {
  // A line starting with whitespace is obsolete line folding; a colon after
  // whitespace (e.g. "Host : x") is a known smuggling vector. Both are 400.
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return ParseStatus::kBadRequest;
  const std::string_view name = line.substr(0, colon);
  if (!IsToken(name)) return ParseStatus::kBadRequest;
  const std::string_view value = TrimWhitespace(line.substr(colon + 1));
  if (!IsFieldValue(value)) return ParseStatus::kBadRequest;

  if (EqualsIgnoreCase(name, "connection")) {
    ParseConnection(value, state);
  } else if (EqualsIgnoreCase(name, "content-length")) {
    return ParseContentLength(value, state, out);
  } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
    return ParseStatus::kNotImplemented;
  } else if (EqualsIgnoreCase(name, "expect")) {
    out->expect_continue = EqualsIgnoreCase(value, "100-continue");
  }
  return ParseStatus::kComplete;
}

}  // namespace

std::string_view MethodName(Method method) noexcept {
  const auto i = static_cast<std::size_t>(method);
  return i < kMethodNames.size() ? kMethodNames[i] : "UNKNOWN";
}

ParsedRequest ParseRequestHead(std::string_view input, std::size_t max_head_bytes) noexcept {
  ParsedRequest out;
  HeaderState headers;
  bool have_request_line = false;
  std::size_t pos = 0;

  // Each complete line is checked as soon as it arrives, so a garbage request
  // line is refused at once instead of after a timeout.
  while (true) {
    const std::size_t newline = input.find('\n', pos);
    if (newline == std::string_view::npos || newline + 1 > max_head_bytes) {
      out.status =
          input.size() >= max_head_bytes ? ParseStatus::kHeadersTooLarge : ParseStatus::kIncomplete;
      return out;
    }
    std::string_view line = input.substr(pos, newline - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = newline + 1;

    if (line.find('\r') != std::string_view::npos) {
      out.status = ParseStatus::kBadRequest;  // a bare CR inside a line
      return out;
    }
    if (!have_request_line) {
      if (line.empty()) continue;  // tolerated leading empty lines
      out.status = ParseRequestLine(line, &out);
      if (out.status != ParseStatus::kComplete) return out;
      have_request_line = true;
      continue;
    }
    if (line.empty()) break;  // the end of the head
    out.status = ParseHeaderLine(line, &headers, &out);
    if (out.status != ParseStatus::kComplete) return out;
  }

  out.status = ParseStatus::kComplete;
  out.head_length = pos;
  out.keep_alive = out.minor_version >= 1
                       ? !headers.connection_close
                       : headers.connection_keep_alive && !headers.connection_close;
  return out;
}

}  // namespace prefork
