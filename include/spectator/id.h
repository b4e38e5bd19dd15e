#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "spectator/export.h"

namespace spectator {

/// Tags of a meter: string key/value pairs. Order does not matter; when a key
/// appears twice the last value wins.
using Tags = std::vector<std::pair<std::string, std::string>>;

/// One tag, not owning its strings.
using TagView = std::pair<std::string_view, std::string_view>;

/// The tags argument of the registry's Get* methods: a non-owning view of
/// either a Tags vector or a braced list of string pairs, so that
/// `GetCounter("name", {{"status", "200"}})` allocates nothing. Valid for the
/// duration of the call it is passed to.
class TagList {
 public:
  TagList() noexcept = default;
  TagList(const Tags& tags) noexcept : tags_(&tags) {}  // NOLINT: implicit by design
  TagList(std::initializer_list<TagView> tags) noexcept : list_(tags) {}

  std::size_t size() const noexcept { return tags_ != nullptr ? tags_->size() : list_.size(); }
  TagView operator[](std::size_t i) const noexcept {
    if (tags_ != nullptr) return {(*tags_)[i].first, (*tags_)[i].second};
    return list_.begin()[i];
  }

 private:
  const Tags* tags_ = nullptr;
  std::initializer_list<TagView> list_;
};

/// Limits of an Id. They are tighter than Atlas' own (255 characters per name
/// or value, 20 user tags) only in kMaxIdBytes, because every Id is stored in
/// a fixed-size slot of the segment.
inline constexpr std::size_t kMaxNameLength = 255;
inline constexpr std::size_t kMaxTagLength = 255;  // per key and per value
inline constexpr std::size_t kMaxUserTags = 20;
inline constexpr std::size_t kMaxIdBytes = 448;  // the whole canonical form

/// Why an Id was refused.
enum class IdError {
  kOk,
  kEmptyName,
  kNameTooLong,
  kEmptyTagKey,
  kEmptyTagValue,
  kTagTooLong,
  kTooManyTags,
  kReservedTagKey,  // "name" and "statistic" belong to the collector
  kIdTooLong,       // canonical form longer than kMaxIdBytes
};

SPECTATOR_EXPORT const char* ToString(IdError error) noexcept;

/// True for the characters Atlas allows in names, keys and values:
/// [-._A-Za-z0-9~^]. Every other byte (including each byte of a multi-byte
/// UTF-8 character and control characters) is replaced by '_'.
constexpr bool IsAllowedIdChar(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~' || c == '^';
}

/// Builds the canonical form of an Id: the sanitised name, then for every tag
/// in key order ",key=value". The separators ',' and '=' cannot appear in a
/// sanitised component, so the form is unambiguous; it is what the segment
/// stores and hashes, so the same Id finds the same slot in every process.
///
/// Returns kOk and sets *out, or the reason the Id is refused (out untouched).
SPECTATOR_EXPORT IdError CanonicalizeId(std::string_view name, TagList tags, std::string* out);

/// A view of a canonical Id split into its parts. The views point into the
/// string given to ParseCanonicalId.
struct IdView {
  std::string_view name;
  std::vector<std::pair<std::string_view, std::string_view>> tags;  // sorted by key
};

/// Splits a canonical Id. Returns false when `canonical` is not exactly what
/// CanonicalizeId would produce (bad characters, unsorted or duplicate keys,
/// empty parts, over the limits). Used on untrusted segment bytes.
SPECTATOR_EXPORT bool ParseCanonicalId(std::string_view canonical, IdView* out);

}  // namespace spectator
