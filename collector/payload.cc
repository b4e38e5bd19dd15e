#include "payload.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "json_writer.h"

namespace spectator::collector {
namespace {

// Cost model (benchmarks/README.md, item 5): a step of 100k counters has a
// budget of 30 ms for everything, of which compression takes ~8 and the
// take ~2, so a measurement gets ~100 ns here. The work that does not change
// from step to step is done once:
//
// - every string (tag key or value, name, statistic, bucket tag) is interned
//   once per process in a global table (Strings) that keeps its JSON text
//   and its rank in the sorted order of all strings;
// - every meter's merged tags (MergeMeterTags) are kept per cache slot (the reading's position) as string
//   ids with their TagLayout (MeterCache): a meter's Id never changes;
// - per batch, only the strings its rows use are marked (a bitmap by global
//   rank), numbered in rank order, and written as pre-rendered texts; each
//   row is then a run of copies of pre-rendered index texts.
//
// Memory: the global table holds each distinct string once (bounded by the
// segments' Ids plus the common tags), the cache ~ (8 bytes per merged tag +
// 24) per meter.

// Interned strings, stable and owned, with their JSON texts and global ranks.
class Strings {
 public:
  static constexpr std::uint32_t kEmpty = UINT32_MAX;

  std::uint32_t Intern(std::string_view s) {
    if ((views_.size() + 1) * 2 > slots_.size()) Grow();
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = std::hash<std::string_view>{}(s) & mask;; i = (i + 1) & mask) {
      const std::uint32_t id = slots_[i];
      if (id == kEmpty) {
        const auto fresh = static_cast<std::uint32_t>(views_.size());
        storage_.emplace_back(s);
        views_.push_back(storage_.back());
        text_at_.push_back(texts_.size());
        json::AppendString(&texts_, s);
        text_len_.push_back(static_cast<std::uint32_t>(texts_.size() - text_at_.back()));
        slots_[i] = fresh;
        unranked_.push_back(fresh);
        return fresh;
      }
      if (views_[id] == s) return id;
    }
  }

  std::size_t size() const { return views_.size(); }

  // Gives every string its rank in the sorted order of all strings: the new
  // ones are sorted and merged into the ranked ones (O(n) when few are new,
  // nothing at all in a steady state).
  void Rank() {
    if (unranked_.empty()) return;
    auto less = [this](std::uint32_t a, std::uint32_t b) { return views_[a] < views_[b]; };
    std::sort(unranked_.begin(), unranked_.end(), less);
    const std::size_t old = by_rank_.size();
    by_rank_.insert(by_rank_.end(), unranked_.begin(), unranked_.end());
    std::inplace_merge(by_rank_.begin(), by_rank_.begin() + static_cast<std::ptrdiff_t>(old),
                       by_rank_.end(), less);
    unranked_.clear();
    rank_.resize(views_.size());
    for (std::uint32_t r = 0; r < by_rank_.size(); ++r) rank_[by_rank_[r]] = r;
  }

  // Valid after Rank().
  const std::uint32_t* rank() const { return rank_.data(); }
  std::uint32_t by_rank(std::uint32_t r) const { return by_rank_[r]; }

  std::string_view text(std::uint32_t id) const {
    return std::string_view(texts_).substr(text_at_[id], text_len_[id]);
  }

 private:
  void Grow() {
    slots_.assign(std::max<std::size_t>(1024, slots_.size() * 2), kEmpty);
    const std::size_t mask = slots_.size() - 1;
    for (std::uint32_t id = 0; id < views_.size(); ++id) {
      std::size_t i = std::hash<std::string_view>{}(views_[id]) & mask;
      while (slots_[i] != kEmpty) i = (i + 1) & mask;
      slots_[i] = id;
    }
  }

