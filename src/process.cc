#include "process.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace spectator::internal {
namespace {

// One byte of the file, for F_OFD_SETLK / F_OFD_GETLK.
struct flock Byte(short type, off_t start) noexcept {
  struct flock lock {};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = start;
  lock.l_len = 1;
  return lock;
}

int SetLock(int fd, short type, off_t start) noexcept {
  struct flock lock = Byte(type, start);
  int rc;
  do {
    rc = ::fcntl(fd, F_OFD_SETLK, &lock);
  } while (rc != 0 && errno == EINTR);
  return rc == 0 ? 0 : errno;
}

// The type of a lock another description holds that conflicts with `type`
// on byte `start`, or F_UNLCK; F_UNLCK also when the query fails.
short ConflictingLock(int fd, short type, off_t start) noexcept {
  struct flock lock = Byte(type, start);
  if (::fcntl(fd, F_OFD_GETLK, &lock) != 0) return F_UNLCK;
  return lock.l_type;
}

}  // namespace

int LockShared(int fd) noexcept { return SetLock(fd, F_RDLCK, 0); }

void Unlock(int fd) noexcept { SetLock(fd, F_UNLCK, 0); }

bool TryLockExclusive(int fd) noexcept { return SetLock(fd, F_WRLCK, 0) == 0; }

bool IsLockedExclusively(int fd) noexcept { return ConflictingLock(fd, F_RDLCK, 0) == F_WRLCK; }

ClaimLock::~ClaimLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

int ClaimLock::Acquire(int fd, std::uint64_t token) noexcept {
  char path[48];
  std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  const int own = ::open(path, O_RDWR | O_CLOEXEC);
  if (own < 0) return errno;
  const int rc = SetLock(own, F_WRLCK, static_cast<off_t>(token));
  if (rc != 0) {
    ::close(own);
    return rc;
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = own;
  return 0;
}

bool ClaimIsHeld(int fd, std::uint64_t token) noexcept {
  // Token 0 is never handed out, and its byte is the holders' lock, which
  // every user of the segment holds: a claim naming it is corrupt, hence dead.
  if (token == 0) return false;
  // Any lock on the byte conflicts with a write lock, so asking about a write
  // lock reports whoever holds one.
  return ConflictingLock(fd, F_WRLCK, static_cast<off_t>(token)) != F_UNLCK;
}

}  // namespace spectator::internal
