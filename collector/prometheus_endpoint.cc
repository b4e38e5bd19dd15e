#include "prometheus_endpoint.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "gzip.h"
#include "log.h"

namespace spectator::collector {
namespace {

constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

// A listening socket on host:port (numeric or a name that resolves), with
// its bound port in *port. \throw std::runtime_error.
int Listen(const ListenAddress& address, std::uint16_t* port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(address.port);
  const std::string where = address.ToString();
  if (const int rc = ::getaddrinfo(address.host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    throw std::runtime_error("--prometheus-listen " + where + ": " + ::gai_strerror(rc));
  }
  std::string error = "no address";
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      error = std::strerror(errno);
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 64) != 0) {
      error = std::strerror(errno);
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0) throw std::runtime_error("--prometheus-listen " + where + ": cannot listen: " + error);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  *port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return fd;
}

void MhdLog(void*, const char* format, va_list args) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, format, args);
  std::string line = std::string("prometheus endpoint: ") + buf;
  while (!line.empty() && line.back() == '\n') line.pop_back();
  Log(LogLevel::kWarning, line);
}

MHD_Result Send(MHD_Connection* connection, unsigned status, std::string body, bool gzipped,
                const char* content_type) {
  auto* owned = new std::string(std::move(body));
  MHD_Response* response = MHD_create_response_from_buffer_with_free_callback_cls(
      owned->size(), owned->data(), [](void* cls) { delete static_cast<std::string*>(cls); },
      owned);
  if (response == nullptr) {
    delete owned;
    return MHD_NO;
  }
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  if (gzipped) MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
  if (status == MHD_HTTP_OK) MHD_add_response_header(response, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED) {
    MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  }
  const MHD_Result rc = MHD_queue_response(connection, status, response);
  MHD_destroy_response(response);
  return rc;
}

}  // namespace

PrometheusScraper::PrometheusScraper(Registry& registry, CommonTags common,
                                     const Collector& collector)
    : collector_(collector), reader_(registry), text_(std::move(common)) {}

std::string PrometheusScraper::ScrapeText(std::chrono::system_clock::time_point now) {
  std::string text;
  Scrape([&text](std::string_view piece) { text.append(piece); }, now);
  return text;
}

void PrometheusScraper::Scrape(const PrometheusText::PieceSink& piece,
                               std::chrono::system_clock::time_point now) {
  std::lock_guard<std::mutex> scrape(mutex_);
  {
    std::lock_guard<std::mutex> take(collector_.take_mutex());
    reader_.Scan(SegmentReader::Mode::kPeek, now,
                 [this](const MeterReading& r) {
                   text_.Add(r, HasMaximum(r.type) ? collector_.last_step_max(r.slot) : NAN);
                 });
  }
  text_.Write(piece);
}

bool AcceptsGzip(std::string_view header) {
  while (!header.empty()) {
    const std::size_t comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    const std::size_t semi = item.find(';');
    const std::string coding = Trim(item.substr(0, semi));
    if (coding != "gzip" && coding != "*") continue;
    double q = 1;
    if (semi != std::string_view::npos) {
      const std::string param = Trim(item.substr(semi + 1));
      if (param.rfind("q=", 0) == 0) q = std::strtod(param.c_str() + 2, nullptr);
    }
    if (q > 0) return true;
  }
  return false;
}

struct PrometheusEndpoint::Request {
  static MHD_Result Handle(void* cls, MHD_Connection* connection, const char* url,
                           const char* method, const char* /*version*/, const char* /*upload*/,
                           size_t* upload_size, void** state) {
    auto* self = static_cast<PrometheusEndpoint*>(cls);
    const bool get = std::strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    const bool head = std::strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    // Refusals go out at the first call, with the request's headers: a body
    // is then not read, and the connection is closed.
    if (std::strcmp(url, "/metrics") != 0) {
      return Send(connection, MHD_HTTP_NOT_FOUND, "not found: only /metrics is served\n", false,
                  "text/plain; charset=utf-8");
    }
    if (!get && !head) {
      return Send(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n", false,
                  "text/plain; charset=utf-8");
    }
    // A scrape is answered at the second call, once the request is complete,
    // so that the connection stays open for the next scrape (keep-alive).
    static int seen;
    if (*state == nullptr) {
      *state = &seen;
      return MHD_YES;
    }
    if (*upload_size != 0) {  // a GET with a body: ignored
      *upload_size = 0;
      return MHD_YES;
    }
    const char* accept =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);
    const bool gzip = accept != nullptr && AcceptsGzip(accept);
    // No exception may cross libmicrohttpd's C frames; a scrape that fails
    // (out of memory) is a 500 and a log line, and the next one is tried
    // afresh.
    try {
      std::string body;
      ScrapeBody(self->scraper_, gzip ? &self->gzip_ : nullptr, &body);
      return Send(connection, MHD_HTTP_OK, std::move(body), gzip, kContentType);
    } catch (const std::exception& e) {
      Log(LogLevel::kError, std::string("prometheus endpoint: scrape failed: ") + e.what());
      return Send(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "scrape failed\n", false,
                  "text/plain; charset=utf-8");
    }
  }
};

std::size_t ScrapeBody(PrometheusScraper& scraper, GzipStream* gzip, std::string* body) {
  body->clear();
  std::size_t text = 0;
  if (gzip != nullptr) gzip->Begin(body);
  scraper.Scrape([&](std::string_view piece) {
    text += piece.size();
    if (gzip != nullptr) {
      gzip->Append(piece);
    } else {
      body->append(piece);
    }
  });
  if (gzip != nullptr) gzip->Finish();
  return text;
}

PrometheusEndpoint::PrometheusEndpoint(const ListenAddress& address, PrometheusScraper& scraper)
    : scraper_(scraper) {
  listen_fd_ = Listen(address, &port_);
  ListenAddress bound = address;
  bound.port = port_;
  url_ = "http://" + bound.ToString() + "/metrics";
  // ITC: so that quiescing and stopping wake the polling thread at once.
  daemon_ = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG, 0,
      nullptr, nullptr, &Request::Handle, this, MHD_OPTION_EXTERNAL_LOGGER, &MhdLog, nullptr,
      MHD_OPTION_LISTEN_SOCKET, listen_fd_, MHD_OPTION_CONNECTION_LIMIT, kMaxConnections,
      MHD_OPTION_CONNECTION_TIMEOUT, kIdleTimeoutSeconds, MHD_OPTION_END);
  if (daemon_ == nullptr) {
    ::close(listen_fd_);
    throw std::runtime_error("--prometheus-listen " + address.ToString() +
                             ": cannot start the HTTP server");
  }
}

PrometheusEndpoint::~PrometheusEndpoint() {
  // Quiescing hands the listening socket back, so that it is closed here
  // exactly once, whatever the daemon does with a socket it was given.
  const MHD_socket fd = MHD_quiesce_daemon(daemon_);
  MHD_stop_daemon(daemon_);
  if (fd != MHD_INVALID_SOCKET) ::close(fd);
}

}  // namespace spectator::collector
