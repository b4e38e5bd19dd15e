#include "payload.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

namespace spectator::collector {
namespace {

// Cost model (benchmarks/README.md, item 5): a batch is up to 10000
// measurements of ~9 tag pairs each, and the goal for 100k meters is
// take + payload + gzip in under 100 ms, so the payload gets a few hundred
// ns per measurement. It does O(1) hash lookups per string occurrence,
// sorts only the distinct strings, reuses its buffers from batch to batch
// (their size is bounded by the largest batch), and writes the JSON straight
// into the output string without building a document.

// Interns strings in first-seen order: open addressing over a power-of-two
// table of ids, so that a string seen before costs one hash and one compare,
// and nothing is allocated per string.
class StringTable {
 public:
  void Clear(std::size_t expected) {
    strings_.clear();
    std::size_t capacity = 64;
    while (capacity < expected * 2) capacity *= 2;
    if (slots_.size() < capacity) slots_.resize(capacity);
    std::fill(slots_.begin(), slots_.end(), kEmpty);
  }

  std::uint32_t Intern(std::string_view s) {
    if ((strings_.size() + 1) * 2 > slots_.size()) Grow();
    std::size_t i = std::hash<std::string_view>{}(s) & (slots_.size() - 1);
    for (;; i = (i + 1) & (slots_.size() - 1)) {
      const std::uint32_t id = slots_[i];
      if (id == kEmpty) break;
      if (strings_[id] == s) return id;
    }
    const auto id = static_cast<std::uint32_t>(strings_.size());
    slots_[i] = id;
    strings_.push_back(s);
    return id;
  }

  const std::vector<std::string_view>& strings() const { return strings_; }

 private:
  static constexpr std::uint32_t kEmpty = UINT32_MAX;

  void Grow() {
    slots_.assign(std::max<std::size_t>(64, slots_.size() * 2), kEmpty);
    for (std::uint32_t id = 0; id < strings_.size(); ++id) {
      std::size_t i = std::hash<std::string_view>{}(strings_[id]) & (slots_.size() - 1);
      while (slots_[i] != kEmpty) i = (i + 1) & (slots_.size() - 1);
      slots_[i] = id;
    }
  }

  std::vector<std::string_view> strings_;  // by id
  std::vector<std::uint32_t> slots_;
};

struct Tag {
  std::string_view key;
  std::uint32_t key_id;
  std::uint32_t value_id;
};

bool KeyLess(const Tag& a, const Tag& b) { return a.key < b.key; }

// One row of the payload before the string table is sorted: its tag pairs
// (as interned ids, name pair included) are Scratch::tags[first, first + 2 * pairs).
struct Row {
  std::size_t first;
  std::size_t pairs;
  Op op;
  double value;
};

using Json = nlohmann::json;

// nlohmann's serializer, one value at a time: Text(v) is exactly the text
// that dumping a document would produce for v at its place in the array.
// The payload uses it for every string and for each distinct number, then
// copies the texts: a measurement is ~20 numbers, most of them string-table
// indices repeated from the measurement before, and formatting each through
// the serializer (or building a document of them first) was most of the
// cost of a payload.
class Renderer {
 public:
  Renderer() : serializer_(nlohmann::detail::output_adapter<char>(text_), ' ') {}

  std::string_view Unsigned(std::uint64_t v) {
    number_.get_ref<Json::number_unsigned_t&>() = v;
    return Render(number_);
  }
  std::string_view Integer(std::int64_t v) {
    integer_.get_ref<Json::number_integer_t&>() = v;
    return Render(integer_);
  }
  std::string_view Float(double v) {
    float_.get_ref<Json::number_float_t&>() = v;
    return Render(float_);
  }
  // Appends the JSON string for `s` (quoted, escaped) to `out`.
  void AppendString(std::string_view s, std::string* out) {
    string_.get_ref<Json::string_t&>().assign(s.data(), s.size());
    out->append(Render(string_));
  }

 private:
  std::string_view Render(const Json& v) {
    text_.clear();
    serializer_.dump(v, /*pretty_print=*/false, /*ensure_ascii=*/false, /*indent_step=*/0);
    return text_;
  }

