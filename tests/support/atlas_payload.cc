#include "support/atlas_payload.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace spectator::testing {
namespace {

using nlohmann::json;

[[noreturn]] void Fail(const std::string& what) {
  throw std::runtime_error("bad publish payload: " + what);
}

// Reads an unsigned integer at `pos` (an index or a count).
std::size_t ReadCount(const json& doc, std::size_t pos, const char* what) {
  if (pos >= doc.size())
    Fail(std::string("truncated: ") + what + " missing at " + std::to_string(pos));
  const json& v = doc[pos];
  if (!v.is_number_integer() || v.get<std::int64_t>() < 0) {
    Fail(std::string(what) + " at " + std::to_string(pos) +
         " is not a non-negative integer: " + v.dump());
  }
  return static_cast<std::size_t>(v.get<std::uint64_t>());
}

}  // namespace

std::vector<PublishedMeasurement> DecodePayload(const std::string& text) {
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) Fail("not JSON: " + text.substr(0, 200));
  if (!doc.is_array() || doc.empty()) Fail("not a non-empty array");

  const std::size_t n = ReadCount(doc, 0, "string count");
  if (n + 1 > doc.size()) Fail("string table of " + std::to_string(n) + " runs past the end");
  std::vector<std::string> strings;
  strings.reserve(n);
  for (std::size_t i = 1; i <= n; ++i) {
    if (!doc[i].is_string())
      Fail("string table entry " + std::to_string(i - 1) + " is not a string");
    strings.push_back(doc[i].get<std::string>());
    if (i > 1 && !(strings[i - 2] < strings[i - 1])) {
      Fail("string table not sorted and unique at " + std::to_string(i - 1) + ": \"" +
           strings[i - 2] + "\" then \"" + strings[i - 1] + "\"");
    }
  }
  const auto lookup = [&](std::size_t pos) -> const std::string& {
    const std::size_t index = ReadCount(doc, pos, "string index");
    if (index >= n) {
      Fail("string index " + std::to_string(index) + " at " + std::to_string(pos) +
           " out of range (table of " + std::to_string(n) + ")");
    }
    return strings[index];
  };

  std::vector<PublishedMeasurement> out;
  std::size_t pos = n + 1;
  while (pos < doc.size()) {
    const std::size_t start = pos;
    const std::string where =
        "measurement " + std::to_string(out.size()) + " at " + std::to_string(start);
    const std::size_t t = ReadCount(doc, pos++, "tag count");
    if (t == 0) Fail(where + ": no tag pairs (the name pair is required)");
    // 2t indices, op and value must all be there.
    if (doc.size() - pos < 2 * t + 2) Fail(where + ": truncated (" + std::to_string(t) + " pairs)");
    PublishedMeasurement m;
    for (std::size_t k = 0; k < t; ++k) {
      const std::string& key = lookup(pos++);
      const std::string& value = lookup(pos++);
      const bool last = k + 1 == t;
      if (key == "name") {
        if (!last) Fail(where + ": the name pair is not last");
        m.name = value;
      } else {
        if (last) Fail(where + ": the last pair is " + key + ", not name");
        if (!m.tags.emplace(key, value).second) Fail(where + ": tag " + key + " repeated");
      }
    }
    const json& op = doc[pos++];
    if (!op.is_number_integer() || (op.get<std::int64_t>() != 0 && op.get<std::int64_t>() != 10)) {
      Fail(where + ": op is not 0 or 10: " + op.dump());
    }
    m.op = static_cast<int>(op.get<std::int64_t>());
    const json& value = doc[pos++];
    if (!value.is_number() || !std::isfinite(value.get<double>())) {
      Fail(where + ": value is not a finite number: " + value.dump());
    }
    m.value = value.get<double>();
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<PublishedMeasurement> DecodeRequests(const std::vector<HttpRequest>& requests) {
  std::vector<PublishedMeasurement> all;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    try {
      auto ms = DecodePayload(requests[i].DecodedBody());
      all.insert(all.end(), std::make_move_iterator(ms.begin()), std::make_move_iterator(ms.end()));
    } catch (const std::exception& e) {
      throw std::runtime_error("request " + std::to_string(i) + ": " + e.what());
    }
  }
  return all;
}

double Sum(const std::vector<PublishedMeasurement>& ms, std::string_view name,
           std::string_view statistic, const std::map<std::string, std::string>& tags) {
  double sum = 0;
  for (const auto& m : ms) {
    if (m.name != name) continue;
    const auto st = m.tags.find("statistic");
    if (st == m.tags.end() || st->second != statistic) continue;
    bool match = true;
    for (const auto& [k, v] : tags) {
      const auto it = m.tags.find(k);
      match = match && it != m.tags.end() && it->second == v;
    }
    if (match) sum += m.value;
  }
  return sum;
}

}  // namespace spectator::testing
