#include "bench_util.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace spectator::bench {
namespace {

std::vector<std::function<void()>>& Cleanups() {
  static auto* cleanups = new std::vector<std::function<void()>>();
  return *cleanups;
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "spectator-bench: %s: %s\n", what.c_str(), std::strerror(errno));
  RunCleanups();
  std::exit(1);
}

}  // namespace

std::string UniqueName(const std::string& tag) {
  static int n = 0;
  return "spectator-bench-" + std::to_string(::getpid()) + "-" + tag + "-" + std::to_string(n++);
}

IdSpec MakeId(std::uint32_t i) {
  static const char* const kMethods[] = {"GET", "POST", "PUT", "DELETE"};
  return {"server.requestCount",
          {{"method", kMethods[i % 4]},
           {"status", std::to_string(200 + i % 7)},
           {"uri", "/api/v1/items/" + std::to_string(i)}}};
}

void AddCleanup(std::function<void()> fn) {
  static const bool registered = [] {
    // A benchmark that calls exit() (SkipWithError does not, but a failed
    // CHECK in a library might) still removes its segments.
    std::atexit(RunCleanups);
    return true;
  }();
  (void)registered;
  Cleanups().push_back(std::move(fn));
}

void RunCleanups() {
  auto& cleanups = Cleanups();
  while (!cleanups.empty()) {
    auto fn = std::move(cleanups.back());
    cleanups.pop_back();
    fn();
  }
}

BenchSegment::BenchSegment(const std::string& tag, SegmentOptions options)
    : name_(UniqueName(tag)) {
  options.name = name_;
  // Registered before the segment exists, so a throwing constructor below
  // cannot leave a file behind either.
  AddCleanup([name = name_] { Registry::Remove(name); });
  registry_ = std::make_unique<Registry>(options);
}

BenchSegment::~BenchSegment() {
  registry_.reset();
  Registry::Remove(name_);
}

std::uint64_t BenchSegment::ResidentBytes() const {
  struct stat st;
  if (::stat(("/dev/shm/" + name_).c_str(), &st) != 0) return 0;
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

ShmWords::ShmWords(std::size_t words) : name_("/" + UniqueName("bare")), bytes_(words * 8) {
  const int fd = ::shm_open(name_.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) Die("shm_open " + name_);
  AddCleanup([name = name_] { ::shm_unlink(name.c_str()); });
  if (::ftruncate(fd, static_cast<off_t>(bytes_)) != 0) Die("ftruncate " + name_);
  void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) Die("mmap " + name_);
  base_ = static_cast<std::atomic<std::uint64_t>*>(p);
}

ShmWords::~ShmWords() {
  ::munmap(base_, bytes_);
  ::shm_unlink(name_.c_str());
}

}  // namespace spectator::bench
