#include "collector_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace spectator::collector {

CollectorLock::~CollectorLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

bool CollectorLock::TryAcquire(const std::string& name, std::string* error) {
  const std::string path = "/dev/shm/" + name;
  // O_NOFOLLOW: the Registry already refused a symlink; this keeps the lock
  // on the very file that was mapped even if the name is swapped meanwhile.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    *error = "cannot open " + path + " to lock it: " + std::strerror(errno);
    return false;
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
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  return true;
}

}  // namespace spectator::collector
