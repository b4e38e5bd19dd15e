#include "payload.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <vector>

namespace spectator::collector {

std::string BuildPayload(const CommonTags& common, const Measurement* begin,
                         const Measurement* end) {
  // Pass 1: every measurement's tags, flattened; consecutive measurements of
  // one meter share its parsed Id.
  struct Row {
    std::string_view name;
    std::size_t first_tag, tags;
    Op op;
    double value;
  };
  std::vector<Row> rows;
  rows.reserve(static_cast<std::size_t>(end - begin));
  std::vector<TagPair> flat;
  std::vector<TagPair> merged;
  IdParser ids;
  for (const Measurement* m = begin; m != end; ++m) {
    const IdView* id = ids.Parse(m->id);
    if (id == nullptr) continue;
    MergeTags(common, *id, *m, &merged);
    rows.push_back({id->name, flat.size(), merged.size(), m->op, m->value});
    flat.insert(flat.end(), merged.begin(), merged.end());
  }

  // The string table: sorted, unique.
  std::vector<std::string_view> strings;
  strings.reserve(flat.size() * 2 + rows.size() + 1);
  strings.emplace_back("name");
  for (const Row& r : rows) strings.push_back(r.name);
  for (const auto& [k, v] : flat) {
    strings.push_back(k);
    strings.push_back(v);
  }
  std::sort(strings.begin(), strings.end());
  strings.erase(std::unique(strings.begin(), strings.end()), strings.end());
  std::unordered_map<std::string_view, std::size_t> index;
  index.reserve(strings.size());
  for (std::size_t i = 0; i < strings.size(); ++i) index.emplace(strings[i], i);

  nlohmann::json payload = nlohmann::json::array();
  auto& array = payload.get_ref<nlohmann::json::array_t&>();
  array.reserve(1 + strings.size() + rows.size() * 4 + flat.size() * 2 + 2);
  array.emplace_back(strings.size());
  for (std::string_view s : strings) array.emplace_back(s);
  const std::size_t name_index = index.at("name");
  for (const Row& r : rows) {
    array.emplace_back(r.tags + 1);
    for (std::size_t t = r.first_tag; t < r.first_tag + r.tags; ++t) {
      array.emplace_back(index.at(flat[t].first));
      array.emplace_back(index.at(flat[t].second));
    }
    array.emplace_back(name_index);
    array.emplace_back(index.at(r.name));
    array.emplace_back(static_cast<int>(r.op));
    array.emplace_back(r.value);
  }
  return payload.dump();
}

}  // namespace spectator::collector
