// A /dev/shm too small for the segment (Docker and Kubernetes give a
// container 64 MiB) must never kill the application with SIGBUS: the segment
// is refused at creation, or, once created, every page it needs is already
// its own. Each test runs in a fork()ed child with a private mount namespace
// and a small tmpfs on /dev/shm (as root; skipped with a message otherwise),
// which reports through its exit code: a signal shows as 128 + signal.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <string>
#include <vector>

#include "spectator/spectator.h"
#include "support/fork_helpers.h"

namespace spectator::reliability {
namespace {

using testing::ForkChild;
using testing::WaitChild;

constexpr int kSkip = 77;
constexpr int kNoNamespace = 78;

// In a child: a private mount namespace with a tmpfs of `mib` MiB on
// /dev/shm. Returns false (after printing why) when not permitted.
bool SmallDevShm(int mib) {
  if (::unshare(CLONE_NEWNS) != 0) {
    std::fprintf(stderr, "unshare(CLONE_NEWNS): %s\n", std::strerror(errno));
    return false;
  }
  if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  const std::string options = "size=" + std::to_string(mib) + "m,mode=1777";
  if (::mount("tmpfs", "/dev/shm", "tmpfs", 0, options.c_str()) != 0) {
    std::fprintf(stderr, "mount tmpfs on /dev/shm: %s\n", std::strerror(errno));
    return false;
  }
  return true;
}

// Runs `body` in a child with a small /dev/shm; returns its exit code, or
// skips the test when the namespace cannot be made.
int InSmallDevShm(int mib, const std::function<int()>& body) {
  const int code = WaitChild(ForkChild([&] { return SmallDevShm(mib) ? body() : kNoNamespace; }));
  return code;
}

#define SKIP_UNLESS_PERMITTED(code)                                                      \
  if ((code) == kNoNamespace) {                                                          \
    GTEST_SKIP() << "needs root and unshare(CLONE_NEWNS) to mount a small /dev/shm";     \
  }

std::vector<std::string> DevShmFiles() {
  std::vector<std::string> out;
  DIR* d = ::opendir("/dev/shm");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      out.emplace_back(e->d_name);
    }
  }
  ::closedir(d);
  return out;
}

SegmentOptions Options(std::uint32_t max_meters, std::uint64_t value_words) {
  SegmentOptions o;
  o.name = "spectator-small-shm";
  o.max_meters = max_meters;
  o.value_words = value_words;
  o.logger = [](LogLevel, std::string_view) {};
  return o;
}

// Fills a tmpfs with one file until it is full; the number of bytes written.
std::size_t FillWithAnotherFile(const char* path) {
  const int fd = ::open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) return 0;
  std::vector<char> block(1 << 16, 'x');
  std::size_t total = 0;
  for (;;) {
    const ssize_t n = ::write(fd, block.data(), block.size());
    if (n <= 0) break;
    total += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return total;
}

TEST(ShmSpace, ASegmentBiggerThanDevShmIsRefusedAtCreationAndLeavesNoFile) {
  const int code = InSmallDevShm(8, [] {
    try {
      Registry r(Options(8192, std::uint64_t{1} << 21));  // ~20 MiB > 8 MiB
      return 1;                                            // created: wrong
    } catch (const Error& e) {
      const std::string what = e.what();
      if (e.code() != ErrorCode::kNoSpace) return 2;
      if (what.find("spectator-small-shm") == std::string::npos) return 3;
      if (what.find("needs") == std::string::npos || what.find("free of 8.0 MiB") == std::string::npos) {
        std::fprintf(stderr, "message: %s\n", what.c_str());
        return 4;
      }
    }
    if (!DevShmFiles().empty()) return 5;  // neither the segment nor its temporary file
    return 0;
  });
  SKIP_UNLESS_PERMITTED(code);
  EXPECT_EQ(code, 0) << "1 created, 2 wrong code, 3/4 message, 5 a file left, 128+N a signal";
}

TEST(ShmSpace, ASegmentThatFitsIsFilledToCapacityWithoutASignal) {
  const int code = InSmallDevShm(8, [] {
    // ~3 MiB of table and 2 MiB of values: fits in 8 MiB with room to spare.
    Registry r(Options(4096, std::uint64_t{1} << 18));
    for (int i = 0; i < 6000; ++i) {  // past capacity: the rest are no-ops
      r.GetCounter("c", {{"i", std::to_string(i)}}).Increment();
      r.GetTimer("t", {{"i", std::to_string(i)}}).Record(std::chrono::milliseconds(i));
    }
    return r.Info().meters == 4096 && r.Info().overflow > 0 ? 0 : 1;
  });
  SKIP_UNLESS_PERMITTED(code);
  EXPECT_EQ(code, 0) << "128+7 is SIGBUS";
}

TEST(ShmSpace, AnotherFileFillingDevShmAfterCreationDoesNotHurtWorkers) {
  const int code = InSmallDevShm(16, [] {
    Registry r(Options(4096, std::uint64_t{1} << 18));
    if (FillWithAnotherFile("/dev/shm/hog") == 0) return 2;
    // Workers register and update meters on pages nobody touched yet.
    std::vector<pid_t> workers;
    for (int w = 0; w < 4; ++w) {
      workers.push_back(ForkChild([&r, w] {
        for (int i = 0; i < 1000; ++i) {
          r.GetCounter("c", {{"w", std::to_string(w)}, {"i", std::to_string(i)}}).Increment();
          r.GetPercentileTimer("p", {{"w", std::to_string(w)}, {"i", std::to_string(i % 10)}})
              .Record(std::chrono::milliseconds(i));
        }
        return 0;
      }));
    }
    int worst = 0;
    for (pid_t p : workers) {
      const int c = WaitChild(p);
      if (c != 0) worst = c;
    }
    return worst;
  });
  SKIP_UNLESS_PERMITTED(code);
  EXPECT_EQ(code, 0) << "a worker died: 128+7 is SIGBUS";
}

}  // namespace
}  // namespace spectator::reliability
