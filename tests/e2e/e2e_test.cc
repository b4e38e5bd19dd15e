// End to end: the real spectator-collector binary publishing to an in-test
// fake Atlas, and the real prefork-server binary taking requests from this
// test. Every request the test saw answered 200 must be published exactly
// once, across worker recycling (--max-requests) and worker crashes.
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/atlas_payload.h"
#include "support/fake_http_server.h"
#include "support/prefork_server.h"
#include "support/subprocess.h"
#include "support/temp_segment.h"

namespace spectator::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr auto kStartTimeout = seconds(20);
constexpr auto kStopTimeout = seconds(30);

// A keep-alive HTTP/1.1 client for prefork-server's responses. It reconnects
// by itself after "Connection: close" (the server recycling a worker) or a
// failed request.
class Client {
 public:
  explicit Client(std::uint16_t port) : port_(port) {}
  ~Client() { Close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// The response's status code, or 0 when the connection failed before a
  /// whole response arrived.
  int Get(const std::string& path) {
    if (fd_ < 0 && !Connect()) return 0;
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    if (!SendAll(request)) return Fail();
    std::size_t head_end;
    while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!ReadSome()) return Fail();
    }
    const std::string head = buffer_.substr(0, head_end);
    if (head.compare(0, 9, "HTTP/1.1 ") != 0 || head.size() < 12) return Fail();
    const int status = std::atoi(head.substr(9, 3).c_str());
    std::size_t length = 0;
    if (const std::size_t cl = head.find("\r\nContent-Length: "); cl != std::string::npos) {
      length = static_cast<std::size_t>(std::atol(head.c_str() + cl + 18));
    }
    const std::size_t total = head_end + 4 + length;
    while (buffer_.size() < total) {
      if (!ReadSome()) return Fail();
    }
    last_body_ = buffer_.substr(head_end + 4, length);
    buffer_.erase(0, total);
    if (head.find("\r\nConnection: close") != std::string::npos) Close();
    return status;
  }

  const std::string& last_body() const { return last_body_; }
  int connections() const { return connections_; }

 private:
  bool Connect() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return false;
    // A bound on every read, so a hung server fails the test instead of
    // hanging it.
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      Close();
      return false;
    }
    ++connections_;
    return true;
  }
  bool SendAll(const std::string& data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }
  bool ReadSome() {
    char buf[4096];
    while (true) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      buffer_.append(buf, static_cast<std::size_t>(n));
      return true;
    }
  }
  int Fail() {
    Close();
    return 0;
  }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buffer_.clear();
  }

  std::uint16_t port_;
  int fd_ = -1;
  std::string buffer_;
  std::string last_body_;
  int connections_ = 0;
};

// The pids of `parent`'s live children (prefork-server's workers), from
// /proc. Zombies (killed, not yet reaped) are left out.
std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> children;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return children;
  while (const dirent* e = ::readdir(proc)) {
    const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0) continue;
    std::ifstream stat("/proc/" + std::string(e->d_name) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // "pid (comm) S ppid ...": the state and the parent follow the ")" that
    // ends the command name.
    const std::size_t close = line.rfind(')');
    if (close == std::string::npos || close + 4 >= line.size()) continue;
    if (line[close + 2] != 'Z' && std::atoi(line.c_str() + close + 4) == parent) {
      children.push_back(pid);
    }
  }
  ::closedir(proc);
  return children;
}

double SumWithTag(const std::vector<PublishedMeasurement>& ms, const std::string& name,
                  const std::string& statistic, const std::string& key, const std::string& value) {
  double sum = 0;
  for (const PublishedMeasurement& m : ms) {
    const auto stat = m.tags.find("statistic");
    const auto tag = m.tags.find(key);
    if (m.name == name && stat != m.tags.end() && stat->second == statistic &&
        tag != m.tags.end() && tag->second == value) {
      sum += m.value;
    }
  }
  return sum;
}

// The collector publishing `segment` to `atlas` every 0.5 s, and a 4-worker
// prefork-server on a free port. Both are stopped by the test with SIGTERM.
class E2eTest : public ::testing::Test {
 protected:
  void StartCollector() {
    collector_ = std::make_unique<Subprocess>(
        std::vector<std::string>{SPECTATOR_COLLECTOR_PATH, "--segment", segment_.name(), "--uri",
                                 atlas_.url(), "--step", "0.5"});
  }

  // Returns the port prefork-server listens on, 0 if it did not say.
  std::uint16_t StartServer(const std::vector<std::string>& extra_args) {
    return StartPreforkServer(PreforkServerArgs(segment_.name(), extra_args), kStartTimeout,
                              &server_);
  }

  // Stops the server, then the collector (whose last step publishes what the
  // server recorded until its exit), both with SIGTERM, and decodes every
  // payload the fake Atlas received.
  std::vector<PublishedMeasurement> StopAndDecode() {
    server_->Signal(SIGTERM);
    EXPECT_EQ(server_->Wait(kStopTimeout), 0) << "prefork-server: " << server_->err();
    collector_->Signal(SIGTERM);
    EXPECT_EQ(collector_->Wait(kStopTimeout), 0) << "spectator-collector: " << collector_->err();
    return DecodeRequests(atlas_.requests());
  }

