#pragma once

// The few JSON texts the publish payload is made of: strings, unsigned and
// signed integers, doubles. The text is exactly what nlohmann/json's dump()
// writes for the same value (ensure_ascii off, error_handler_t::replace), so
// a payload reads the same to any parser as the document-built one the tests
// keep as an oracle (tests/collector/payload_oracle.h):
//
// - strings: `"` and `\` escaped, \b \t \n \f \r, other bytes below 0x20 as
//   \u00xx (lower-case hex); valid UTF-8 copied as is; each invalid or
//   truncated UTF-8 sequence becomes one U+FFFD, the byte that broke a
//   sequence being read again as the start of the next (the behaviour of
//   nlohmann's serializer, after Hoehrmann's decoder);
// - doubles: the shortest digits that read back as the same value
//   (std::to_chars), laid out as nlohmann lays out its own digits: plain
//   decimal when the decimal exponent is in (-4, 15], with ".0" after an
//   integer ("3.0", "0.0001", "123456789012345.0"), else d.ddde+XX
//   ("1e+16", "2.5e-05"); NaN and infinities as null. nlohmann's Grisu2 is
//   not always the shortest: then its digits are longer, the value the same.
//
// Writers into raw buffers take the room they need (kMaxNumber for a number,
// MaxStringText(n) for a string of n bytes) and return the end.

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace spectator::collector::json {

/// Room for any number written here.
constexpr std::size_t kMaxNumber = 32;

/// Room for the JSON text of a string of `n` bytes: quotes, and at most six
/// bytes (\u00xx) per input byte.
constexpr std::size_t MaxStringText(std::size_t n) { return 2 + 6 * n; }

inline char* WriteUnsigned(char* p, std::uint64_t v) {
  return std::to_chars(p, p + kMaxNumber, v).ptr;
}

inline char* WriteInteger(char* p, std::int64_t v) {
  return std::to_chars(p, p + kMaxNumber, v).ptr;
}

/// nlohmann's append_exponent: sign and at least two digits.
inline char* WriteExponent(char* p, int e) {
  if (e < 0) {
    e = -e;
    *p++ = '-';
  } else {
    *p++ = '+';
  }
  if (e < 10) {
    *p++ = '0';
    *p++ = static_cast<char>('0' + e);
  } else if (e < 100) {
    *p++ = static_cast<char>('0' + e / 10);
    *p++ = static_cast<char>('0' + e % 10);
  } else {
    *p++ = static_cast<char>('0' + e / 100);
    *p++ = static_cast<char>('0' + e / 10 % 10);
    *p++ = static_cast<char>('0' + e % 10);
  }
  return p;
}

inline char* WriteDouble(char* p, double v) {
  if (!(v - v == 0)) {  // NaN or infinite: what nlohmann dumps for them
    std::memcpy(p, "null", 4);
    return p + 4;
  }
  // The shortest round-trip digits, as d[.ddd]e±XX.
  char sci[kMaxNumber];
  char* const sci_end = std::to_chars(sci, sci + sizeof sci, v, std::chars_format::scientific).ptr;
  const char* s = sci;
  if (*s == '-') {
    *p++ = '-';
    ++s;
  }
  char digits[20];
  int k = 0;
  digits[k++] = *s++;
  if (*s == '.') {
    for (++s; *s != 'e'; ++s) digits[k++] = *s;
  }
  ++s;  // 'e'
  const bool negative_exp = *s == '-';
  ++s;  // sign
  int exp10 = 0;
  for (; s != sci_end; ++s) exp10 = exp10 * 10 + (*s - '0');
  if (negative_exp) exp10 = -exp10;
  // nlohmann's format_buffer: value = 0.d1d2...dk * 10^n.
  const int n = exp10 + 1;
  constexpr int kMinExp = -4;
  constexpr int kMaxExp = 15;  // std::numeric_limits<double>::digits10
  if (k <= n && n <= kMaxExp) {  // digits000.0
    std::memcpy(p, digits, static_cast<std::size_t>(k));
    p += k;
    std::memset(p, '0', static_cast<std::size_t>(n - k));
    p += n - k;
    *p++ = '.';
    *p++ = '0';
    return p;
  }
  if (0 < n && n <= kMaxExp) {  // dig.its
    std::memcpy(p, digits, static_cast<std::size_t>(n));
    p += n;
    *p++ = '.';
    std::memcpy(p, digits + n, static_cast<std::size_t>(k - n));
    return p + (k - n);
  }
  if (kMinExp < n && n <= 0) {  // 0.[000]digits
    *p++ = '0';
    *p++ = '.';
    std::memset(p, '0', static_cast<std::size_t>(-n));
    p += -n;
    std::memcpy(p, digits, static_cast<std::size_t>(k));
    return p + k;
  }
  *p++ = digits[0];  // d[.igits]e±XX
  if (k > 1) {
    *p++ = '.';
    std::memcpy(p, digits + 1, static_cast<std::size_t>(k - 1));
    p += k - 1;
  }
  *p++ = 'e';
  return WriteExponent(p, n - 1);
}

namespace detail {

inline char* WriteEscapedAscii(char* p, unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  switch (c) {
    case '\b':
      *p++ = '\\';
      *p++ = 'b';
      return p;
    case '\t':
      *p++ = '\\';
      *p++ = 't';
      return p;
    case '\n':
      *p++ = '\\';
      *p++ = 'n';
      return p;
    case '\f':
      *p++ = '\\';
      *p++ = 'f';
      return p;
    case '\r':
      *p++ = '\\';
      *p++ = 'r';
      return p;
    case '"':
      *p++ = '\\';
      *p++ = '"';
      return p;
    case '\\':
      *p++ = '\\';
      *p++ = '\\';
      return p;
    default:
      break;
  }
  if (c <= 0x1F) {
    std::memcpy(p, "\\u00", 4);
    p[4] = kHex[c >> 4];
    p[5] = kHex[c & 0xF];
    return p + 6;
  }
  *p++ = static_cast<char>(c);
  return p;
}

inline char* WriteReplacement(char* p) {
  std::memcpy(p, "\xEF\xBF\xBD", 3);
  return p + 3;
}

}  // namespace detail

/// Writes `s` as a JSON string (quoted) at p; needs MaxStringText(s.size()).
inline char* WriteString(char* p, std::string_view s) {
  *p++ = '"';
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = b[i];
    if (c < 0x80) {
      if (c >= 0x20 && c != '"' && c != '\\') {
        *p++ = static_cast<char>(c);
      } else {
        p = detail::WriteEscapedAscii(p, c);
      }
      ++i;
      continue;
    }
    // A multi-byte sequence: its length, and the range of its second byte
    // (which excludes overlong forms, surrogates and code points > U+10FFFF).
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {  // a continuation byte, C0, C1 or F5..FF: not a start
      p = detail::WriteReplacement(p);
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    bool ok = true;
    for (; j < i + len; ++j) {
      if (j == n) {  // the string ends inside the sequence
        p = detail::WriteReplacement(p);
        *p++ = '"';
        return p;
      }
      if (b[j] < lo || b[j] > hi) {
        ok = false;
        break;
      }
      lo = 0x80;
      hi = 0xBF;
    }
    if (!ok) {  // b[j] broke the sequence: replace it, then read b[j] again
      p = detail::WriteReplacement(p);
      i = j;
      continue;
    }
    std::memcpy(p, b + i, len);
    p += len;
    i += len;
  }
  *p++ = '"';
  return p;
}

/// Appends the JSON text of `s` to `out`.
inline void AppendString(std::string* out, std::string_view s) {
  const std::size_t old = out->size();
  out->resize(old + MaxStringText(s.size()));
  char* const end = WriteString(out->data() + old, s);
  out->resize(static_cast<std::size_t>(end - out->data()));
}

/// Appends the JSON text of `v` to `out`.
inline void AppendDouble(std::string* out, double v) {
  char buf[kMaxNumber];
  out->append(buf, WriteDouble(buf, v));
}

inline void AppendUnsigned(std::string* out, std::uint64_t v) {
  char buf[kMaxNumber];
  out->append(buf, WriteUnsigned(buf, v));
}

}  // namespace spectator::collector::json
