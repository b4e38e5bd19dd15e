#include "http_response.h"

#include <charconv>
#include <cstring>

namespace prefork {
namespace {

struct StatusText {
  std::string_view status_line;
  std::string_view body;
};

StatusText TextOf(Status status) noexcept {
  switch (status) {
    case Status::kOk:
      return {"HTTP/1.1 200 OK\r\n", "ok\n"};
    case Status::kBadRequest:
      return {"HTTP/1.1 400 Bad Request\r\n", "bad request\n"};
    case Status::kHeadersTooLarge:
      return {"HTTP/1.1 431 Request Header Fields Too Large\r\n",
              "request header fields too large\n"};
    case Status::kNotImplemented:
      return {"HTTP/1.1 501 Not Implemented\r\n", "request bodies need Content-Length\n"};
    case Status::kVersionNotSupported:
      return {"HTTP/1.1 505 HTTP Version Not Supported\r\n", "only HTTP/1.x is supported\n"};
  }
  return {"HTTP/1.1 500 Internal Server Error\r\n", "internal error\n"};
}

class Appender {
 public:
  explicit Appender(char* out) noexcept : out_(out) {}
  void Append(std::string_view s) noexcept {
    std::memcpy(out_ + size_, s.data(), s.size());
    size_ += s.size();
  }
  void AppendNumber(std::size_t n) noexcept {
    size_ = static_cast<std::size_t>(std::to_chars(out_ + size_, out_ + kMaxResponseBytes, n).ptr -
                                     out_);
  }
  std::size_t size() const noexcept { return size_; }

 private:
  char* out_;
  std::size_t size_ = 0;
};

}  // namespace

int StatusCode(Status status) noexcept {
  switch (status) {
    case Status::kOk:
      return 200;
    case Status::kBadRequest:
      return 400;
    case Status::kHeadersTooLarge:
      return 431;
    case Status::kNotImplemented:
      return 501;
    case Status::kVersionNotSupported:
      return 505;
  }
  return 500;
}

std::string_view StatusTagValue(Status status) noexcept {
  switch (status) {
    case Status::kOk:
      return "200";
    case Status::kBadRequest:
      return "400";
    case Status::kHeadersTooLarge:
      return "431";
    case Status::kNotImplemented:
      return "501";
    case Status::kVersionNotSupported:
      return "505";
  }
  return "500";
}

std::size_t BuildResponse(Status status, bool keep_alive, bool with_body, char* out) noexcept {
  const StatusText text = TextOf(status);
  Appender a(out);
  a.Append(text.status_line);
  a.Append("Content-Type: text/plain\r\nContent-Length: ");
  a.AppendNumber(text.body.size());
  // Always explicit, so HTTP/1.0 clients learn the connection stays open and
  // HTTP/1.1 clients learn it will not.
  a.Append(keep_alive ? "\r\nConnection: keep-alive\r\n\r\n" : "\r\nConnection: close\r\n\r\n");
  if (with_body) a.Append(text.body);
  return a.size();
}

}  // namespace prefork
