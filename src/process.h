#pragma once

// File locks on the segment file that say which processes use it. They are
// open-file-description (OFD) locks: held by a description, shared by every
// process that inherited a descriptor of it across fork(), and dropped by the
// kernel when the last descriptor of it closes, however the processes end.
// Nothing depends on pids, so they are right across pid namespaces.
//
// - Byte 0, the holders' lock: every process that has the segment open holds
//   a shared lock through its segment descriptor (forked workers share their
//   master's). A process that replaces a stale segment holds it exclusively.
// - Byte `token` (1 .. kMaxClaimToken), a claim lock: a process registering a
//   meter write-locks the byte of its claim token, through a description of
//   its own, from before its CLAIMED state is visible until the entry is
//   READY. A claim whose byte nobody locks was left by a process that died.

#include <cstdint>

namespace spectator::internal {

/// Takes the shared holders' lock on `fd` without waiting. Returns 0, or the
/// errno: EAGAIN when another process holds it exclusively (it is replacing a
/// stale segment).
int LockShared(int fd) noexcept;

/// Drops this description's holders' lock (shared or exclusive).
void Unlock(int fd) noexcept;

/// Takes the holders' lock exclusively without waiting: true when no other
/// description holds it (nobody else has the segment open). A shared lock of
/// `fd` itself is converted.
bool TryLockExclusive(int fd) noexcept;

/// Whether another description holds the holders' lock exclusively.
bool IsLockedExclusively(int fd) noexcept;

/// The lock of one claim token, held for the life of the object.
class ClaimLock {
 public:
  ClaimLock() = default;
  ~ClaimLock();
  ClaimLock(const ClaimLock&) = delete;
  ClaimLock& operator=(const ClaimLock&) = delete;

  /// Opens a description of its own of the file behind `fd` (through
  /// /proc/self/fd, so even an unlinked segment works) and write-locks the
  /// byte `token`. Returns 0 or the errno of what failed. Registration only:
  /// three system calls.
  int Acquire(int fd, std::uint64_t token) noexcept;

 private:
  int fd_ = -1;
};

/// Whether some process holds the claim lock of `token`, asked through `fd`
/// (any description of the segment file that does not hold that lock itself).
bool ClaimIsHeld(int fd, std::uint64_t token) noexcept;

}  // namespace spectator::internal
