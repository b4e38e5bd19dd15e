#include "sinks.h"

#include <string>

#include "payload.h"

namespace spectator::collector {

BatchOutcome StdoutSink::Publish(const CommonTags& common, const Measurement* begin,
                                 const Measurement* end, Deadline /*deadline*/) {
  BatchOutcome out;
  IdParser ids;
  std::string text;
  for (const Measurement* m = begin; m != end; ++m) {
    const IdView* id = ids.Parse(m->id);
    if (id == nullptr) continue;
    text += FormatLine(common, *id, *m);
    text += '\n';
  }
  const bool written =
      std::fwrite(text.data(), 1, text.size(), out_) == text.size() && std::fflush(out_) == 0;
  // A closed or full stdout is not worth retrying: count the batch as dropped.
  out.kind = written ? BatchOutcome::Kind::kAccepted : BatchOutcome::Kind::kRejected;
  const auto n = static_cast<std::size_t>(end - begin);
  (written ? out.sent : out.dropped) = n;
  if (!written) out.drop_reason = DropReason::kOther;
  return out;
}

BatchOutcome AtlasSink::Publish(const CommonTags& common, const Measurement* begin,
                                const Measurement* end, Deadline deadline) {
  RetryPolicy retry = retry_;
  retry.deadline = deadline;
  // One payload buffer per thread, reused batch after batch (a 10000-
  // measurement batch is ~1.3 MB of JSON).
  thread_local std::string json;
  BuildPayload(common, begin, end, &json);
  return PublishBatch(client_, uri_, json, static_cast<std::size_t>(end - begin), retry);
}

}  // namespace spectator::collector
