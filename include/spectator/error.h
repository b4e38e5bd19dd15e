#pragma once

#include <stdexcept>
#include <string>

#include "spectator/export.h"

namespace spectator {

/// What went wrong when opening a segment. See docs/error_handling.md.
enum class ErrorCode {
  kInvalidArgument,   // a bad option (segment name, capacity, mode)
  kForeignSegment,    // the file is not a spectator-shm segment (magic mismatch)
  kVersionMismatch,   // a spectator-shm segment of another layout version
  kSizeMismatch,      // header and file size (or capacities) disagree
  kNotInitialised,    // the creator never finished initialising the segment
  kPermission,        // owned by another user, or access denied
  kNoSpace,           // /dev/shm has no room for the segment: it was not created
  kSystem,            // an operating-system call failed
};

/// The single error type of the setup API (opening a registry or a reader).
///
/// Only setup throws. Updating a meter never throws, and getting a meter
/// reports problems through the log and a no-op meter instead.
class SPECTATOR_EXPORT Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace spectator
