#pragma once

// HTTP GETs from a test through libcurl (link CURL::libcurl): requests to
// prefork-server, scrapes of the collector's /metrics, Prometheus' API.

#include <string>

namespace spectator::testing {

struct HttpResponse {
  long status = 0;  // 0: no response (error says why)
  std::string body;
  std::string content_type;
  std::string error;
};

/// One GET on a connection of its own (no reuse): for prefork-server, each
/// request is then one connection, so one server.connectionDuration record.
/// `close` also asks the server to close after the answer. Connects within
/// 5 s and finishes within 10 s, or fails.
HttpResponse HttpGet(const std::string& url, bool close = false);

/// `s` percent-encoded for a query string: everything but the unreserved
/// characters of RFC 3986 (A-Z a-z 0-9 - _ . ~) becomes %XX.
std::string UrlEncode(const std::string& s);

}  // namespace spectator::testing
