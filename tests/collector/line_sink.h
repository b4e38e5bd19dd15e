#pragma once

// A sink for in-process collector tests: keeps every measurement as the line
// the stdout sink would print, and can pretend to be down.

#include <algorithm>
#include <string>
#include <vector>

#include "measurements.h"
#include "sinks.h"

namespace spectator::collector {

class LineSink : public Sink {
 public:
  BatchOutcome Publish(const CommonTags& common, const Measurement* begin, const Measurement* end,
                       Deadline) override {
    ++batches;
    BatchOutcome out;
    if (down) {
      out.kind = BatchOutcome::Kind::kRetryable;
      return out;
    }
    IdParser ids;
    for (const Measurement* m = begin; m != end; ++m) {
      if (const IdView* id = ids.Parse(m->id)) lines.push_back(FormatLine(common, *id, *m));
    }
    out.kind = BatchOutcome::Kind::kAccepted;
    out.sent = static_cast<std::size_t>(end - begin);
    return out;
  }
  // The lines of user meters (self-metrics left out), sorted.
  std::vector<std::string> UserLines() const {
    std::vector<std::string> out;
    for (const auto& l : lines) {
      if (l.rfind("spectator.", 0) != 0 && l.rfind("http.req", 0) != 0) out.push_back(l);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  bool Has(const std::string& line) const {
    return std::find(lines.begin(), lines.end(), line) != lines.end();
  }
  bool HasPrefix(const std::string& prefix) const {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.rfind(prefix, 0) == 0; });
  }

  std::vector<std::string> lines;
  int batches = 0;
  bool down = false;
};

}  // namespace spectator::collector
