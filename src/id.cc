#include "spectator/id.h"

#include <algorithm>

namespace spectator {

const char* ToString(IdError error) noexcept {
  switch (error) {
    case IdError::kOk: return "ok";
    case IdError::kEmptyName: return "empty name";
    case IdError::kNameTooLong: return "name longer than 255 characters";
    case IdError::kEmptyTagKey: return "empty tag key";
    case IdError::kEmptyTagValue: return "empty tag value";
    case IdError::kTagTooLong: return "tag key or value longer than 255 characters";
    case IdError::kTooManyTags: return "more than 20 tags";
    case IdError::kReservedTagKey: return "tag key 'name' or 'statistic' is reserved";
    case IdError::kIdTooLong: return "canonical Id longer than 448 bytes";
  }
  return "unknown Id error";
}

namespace {

void AppendSanitized(std::string* out, std::string_view s) {
  for (char c : s) out->push_back(IsAllowedIdChar(c) ? c : '_');
}

bool IsReservedKey(std::string_view key) { return key == "name" || key == "statistic"; }

}  // namespace

IdError CanonicalizeId(std::string_view name, const Tags& tags, std::string* out) {
  if (name.empty()) return IdError::kEmptyName;
  if (name.size() > kMaxNameLength) return IdError::kNameTooLong;
  // Check the cheap limits before sorting or allocating anything, so a hostile
  // Id with thousands of tags costs O(n).
  if (tags.size() > kMaxUserTags * 4) return IdError::kTooManyTags;
  for (const auto& [key, value] : tags) {
    if (key.empty()) return IdError::kEmptyTagKey;
    if (value.empty()) return IdError::kEmptyTagValue;
    if (key.size() > kMaxTagLength || value.size() > kMaxTagLength) return IdError::kTagTooLong;
  }

  // Sanitise keys first: two keys that differ only in invalid characters are
  // the same key after sanitising, and the last one wins.
  struct Tag {
    std::string key;
    std::string_view value;
    std::size_t order;
  };
  std::vector<Tag> sorted;
  sorted.reserve(tags.size());
  for (std::size_t i = 0; i < tags.size(); ++i) {
    Tag t{{}, tags[i].second, i};
    AppendSanitized(&t.key, tags[i].first);
    if (IsReservedKey(t.key)) return IdError::kReservedTagKey;
    sorted.push_back(std::move(t));
  }
  std::sort(sorted.begin(), sorted.end(), [](const Tag& a, const Tag& b) {
    return a.key != b.key ? a.key < b.key : a.order > b.order;  // last one first
  });
  sorted.erase(std::unique(sorted.begin(), sorted.end(),
                           [](const Tag& a, const Tag& b) { return a.key == b.key; }),
               sorted.end());
  if (sorted.size() > kMaxUserTags) return IdError::kTooManyTags;

  std::string result;
  result.reserve(name.size() + sorted.size() * 16);
  AppendSanitized(&result, name);
  for (const Tag& t : sorted) {
    result.push_back(',');
    result.append(t.key);
    result.push_back('=');
    AppendSanitized(&result, t.value);
  }
  if (result.size() > kMaxIdBytes) return IdError::kIdTooLong;
  *out = std::move(result);
  return IdError::kOk;
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
    const std::string_view pair = canonical.substr(start, comma == std::string_view::npos
                                                             ? std::string_view::npos
                                                             : comma - start);
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
