#pragma once

// Decoding of Atlas publish payloads (docs/protocol.md, "Publish payload") for
// assertions in tests. Strict: anything the real backend could misread is an
// error, so an encoder bug fails the test instead of being papered over.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "support/fake_http_server.h"

namespace spectator::testing {

struct PublishedMeasurement {
  std::string name;
  std::map<std::string, std::string> tags;  // every tag but name, statistic included
  int op = 0;                               // 0 = add, 10 = max
  double value = 0;
};

/// Decodes one payload `[n, s0..s(n-1), (t, t pairs, op, value)...]`.
/// \throw std::runtime_error naming the problem: not JSON, string table not
/// sorted and unique, an index out of range, a missing or misplaced name
/// pair, a repeated tag key, an unknown op, a non-numeric value, or a
/// truncated measurement.
std::vector<PublishedMeasurement> DecodePayload(const std::string& json);

/// Decodes the (gunzipped) body of every request, in order.
/// \throw std::runtime_error as DecodePayload, naming the request.
std::vector<PublishedMeasurement> DecodeRequests(const std::vector<HttpRequest>& requests);

/// Sum of the values of measurements called `name` whose statistic tag is
/// `statistic` and that have every tag of `tags`.
double Sum(const std::vector<PublishedMeasurement>& ms, std::string_view name,
           std::string_view statistic, const std::map<std::string, std::string>& tags = {});

}  // namespace spectator::testing
