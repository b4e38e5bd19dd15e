// The fake Atlas server itself, driven with raw sockets so that the tests of
// the client do not silently rest on a server bug.
#include "support/fake_http_server.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

#include "gzip.h"

namespace spectator::testing {
namespace {

using namespace std::chrono_literals;

// A blocking client socket with a receive timeout, so a server bug fails the
// test instead of hanging it.
class RawClient {
 public:
  explicit RawClient(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    const timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawClient() { ::close(fd_); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return connected_; }
  void Send(const std::string& data) {
    ASSERT_EQ(::send(fd_, data.data(), data.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(data.size()));
  }
  // Reads until `n` complete responses (headers + Content-Length body) are
  // buffered, or the peer closes. Returns everything read.
  std::string ReadResponses(int n) {
    std::string out;
    for (;;) {
      if (CountResponses(out) >= n) return out;
      char buf[4096];
      const ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
      if (got <= 0) return out;
      out.append(buf, static_cast<std::size_t>(got));
    }
  }
  // Reads until `marker` has been received, or the peer closes.
  std::string ReadUntil(const std::string& marker) {
    std::string out;
    while (out.find(marker) == std::string::npos) {
      char buf[4096];
      const ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
      if (got <= 0) break;
      out.append(buf, static_cast<std::size_t>(got));
    }
    return out;
  }
  // recv() result after the server acted on the connection: 0 for EOF, -1 with errno.
  int RecvErrno() {
    char c;
    const ssize_t got = ::recv(fd_, &c, 1, 0);
    return got < 0 ? errno : 0;
  }

 private:
  static int CountResponses(const std::string& s) {
    int count = 0;
    std::size_t pos = 0;
    for (;;) {
      const std::size_t end = s.find("\r\n\r\n", pos);
      if (end == std::string::npos) return count;
      const std::string head = s.substr(pos, end - pos);
      if (head.rfind("HTTP/1.1 100", 0) == 0) {
        pos = end + 4;
        continue;
      }
      std::size_t length = 0;
      const std::size_t cl = head.find("Content-Length: ");
      if (cl != std::string::npos) length = std::stoul(head.substr(cl + 16));
      if (s.size() < end + 4 + length) return count;
      pos = end + 4 + length;
      ++count;
    }
  }

  int fd_ = -1;
  bool connected_ = false;
};

std::string Post(const std::string& body, const std::string& extra_headers = "") {
  return "POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" + body;
}

HttpReply Stall() {
  HttpReply r;
  r.action = HttpReply::Action::kStall;
  return r;
}

TEST(FakeHttpServer, UrlNamesTheLoopbackPortAndPublishPath) {
  FakeHttpServer server;
  EXPECT_NE(server.port(), 0);
  EXPECT_EQ(server.url(), "http://127.0.0.1:" + std::to_string(server.port()) + "/api/v1/publish");
}

TEST(FakeHttpServer, AnswersSeveralRequestsOnOneConnection) {
  FakeHttpServer server;
  RawClient c(server.port());
  ASSERT_TRUE(c.connected());
  c.Send(Post("one"));
  EXPECT_NE(c.ReadResponses(1).find("\r\n\r\n{}"), std::string::npos);
  c.Send(Post("two"));
  EXPECT_NE(c.ReadResponses(1).find("HTTP/1.1 200 OK"), std::string::npos);
  ASSERT_EQ(server.request_count(), 2u);
  EXPECT_EQ(server.requests()[0].body, "one");
  EXPECT_EQ(server.requests()[1].body, "two");
  EXPECT_EQ(server.connection_count(), 1u);
}

TEST(FakeHttpServer, AnswersPipelinedRequestsInOrder) {
  int n = 0;
  FakeHttpServer server([&](const HttpRequest& req) {
    HttpReply r;
    r.body = req.body + "-" + std::to_string(++n);  // handler calls are serial per connection
    return r;
  });
  RawClient c(server.port());
  c.Send(Post("a") + Post("bb") + Post(""));
  const std::string out = c.ReadResponses(3);
  const std::size_t a = out.find("a-1"), b = out.find("bb-2"), e = out.find("-3");
  ASSERT_NE(a, std::string::npos) << out;
  ASSERT_NE(b, std::string::npos) << out;
  ASSERT_NE(e, std::string::npos) << out;
  EXPECT_LT(a, b);
  EXPECT_LT(b, e);
}

TEST(FakeHttpServer, ServesManyShortConnectionsOneAfterTheOther) {
  FakeHttpServer server;
  for (int i = 0; i < 50; ++i) {
    RawClient c(server.port());
    c.Send(Post(std::to_string(i), "Connection: close\r\n"));
    const std::string out = c.ReadResponses(1);
    EXPECT_NE(out.find("Connection: close"), std::string::npos) << out;
  }
  EXPECT_EQ(server.connection_count(), 50u);
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 50u);
  EXPECT_EQ(requests[49].body, "49");
}

TEST(FakeHttpServer, RecordsMethodTargetHeadersAndBody) {
  FakeHttpServer server;
  RawClient c(server.port());
  c.Send(Post("xyz", "X-Mixed-Case:  padded value \r\n"));
  c.ReadResponses(1);
  const HttpRequest req = server.requests().at(0);
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/api/v1/publish");
  EXPECT_EQ(req.Header("x-mixed-case"), "padded value");
  EXPECT_EQ(req.Header("X-MIXED-CASE"), "padded value");
  EXPECT_EQ(req.Header("absent"), "");
  EXPECT_EQ(req.body, "xyz");
  EXPECT_EQ(req.DecodedBody(), "xyz");  // no Content-Encoding: as is
}

TEST(FakeHttpServer, SendsContinueWhenTheClientExpectsIt) {
  FakeHttpServer server;
  RawClient c(server.port());
  c.Send("POST / HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  // The interim answer comes before the body is sent.
  EXPECT_EQ(c.ReadUntil("\r\n\r\n"), "HTTP/1.1 100 Continue\r\n\r\n");
  c.Send("body");
  EXPECT_EQ(c.ReadResponses(1).rfind("HTTP/1.1 200 OK", 0), 0u);
  EXPECT_EQ(server.requests().at(0).body, "body");
}

TEST(FakeHttpServer, DecodesGzipBodiesAndRejectsCorruptOnes) {
  HttpRequest req;
  req.headers = {{"content-encoding", "gzip"}};
  req.body = spectator::collector::Gzip("[0]");
  EXPECT_EQ(req.DecodedBody(), "[0]");
  req.body = "definitely not gzip";
  EXPECT_THROW(req.DecodedBody(), std::runtime_error);
}

TEST(FakeHttpServer, AStalledConnectionDoesNotBlockOthers) {
  FakeHttpServer server(
      [](const HttpRequest& req) { return req.body == "stall" ? Stall() : HttpReply{}; });
  RawClient stalled(server.port());
  stalled.Send(Post("stall"));
  ASSERT_TRUE(server.WaitForRequests(1, 10s));
  RawClient other(server.port());
  other.Send(Post("ok"));
  EXPECT_NE(other.ReadResponses(1).find("200 OK"), std::string::npos);
  EXPECT_EQ(server.request_count(), 2u);
}

TEST(FakeHttpServer, StopsCleanlyWithStalledConnections) {
  auto server = std::make_unique<FakeHttpServer>([](const HttpRequest&) { return Stall(); });
  RawClient a(server->port());
  RawClient b(server->port());
  a.Send(Post("1"));
  b.Send(Post("2"));
  ASSERT_TRUE(server->WaitForRequests(2, 10s));
  server.reset();                     // must return: joins the stalled threads
  EXPECT_EQ(a.ReadResponses(1), "");  // closed without an answer
  EXPECT_EQ(b.ReadResponses(1), "");
}

TEST(FakeHttpServer, StopsCleanlyWithAnIdleOpenConnection) {
  auto server = std::make_unique<FakeHttpServer>();
  RawClient idle(server->port());
  ASSERT_TRUE(idle.connected());
  // Make sure the server accepted it (a request on another connection is
  // handled after this connection's accept, both come from one listener).
  RawClient probe(server->port());
  probe.Send(Post("p"));
  probe.ReadResponses(1);
  server.reset();
  EXPECT_EQ(idle.ReadResponses(1), "");
}

TEST(FakeHttpServer, ResetActionAbortsTheConnection) {
  FakeHttpServer server([](const HttpRequest&) {
    HttpReply r;
    r.action = HttpReply::Action::kReset;
    return r;
  });
  RawClient c(server.port());
  c.Send(Post("x"));
  EXPECT_EQ(c.RecvErrno(), ECONNRESET);
  EXPECT_EQ(server.request_count(), 1u);
}

TEST(FakeHttpServer, RespondsWithTheHandlersStatusBodyAndHeaders) {
  FakeHttpServer server([](const HttpRequest&) {
    HttpReply r;
    r.status = 429;
    r.body = "slow down";
    r.headers = {{"Retry-After", "1"}};
    return r;
  });
  RawClient c(server.port());
  c.Send(Post("x"));
  const std::string out = c.ReadResponses(1);
  EXPECT_EQ(out.rfind("HTTP/1.1 429 Too Many Requests\r\n", 0), 0u) << out;
  EXPECT_NE(out.find("Retry-After: 1\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\n\r\nslow down"), std::string::npos);
}

TEST(FakeHttpServer, AHandlerExceptionBecomesA500) {
  FakeHttpServer server([](const HttpRequest&) -> HttpReply { throw std::runtime_error("oops"); });
  RawClient c(server.port());
  c.Send(Post("x"));
  EXPECT_EQ(c.ReadResponses(1).rfind("HTTP/1.1 500", 0), 0u);
}

TEST(FakeHttpServer, SetHandlerAppliesToLaterRequests) {
  FakeHttpServer server;
  RawClient c(server.port());
  c.Send(Post("x"));
  EXPECT_NE(c.ReadResponses(1).find("200 OK"), std::string::npos);
  server.SetHandler([](const HttpRequest&) {
    HttpReply r;
    r.status = 503;
    return r;
  });
  c.Send(Post("y"));
  EXPECT_NE(c.ReadResponses(1).find("503 Service Unavailable"), std::string::npos);
}

TEST(FakeHttpServer, WaitForRequestsTimesOutWhenNothingArrives) {
  FakeHttpServer server;
  EXPECT_FALSE(server.WaitForRequests(1, 10ms));
  EXPECT_TRUE(server.WaitForRequests(0, 0ms));
}

}  // namespace
}  // namespace spectator::testing
