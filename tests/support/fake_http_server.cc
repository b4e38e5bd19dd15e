#include "support/fake_http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <system_error>

#include "support/gunzip.h"

namespace spectator::testing {
namespace {

// Bounds that keep a confused client from making the server buffer forever.
constexpr std::size_t kMaxHeaderBytes = std::size_t{64} * 1024;
constexpr std::size_t kMaxBodyBytes = std::size_t{256} << 20;

[[noreturn]] void ThrowErrno(const char* what) {
  throw std::system_error(errno, std::generic_category(), std::string("FakeHttpServer: ") + what);
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) {
      return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

const char* Reason(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Status";
  }
}

// Writes all of `data`; false when the peer is gone. MSG_NOSIGNAL: a client
// that hung up must not kill the test process with SIGPIPE.
bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Appends what is available on `fd` to `buffer`; false on EOF or error
// (including the shutdown() done by the destructor).
bool RecvSome(int fd, std::string* buffer) {
  char chunk[16 * 1024];
  for (;;) {
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buffer->append(chunk, static_cast<std::size_t>(n));
    return true;
  }
}

void SendSimpleResponse(int fd, int status) {
  const std::string response = "HTTP/1.1 " + std::to_string(status) + " " + Reason(status) +
                               "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  SendAll(fd, response);
}

}  // namespace

std::string HttpRequest::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return "";
}

std::string HttpRequest::DecodedBody() const {
  if (!EqualsIgnoreCase(Header("Content-Encoding"), "gzip")) return body;
  std::string out;
  if (!Gunzip(body, &out)) {
    throw std::runtime_error("request body is not valid gzip (" + std::to_string(body.size()) +
                             " bytes)");
  }
  return out;
}

FakeHttpServer::FakeHttpServer(Handler handler) : handler_(std::move(handler)) {
  // Close-on-exec everywhere: a collector exec'd by the test must not hold
  // the listener or a connection open after the server closes it.
  if (::pipe2(wake_pipe_, O_CLOEXEC) != 0) ThrowErrno("pipe2");
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) {
    ::close(wake_pipe_[0]);
    ::close(wake_pipe_[1]);
    ThrowErrno("socket");
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, SOMAXCONN) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int saved = errno;
    ::close(listen_fd_);
    ::close(wake_pipe_[0]);
    ::close(wake_pipe_[1]);
    errno = saved;
    ThrowErrno("bind/listen on 127.0.0.1:0");
  }
  port_ = ntohs(addr.sin_port);
  accept_thread_ = std::thread([this] { AcceptLoop(); });
}

FakeHttpServer::~FakeHttpServer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    // Wakes connection threads blocked in recv() or send(). Each fd is still
    // open: a connection thread closes its fd only after removing it from
    // open_fds_ under mu_.
    for (const int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  cv_.notify_all();  // wakes stalled requests and WaitForRequests callers
  const char byte = 0;
  while (::write(wake_pipe_[1], &byte, 1) < 0 && errno == EINTR) {
  }
  accept_thread_.join();
  // No thread is added once AcceptLoop has returned.
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    threads.swap(connection_threads_);
  }
  for (auto& t : threads) t.join();
  ::close(listen_fd_);
  ::close(wake_pipe_[0]);
  ::close(wake_pipe_[1]);
}

void FakeHttpServer::SetHandler(Handler handler) {
  std::lock_guard<std::mutex> lock(mu_);
  handler_ = std::move(handler);
}

std::string FakeHttpServer::url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/api/v1/publish";
}

std::vector<HttpRequest> FakeHttpServer::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

std::size_t FakeHttpServer::request_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_.size();
}

std::size_t FakeHttpServer::connection_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return connections_accepted_;
}

bool FakeHttpServer::WaitForRequests(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
}

void FakeHttpServer::AcceptLoop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    const int rc = ::poll(fds, 2, -1);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;  // the client gave up already, or EINTR
    std::vector<std::thread> done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) {
        ::close(fd);
        return;
      }
      for (const std::thread::id id : finished_) {
        const auto it = std::find_if(connection_threads_.begin(), connection_threads_.end(),
                                     [id](const std::thread& t) { return t.get_id() == id; });
        done.push_back(std::move(*it));
        connection_threads_.erase(it);
      }
      finished_.clear();
      open_fds_.push_back(fd);
      ++connections_accepted_;
      connection_threads_.emplace_back([this, fd] { Serve(fd); });
    }
    // Outside mu_: a finished thread only has close() and its return left.
    for (auto& t : done) t.join();
  }
}

