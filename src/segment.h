#pragma once

#include <memory>
#include <string>

#include "id_table.h"
#include "spectator/options.h"

namespace spectator::internal {

/// Throws Error(kInvalidArgument) unless `name` is a safe segment name:
/// 1..200 characters from [A-Za-z0-9._-], not starting with '.'.
void ValidateSegmentName(const std::string& name);

/// A mapped, validated segment. Owns the mapping: unmapped on destruction.
class Segment {
 public:
  /// Creates or attaches as SegmentOptions says (see registry.h). A segment
  /// with our magic that this library cannot use (another layout version, an
  /// inconsistent header or size) is replaced, with one log line, when no
  /// process has it open (the holders' lock, process.h), and refused when one
  /// has. The mapping's descriptor keeps the shared holders' lock for the
  /// life of the mapping, in this process and every child forked from it.
  /// \throw Error with a message that names the segment and both values of
  /// whatever did not match, or (kNoSpace) the space it needed and found.
  static std::unique_ptr<Segment> Open(const SegmentOptions& options, const Logger& log);
  ~Segment();

  const TableView& view() const { return view_; }
  const std::string& name() const { return name_; }
  std::uint64_t size() const { return size_; }

  struct Mapping;  // Boost.Interprocess objects, kept out of this header

 private:
  Segment() = default;
  std::unique_ptr<Mapping> mapping_;
  TableView view_;
  std::string name_;
  std::uint64_t size_ = 0;
};

/// Removes /dev/shm/<name>; false when there was nothing to remove.
bool RemoveSegment(const std::string& name) noexcept;

/// Default logger: warnings and errors to stderr, prefixed "spectator: ".
Logger DefaultLogger();

}  // namespace spectator::internal
