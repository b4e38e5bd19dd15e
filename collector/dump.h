#pragma once

// --dump: what a segment holds, printed without changing a byte of it.

#include <chrono>
#include <cstdio>

#include "spectator/internal/reader.h"

namespace spectator::collector {

/// Prints the segment's header and every meter with its current values
/// (pending + live, what the next step would publish). Only peeks: `reader`
/// needs no collector lock, and nothing in the segment is written.
void Dump(SegmentReader& reader, std::FILE* out, std::chrono::system_clock::time_point now);

}  // namespace spectator::collector
