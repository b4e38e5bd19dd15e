#pragma once

// The Atlas publish payload (docs/protocol.md, "Publish payload"): a string table,
// then every measurement as tag-index pairs, op and value.

#include <string>

#include "measurements.h"

namespace spectator::collector {

/// The JSON text of one batch. Measurements whose Id does not parse (it was
/// validated by the reader, so this does not happen) are left out.
std::string BuildPayload(const CommonTags& common, const Measurement* begin,
                         const Measurement* end);

/// The same into `*out` (replaced), reusing its capacity. Thread safety:
/// each thread keeps its own caches (interned strings, merged tags by
/// meter slot), so calls on different threads are independent.
void BuildPayload(const CommonTags& common, const Measurement* begin, const Measurement* end,
                  std::string* out);

}  // namespace spectator::collector
