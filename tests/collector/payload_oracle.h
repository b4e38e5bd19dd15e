#pragma once

// The test oracle of the publish payload: docs/protocol.md's rules written the
// plainest way, a std::map of tags and an nlohmann/json document dumped as a
// whole. BuildPayload must mean the same (payload_test.cc): the same values
// when both are parsed, and the same bytes when the numbers allow.
//
// Tags, by docs/protocol.md ("Common tags", "The publish payload"): the common
// tags (the first of a repeated key), then the meter's own tags over them,
// then statistic and percentile unless a tag already has that key; sorted by
// key; the name pair last.

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "measurements.h"

namespace spectator::collector::testing {

inline std::string OraclePayload(const CommonTags& common, const Measurement* begin,
                                 const Measurement* end) {
  struct Row {
    std::vector<std::pair<std::string, std::string>> tags;
    int op;
    double value;
  };
  std::vector<Row> rows;
  std::set<std::string> strings = {"name"};
  for (const Measurement* m = begin; m != end; ++m) {
    IdView id;
    if (!ParseCanonicalId(m->id, &id)) continue;
    std::map<std::string, std::string> tags;
    for (const auto& [k, v] : common) tags.emplace(k, v);
    for (const auto& [k, v] : id.tags) tags[std::string(k)] = std::string(v);
    tags.emplace("statistic", std::string(m->statistic));
    if (!m->percentile.empty()) tags.emplace("percentile", std::string(m->percentile));
    Row row{{tags.begin(), tags.end()}, static_cast<int>(m->op), m->value};
    row.tags.emplace_back("name", std::string(id.name));
    for (const auto& [k, v] : row.tags) {
      strings.insert(k);
      strings.insert(v);
    }
    rows.push_back(std::move(row));
  }
  std::map<std::string, std::size_t> index;
  nlohmann::json doc = nlohmann::json::array();
  doc.push_back(strings.size());
  for (const std::string& s : strings) {
    index.emplace(s, index.size());
    doc.push_back(s);
  }
  for (const Row& row : rows) {
    doc.push_back(row.tags.size());
    for (const auto& [k, v] : row.tags) {
      doc.push_back(index.at(k));
      doc.push_back(index.at(v));
    }
    doc.push_back(row.op);
    doc.push_back(row.value);
  }
  // replace: an invalid UTF-8 sequence becomes U+FFFD (strict would throw).
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace spectator::collector::testing