  std::deque<std::string> storage_;     // never moves an element
  std::vector<std::string_view> views_;  // by id
  std::vector<std::uint32_t> slots_;     // open addressing over ids
  std::string texts_;                    // the JSON texts, back to back
  std::vector<std::size_t> text_at_;     // by id
  std::vector<std::uint32_t> text_len_;  // by id
  std::vector<std::uint32_t> unranked_;
  std::vector<std::uint32_t> by_rank_;
  std::vector<std::uint32_t> rank_;  // by id
};

// A meter's merged tags as string ids: pairs (key, value) in pool[first..),
// the layout of its statistic and percentile tags, its name, and for marking
// a batch's strings which pairs are its own (the rest are common tags, the
// same on most meters: marked once per batch through `commons`). 40 bytes: a
// step reads one per meter.
struct Meter {
  static constexpr std::uint32_t kAllPairs = UINT32_MAX;  // commons: mark every pair one by one

  std::uint64_t id_hash = 0;
  std::uint32_t id_size = UINT32_MAX;  // UINT32_MAX: empty
  std::uint32_t first = 0;
  std::uint32_t name = 0;
  std::uint16_t count = 0;
  std::uint16_t percentile_at = 0;
  std::uint16_t statistic_at = 0;
  bool has_percentile : 1;
  bool has_statistic : 1;
  bool ok : 1;     // the Id parsed
  bool local : 1;  // its pairs are in State::local_pool (no cache slot: this batch only)
  std::uint32_t own_mask = 0;       // bit i: merged pair i is the meter's own tag
  std::uint32_t commons = kAllPairs;  // index of its common pairs in State::common_sets
  Meter() : has_percentile(false), has_statistic(false), ok(false), local(false) {}
};
static_assert(sizeof(Meter) <= 40, "one per meter, read every step");

// A row of the payload before the table is numbered: its meter is
// State::by_slot[meter] or, when local, State::local[meter].
struct Row {
  std::uint32_t meter;
  std::uint32_t statistic;
  std::uint32_t percentile;  // kEmpty: not a bucket
  Op op;
  bool local;
  double value;
};

// The pre-rendered text ",<n>" of a batch index: 15 bytes and its length in
// the 16th, so that a copy is one 16-byte move.
struct IndexText {
  char bytes[16];
};

struct State {
  Strings strings;
  CommonTags common;  // the common tags the cache was built with
  bool common_set = false;
  std::vector<Meter> by_slot;
  std::vector<std::uint32_t> pool;
  std::size_t pool_garbage = 0;  // pool entries of meters filled again (a cache slot of another Id)
  std::vector<Meter> local;      // this batch's meters without a slot
  std::vector<std::uint32_t> local_pool;
  // The cache slots this batch's rows point at (a bit each, and the list to
  // clear them): never written per hit into the entries themselves, so a
  // steady-state step only reads the cache.
  std::vector<std::uint64_t> in_batch;
  std::vector<std::uint32_t> batch_slots;
  IdParser parser;
  MeterTags merged;
  // The distinct sets of common pairs meters include (which common tags a
  // meter keeps depends on its own keys): ids, key and value, of set k in
  // common_pool[common_at[k] .. common_at[k + 1]).
  std::map<std::vector<std::uint32_t>, std::uint32_t> common_sets;
  std::vector<std::uint32_t> common_pool;
  std::vector<std::uint32_t> common_at{0};
  std::vector<std::uint32_t> scratch;
  // Per batch: the sets its meters use (a flag each, and the list).
  std::vector<bool> commons_in_batch;
  std::vector<std::uint32_t> batch_commons;
  std::uint32_t name_key = 0, statistic_key = 0, percentile_key = 0;

