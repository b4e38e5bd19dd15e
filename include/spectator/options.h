#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace spectator {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

/// Receives the library's log lines (registration problems, capacity
/// differences on attach). Called from the thread that caused the message,
/// never from the update path. Must be safe to call from any thread.
using Logger = std::function<void(LogLevel, std::string_view)>;

/// How to open a segment. Capacities apply only when this process creates the
/// segment; an attacher takes the capacities recorded in the segment header.
struct SegmentOptions {
  /// Segment name: 1..200 characters from [A-Za-z0-9._-], not starting with
  /// '.'. The segment lives in /dev/shm/<name>.
  std::string name = "spectator";

  /// Maximum number of distinct meters (Ids). The hash table gets at least
  /// 4/3 as many slots, rounded up to a power of two.
  std::uint32_t max_meters = 8192;

  /// Number of 8-byte value words. A counter takes 8 (one cache line), a
  /// timer or distribution summary 16, a gauge 8, a percentile meter 576.
  std::uint64_t value_words = std::uint64_t{1} << 20;

  /// Permission bits of a segment this process creates (umask is ignored).
  /// Must include 0600; add 0060 to share the segment with a group.
  std::uint32_t mode = 0600;

  /// Group to share the segment with: a group name or a numeric gid; empty
  /// for none. When this process creates the segment, the file gets this
  /// group (the process must be a member of it, or root). When it attaches,
  /// a segment owned by another user is accepted only if its group is this
  /// one, the group may read and write it, and others may not write it;
  /// without a group only segments of this process's own uid are accepted.
  std::string group;

  /// Create the segment when it does not exist yet. When false, a missing
  /// segment is an Error.
  bool create_if_missing = true;

  /// Where log lines go. Empty: stderr, warnings and errors only.
  Logger logger;
};

}  // namespace spectator
