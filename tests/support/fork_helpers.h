#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

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

/// Waits for a child: its exit code, or 128 + signal if it was killed.
inline int WaitChild(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
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