  std::string text_;  // the adapter appends straight to it
  nlohmann::detail::serializer<Json> serializer_;
  Json number_ = Json::number_unsigned_t{0};
  Json integer_ = Json::number_integer_t{0};
  Json float_ = Json::number_float_t{0};
  Json string_ = Json::string_t{};
};

// The texts of 0..n-1, in fixed slots so that copying one is a fixed-size
// move (string-table indices are < 2^32: at most 10 digits).
class IndexTexts {
 public:
  static constexpr std::size_t kSlot = 16;

  void Build(Renderer& r, std::size_t n) {
    slots_.resize(n * kSlot);
    lengths_.resize(n);
    max_length_ = 1;
    for (std::size_t i = 0; i < n; ++i) {
      const std::string_view t = r.Unsigned(i);
      std::memcpy(&slots_[i * kSlot], t.data(), std::min(t.size(), kSlot));
      lengths_[i] = static_cast<std::uint8_t>(t.size());
      max_length_ = std::max(max_length_, t.size());
    }
  }

  std::size_t max_length() const { return max_length_; }

  // Raw pointers for the write loop (see there).
  struct View {
    const char* slots;
    const std::uint8_t* lengths;
    // Writes the text of i at p (and up to kSlot bytes of scratch after
    // it); returns the end of the text.
    char* Write(std::uint32_t i, char* p) const {
      std::memcpy(p, slots + std::size_t{i} * kSlot, kSlot);
      return p + lengths[i];
    }
  };
  View view() const { return {slots_.data(), lengths_.data()}; }

 private:
  std::vector<char> slots_;
  std::vector<std::uint8_t> lengths_;
  std::size_t max_length_ = 1;
};

// The bits of a value, the key under which its text is remembered: for a
// double, equal bits mean the same text (0.0 and -0.0 do not; NaNs of one
// pattern do).
std::uint64_t Bits(std::uint64_t v) { return v; }
std::uint64_t Bits(int v) { return static_cast<std::uint32_t>(v); }
std::uint64_t Bits(double v) {
  std::uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits;
}

// The text of the last value rendered, reused while values repeat (a step's
// counters mostly have the same count; ops are 0 or 10).
class LastText {
 public:
  template <typename T, typename RenderFn>
  std::string_view Get(T v, RenderFn render) {
    if (!valid_ || Bits(v) != last_) {
      const std::string_view t = render(v);
      text_.assign(t.data(), t.size());
      last_ = Bits(v);
      valid_ = true;
    }
    return text_;
  }

 private:
  std::uint64_t last_ = 0;
  bool valid_ = false;
  std::string text_;
};

// A distinct string of the batch and its interned id, sorted into the table.
struct Entry {
  std::string_view s;
  std::uint32_t id;
};

char* Put(std::string_view text, char* p) {
  std::memcpy(p, text.data(), text.size());
  return p + text.size();
}

// Scratch space reused by every batch of a thread (the collector builds its
// payloads on one thread), so that steady-state batches allocate only the
// returned string.
struct Scratch {
  StringTable table;
  std::vector<Tag> common;
  std::vector<Tag> merged;  // the current meter's own + common tags
  std::vector<Row> rows;
  std::vector<std::uint32_t> tags;
  std::vector<Entry> sorted;
  std::vector<std::uint32_t> rank;  // provisional id -> index in the sorted table
  IndexTexts index_texts;
};

// MergeTags's result without its per-measurement sort: own tags and common
// tags are each sorted by key once per meter (a stable sort of each, then a
// merge that prefers own tags on equal keys, is the same order as the stable
// sort of their concatenation), deduplicated by key keeping the first; then
// each measurement only places its statistic and percentile tags.
class MeterTags {
 public:
  MeterTags(Scratch& s, std::uint32_t name_key_id) : s_(s), name_key_id_(name_key_id) {}