  // Per batch.
  std::vector<Row> rows;
  std::vector<std::uint64_t> used;      // bitmap by global rank
  std::vector<std::uint32_t> index_of;  // batch index by string id (used ones only)
  std::vector<IndexText> index_texts;   // by batch index
};

void Fill(State& st, const CommonTags& common, std::string_view id, Meter* m) {
  m->id_hash = std::hash<std::string_view>{}(id);
  // A slot filled again leaves its old pairs in the pool (counted before
  // count is reset, so that the cache starts over once they pile up).
  if (!m->local) st.pool_garbage += 2 * std::size_t{m->count};
  m->count = 0;
  m->id_size = static_cast<std::uint32_t>(id.size());
  const IdView* view = st.parser.Parse(id);
  m->ok = view != nullptr;
  if (!m->ok) return;
  MergeMeterTags(common, *view, &st.merged);
  const TagLayout& layout = st.merged.layout;
  std::vector<std::uint32_t>& pool = m->local ? st.local_pool : st.pool;
  m->first = static_cast<std::uint32_t>(pool.size());
  // Own tags view the Id's text; the others are common tags.
  const auto own = [id](std::string_view s) {
    return s.data() >= id.data() && s.data() < id.data() + id.size();
  };
  m->own_mask = 0;
  st.scratch.clear();
  for (std::size_t i = 0; i < st.merged.tags.size(); ++i) {
    const TagPair& t = st.merged.tags[i];
    const std::uint32_t key = st.strings.Intern(t.first);
    const std::uint32_t value = st.strings.Intern(t.second);
    pool.push_back(key);
    pool.push_back(value);
    if (own(t.first)) {
      if (i < 32) m->own_mask |= std::uint32_t{1} << i;
    } else {
      st.scratch.push_back(key);
      st.scratch.push_back(value);
    }
  }
  if (st.merged.tags.size() > 32) {
    m->commons = Meter::kAllPairs;  // too many for the mask: marked pair by pair
  } else {
    const auto [it, fresh] = st.common_sets.try_emplace(
        st.scratch, static_cast<std::uint32_t>(st.common_sets.size()));
    if (fresh) {
      st.common_pool.insert(st.common_pool.end(), st.scratch.begin(), st.scratch.end());
      st.common_at.push_back(static_cast<std::uint32_t>(st.common_pool.size()));
      st.commons_in_batch.push_back(false);
    }
    m->commons = it->second;
  }
  // An Id has at most 20 tags; 65535 common tags would not fit in a request.
  m->count = static_cast<std::uint16_t>(layout.count);
  m->percentile_at = static_cast<std::uint16_t>(layout.percentile_at);
  m->statistic_at = static_cast<std::uint16_t>(layout.statistic_at);
  m->has_percentile = layout.has_percentile;
  m->has_statistic = layout.has_statistic;
  m->name = st.strings.Intern(view->name);
}

TagLayout LayoutOf(const Meter& m) {
  TagLayout layout;
  layout.count = m.count;
  layout.percentile_at = m.percentile_at;
  layout.statistic_at = m.statistic_at;
  layout.has_percentile = m.has_percentile;
  layout.has_statistic = m.has_statistic;
  return layout;
}

// The cached meter of a measurement, (re)built when the slot holds another
// Id. Returns its index in st.by_slot, or in st.local when *local.
std::uint32_t Lookup(State& st, const CommonTags& common, const Measurement& m, bool* local) {
  auto batch_only = [&]() {
    Meter& meter = st.local.emplace_back();
    meter.local = true;
    Fill(st, common, m.id, &meter);
    *local = true;
    return static_cast<std::uint32_t>(st.local.size() - 1);
  };
  if (m.cache_slot == Measurement::kNoSlot) return batch_only();
  if (m.cache_slot >= st.by_slot.size()) {
    st.by_slot.resize(std::max<std::size_t>(std::size_t{m.cache_slot} + 1, st.by_slot.size() * 2));
  }
  Meter& meter = st.by_slot[m.cache_slot];
  *local = false;
  const std::size_t word = m.cache_slot >> 6;
  const std::uint64_t bit = std::uint64_t{1} << (m.cache_slot & 63);
  if (word >= st.in_batch.size()) st.in_batch.resize(st.by_slot.size() / 64 + 1);
  const bool taken = (st.in_batch[word] & bit) != 0;
  if (!taken) {
    st.in_batch[word] |= bit;
    st.batch_slots.push_back(m.cache_slot);
  }
  if (meter.id_size == m.id.size() && meter.id_hash == std::hash<std::string_view>{}(m.id)) {
    return m.cache_slot;
  }
  // Another Id at this slot. When rows of this batch already point at the
  // entry (two Ids with one slot in a batch: never from one reader), the
  // newcomer is a batch-only meter; otherwise it takes the slot over.
  if (taken) return batch_only();
  Fill(st, common, m.id, &meter);
  return m.cache_slot;
}

// Remembers the id of the last string seen at one address: the statistic
// and percentile views point into static tables, so consecutive
// measurements mostly repeat the previous one exactly.
class LastIntern {
 public:
  std::uint32_t Get(Strings& strings, std::string_view s) {
    if (s.data() != last_.data() || s.size() != last_.size()) {
      last_ = s;
      id_ = strings.Intern(s);
    }
    return id_;
  }

