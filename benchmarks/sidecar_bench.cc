// Item 3a: the sidecar pattern of spectatord and statsd, which is what a
// pre-fork server uses today: format a line per update and send it as one
// datagram to a local daemon. Measured with a receiver that drains the socket
// from another thread, as the daemon would, so the figures include the
// kernel's real queueing; loss is datagrams sent minus datagrams received.
//
// Sends are non-blocking (MSG_DONTWAIT), as a metrics client must never stall
// the request path: a full unix socket queue returns EAGAIN, which counts as
// lost; UDP drops silently in the receiver's buffer. One blocking unix
// variant shows the other choice: nothing lost, but the server waits for the
// daemon.

#include <benchmark/benchmark.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "bench_util.h"

namespace spectator::bench {
namespace {

// A bound datagram socket and a thread that counts what arrives.
class Receiver {
 public:
  explicit Receiver(int fd) : fd_(fd) {
    timeval tv{0, 20000};  // wake up to notice stop_
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    thread_ = std::thread([this] {
      char buf[512];
      // relaxed, both atomics: a stop request and a statistic; the join
      // below orders the final count before the reader.
      while (!stop_.load(std::memory_order_relaxed)) {
        if (::recv(fd_, buf, sizeof buf, 0) > 0) received_.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  ~Receiver() {
    stop_.store(true, std::memory_order_relaxed);
    thread_.join();
    ::close(fd_);
  }

  // Waits until the queue is drained (no datagram for 50 ms) and returns the
  // number received.
  std::uint64_t Drain() {
    std::uint64_t last = received_.load(std::memory_order_relaxed);
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      const std::uint64_t now = received_.load(std::memory_order_relaxed);
      if (now == last) return now;
      last = now;
    }
  }

 private:
  int fd_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> received_{0};
  std::thread thread_;
};

// Formats the spectatord line for one counter increment, as a client library
// does on every call.
inline int FormatLine(char* buf, std::size_t size, long value) {
  return std::snprintf(buf, size, "c:%s,%s:%ld", "server.requestCount", "status=200", value);
}

template <class Addr>
void SendLoop(benchmark::State& state, int fd, const Addr& to, int flags, Receiver* receiver) {
  char line[128];
  std::uint64_t sent = 0, failed = 0;
  for (auto _ : state) {
    const int n = FormatLine(line, sizeof line, 1);
    if (::sendto(fd, line, static_cast<std::size_t>(n), flags,
                 reinterpret_cast<const sockaddr*>(&to), sizeof to) == n) {
      ++sent;
    } else {
      ++failed;  // EAGAIN: the daemon's queue is full; the update is lost
    }
  }
  const std::uint64_t received = receiver->Drain();
  const double attempts = static_cast<double>(sent + failed);
  state.counters["sent"] = attempts;
  state.counters["received"] = static_cast<double>(received);
  state.counters["loss_pct"] =
      attempts > 0 ? 100.0 * (attempts - static_cast<double>(received)) / attempts : 0;
}

void BM_SidecarUdp(benchmark::State& state) {
  const int rfd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;  // an ephemeral port: never collide with a real daemon
  socklen_t len = sizeof addr;
  if (rfd < 0 || ::bind(rfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(rfd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    state.SkipWithError("cannot bind a UDP socket on 127.0.0.1");
    return;
  }
  Receiver receiver(rfd);
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  SendLoop(state, fd, addr, MSG_DONTWAIT, &receiver);
  ::close(fd);
}
BENCHMARK(BM_SidecarUdp);

void UnixDatagram(benchmark::State& state, int flags) {
  const int rfd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // Abstract namespace (leading NUL): no file to clean up.
  const std::string name = UniqueName("sock");
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  if (rfd < 0 || ::bind(rfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    state.SkipWithError("cannot bind a unix datagram socket");
    return;
  }
  Receiver receiver(rfd);
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  SendLoop(state, fd, addr, flags, &receiver);
  ::close(fd);
}

void BM_SidecarUnix(benchmark::State& state) { UnixDatagram(state, MSG_DONTWAIT); }
BENCHMARK(BM_SidecarUnix);

void BM_SidecarUnixBlocking(benchmark::State& state) { UnixDatagram(state, 0); }
BENCHMARK(BM_SidecarUnixBlocking);

}  // namespace
}  // namespace spectator::bench
