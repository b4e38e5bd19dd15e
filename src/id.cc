#include "spectator/id.h"

#include <algorithm>
#include <cstring>

#include "id_internal.h"

namespace spectator {

const char* ToString(IdError error) noexcept {
  switch (error) {
    case IdError::kOk:
      return "ok";
    case IdError::kEmptyName:
      return "empty name";
    case IdError::kNameTooLong:
      return "name longer than 255 characters";
    case IdError::kEmptyTagKey:
      return "empty tag key";
    case IdError::kEmptyTagValue:
      return "empty tag value";
    case IdError::kTagTooLong:
      return "tag key or value longer than 255 characters";
    case IdError::kTooManyTags:
      return "more than 20 tags";
    case IdError::kReservedTagKey:
      return "tag key 'name' or 'statistic' is reserved";
    case IdError::kIdTooLong:
      return "canonical Id longer than 448 bytes";
  }
  return "unknown Id error";
}

namespace {

// Byte -> itself if allowed, else '_': one load per character on the lookup path.
struct SanitizeTable {
  char map[256];
  constexpr SanitizeTable() : map() {
    for (int i = 0; i < 256; ++i) {
      const char c = static_cast<char>(i);
      map[i] = IsAllowedIdChar(c) ? c : '_';
    }
  }
};
constexpr SanitizeTable kSanitize;

char Sanitize(char c) { return kSanitize.map[static_cast<unsigned char>(c)]; }

// Orders keys as their sanitised forms would order, without building them.
int CompareSanitized(std::string_view a, std::string_view b) {
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = static_cast<unsigned char>(Sanitize(a[i]));
    const auto y = static_cast<unsigned char>(Sanitize(b[i]));
    if (x != y) return x < y ? -1 : 1;
  }
  return a.size() == b.size() ? 0 : (a.size() < b.size() ? -1 : 1);
}

bool IsReservedKey(std::string_view key) {
  // Compared after sanitising: "name" and "statistic" contain only allowed
  // characters, so a key sanitises to them only if it already is one of them.
  return key == "name" || key == "statistic";
}

// Appends the sanitised `s` to out[*len...]; false when it would not fit.
bool Append(char* out, std::size_t* len, std::string_view s) {
  if (s.size() > kMaxIdBytes - *len) return false;
  char* p = out + *len;
  for (char c : s) *p++ = Sanitize(c);
  *len += s.size();
  return true;
}

bool AppendChar(char* out, std::size_t* len, char c) {
  if (*len >= kMaxIdBytes) return false;
  out[(*len)++] = c;
  return true;
}

}  // namespace

namespace internal {

IdError CanonicalizeInto(std::string_view name, TagList tags, char* out, std::size_t* len) {
  if (name.empty()) return IdError::kEmptyName;
  if (name.size() > kMaxNameLength) return IdError::kNameTooLong;
  // Duplicate keys may bring a longer list down to 20; anything beyond this
  // is refused before any sorting, so a hostile Id costs O(n).
  constexpr std::size_t kMaxRawTags = 4 * kMaxUserTags;
  if (tags.size() > kMaxRawTags) return IdError::kTooManyTags;
  for (std::size_t i = 0; i < tags.size(); ++i) {
    const auto [key, value] = tags[i];
    if (key.empty()) return IdError::kEmptyTagKey;
    if (value.empty()) return IdError::kEmptyTagValue;
    if (key.size() > kMaxTagLength || value.size() > kMaxTagLength) return IdError::kTagTooLong;
  }

  // Sort tag positions by sanitised key; among equal keys the last one comes
  // first, so keeping the first of each run makes the last value win.
  std::uint8_t order[kMaxRawTags];
  const std::size_t n = tags.size();
  for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<std::uint8_t>(i);
  std::sort(order, order + n, [&tags](std::uint8_t a, std::uint8_t b) {
    const int c = CompareSanitized(tags[a].first, tags[b].first);
    return c != 0 ? c < 0 : a > b;
  });

  std::size_t used = 0;
  if (!Append(out, &used, name)) return IdError::kIdTooLong;
  std::size_t unique = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto [key, value] = tags[order[i]];
    if (i > 0 && CompareSanitized(tags[order[i - 1]].first, key) == 0) continue;
    if (++unique > kMaxUserTags) return IdError::kTooManyTags;
    const std::size_t key_start = used + 1;
    if (!AppendChar(out, &used, ',') || !Append(out, &used, key)) return IdError::kIdTooLong;
    if (IsReservedKey(std::string_view(out + key_start, key.size()))) {
      return IdError::kReservedTagKey;
    }
    if (!AppendChar(out, &used, '=') || !Append(out, &used, value)) return IdError::kIdTooLong;
  }
  *len = used;
  return IdError::kOk;
}

}  // namespace internal

IdError CanonicalizeId(std::string_view name, TagList tags, std::string* out) {
  char buf[kMaxIdBytes];
  std::size_t len = 0;
  const IdError error = internal::CanonicalizeInto(name, tags, buf, &len);
  if (error == IdError::kOk) out->assign(buf, len);
  return error;
}

namespace {

// A non-empty run of allowed characters, at most `limit` long.
bool IsComponent(std::string_view s, std::size_t limit) {
  return !s.empty() && s.size() <= limit && std::all_of(s.begin(), s.end(), IsAllowedIdChar);
}

}  // namespace

bool ParseCanonicalId(std::string_view canonical, IdView* out) {
  if (canonical.empty() || canonical.size() > kMaxIdBytes) return false;
  std::size_t comma = canonical.find(',');
  IdView view;
  view.name = canonical.substr(0, comma);
  if (!IsComponent(view.name, kMaxNameLength)) return false;
  while (comma != std::string_view::npos) {
    const std::size_t start = comma + 1;
    comma = canonical.find(',', start);
    const std::string_view pair = canonical.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    const std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos) return false;
    const std::string_view key = pair.substr(0, eq);
    const std::string_view value = pair.substr(eq + 1);
    if (!IsComponent(key, kMaxTagLength) || !IsComponent(value, kMaxTagLength)) return false;
    if (IsReservedKey(key)) return false;
    if (!view.tags.empty() && !(view.tags.back().first < key)) return false;  // sorted, unique
    if (view.tags.size() == kMaxUserTags) return false;
    view.tags.emplace_back(key, value);
  }
  *out = std::move(view);
  return true;
}

}  // namespace spectator
