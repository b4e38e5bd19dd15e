#include "worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "http_request.h"
#include "http_response.h"
#include "log.h"

namespace prefork {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxHeadBytes = 8 * 1024;
// Twice the head limit, so a full head plus pipelined bytes always fit and
// "no head within the limit" is detected before the buffer fills.
constexpr std::size_t kBufferBytes = 2 * kMaxHeadBytes;
// After an error response, how long to keep reading what the client still
// sends before closing: closing with unread bytes makes the kernel send a
// reset, which can destroy the response before the client reads it.
constexpr std::chrono::milliseconds kLingerTime{1'000};
constexpr std::size_t kLingerBytes = 256 * 1024;

volatile std::sig_atomic_t g_stop = 0;

extern "C" void OnStopSignal(int /*signo*/) { g_stop = 1; }

timespec ToTimespec(std::chrono::nanoseconds d) {
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(d);
  return timespec{static_cast<time_t>(s.count()), static_cast<long>((d - s).count())};
}

Status ErrorStatus(ParseStatus status) {
  switch (status) {
    case ParseStatus::kHeadersTooLarge:
      return Status::kHeadersTooLarge;
    case ParseStatus::kNotImplemented:
      return Status::kNotImplemented;
    case ParseStatus::kBadVersion:
      return Status::kVersionNotSupported;
    default:
      return Status::kBadRequest;
  }
}

// One accepted connection, served until the client closes it, asks to, goes
// silent, misbehaves, or the worker must stop or recycle.
class Connection {
 public:
  Connection(int fd, const WorkerConfig& config, const sigset_t& wait_mask, ServerMetrics& metrics,
             std::uint64_t* served)
      : fd_(fd), config_(config), wait_mask_(wait_mask), metrics_(metrics), served_(served) {}
  ~Connection() { ::close(fd_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void Serve() {
    const Clock::time_point accepted = Clock::now();
    Configure();
    ServeRequests();
    metrics_.RecordConnection(Clock::now() - accepted);
  }

 private:
  enum class ReadResult { kData, kClosed, kTimeout, kStopped, kError };

  void Configure() {
    // Responses are single small writes; without TCP_NODELAY a keep-alive
    // client could wait for the delayed-ACK timer on every response.
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // Reads are bounded by ppoll's timeout (which also lets SIGTERM in);
    // writes by this, so a client that never reads cannot hold the worker.
    const auto s = std::chrono::duration_cast<std::chrono::seconds>(config_.idle_timeout);
    timeval tv{static_cast<time_t>(s.count()),
               static_cast<suseconds_t>(
                   std::chrono::duration_cast<std::chrono::microseconds>(config_.idle_timeout - s)
                       .count())};
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }

  void ServeRequests() {
    while (true) {
      // Latency counts from the first byte of the request: a pipelined
      // request already in the buffer starts now, otherwise at the read.
      Clock::time_point start = size_ > 0 ? Clock::now() : Clock::time_point{};
      ParsedRequest request;
      while (true) {
        request = ParseRequestHead(std::string_view(buffer_.data(), size_), kMaxHeadBytes);
        if (request.status != ParseStatus::kIncomplete) break;
        if (ReadMore(/*idle=*/size_ == 0) != ReadResult::kData) return;
        if (start == Clock::time_point{}) start = Clock::now();
      }

      if (request.status != ParseStatus::kComplete) {
        Answer(request.method, ErrorStatus(request.status), /*keep_alive=*/false,
               /*with_body=*/true, start);
        LingeringClose();
        return;
      }

      const Method method = request.method;
      const bool keep_alive_requested = request.keep_alive;
      const std::uint64_t body = request.content_length;
      if (request.expect_continue && body > size_ - request.head_length &&
          !Send(kContinueResponse.data(), kContinueResponse.size())) {
        return;
      }
      Consume(request.head_length);  // `request`'s views are invalid from here
      if (!DiscardBody(body)) return;

      const bool last = config_.max_requests != 0 && *served_ + 1 >= config_.max_requests;
      const bool keep_alive = keep_alive_requested && !last && g_stop == 0;
      if (!Answer(method, Status::kOk, keep_alive, method != Method::kHead, start)) return;
      if (!keep_alive) {
        if (size_ > 0) LingeringClose();  // pipelined requests we will not answer
        return;
      }
    }
  }

  // Records the request, then sends the response: a request is counted before
  // its client can see the answer, so every answered request is published.
  bool Answer(Method method, Status status, bool keep_alive, bool with_body,
              Clock::time_point start) {
    std::array<char, kMaxResponseBytes> response;
    const std::size_t n = BuildResponse(status, keep_alive, with_body, response.data());
    metrics_.RecordRequest(method, status, Clock::now() - start, n);
    ++*served_;
    return Send(response.data(), n);
  }

  // Waits (at most the idle timeout) for bytes and appends them to the
  // buffer. SIGTERM/SIGINT are unblocked only inside ppoll, so a stop request
  // interrupts the wait: an idle connection (`idle`, nothing of a request
  // received) is then closed, a request in progress is still finished.
  ReadResult ReadMore(bool idle) {
    if (size_ == buffer_.size()) return ReadResult::kError;  // the parser prevents this
    while (true) {
      if (idle && g_stop != 0) return ReadResult::kStopped;
      pollfd p{fd_, POLLIN, 0};
      const timespec timeout = ToTimespec(config_.idle_timeout);
      const int ready = ::ppoll(&p, 1, &timeout, &wait_mask_);
      if (ready == 0) return ReadResult::kTimeout;
      if (ready < 0) {
        if (errno == EINTR) continue;
        return ReadResult::kError;
      }
      const ssize_t n = ::recv(fd_, buffer_.data() + size_, buffer_.size() - size_, 0);
      if (n > 0) {
        size_ += static_cast<std::size_t>(n);
        return ReadResult::kData;
      }
      if (n == 0) return ReadResult::kClosed;  // the client went away mid-request or idle
      if (errno == EINTR || errno == EAGAIN) continue;
      return ReadResult::kError;
    }
  }

  // The server ignores request bodies, but must read them off the connection
  // so that the next request starts at the right byte.
  bool DiscardBody(std::uint64_t bytes) {
    while (true) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(bytes, size_));
      Consume(n);
      bytes -= n;
      if (bytes == 0) return true;
      if (ReadMore(/*idle=*/false) != ReadResult::kData) return false;
    }
  }

  void Consume(std::size_t n) {
    std::memmove(buffer_.data(), buffer_.data() + n, size_ - n);
    size_ -= n;
  }

  bool Send(const char* data, std::size_t n) {
    while (n > 0) {
      // MSG_NOSIGNAL: a client that closed early is an error code, not SIGPIPE.
      const ssize_t sent = ::send(fd_, data, n, MSG_NOSIGNAL);
      if (sent > 0) {
        data += sent;
        n -= static_cast<std::size_t>(sent);
      } else if (sent < 0 && errno == EINTR) {
        continue;
      } else {
        return false;  // reset, or SO_SNDTIMEO expired (EAGAIN)
      }
    }
    return true;
  }

  // Half-closes, then reads and drops what the client still sends until it
  // closes too (bounded in time and bytes), so the response is not lost to
  // a reset.
  void LingeringClose() {
    ::shutdown(fd_, SHUT_WR);
    const Clock::time_point deadline = Clock::now() + kLingerTime;
    std::size_t drained = 0;
    while (drained < kLingerBytes && g_stop == 0) {
      const auto left = deadline - Clock::now();
      if (left <= Clock::duration::zero()) return;
      pollfd p{fd_, POLLIN, 0};
      const timespec timeout = ToTimespec(left);
      const int ready = ::ppoll(&p, 1, &timeout, &wait_mask_);
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) return;
      const ssize_t n = ::recv(fd_, buffer_.data(), buffer_.size(), 0);
      if (n <= 0) return;
      drained += static_cast<std::size_t>(n);
    }
  }

  const int fd_;
  const WorkerConfig& config_;
  const sigset_t& wait_mask_;
  ServerMetrics& metrics_;
  std::uint64_t* const served_;
  std::array<char, kBufferBytes> buffer_;
  std::size_t size_ = 0;
};

}  // namespace

