#pragma once

namespace prefork {

/// One line on stderr: "prefork-server[PID]: message". Unbuffered, so lines
/// of the master and its workers interleave whole.
void Log(const char* format, ...) __attribute__((format(printf, 1, 2)));

}  // namespace prefork
