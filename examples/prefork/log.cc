#include "log.h"

#include <unistd.h>

#include <cstdarg>
#include <cstdio>

namespace prefork {

void Log(const char* format, ...) {
  // Formatted into one buffer and written with one write(), so that lines
  // from several processes sharing stderr never mix.
  char line[512];
  int n = std::snprintf(line, sizeof line, "prefork-server[%d]: ", static_cast<int>(::getpid()));
  va_list args;
  va_start(args, format);
  const int m =
      std::vsnprintf(line + n, sizeof line - static_cast<std::size_t>(n) - 1, format, args);
  va_end(args);
  const int limit = static_cast<int>(sizeof line) - 2;  // room for the newline
  if (m > 0) n = n + m < limit ? n + m : limit;
  line[n++] = '\n';
  const ssize_t ignored = ::write(STDERR_FILENO, line, static_cast<std::size_t>(n));
  static_cast<void>(ignored);
}

}  // namespace prefork