int RunWorker(const WorkerConfig& config, ServerMetrics& metrics) {
  // A worker must not outlive its master (it would keep serving with nobody
  // to stop it). The check after prctl closes the race with a master that
  // died before the call.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != config.master_pid) return kWorkerStopped;

  // No SA_RESTART: the waits must return EINTR so the flag is seen.
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGTERM, &action, nullptr);
  ::sigaction(SIGINT, &action, nullptr);

  // The mask ppoll waits with: the inherited one (SIGTERM and SIGINT
  // blocked) minus those two. Any stop signal that arrived since fork() is
  // still pending and is delivered by the first wait.
  sigset_t wait_mask;
  ::pthread_sigmask(SIG_SETMASK, nullptr, &wait_mask);
  sigdelset(&wait_mask, SIGTERM);
  sigdelset(&wait_mask, SIGINT);

  std::uint64_t served = 0;
  while (g_stop == 0) {
    // The listening socket is non-blocking and shared: every idle worker
    // wakes for a connection, one accept() wins, the others get EAGAIN.
    pollfd p{config.listen_fd, POLLIN, 0};
    if (::ppoll(&p, 1, nullptr, &wait_mask) < 0) {
      if (errno == EINTR) continue;
      Log("worker: poll: %s", std::strerror(errno));
      return kWorkerFailed;
    }
    const int fd = ::accept4(config.listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      switch (errno) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        case EPERM:  // refused by a firewall rule
          continue;
        default:  // EMFILE, ENOMEM, ...: let the master start a fresh worker
          Log("worker: accept: %s", std::strerror(errno));
          return kWorkerFailed;
      }
    }
    Connection(fd, config, wait_mask, metrics, &served).Serve();
    if (config.max_requests != 0 && served >= config.max_requests) return kWorkerRecycled;
  }
  return kWorkerStopped;
}

}  // namespace prefork