bool FakeHttpServer::ReadRequest(int fd, std::string* buffer, HttpRequest* req) {
  std::size_t header_end;
  while ((header_end = buffer->find("\r\n\r\n")) == std::string::npos) {
    if (buffer->size() > kMaxHeaderBytes) return false;
    if (!RecvSome(fd, buffer)) return false;
  }
  const std::string_view head(buffer->data(), header_end);
  std::size_t line_end = head.find("\r\n");
  const std::string_view request_line = head.substr(0, line_end);
  const std::size_t sp1 = request_line.find(' ');
  const std::size_t sp2 = request_line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) {
    SendSimpleResponse(fd, 400);
    return false;
  }
  req->method = std::string(request_line.substr(0, sp1));
  req->target = std::string(request_line.substr(sp1 + 1, sp2 - sp1 - 1));
  req->headers.clear();
  while (line_end != std::string_view::npos) {
    const std::size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    const std::string_view line = head.substr(
        start, line_end == std::string_view::npos ? std::string_view::npos : line_end - start);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    req->headers.emplace_back(std::string(line.substr(0, colon)),
                              std::string(Trim(line.substr(colon + 1))));
  }

  if (!req->Header("Transfer-Encoding").empty()) {
    // The collector always knows its body size; chunked uploads are not needed.
    SendSimpleResponse(fd, 501);
    return false;
  }
  std::size_t content_length = 0;
  const std::string length_text = req->Header("Content-Length");
  if (!length_text.empty()) {
    char* end = nullptr;
    const unsigned long long n = std::strtoull(length_text.c_str(), &end, 10);
    if (end == length_text.c_str() || *end != '\0' || n > kMaxBodyBytes) {
      SendSimpleResponse(fd, n > kMaxBodyBytes ? 413 : 400);
      return false;
    }
    content_length = static_cast<std::size_t>(n);
  }
  const std::size_t body_start = header_end + 4;
  if (buffer->size() - body_start < content_length &&
      EqualsIgnoreCase(req->Header("Expect"), "100-continue")) {
    if (!SendAll(fd, "HTTP/1.1 100 Continue\r\n\r\n")) return false;
  }
  while (buffer->size() - body_start < content_length) {
    if (!RecvSome(fd, buffer)) return false;
  }
  req->body = buffer->substr(body_start, content_length);
  buffer->erase(0, body_start + content_length);  // keep a pipelined next request
  return true;
}

HttpReply FakeHttpServer::Handle(const HttpRequest& req) {
  Handler handler;
  {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(req);
    handler = handler_;
  }
  cv_.notify_all();
  if (!handler) {
    HttpReply reply;
    reply.body = "{}";
    return reply;
  }
  try {
    return handler(req);
  } catch (const std::exception& e) {
    HttpReply reply;
    reply.status = 500;
    reply.body = std::string("handler threw: ") + e.what();
    return reply;
  }
}

void FakeHttpServer::WaitForStop() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return stopping_; });
}

void FakeHttpServer::Serve(int fd) {
  std::string buffer;
  bool reset = false;
  for (;;) {
    HttpRequest req;
    if (!ReadRequest(fd, &buffer, &req)) break;
    const HttpReply reply = Handle(req);
    if (reply.action == HttpReply::Action::kStall) {
      WaitForStop();
      break;
    }
    if (reply.action == HttpReply::Action::kReset) {
      reset = true;
      break;
    }
    const bool close_after = EqualsIgnoreCase(req.Header("Connection"), "close");
    std::string response =
        "HTTP/1.1 " + std::to_string(reply.status) + " " + Reason(reply.status) + "\r\n";
    bool has_content_type = false;
    for (const auto& [key, value] : reply.headers) {
      has_content_type = has_content_type || EqualsIgnoreCase(key, "Content-Type");
      response.append(key).append(": ").append(value).append("\r\n");
    }
    if (!has_content_type) response += "Content-Type: application/json\r\n";
    response += "Content-Length: " + std::to_string(reply.body.size()) + "\r\n";
    if (close_after) response += "Connection: close\r\n";
    response += "\r\n";
    response += reply.body;
    if (!SendAll(fd, response) || close_after) break;
  }
  {
    // Removed under mu_ before close(), so the destructor never shuts down a
    // descriptor number that has been reused.
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.erase(std::find(open_fds_.begin(), open_fds_.end(), fd));
    finished_.push_back(std::this_thread::get_id());
  }
  if (reset) {
    // Linger with a zero timeout turns close() into an abortive close: the
    // peer sees ECONNRESET instead of an orderly end of stream.
    const linger abort{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
  }
  ::close(fd);
}

}  // namespace spectator::testing
