#pragma once

#include <cstdlib>

namespace spectator::testing {

/// A positive integer from the environment, or `fallback` when the variable
/// is unset or not a positive number. Lets the long tests and operators scale
/// round and iteration counts (SPECTATOR_RELIABILITY_ROUNDS, ...) without
/// recompiling.
inline long EnvCount(const char* name, long fallback) {
  const char* s = std::getenv(name);
  if (s == nullptr || *s == '\0') return fallback;
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  return (end != s && *end == '\0' && v > 0) ? v : fallback;
}

}  // namespace spectator::testing