  TempSegment segment_;
  FakeHttpServer atlas_;
  std::unique_ptr<Subprocess> collector_;
  std::unique_ptr<Subprocess> server_;
};

// Runs `clients` threads that each send `per_client` GETs; `on_request`, if
// set, is called by client 0 after each of its requests (with the count so
// far). Returns the number of 200 responses; counts other outcomes in *failed.
template <typename OnRequest>
int SendRequests(std::uint16_t port, int clients, int per_client, int* failed,
                 OnRequest on_request) {
  std::atomic<int> ok{0};
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      Client client(port);
      for (int i = 0; i < per_client; ++i) {
        const int status = client.Get("/e2e/" + std::to_string(c) + "/" + std::to_string(i));
        if (status == 200 && client.last_body() == "ok\n") {
          ok.fetch_add(1, std::memory_order_relaxed);
        } else {
          bad.fetch_add(1, std::memory_order_relaxed);
        }
        if (c == 0) on_request(i + 1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  *failed = bad.load();
  return ok.load();
}

TEST_F(E2eTest, EveryAnsweredRequestIsPublishedExactlyOnce) {
  StartCollector();
  const std::uint16_t port = StartServer({"--max-requests", "50"});
  ASSERT_NE(port, 0);

  // Half the requests, one publish by a regular step, then the other half,
  // published by the collector's last step after SIGTERM: the counts are
  // exact across steps, not only within one.
  int failed = 0;
  int ok = SendRequests(port, /*clients=*/4, /*per_client=*/250, &failed, [](int) {});
  ASSERT_TRUE(atlas_.WaitForRequests(atlas_.request_count() + 1, milliseconds(10'000)))
      << "the collector published nothing within 10 s";
  int failed2 = 0;
  ok += SendRequests(port, /*clients=*/4, /*per_client=*/250, &failed2, [](int) {});
  EXPECT_EQ(ok, 2000);
  EXPECT_EQ(failed + failed2, 0);

  const std::vector<PublishedMeasurement> ms = StopAndDecode();
  EXPECT_GE(atlas_.request_count(), 2u);
  std::printf("published %g requests in %zu payloads\n", Sum(ms, "server.requestCount", "count"),
              atlas_.request_count());
  EXPECT_EQ(Sum(ms, "server.requestCount", "count"), 2000);
  EXPECT_EQ(Sum(ms, "server.requestLatency", "count"), 2000);
  EXPECT_EQ(SumWithTag(ms, "server.requestCount", "count", "status", "200"), 2000);
  EXPECT_EQ(Sum(ms, "server.responseSize", "count"), 2000);
  // Each worker is replaced after 50 answers, so 2000 answers by 4 workers
  // mean 37 to 40 completed lifetimes (4 partial ones end at the stop).
  const double recycled = SumWithTag(ms, "server.workerExits", "count", "reason", "recycled");
  EXPECT_GE(recycled, 37);
  EXPECT_LE(recycled, 40);
  EXPECT_EQ(SumWithTag(ms, "server.workerExits", "count", "reason", "crashed"), 0);
}

// A worker killed while requests are in flight loses none of the requests it
// answered: they are in the segment already. The only request that can be
// counted without an answer is the one the killed worker was holding (it is
// recorded just before the response is written), so the published count is
// the number of 200s plus at most one per kill.
TEST_F(E2eTest, KilledWorkersLoseNoAnsweredRequest) {
  StartCollector();
  const std::uint16_t port = StartServer({});
  ASSERT_NE(port, 0);

  constexpr int kKills = 3;
  std::atomic<int> kills{0};
  const pid_t server_pid = server_->pid();
  int failed = 0;
  // Client 0 kills a worker after its 100th, 200th and 300th request, while
  // the other clients keep requests in flight.
  const int ok = SendRequests(port, /*clients=*/4, /*per_client=*/500, &failed, [&](int done) {
    if (done % 100 != 0 || kills.load() >= kKills) return;
    const std::vector<pid_t> workers = ChildrenOf(server_pid);
    if (workers.empty()) return;
    if (::kill(workers[static_cast<std::size_t>(done / 100) % workers.size()], SIGKILL) == 0) {
      kills.fetch_add(1);
    }
  });
  ASSERT_EQ(kills.load(), kKills);
  EXPECT_EQ(ok + failed, 2000);
  // A worker serves one connection at a time: each kill fails at most the
  // one request on it (the client then reconnects).
  EXPECT_LE(failed, kKills);

  const std::vector<PublishedMeasurement> ms = StopAndDecode();
  const double published = Sum(ms, "server.requestCount", "count");
  std::printf("%d answered 200, %d failed, %g published, %d workers killed\n", ok, failed,
              published, kKills);
  EXPECT_GE(published, ok) << "an answered request was lost";
  EXPECT_LE(published, ok + failed) << "a request that was never answered was counted";
  const double timed = Sum(ms, "server.requestLatency", "count");
  EXPECT_GE(timed, ok);
  EXPECT_LE(timed, published);
  EXPECT_EQ(SumWithTag(ms, "server.workerExits", "count", "reason", "crashed"), kKills);
}

}  // namespace
}  // namespace spectator::testing
