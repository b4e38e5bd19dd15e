#include "process.h"

#include <fcntl.h>
#include <unistd.h>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "segment_layout.h"

namespace spectator::internal {
namespace {

struct StatFields {
  char state = '?';
  std::uint64_t start_ticks = 0;
};

// Parses the state (field 3) and start time (field 22) of /proc/<pid>/stat.
// The command name (field 2) is in parentheses and may contain spaces and
// parentheses, so fields are counted from the last ')'.
bool ReadStat(pid_t pid, StatFields* out) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1024];
  ssize_t n;
  do {
    n = ::read(fd, buf, sizeof buf - 1);
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr || p[1] != ' ') return false;
  p += 2;
  out->state = *p;
  // Fields after ')' start at field 3 (state); start time is field 22.
  for (int field = 3; field < 22; ++field) {
    p = std::strchr(p, ' ');
    if (p == nullptr) return false;
    ++p;
  }
  char* end = nullptr;
  out->start_ticks = std::strtoull(p, &end, 10);
  return end != p;
}

}  // namespace

ProcessIdentity CurrentProcess() {
  // Cached per pid: a fork()ed child has another pid and re-reads. Relaxed:
  // the two words are only a cache; a torn pair is detected by the pid check
  // because pid is stored last and loaded first.
  static std::atomic<std::uint64_t> cached_pid{0};
  static std::atomic<std::uint64_t> cached_start{0};
  const auto pid = static_cast<std::uint64_t>(::getpid());
  if (cached_pid.load(std::memory_order_acquire) == pid) {  // pairs with the release below
    return {pid, cached_start.load(std::memory_order_relaxed)};
  }
  StatFields stat;
  const std::uint64_t start = ReadStat(static_cast<pid_t>(pid), &stat) ? stat.start_ticks : 0;
  cached_start.store(start, std::memory_order_relaxed);
  cached_pid.store(pid, std::memory_order_release);  // pairs with the acquire above
  return {pid, start};
}

bool IsAlive(std::uint64_t pid, std::uint64_t start_ticks) {
  // No claimer has pid 0, and kill(0, 0) below would ask about our own
  // process group: a claim naming pid 0 is corrupt, hence dead.
  if (pid == 0) return false;
  StatFields stat;
  if (ReadStat(static_cast<pid_t>(pid), &stat)) {
    if (stat.state == 'Z' || stat.state == 'X') return false;
    return (stat.start_ticks & kStartMask) == (start_ticks & kStartMask);
  }
  // No /proc entry: either the process is gone or /proc is not mounted.
  if (::kill(static_cast<pid_t>(pid), 0) == 0) return true;
  return errno != ESRCH;
}

}  // namespace spectator::internal
