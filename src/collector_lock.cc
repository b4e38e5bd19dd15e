#include "spectator/internal/collector_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <list>
#include <mutex>

#include "registry_impl.h"
#include "spectator/error.h"
#include "spectator/internal/reader.h"

namespace spectator {

// flock(2) locks belong to an open file description: a second open() of the
// same file in this process would be refused like another process. So each
// locked file is opened and locked once per process, and shared by count.
struct CollectorLock::Held {
  dev_t dev = 0;
  ino_t ino = 0;
  int fd = -1;
  int holders = 0;
};

namespace {

// Never destroyed: a CollectorLock that is itself a static (a benchmark's,
// say) may release after this file's statics would have been torn down.
std::mutex& HeldMutex() {
  static auto* m = new std::mutex;
  return *m;
}
std::list<CollectorLock::Held>& HeldFiles() {  // guarded by HeldMutex()
  static auto* files = new std::list<CollectorLock::Held>;
  return *files;
}

bool SameFile(int fd, dev_t dev, ino_t ino) {
  struct stat st {};
  return fd >= 0 && ::fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

}  // namespace

CollectorLock::CollectorLock(const std::string& name) {
  std::string error;
  if (!TryAcquire(name, &error)) throw Error(ErrorCode::kPermission, error);
}

CollectorLock::~CollectorLock() { Release(); }

void CollectorLock::Release() noexcept {
  if (held_ == nullptr) return;
  std::lock_guard<std::mutex> lock(HeldMutex());
  if (--held_->holders == 0) {
    ::close(held_->fd);  // closing the last descriptor releases the flock
    HeldFiles().remove_if([this](const Held& h) { return &h == held_; });
  }
  held_ = nullptr;
}

bool CollectorLock::TryAcquire(const std::string& name, std::string* error) {
  Release();
  const std::string path = "/dev/shm/" + name;
  // O_NOFOLLOW: the Registry already refused a symlink; this keeps the lock
  // on the very file that was mapped even if the name is swapped meanwhile.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    *error = "cannot open " + path + " to lock it: " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    *error = "cannot stat " + path + ": " + std::strerror(errno);
    ::close(fd);
    return false;
  }
  std::lock_guard<std::mutex> lock(HeldMutex());
  for (Held& h : HeldFiles()) {
    if (h.dev == st.st_dev && h.ino == st.st_ino) {  // this process holds it already
      ::close(fd);
      ++h.holders;
      held_ = &h;
      return true;
    }
  }
  int rc;
  do {
    rc = ::flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    ::close(fd);
    *error = err == EWOULDBLOCK
                 ? "another spectator-collector is already publishing segment '" + name + "'"
                 : "cannot lock " + path + ": " + std::strerror(err);
    return false;
  }
  HeldFiles().push_back(Held{st.st_dev, st.st_ino, fd, 1});
  held_ = &HeldFiles().back();
  return true;
}

bool CollectorLock::Covers(int fd) const noexcept {
  return held_ != nullptr && SameFile(fd, held_->dev, held_->ino);
}

// The taking reader lives here, next to the lock that grants it, so that
// reader.cc keeps to reading.
SegmentReader::SegmentReader(Registry& registry, const CollectorLock& lock)
    : SegmentReader(registry) {
  if (!lock.Covers(registry.impl_->segment->view().fd)) {
    throw Error(ErrorCode::kInvalidArgument,
                "a SegmentReader that takes needs the collector lock of segment '" +
                    registry.segment_name() + "' held by this process");
  }
  can_take_ = true;
}

}  // namespace spectator
