#pragma once

// A small blocking HTTP client for the publish endpoint, on libcurl. No curl
// type appears here; one HttpClient keeps one curl easy handle so that
// connections are reused between batches and steps.

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace spectator::collector {

struct HttpOptions {
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds total_timeout{5000};  // whole request, including the body
};

struct HttpResult {
  int status = 0;          // HTTP status code; 0 when no response arrived
  bool timed_out = false;  // status == 0 because a timeout expired
  std::string error;       // status == 0: what failed (curl's message)
  std::string body;        // response body, decoded when gzip'd
  std::chrono::nanoseconds elapsed{0};
};

/// A blocking HTTP client that keeps its connection open between requests.
/// Not thread-safe: one HttpClient per thread. Process safety: use it only in
/// the process that created it; a fork()ed child would share its socket.
class HttpClient {
 public:
  explicit HttpClient(HttpOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// POSTs an already gzip'd JSON body with the headers of docs/protocol.md
  /// (Content-Type: application/json, Content-Encoding: gzip,
  /// Accept-Encoding: gzip). Never throws for network errors: they are
  /// reported in the result.
  HttpResult PostGzipJson(const std::string& url, std::string_view gzipped_body);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spectator::collector
