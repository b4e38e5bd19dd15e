#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

namespace spectator::testing {

/// Runs `body` in a fork()ed child, which exits with its return value (99 if
/// it throws). Children must not use gtest assertions: they report through
/// their exit code, and the parent asserts on it.
inline pid_t ForkChild(const std::function<int()>& body) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    int code = 99;
    try {
      code = body();
    } catch (...) {
    }
    ::_exit(code);
  }
  return pid;
}

/// A waitpid status as one code: the exit code, 128 + signal if the child
/// was killed, -1 otherwise.
inline int ChildCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

/// Waits for a child: its exit code, or 128 + signal if it was killed; -1
/// when it cannot be waited for (not a child).
inline int WaitChild(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return ChildCode(status);
}

/// What WaitChildFor returns when the child did not exit before the deadline
/// (it has then been killed and reaped, so no test leaves a process behind).
inline constexpr int kChildTimedOut = -2;

/// WaitChild until `deadline`, or kChildTimedOut. Polls waitpid with a short
/// pause between polls: the pause is not synchronisation, only a way to not
/// spin on a core.
inline int WaitChildFor(pid_t pid, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return ChildCode(status);
    if (r < 0 && errno != EINTR) return -1;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return kChildTimedOut;
    }
    const timespec pause{0, 200000};  // 200 us
    ::nanosleep(&pause, nullptr);
  }
}

/// A start line for children: each child blocks in Wait() until the parent
/// calls Release(), so they start together.
class Barrier {
 public:
  Barrier() {
    if (::pipe(fds_) != 0) std::abort();
  }
  ~Barrier() {
    Close(fds_[0]);
    Close(fds_[1]);
  }
  /// In a child: wait for the release (the write end closing).
  void Wait() {
    Close(fds_[1]);
    char c;
    while (::read(fds_[0], &c, 1) > 0) {
    }
  }
  /// In the parent, after forking every child.
  void Release() { Close(fds_[1]); }

 private:
  static void Close(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  int fds_[2] = {-1, -1};
};

}  // namespace spectator::testing