  void Set(const IdView& id) {
    s_.merged.clear();
    auto common = s_.common.begin();
    // IdView's tags are sorted by key and unique (ParseCanonicalId checks).
    for (const auto& [k, v] : id.tags) {
      for (; common != s_.common.end() && common->key < k; ++common) s_.merged.push_back(*common);
      s_.merged.push_back({k, s_.table.Intern(k), s_.table.Intern(v)});
    }
    s_.merged.insert(s_.merged.end(), common, s_.common.end());
    s_.merged.erase(std::unique(s_.merged.begin(), s_.merged.end(),
                                [](const Tag& a, const Tag& b) { return a.key == b.key; }),
                    s_.merged.end());
    // The statistic and percentile tags come after every tag with a key not
    // greater than theirs (a stable sort puts them last among equals), and
    // are dropped when the meter or the common tags already have that key.
    percentile_at_ = Place("percentile", &has_percentile_);
    statistic_at_ = Place("statistic", &has_statistic_);
    name_id_ = s_.table.Intern(id.name);
  }

  // Appends the measurement's tag pairs, name pair last; returns how many.
  std::size_t Append(std::uint32_t statistic_id, std::uint32_t percentile_id, bool percentile) {
    const std::size_t before = s_.tags.size();
    auto emit = [this](std::size_t from, std::size_t to) {
      for (std::size_t i = from; i < to; ++i) {
        s_.tags.push_back(s_.merged[i].key_id);
        s_.tags.push_back(s_.merged[i].value_id);
      }
    };
    // "percentile" < "statistic", so percentile_at_ <= statistic_at_.
    emit(0, percentile_at_);
    if (percentile && !has_percentile_) {
      s_.tags.push_back(KeyId("percentile", &percentile_key_id_));
      s_.tags.push_back(percentile_id);
    }
    emit(percentile_at_, statistic_at_);
    if (!has_statistic_) {
      s_.tags.push_back(KeyId("statistic", &statistic_key_id_));
      s_.tags.push_back(statistic_id);
    }
    emit(statistic_at_, s_.merged.size());
    s_.tags.push_back(name_key_id_);
    s_.tags.push_back(name_id_);
    return (s_.tags.size() - before) / 2;
  }

 private:
  static constexpr std::uint32_t kNone = UINT32_MAX;

  // Interned on first use: the table sends only strings that rows use.
  std::uint32_t KeyId(std::string_view key, std::uint32_t* id) {
    if (*id == kNone) *id = s_.table.Intern(key);
    return *id;
  }

  std::size_t Place(std::string_view key, bool* present) {
    const auto it = std::upper_bound(s_.merged.begin(), s_.merged.end(), Tag{key, 0, 0}, KeyLess);
    *present = it != s_.merged.begin() && std::prev(it)->key == key;
    return static_cast<std::size_t>(it - s_.merged.begin());
  }

  Scratch& s_;
  std::size_t percentile_at_ = 0;
  std::size_t statistic_at_ = 0;
  bool has_percentile_ = false;
  bool has_statistic_ = false;
  std::uint32_t name_id_ = 0;
  std::uint32_t name_key_id_;
  std::uint32_t statistic_key_id_ = kNone;
  std::uint32_t percentile_key_id_ = kNone;
};

// Remembers the id of the last string seen at one address: the statistic
// and percentile views point into static tables, so consecutive
// measurements mostly repeat the previous one exactly.
class LastIntern {
 public:
  std::uint32_t Get(StringTable& table, std::string_view s) {
    if (s.data() != last_.data() || s.size() != last_.size()) {
      last_ = s;
      id_ = table.Intern(s);
    }
    return id_;
  }

