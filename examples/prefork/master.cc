#include "master.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "log.h"
#include "worker.h"

namespace prefork {
namespace {

// A worker that fails this soon after its start, this many times in a row,
// means something is wrong with every worker (no file descriptors, say):
// give up instead of forking in a tight loop.
constexpr std::chrono::seconds kRapidFailureWindow{1};
constexpr int kMaxRapidFailures = 5;

std::string Describe(const sockaddr_storage& address) {
  char host[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  if (address.ss_family == AF_INET6) {
    const auto& a6 = reinterpret_cast<const sockaddr_in6&>(address);
    ::inet_ntop(AF_INET6, &a6.sin6_addr, host, sizeof host);
    port = ntohs(a6.sin6_port);
    return "[" + std::string(host) + "]:" + std::to_string(port);
  }
  const auto& a4 = reinterpret_cast<const sockaddr_in&>(address);
  ::inet_ntop(AF_INET, &a4.sin_addr, host, sizeof host);
  port = ntohs(a4.sin_port);
  return std::string(host) + ":" + std::to_string(port);
}

}  // namespace

Master::Master(const ServerOptions& options, ServerMetrics& metrics)
    : options_(options),
      metrics_(metrics),
      pid_(::getpid()),
      workers_(static_cast<std::size_t>(options.workers)) {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal_fd_ = ::signalfd(-1, &mask, SFD_CLOEXEC);
}

Master::~Master() {
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (signal_fd_ >= 0) ::close(signal_fd_);
}

bool Master::Listen() {
  if (signal_fd_ < 0) {
    Log("signalfd: %s", std::strerror(errno));
    return false;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(options_.port);
  if (const int rc = ::getaddrinfo(options_.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    Log("cannot resolve --host '%s': %s", options_.host.c_str(), ::gai_strerror(rc));
    return false;
  }
  int error = 0;
  for (const addrinfo* ai = found; ai != nullptr && listen_fd_ < 0; ai = ai->ai_next) {
    // Non-blocking: several workers poll the socket and race for each
    // connection; the losers must get EAGAIN, not block in accept().
    const int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      error = errno;
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, SOMAXCONN) != 0) {
      error = errno;
      ::close(fd);
      continue;
    }
    listen_fd_ = fd;
  }
  ::freeaddrinfo(found);
  if (listen_fd_ < 0) {
    Log("cannot listen on %s:%u: %s", options_.host.c_str(), options_.port, std::strerror(error));
    return false;
  }

  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &length);
  // Scripts and tests wait for this line to learn the port (--port 0).
  std::printf("listening on %s\n", Describe(bound).c_str());
  std::fflush(stdout);
  return true;
}

int Master::Run() {
  Log("%d workers, segment '%s', max requests per worker: %s", options_.workers,
      options_.segment.c_str(),
      options_.max_requests == 0 ? "unlimited" : std::to_string(options_.max_requests).c_str());
  for (WorkerSlot& slot : workers_) {
    if (!Spawn(slot)) return Stop(1);
  }
  metrics_.SetWorkers(Running());

  while (true) {
    signalfd_siginfo info{};
    const ssize_t n = ::read(signal_fd_, &info, sizeof info);
    if (n != static_cast<ssize_t>(sizeof info)) {
      if (n < 0 && errno == EINTR) continue;
      Log("reading signals: %s", n < 0 ? std::strerror(errno) : "short read");
      return Stop(1);
    }
    if (info.ssi_signo == SIGCHLD) {
      if (!Reap(/*respawn=*/true)) return Stop(1);
    } else {
      Log("%s: stopping the workers", ::strsignal(static_cast<int>(info.ssi_signo)));
      return Stop(0);
    }
  }
}

bool Master::Spawn(WorkerSlot& slot) {
  std::fflush(nullptr);  // or the child would write the parent's buffered output again
  const pid_t pid = ::fork();
  if (pid < 0) {
    Log("fork: %s", std::strerror(errno));
    return false;
  }
  if (pid == 0) {
    ::close(signal_fd_);
    WorkerConfig config;
    config.listen_fd = listen_fd_;
    config.master_pid = pid_;
    config.max_requests = options_.max_requests;
    config.idle_timeout = options_.idle_timeout;
    // _exit: the master's objects (the Registry among them) belong to the
    // master; the worker only drops its copy of the mapping.
    ::_exit(RunWorker(config, metrics_));
  }
  slot.pid = pid;
  slot.started = Clock::now();
  return true;
}

bool Master::Reap(bool respawn) {
  while (true) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;  // none left to collect (0), or no children at all (ECHILD)
    WorkerSlot* slot = nullptr;
    for (WorkerSlot& s : workers_) {
      if (s.pid == pid) slot = &s;
    }
    if (slot == nullptr) continue;
    slot->pid = 0;

    const bool recycled = WIFEXITED(status) && WEXITSTATUS(status) == kWorkerRecycled;
    const bool stopped = WIFEXITED(status) && WEXITSTATUS(status) == kWorkerStopped;
    std::string what;
    if (recycled) {
      what = "served its " + std::to_string(options_.max_requests) + " requests";
      metrics_.RecordWorkerExit(ServerMetrics::ExitReason::kRecycled);
    } else if (stopped) {
      what = "stopped";
    } else if (WIFSIGNALED(status)) {
      what = std::string("was killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
             ::strsignal(WTERMSIG(status)) + ")";
      metrics_.RecordWorkerExit(ServerMetrics::ExitReason::kCrashed);
    } else {
      what = "exited with status " + std::to_string(WEXITSTATUS(status));
      metrics_.RecordWorkerExit(ServerMetrics::ExitReason::kFailed);
    }
    if (!respawn) {
      if (!stopped) Log("worker %d %s", static_cast<int>(pid), what.c_str());
      continue;
    }

    const bool failed = !recycled && !stopped;
    rapid_failures_ =
        failed && Clock::now() - slot->started < kRapidFailureWindow ? rapid_failures_ + 1 : 0;
    if (rapid_failures_ >= kMaxRapidFailures) {
      Log("worker %d %s; workers keep failing right after start, giving up", static_cast<int>(pid),
          what.c_str());
      return false;
    }
    if (!Spawn(*slot)) return false;
    Log("worker %d %s; started worker %d", static_cast<int>(pid), what.c_str(),
        static_cast<int>(slot->pid));
  }
  metrics_.SetWorkers(Running());
  return true;
}

int Master::Stop(int exit_code) {
  for (const WorkerSlot& slot : workers_) {
    if (slot.pid != 0) ::kill(slot.pid, SIGTERM);
  }
  // Wait for SIGCHLD on the signalfd until every worker is collected or the
  // deadline passes. Reap runs after each wake-up and once first, so an exit
  // between a Reap and the poll is still seen (its SIGCHLD stays pending).
  const Clock::time_point deadline = Clock::now() + options_.stop_timeout;
  while (true) {
    Reap(/*respawn=*/false);
    if (Running() == 0) break;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      Log("%zu workers still running after %lld ms: killing them", Running(),
          static_cast<long long>(options_.stop_timeout.count()));
      for (WorkerSlot& slot : workers_) {
        if (slot.pid == 0) continue;
        ::kill(slot.pid, SIGKILL);
        while (::waitpid(slot.pid, nullptr, 0) < 0 && errno == EINTR) {
        }
        slot.pid = 0;
      }
      break;
    }
    pollfd p{signal_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count()) + 1) > 0) {
      signalfd_siginfo info{};
      // Only drains it: SIGCHLD is handled by Reap, a second SIGTERM changes nothing.
      const ssize_t ignored = ::read(signal_fd_, &info, sizeof info);
      static_cast<void>(ignored);
    }
  }
  // Nothing is removed from the segment: the collector still publishes what
  // the workers recorded, and the segment outlives this process.
  metrics_.SetWorkers(0);
  Log("stopped");
  return exit_code;
}

std::size_t Master::Running() const {
  std::size_t n = 0;
  for (const WorkerSlot& slot : workers_) n += slot.pid != 0 ? 1 : 0;
  return n;
}

}  // namespace prefork
