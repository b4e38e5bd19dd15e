#pragma once

#include <cstddef>
#include <string_view>

#include "spectator/id.h"

namespace spectator::internal {

/// CanonicalizeId without allocating: writes the canonical form into
/// out[0 .. kMaxIdBytes) and its length into *len. The registration path
/// uses it so that looking up an existing Id allocates nothing.
IdError CanonicalizeInto(std::string_view name, TagList tags, char* out, std::size_t* len);

}  // namespace spectator::internal