 private:
  std::string_view last_;
  std::uint32_t id_ = 0;
};

}  // namespace

std::string BuildPayload(const CommonTags& common, const Measurement* begin,
                         const Measurement* end) {
  thread_local Scratch s;
  const auto count = static_cast<std::size_t>(end - begin);
  s.table.Clear(count + 64);
  s.rows.clear();
  s.tags.clear();
  s.rows.reserve(count);
  s.tags.reserve(count * 20);

  // "name" is in every table, even an empty batch's.
  const std::uint32_t name_key = s.table.Intern("name");

  // The common tags, stably sorted by key (CommonTags promises sorted and
  // unique, but MergeTags never relied on it, so neither does this).
  s.common.clear();
  for (const auto& [k, v] : common) s.common.push_back({k, s.table.Intern(k), s.table.Intern(v)});
  if (!std::is_sorted(s.common.begin(), s.common.end(), KeyLess)) {
    std::stable_sort(s.common.begin(), s.common.end(), KeyLess);
  }

  // Pass 1: every measurement's tag pairs as provisional string ids.
  // Consecutive measurements of one meter (same Id view) parse and merge its
  // tags once, as IdParser does.
  MeterTags meter(s, name_key);
  LastIntern statistics, percentiles;
  std::string_view last_id;
  bool last_ok = false;
  IdView id;
  for (const Measurement* m = begin; m != end; ++m) {
    if (m == begin || m->id.data() != last_id.data() || m->id.size() != last_id.size()) {
      last_id = m->id;
      last_ok = ParseCanonicalId(m->id, &id);
      if (last_ok) meter.Set(id);
    }
    if (!last_ok) continue;
    const bool percentile = !m->percentile.empty();
    const std::uint32_t statistic_id = statistics.Get(s.table, m->statistic);
    const std::uint32_t percentile_id = percentile ? percentiles.Get(s.table, m->percentile) : 0;
    const std::size_t first = s.tags.size();
    s.rows.push_back(
        {first, meter.Append(statistic_id, percentile_id, percentile), m->op, m->value});
  }

  // The string table holds exactly the strings the rows use (plus "name"):
  // a common tag overridden by a meter's own tag, for one, is interned above
  // but not sent. Sorted; unique by construction.
  const std::vector<std::string_view>& strings = s.table.strings();
  s.rank.assign(strings.size(), 0);
  s.rank[name_key] = 1;
  for (std::uint32_t id_of : s.tags) s.rank[id_of] = 1;
  s.sorted.clear();
  std::size_t string_bytes = 0;
  for (std::uint32_t i = 0; i < strings.size(); ++i) {
    if (s.rank[i] != 0) {
      s.sorted.push_back({strings[i], i});
      string_bytes += strings[i].size() + 3;
    }
  }
  std::sort(s.sorted.begin(), s.sorted.end(),
            [](const Entry& a, const Entry& b) { return a.s < b.s; });
  for (std::uint32_t i = 0; i < s.sorted.size(); ++i) s.rank[s.sorted[i].id] = i;

  // Pass 2: the JSON text. The string table goes through the serializer
  // string by string; the rows are copied from rendered texts into a buffer
  // sized for the worst case, then trimmed.
  Renderer render;
  std::string out;
  out.reserve(16 + string_bytes);
  out.push_back('[');
  out.append(render.Unsigned(s.sorted.size()));
  for (const Entry& entry : s.sorted) {
    out.push_back(',');
    render.AppendString(entry.s, &out);
  }
  s.index_texts.Build(render, s.sorted.size());
  // Per row: the pair count, the op and the value take at most 20, 11 and 24
  // characters (uint64, int, nlohmann's longest double), plus separators.
  constexpr std::size_t kRowFixed = 64;
  std::size_t bound = out.size() + 1 + IndexTexts::kSlot;
  for (const Row& r : s.rows) bound += kRowFixed + 2 * r.pairs * (s.index_texts.max_length() + 1);
  const std::size_t head = out.size();
  out.resize(bound);
  char* p = out.data() + head;
  LastText pairs_text, op_text, value_text;
  // Plain pointers: the char writes may alias anything, so through the
  // thread_local vectors every write would reload their data pointers.
  const std::uint32_t* const tags = s.tags.data();
  const std::uint32_t* const rank = s.rank.data();
  const IndexTexts::View texts = s.index_texts.view();
  for (const Row& r : s.rows) {
    *p++ = ',';
    p = Put(
        pairs_text.Get(std::uint64_t{r.pairs}, [&](std::uint64_t v) { return render.Unsigned(v); }),
        p);
    for (std::size_t t = r.first; t < r.first + 2 * r.pairs; ++t) {
      *p++ = ',';
      p = texts.Write(rank[tags[t]], p);
    }
    *p++ = ',';
    p = Put(op_text.Get(static_cast<int>(r.op), [&](int v) { return render.Integer(v); }), p);
    *p++ = ',';
    p = Put(value_text.Get(r.value, [&](double v) { return render.Float(v); }), p);
  }
  *p++ = ']';
  out.resize(static_cast<std::size_t>(p - out.data()));
  return out;
}

}  // namespace spectator::collector
