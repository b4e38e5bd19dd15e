// libFuzzer target (clang builds only; see CMakeLists.txt): the reader and
// the worker side on a segment patched with arbitrary bytes after attach. The
// input is a list of patches: a 2-byte little-endian offset (see below)
// followed by up to 8 bytes written there. Aborts when a scan
// delivers an impossible reading; the sanitizers catch the rest.
//
// The segment is /dev/shm/spectator-libfuzzer-<pid>, removed at exit (not
// after a crash: remove it by hand then).
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "fuzz_setup.h"
#include "spectator/internal/reader.h"
#include "spectator/spectator.h"

namespace {

using namespace spectator;

struct State {
  std::string name;
  std::unique_ptr<Registry> registry;
  char* base = nullptr;
  std::size_t size = 0;
  std::uint32_t slots = 0;
  std::string pristine;
};

std::string g_name;
void RemoveSegment() { Registry::Remove(g_name); }

State& Get() {
  static State* state = [] {
    auto* s = new State;
    s->name = g_name = "spectator-libfuzzer-" + std::to_string(::getpid());
    Registry::Remove(s->name);
    SegmentOptions o;
    o.name = s->name;
    o.max_meters = 16;
    o.value_words = 4096;
    o.logger = [](LogLevel, std::string_view) {};
    s->registry = std::make_unique<Registry>(o);
    std::atexit(&RemoveSegment);
    reliability::PopulateEveryMeterType(*s->registry);
    s->slots = s->registry->Info().table_slots;
    s->size = s->registry->Info().size_bytes;
    const int fd = ::open(("/dev/shm/" + s->name).c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    void* p = ::mmap(nullptr, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) std::abort();
    s->base = static_cast<char*>(p);
    s->pristine.assign(s->base, s->size);
    return s;
  }();
  return *state;
}

void Scan(State& s, SegmentReader& reader, SegmentReader::Mode mode) {
  const auto stats =
      reader.Scan(mode, std::chrono::system_clock::now(), [&](const MeterReading& r) {
        IdView view;
        if (!ParseCanonicalId(r.id, &view) || r.slot >= s.slots) std::abort();
        if (mode == SegmentReader::Mode::kTake) reader.Commit(r);
      });
  if (stats.meters + stats.corrupt > s.slots) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  State& s = Get();
  std::memcpy(s.base, s.pristine.data(), s.size);
  for (std::size_t i = 0; i + 2 < size;) {
    std::uint16_t offset;
    std::memcpy(&offset, data + i, 2);
    i += 2;
    // Odd offsets address bytes; even ones address whole 8-byte words, so
    // that the fuzzer reaches every field with few bits.
    const std::size_t at = (offset & 1) != 0 ? offset % s.size : (offset / 2 * 8) % s.size;
    const std::size_t n = std::min({std::size_t{8}, size - i, s.size - at});
    std::memcpy(s.base + at, data + i, n);
    i += n;
  }
  CollectorLock lock(s.registry->segment_name());
  SegmentReader reader(*s.registry, lock);
  Scan(s, reader, SegmentReader::Mode::kPeek);
  Scan(s, reader, SegmentReader::Mode::kTake);
  (void)reader.Info();
  Registry& r = *s.registry;
  r.GetCounter("fz.counter", {{"status", "200"}}).Increment();
  r.GetPercentileTimer("fz.ptimer").Record(std::chrono::milliseconds(15));
  r.GetTimer("fz.new").Record(std::chrono::seconds(1));
  Scan(s, reader, SegmentReader::Mode::kTake);
  return 0;
}