 private:
  std::string_view last_;
  std::uint32_t id_ = 0;
};

// The text of the last double written, reused while values repeat (a step's
// counters mostly have the same count).
class LastDouble {
 public:
  char* Write(char* p, double v) {
    std::uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    if (!valid_ || bits != bits_) {
      len_ = static_cast<std::size_t>(json::WriteDouble(text_, v) - text_);
      bits_ = bits;
      valid_ = true;
    }
    std::memcpy(p, text_, sizeof text_);
    return p + len_;
  }

 private:
  char text_[json::kMaxNumber];
  std::size_t len_ = 0;
  std::uint64_t bits_ = 0;
  bool valid_ = false;
};

}  // namespace

void BuildPayload(const CommonTags& common, const Measurement* begin, const Measurement* end,
                  std::string* out) {
  thread_local State state;
  State& st = state;
  // A meter's cached tags include the common tags: other common tags, other
  // cache. (One collector has one set for its life.)
  // Slots that changed Ids (several segments in one process) leave their old
  // pairs behind; past a point, start over.
  if (!st.common_set || st.common != common ||
      (st.pool_garbage > (std::size_t{1} << 20) && st.pool_garbage > st.pool.size() / 2)) {
    st.common = common;
    st.common_set = true;
    st.by_slot.clear();
    st.pool.clear();
    st.pool_garbage = 0;
    st.common_sets.clear();
    st.common_pool.clear();
    st.common_at.assign(1, 0);
    st.commons_in_batch.clear();
    st.batch_commons.clear();
  }
  for (std::uint32_t k : st.batch_commons) st.commons_in_batch[k] = false;
  st.batch_commons.clear();
  for (std::uint32_t slot : st.batch_slots) st.in_batch[slot >> 6] = 0;
  st.batch_slots.clear();
  st.local.clear();
  st.local_pool.clear();
  Strings& strings = st.strings;
  st.name_key = strings.Intern("name");
  st.statistic_key = strings.Intern("statistic");
  st.percentile_key = strings.Intern("percentile");
  strings.Rank();
  const std::size_t strings_before = strings.size();
  // With no string new since the last batch, the ranks are current and the
  // strings a row uses are marked as it is read; a batch that interns new
  // strings marks in a second pass, once they are ranked.
  std::size_t words = (strings.size() + 63) / 64;
  st.used.assign(words, 0);
  auto mark_all = [&st](const std::uint32_t* rank, std::uint64_t* used, const Meter& mt,
                        const Row& r, bool meter_too) {
    auto mark = [used, rank](std::uint32_t id) {
      const std::uint32_t g = rank[id];
      used[g >> 6] |= std::uint64_t{1} << (g & 63);
    };
    if (meter_too) {
      const std::uint32_t* pairs = (mt.local ? st.local_pool : st.pool).data() + mt.first;
      if (mt.commons == Meter::kAllPairs) {
        for (std::size_t i = 0; i < 2 * std::size_t{mt.count}; ++i) mark(pairs[i]);
      } else {
        for (std::uint32_t bits = mt.own_mask; bits != 0; bits &= bits - 1) {
          const auto i = static_cast<std::size_t>(__builtin_ctz(bits));
          mark(pairs[2 * i]);
          mark(pairs[2 * i + 1]);
        }
        if (!st.commons_in_batch[mt.commons]) {  // its common pairs: marked after the rows
          st.commons_in_batch[mt.commons] = true;
          st.batch_commons.push_back(mt.commons);
        }
      }
      mark(mt.name);
    }
    if (!mt.has_statistic) {
      mark(st.statistic_key);
      mark(r.statistic);
    }
    if (r.percentile != Strings::kEmpty && !mt.has_percentile) {
      mark(st.percentile_key);
      mark(r.percentile);
    }
  };

  // Pass 1: each measurement's meter (merged once per slot, found again by
  // its slot) and statistic ids. Consecutive measurements of one meter share
  // the lookup.
  st.rows.clear();
  st.rows.reserve(static_cast<std::size_t>(end - begin));
  st.local.reserve(static_cast<std::size_t>(end - begin));  // never moves during the batch
  LastIntern statistics, percentiles;
  std::uint32_t meter = 0;
  bool local = false, have_meter = false;
  std::string_view last_id;
  std::size_t row_pairs = 0;  // for the output's bound
  for (const Measurement* m = begin; m != end; ++m) {
    bool new_meter = false;
    if (!have_meter || m->id.data() != last_id.data() || m->id.size() != last_id.size()) {
      last_id = m->id;
      meter = Lookup(st, common, *m, &local);
      have_meter = new_meter = true;
    }
    const Meter& mt = local ? st.local[meter] : st.by_slot[meter];
    if (!mt.ok) continue;
    const std::uint32_t statistic = statistics.Get(strings, m->statistic);
    const std::uint32_t percentile =
        m->percentile.empty() ? Strings::kEmpty : percentiles.Get(strings, m->percentile);
    st.rows.push_back({meter, statistic, percentile, m->op, local, m->value});
    row_pairs += std::size_t{mt.count} + 3;
    if (strings.size() == strings_before) {
      mark_all(strings.rank(), st.used.data(), mt, st.rows.back(), new_meter);
    }
  }

  // Pass 2, only when new strings came: rank them, mark again.
  if (strings.size() != strings_before) {
    strings.Rank();
    words = (strings.size() + 63) / 64;
    st.used.assign(words, 0);
    const std::uint32_t* const rank = strings.rank();
    std::uint64_t* const used = st.used.data();
    used[rank[st.name_key] >> 6] |= std::uint64_t{1} << (rank[st.name_key] & 63);
    const Meter* marked = nullptr;
    for (const Row& r : st.rows) {
      const Meter& mt = r.local ? st.local[r.meter] : st.by_slot[r.meter];
      mark_all(rank, used, mt, r, &mt != marked);
      marked = &mt;
    }
  } else {
    const std::uint32_t g = strings.rank()[st.name_key];
    st.used[g >> 6] |= std::uint64_t{1} << (g & 63);
  }
  // The common pairs of the batch's meters, once per distinct set.
  {
    const std::uint32_t* const rank = strings.rank();
    std::uint64_t* const used = st.used.data();
    for (std::uint32_t k : st.batch_commons) {
      for (std::uint32_t i = st.common_at[k]; i < st.common_at[k + 1]; ++i) {
        const std::uint32_t g = rank[st.common_pool[i]];
        used[g >> 6] |= std::uint64_t{1} << (g & 63);
      }
    }
  }

  // The string table: the used strings in rank order, numbered as they come.
  std::size_t distinct = 0;
  std::size_t text_bytes = 0;
  for (std::uint64_t w : st.used) distinct += static_cast<std::size_t>(__builtin_popcountll(w));
  st.index_of.resize(strings.size());
  st.index_texts.resize(distinct);
  std::uint32_t next = 0;
  for (std::size_t w = 0; w < words; ++w) {
    for (std::uint64_t bits = st.used[w]; bits != 0; bits &= bits - 1) {
      const auto r = static_cast<std::uint32_t>(w * 64 + static_cast<std::size_t>(__builtin_ctzll(bits)));
      const std::uint32_t id = strings.by_rank(r);
      st.index_of[id] = next;
      text_bytes += strings.text(id).size() + 1;
      IndexText& t = st.index_texts[next];
      t.bytes[0] = ',';
      const char* e = json::WriteUnsigned(t.bytes + 1, next);
      t.bytes[15] = static_cast<char>(e - t.bytes);
      ++next;
    }
  }

  // Room for the worst case, trimmed at the end (resize writes zeros up to
  // it: keep it tight): per row ",pairs" (pairs < 2^16 + 3), two index texts
  // per pair, ",op" and ",value"; the last copies write up to 16 and
  // kMaxNumber bytes beyond their text.
  // (The rows' pairs, count + 3 each, were summed in pass 1.)
  const std::size_t index_len = 1 + std::to_string(distinct).size();
  const std::size_t bound = 2 + json::kMaxNumber + text_bytes + 16 + json::kMaxNumber +
                            st.rows.size() * ((1 + 5) + (1 + 11) + (1 + 25)) +
                            2 * index_len * row_pairs;
  out->resize(bound);
  char* p = out->data();
  *p++ = '[';
  p = json::WriteUnsigned(p, distinct);
  for (std::size_t w = 0; w < words; ++w) {
    for (std::uint64_t bits = st.used[w]; bits != 0; bits &= bits - 1) {
      const auto r = static_cast<std::uint32_t>(w * 64 + static_cast<std::size_t>(__builtin_ctzll(bits)));
      const std::string_view text = strings.text(strings.by_rank(r));
      *p++ = ',';
      std::memcpy(p, text.data(), text.size());
      p += text.size();
    }
  }

  // Pass 3: the rows. Plain pointers in the loop: char writes may alias
  // anything, so through the vectors every write would reload them.
  const IndexText* const texts = st.index_texts.data();
  const std::uint32_t* const index_of = st.index_of.data();
  const std::uint32_t* const pool = st.pool.data();
  const std::uint32_t* const local_pool = st.local_pool.data();
  auto put = [texts, index_of, &p](std::uint32_t id) {
    const IndexText& t = texts[index_of[id]];
    std::memcpy(p, t.bytes, 16);
    p += static_cast<unsigned char>(t.bytes[15]);
  };
  const std::uint32_t statistic_key = st.statistic_key;
  const std::uint32_t percentile_key = st.percentile_key;
  const std::uint32_t name_key = st.name_key;
  LastDouble value_text;
  const Meter* const by_slot = st.by_slot.data();
  const Meter* const locals = st.local.data();
  for (const Row& r : st.rows) {
    const Meter& mt = r.local ? locals[r.meter] : by_slot[r.meter];
    const bool bucket = r.percentile != Strings::kEmpty;
    const std::size_t pairs = std::size_t{mt.count} + 1 + (mt.has_statistic ? 0 : 1) +
                              (bucket && !mt.has_percentile ? 1 : 0);
    *p++ = ',';
    p = json::WriteUnsigned(p, pairs);
    const std::uint32_t* tags = (mt.local ? local_pool : pool) + mt.first;
    ForEachTag(
        LayoutOf(mt), bucket,
        [&](std::size_t i) {
          put(tags[2 * i]);
          put(tags[2 * i + 1]);
        },
        [&] {
          put(statistic_key);
          put(r.statistic);
        },
        [&] {
          put(percentile_key);
          put(r.percentile);
        });
    put(name_key);
    put(mt.name);
    *p++ = ',';
    if (r.op == Op::kAdd) {
      *p++ = '0';
    } else {
      p = json::WriteInteger(p, static_cast<int>(r.op));
    }
    *p++ = ',';
    p = value_text.Write(p, r.value);
  }
  *p++ = ']';
  out->resize(static_cast<std::size_t>(p - out->data()));
}

std::string BuildPayload(const CommonTags& common, const Measurement* begin,
                         const Measurement* end) {
  std::string out;
  BuildPayload(common, begin, end, &out);
  return out;
}

}  // namespace spectator::collector
