// The HTTP side of --prometheus-listen (collector/prometheus_endpoint.h), in
// process over loopback with raw sockets: status codes, headers, gzip,
// keep-alive, clients that stall or never read, and listen errors.
#include "prometheus_endpoint.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "collector.h"
#include "support/gunzip.h"
#include "line_sink.h"
#include "log.h"
#include "spectator/spectator.h"
#include "support/temp_segment.h"

namespace spectator::collector {
namespace {

using spectator::testing::TempSegment;

// A loopback TCP connection whose reads and writes give up after 20 s, so
// that a server that stalls fails the test instead of hanging it.
class Client {
 public:
  explicit Client(std::uint16_t port, int receive_buffer = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{20, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (receive_buffer > 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Client() { ::close(fd_); }

  bool Send(const std::string& data) {
    return connected_ && ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) ==
                             static_cast<ssize_t>(data.size());
  }

  struct Response {
    int status = 0;
    std::string headers;  // lower-cased names
    std::string body;
    std::string Header(const std::string& name) const {
      const std::size_t at = headers.find("\n" + name + ": ");
      if (at == std::string::npos) return "";
      const std::size_t start = at + name.size() + 3;
      return headers.substr(start, headers.find('\r', start) - start);
    }
  };

  // Reads one response (Content-Length framed); status 0 on failure.
  Response Read(bool head = false) {
    Response r;
    while (buffer_.find("\r\n\r\n") == std::string::npos) {
      if (!Fill()) return r;
    }
    const std::size_t end = buffer_.find("\r\n\r\n");
    std::string headers = buffer_.substr(0, end + 2);
    buffer_.erase(0, end + 4);
    for (std::size_t i = headers.find('\n'); i < headers.size(); ++i) {
      if (headers[i] == ':') i = headers.find('\n', i);
      if (i == std::string::npos) break;
      headers[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(headers[i])));
    }
    r.headers = "\n" + headers.substr(headers.find('\n') + 1);
    const std::size_t length = std::stoul("0" + r.Header("content-length"));
    if (!head) {
      while (buffer_.size() < length) {
        if (!Fill()) return r;
      }
      r.body = buffer_.substr(0, length);
      buffer_.erase(0, length);
    }
    r.status = std::stoi(headers.substr(9, 3));
    return r;
  }

 private:
  bool Fill() {
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    buffer_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

std::string Get(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n" + extra + "\r\n";
}

class PrometheusEndpointTest : public ::testing::Test {
 protected:
  void SetUp() override { SetLogLevel(LogLevel::kError); }
  void TearDown() override { SetLogLevel(LogLevel::kWarning); }

  TempSegment segment_;
  Registry registry_{segment_.options(4096, std::uint64_t{1} << 20)};
  LineSink sink_;
  Collector collector_{registry_, CollectorOptions{}, sink_};
  PrometheusScraper scraper_{registry_, {}, collector_};
  PrometheusEndpoint endpoint_{ListenAddress{}, scraper_};
};

TEST_F(PrometheusEndpointTest, ServesMetricsWithTheTextFormatsContentTypeOnKeptAliveConnections) {
  Counter c = registry_.GetCounter("requests");
  EXPECT_NE(endpoint_.port(), 0);
  EXPECT_EQ(endpoint_.url(), "http://127.0.0.1:" + std::to_string(endpoint_.port()) + "/metrics");
  Client client(endpoint_.port());
  for (int i = 1; i <= 3; ++i) {
    c.Increment();
    ASSERT_TRUE(client.Send(Get("/metrics")));
    const Client::Response r = client.Read();
    ASSERT_EQ(r.status, 200) << "scrape " << i << " on one connection";
    EXPECT_EQ(r.Header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_EQ(r.Header("content-encoding"), "");
    EXPECT_NE(r.body.find("\nrequests_total " + std::to_string(i) + "\n"), std::string::npos)
        << r.body;
  }
}

TEST_F(PrometheusEndpointTest, GzipsWhenTheScraperAcceptsIt) {
  registry_.GetCounter("requests").Add(7);
  Client client(endpoint_.port());
  ASSERT_TRUE(client.Send(Get("/metrics", "Accept-Encoding: gzip\r\n")));
  const Client::Response r = client.Read();
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-encoding"), "gzip");
  EXPECT_EQ(r.Header("vary"), "Accept-Encoding");
  std::string text;
  ASSERT_TRUE(testing::Gunzip(r.body, &text));
  EXPECT_NE(text.find("\nrequests_total 7\n"), std::string::npos) << text;
  ASSERT_TRUE(client.Send(Get("/metrics", "Accept-Encoding: gzip;q=0\r\n")));
  EXPECT_EQ(client.Read().Header("content-encoding"), "") << "q=0 refuses gzip";
}

TEST_F(PrometheusEndpointTest, AnythingButGetOrHeadOfMetricsIsAClientError) {
  {
    Client client(endpoint_.port());
    ASSERT_TRUE(client.Send(Get("/")));
    EXPECT_EQ(client.Read().status, 404);
  }
  {
    Client client(endpoint_.port());
    ASSERT_TRUE(client.Send(Get("/metrics/x")));
    EXPECT_EQ(client.Read().status, 404);
  }
  {
    Client client(endpoint_.port());
    ASSERT_TRUE(client.Send("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"));
    const Client::Response r = client.Read();
    EXPECT_EQ(r.status, 405);
    EXPECT_EQ(r.Header("allow"), "GET, HEAD");
  }
  {
    Client client(endpoint_.port());
    ASSERT_TRUE(client.Send("HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
    const Client::Response r = client.Read(/*head=*/true);
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.Header("content-length"), "");
  }
  {
    Client client(endpoint_.port());
    ASSERT_TRUE(client.Send("GARBAGE\r\n\r\n"));
    EXPECT_EQ(client.Read().status, 0) << "no request line: closed without an answer";
  }
}

// A client that sent half a request and one that asked for a large scrape
// and reads nothing hold their connections; other scrapes and the step go on.
TEST_F(PrometheusEndpointTest, StalledClientsNeverHoldUpScrapesOrSteps) {
  for (int i = 0; i < 2000; ++i) {
    registry_.GetCounter("requests", {{"i", std::to_string(i)}}).Increment();
  }
  Client half(endpoint_.port());
  ASSERT_TRUE(half.Send("GET /metr"));
  std::vector<std::unique_ptr<Client>> silent;
  for (int i = 0; i < 4; ++i) {
    silent.push_back(std::make_unique<Client>(endpoint_.port(), /*receive_buffer=*/1024));
    ASSERT_TRUE(silent.back()->Send(Get("/metrics")));
  }
  for (int i = 0; i < 3; ++i) {
    collector_.Step(std::chrono::system_clock::now());
    Client client(endpoint_.port());
    ASSERT_TRUE(client.Send(Get("/metrics")));
    const Client::Response r = client.Read();
    ASSERT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("requests_total{i=\"1999\"} 1\n"), std::string::npos);
  }
}

TEST(PrometheusEndpointListen, ABusyPortOrAnUnknownHostIsOneClearError) {
  TempSegment segment;
  Registry registry(segment.options());
  LineSink sink;
  Collector collector(registry, CollectorOptions{}, sink);
  PrometheusScraper scraper(registry, {}, collector);
  PrometheusEndpoint first(ListenAddress{}, scraper);
  ListenAddress busy;
  busy.port = first.port();
  try {
    PrometheusEndpoint second(busy, scraper);
    ADD_FAILURE() << "a second listener on port " << busy.port;
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              "--prometheus-listen 127.0.0.1:" + std::to_string(busy.port) +
                  ": cannot listen: Address already in use");
  }
  ListenAddress unknown;
  unknown.host = "no-such-host.invalid";
  try {
    PrometheusEndpoint e(unknown, scraper);
    ADD_FAILURE() << "listened on " << e.url();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("--prometheus-listen no-such-host.invalid:0: ", 0), 0U)
        << e.what();
  }
}

}  // namespace
}  // namespace spectator::collector
