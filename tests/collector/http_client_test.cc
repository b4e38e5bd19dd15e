// HttpClient against the in-process fake server: what goes on the wire, and
// how every kind of failure comes back as a result rather than an exception.
#include "http_client.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "gzip.h"
#include "spectator/version.h"
#include "support/fake_http_server.h"

namespace spectator::collector {
namespace {

using namespace std::chrono_literals;
using spectator::testing::FakeHttpServer;
using spectator::testing::HttpReply;
using spectator::testing::HttpRequest;
using spectator::testing::Reply;

// A loopback port with nothing listening: bound, then closed without listen().
// Another process could grab it in between; on a test machine that is rare.
std::uint16_t UnusedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(HttpClient, SendsTheProtocolHeadersAndTheGzippedBody) {
  FakeHttpServer server;
  HttpClient client;
  const std::string json = R"([1,"name"])";
  const HttpResult r = client.PostGzipJson(server.url(), Gzip(json));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{}");
  ASSERT_EQ(server.request_count(), 1u);
  const HttpRequest req = server.requests()[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/api/v1/publish");
  EXPECT_EQ(req.Header("content-type"), "application/json");
  EXPECT_EQ(req.Header("Content-Encoding"), "gzip");
  EXPECT_EQ(req.Header("Accept-Encoding"), "gzip");
  EXPECT_EQ(req.Header("User-Agent"), std::string("spectator-collector/") + kVersion);
  EXPECT_EQ(req.Header("Expect"), "");
  EXPECT_EQ(req.DecodedBody(), json);
}

TEST(HttpClient, LargeBodiesAreSentWithoutWaitingFor100Continue) {
  FakeHttpServer server;
  HttpClient client;
  // Incompressible, above curl's threshold for Expect: 100-continue.
  std::string data(2 << 20, '\0');
  std::uint32_t x = 1;
  for (char& c : data) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  const HttpResult r = client.PostGzipJson(server.url(), Gzip(data));
  EXPECT_EQ(r.status, 200);
  ASSERT_EQ(server.request_count(), 1u);
  EXPECT_EQ(server.requests()[0].Header("Expect"), "");
  EXPECT_EQ(server.requests()[0].DecodedBody(), data);
}

TEST(HttpClient, ReturnsStatusAndBodyOfErrors) {
  FakeHttpServer server([](const HttpRequest&) { return Reply(503, "busy"); });
  HttpClient client;
  const HttpResult r = client.PostGzipJson(server.url(), Gzip("[0]"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "busy");
  EXPECT_FALSE(r.timed_out);
  EXPECT_TRUE(r.error.empty());
  EXPECT_GT(r.elapsed.count(), 0);
}

TEST(HttpClient, DecodesAGzippedResponse) {
  const std::string answer = R"({"type":"partial","errorCount":1,"message":["bad"]})";
  FakeHttpServer server([&](const HttpRequest&) {
    HttpReply r = Reply(202, Gzip(answer));
    r.headers = {{"Content-Encoding", "gzip"}};
    return r;
  });
  HttpClient client;
  const HttpResult r = client.PostGzipJson(server.url(), Gzip("[0]"));
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(r.body, answer);
}

TEST(HttpClient, TruncatesAHugeResponseBody) {
  FakeHttpServer server([](const HttpRequest&) { return Reply(400, std::string(3 << 20, 'e')); });
  HttpClient client;
  const HttpResult r = client.PostGzipJson(server.url(), Gzip("[0]"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body.size(), std::size_t{1} << 20);
}

TEST(HttpClient, ReusesTheConnectionForSeveralPosts) {
  FakeHttpServer server;
  HttpClient client;
  for (int i = 0; i < 5; ++i) {
    const std::string json = "[" + std::to_string(i) + "]";
    EXPECT_EQ(client.PostGzipJson(server.url(), Gzip(json)).status, 200);
  }
  ASSERT_TRUE(server.WaitForRequests(5, 5s));
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(requests[i].DecodedBody(), "[" + std::to_string(i) + "]");
  }
  EXPECT_EQ(server.connection_count(), 1u);
}

TEST(HttpClient, AStalledServerTimesOutWithinTheTotalTimeout) {
  FakeHttpServer server([](const HttpRequest&) {
    HttpReply r;
    r.action = HttpReply::Action::kStall;
    return r;
  });
  HttpClient client(HttpOptions{2000ms, 300ms});
  const auto start = std::chrono::steady_clock::now();
  const HttpResult r = client.PostGzipJson(server.url(), Gzip("[0]"));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.error.empty());
  EXPECT_GE(r.elapsed, 250ms);
  EXPECT_LT(took, 5s);  // safety net: the request is bounded, not a perf check
}

TEST(HttpClient, ConnectionRefusedIsStatusZeroNotATimeout) {
  HttpClient client;
  const std::string url = "http://127.0.0.1:" + std::to_string(UnusedPort()) + "/api/v1/publish";
  const HttpResult r = client.PostGzipJson(url, Gzip("[0]"));
  EXPECT_EQ(r.status, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_FALSE(r.error.empty());
}

TEST(HttpClient, AResetConnectionIsStatusZero) {
  FakeHttpServer server([](const HttpRequest&) {
    HttpReply r;
    r.action = HttpReply::Action::kReset;
    return r;
  });
  HttpClient client;
  const HttpResult r = client.PostGzipJson(server.url(), Gzip("[0]"));
  EXPECT_EQ(r.status, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_FALSE(r.error.empty());
}

TEST(HttpClient, RecoversAfterAFailedRequest) {
  FakeHttpServer server([](const HttpRequest&) {
    HttpReply r;
    r.action = HttpReply::Action::kReset;
    return r;
  });
  HttpClient client;
  EXPECT_EQ(client.PostGzipJson(server.url(), Gzip("[0]")).status, 0);
  server.SetHandler({});
  EXPECT_EQ(client.PostGzipJson(server.url(), Gzip("[0]")).status, 200);
}

TEST(HttpClient, AnUnparseableUrlIsAnErrorNotAnException) {
  HttpClient client;
  const HttpResult r = client.PostGzipJson("http://[::1", Gzip("[0]"));
  EXPECT_EQ(r.status, 0);
  EXPECT_FALSE(r.error.empty());
}

}  // namespace
}  // namespace spectator::collector
