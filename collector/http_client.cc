#include "http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstddef>
#include <mutex>
#include <string>

#include "log.h"
#include "spectator/version.h"

namespace spectator::collector {
namespace {

// A misbehaving endpoint must not make the collector hold an unbounded answer
// in memory; Atlas answers are small JSON documents, so the rest is dropped.
constexpr std::size_t kMaxResponseBody = std::size_t{1} << 20;

// curl_global_init is not thread-safe and must run once per process before
// any other curl call; the collector never calls curl_global_cleanup because
// it cannot know whether another HttpClient is still in use.
void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
      Log(LogLevel::kError,
          std::string("http: curl_global_init failed: ") + curl_easy_strerror(rc));
    }
  });
}

std::size_t WriteBody(char* data, std::size_t size, std::size_t count, void* user) {
  auto* body = static_cast<std::string*>(user);
  const std::size_t n = size * count;
  if (body->size() < kMaxResponseBody) {
    body->append(data, std::min(n, kMaxResponseBody - body->size()));
  }
  // Report everything as consumed: returning less would abort the transfer,
  // and a truncated body is still worth its status code.
  return n;
}

// curl reads 0 as "no timeout"; a request must always be bounded.
long ToCurlMs(std::chrono::milliseconds ms) {
  return static_cast<long>(ms.count() > 0 ? ms.count() : 1);
}

}  // namespace

struct HttpClient::Impl {
  HttpOptions options;
  CURL* curl = nullptr;
  curl_slist* headers = nullptr;
  std::string user_agent;
  char error_buffer[CURL_ERROR_SIZE] = {};

  // Options that are the same for every request, set once: the handle is
  // kept (and never reset) because its connection cache is what gives
  // keep-alive between batches and steps.
  void SetFixedOptions() {
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, user_agent.c_str());
    // An empty string makes curl decode every encoding it was built with; our
    // explicit Accept-Encoding header takes precedence on the wire.
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
    // The collector owns its signal handling: curl must not install a
    // SIGALRM handler (for DNS timeouts) nor change SIGPIPE's disposition.
    // On Linux curl sends with MSG_NOSIGNAL, so no SIGPIPE reaches us.
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, ToCurlMs(options.connect_timeout));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, ToCurlMs(options.total_timeout));
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &WriteBody);
  }
};

HttpClient::HttpClient(HttpOptions options) : impl_(std::make_unique<Impl>()) {
  GlobalInitOnce();
  impl_->options = options;
  impl_->user_agent = std::string("spectator-collector/") + kVersion;
  const char* const header_lines[] = {
      "Content-Type: application/json",
      "Content-Encoding: gzip",
      "Accept-Encoding: gzip",
      // An empty Expect stops curl from sending "Expect: 100-continue" for
      // large bodies and then waiting up to a second for the interim answer.
      "Expect:",
  };
  for (const char* line : header_lines) {
    curl_slist* next = curl_slist_append(impl_->headers, line);
    if (next == nullptr) {  // out of memory: PostGzipJson reports it
      curl_slist_free_all(impl_->headers);
      impl_->headers = nullptr;
      break;
    }
    impl_->headers = next;
  }
  impl_->curl = curl_easy_init();
  if (impl_->curl != nullptr && impl_->headers != nullptr) impl_->SetFixedOptions();
}

HttpClient::~HttpClient() {
  if (impl_->curl != nullptr) curl_easy_cleanup(impl_->curl);
  curl_slist_free_all(impl_->headers);
}

HttpResult HttpClient::PostGzipJson(const std::string& url, std::string_view gzipped_body) {
  HttpResult result;
  const auto start = std::chrono::steady_clock::now();
  CURL* curl = impl_->curl;
  if (curl == nullptr || impl_->headers == nullptr) {
    result.error = "curl could not be initialised";
    return result;
  }
  impl_->error_buffer[0] = '\0';
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  // A null POSTFIELDS would make curl read the body from stdin.
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, gzipped_body.empty() ? "" : gzipped_body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(gzipped_body.size()));
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &result.body);

  const CURLcode rc = curl_easy_perform(curl);
  result.elapsed = std::chrono::steady_clock::now() - start;
  if (rc != CURLE_OK) {
    result.status = 0;
    result.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
    result.error = impl_->error_buffer[0] != '\0' ? impl_->error_buffer : curl_easy_strerror(rc);
    result.body.clear();
    return result;
  }
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  result.status = static_cast<int>(status);
  return result;
}

}  // namespace spectator::collector
