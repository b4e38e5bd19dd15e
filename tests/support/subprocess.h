#pragma once

// Running a real program (the collector, the demo server) from a test:
// fork + exec with stdout and stderr captured, signals, and waits with a
// deadline, and tying a program's life to the test's (DiesWithTheTest).
// Header-only; uses no gtest assertion so it also works in helpers.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

namespace spectator::testing {

class Subprocess {
 public:
  /// Starts argv[0] with the given arguments (execv: argv[0] is a path).
  explicit Subprocess(const std::vector<std::string>& argv) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) std::abort();
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) std::abort();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      // The test may block signals; the program must start with none blocked.
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
  }

  ~Subprocess() {
    if (pid_ > 0 && exit_code_ < 0) {
      ::kill(pid_, SIGKILL);
      Wait(std::chrono::seconds(30));
    }
    if (out_fd_ >= 0) ::close(out_fd_);
    if (err_fd_ >= 0) ::close(err_fd_);
  }
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  void Signal(int sig) const { ::kill(pid_, sig); }

  /// Reads output until `pred(stdout so far)` holds, the process closes its
  /// stdout, or the deadline passes. Returns whether pred held.
  template <typename Pred>
  bool WaitForOutput(Pred pred, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred(out_)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !Pump(static_cast<int>(left.count()))) return pred(out_);
    }
    return true;
  }

  /// Waits for the exit (reading its output meanwhile so that it never blocks
  /// on a full pipe): the exit code, 128 + signal, or -1 on timeout.
  int Wait(std::chrono::milliseconds timeout) {
    if (exit_code_ >= 0) return exit_code_;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        while (Pump(0)) {
        }
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return exit_code_;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return -1;
      // Output or 10 ms, whichever first: a poll interval, not a synchronisation.
      Pump(static_cast<int>(std::min<long>(left.count(), 10)));
    }
  }

  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

 private:
  // Reads what is available on stdout/stderr within `timeout_ms`. False when
  // both pipes are closed.
  bool Pump(int timeout_ms) {
    pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
    if (out_fd_ < 0 && err_fd_ < 0) return false;
    if (::poll(fds, 2, timeout_ms) <= 0) return true;
    Drain(fds[0], &out_fd_, &out_);
    Drain(fds[1], &err_fd_, &err_);
    return out_fd_ >= 0 || err_fd_ >= 0;
  }
  static void Drain(const pollfd& p, int* fd, std::string* into) {
    if (*fd < 0 || (p.revents & (POLLIN | POLLHUP | POLLERR)) == 0) return;
    char buf[65536];
    const ssize_t n = ::read(*fd, buf, sizeof buf);
    if (n > 0) {
      into->append(buf, static_cast<std::size_t>(n));
    } else if (n == 0) {
      ::close(*fd);
      *fd = -1;
    }
  }

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  int exit_code_ = -1;
  std::string out_;
  std::string err_;
};

/// util-linux's setpriv, for DiesWithTheTest.
inline constexpr const char* kSetprivPath = "/usr/bin/setpriv";

/// `argv` run through `setpriv --pdeathsig KILL` when util-linux's setpriv
/// is there: a test process that dies without running its destructors (a
/// ctest timeout, SIGPIPE) still takes the program (Prometheus, the
/// collector, prefork-server's master) with it. setpriv execs the program, so
/// the pid is the program's.
inline std::vector<std::string> DiesWithTheTest(std::vector<std::string> argv) {
  if (::access(kSetprivPath, X_OK) == 0) {
    argv.insert(argv.begin(), {kSetprivPath, "--pdeathsig", "KILL", "--"});
  }
  return argv;
}

}  // namespace spectator::testing
