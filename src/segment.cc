#include "segment.h"

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "spectator/error.h"

namespace spectator::internal {

namespace bip = boost::interprocess;

struct Segment::Mapping {
  bip::shared_memory_object shm;
  bip::mapped_region region;
};

namespace {

// How long an attacher waits for a creator that is still initialising.
constexpr auto kInitTimeout = std::chrono::seconds(2);

std::string Quote(const std::string& name) { return "'" + name + "' (/dev/shm/" + name + ")"; }

std::uint64_t NextPowerOfTwo(std::uint64_t v) {
  std::uint64_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

std::uint64_t NowUnixNs() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

[[noreturn]] void ThrowFromBoost(const std::string& name, const bip::interprocess_exception& e,
                                 const char* what) {
  const int native = e.get_native_error();
  if (native == EACCES || native == EPERM) {
    throw Error(ErrorCode::kPermission,
                "segment " + Quote(name) + ": " + what + ": permission denied");
  }
  if (native == ELOOP) {
    throw Error(ErrorCode::kPermission,
                "segment " + Quote(name) + ": " + what + ": it is a symbolic link; refusing it");
  }
  throw Error(ErrorCode::kSystem, "segment " + Quote(name) + ": " + what + ": " +
                                      (native != 0 ? std::strerror(native) : e.what()));
}

// Checks owner and type of the opened object, then returns its size.
std::uint64_t CheckFile(const std::string& name, int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    throw Error(ErrorCode::kSystem, "segment " + Quote(name) + ": fstat: " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    throw Error(ErrorCode::kForeignSegment, "segment " + Quote(name) + " is not a regular file");
  }
  if (st.st_uid != ::geteuid()) {
    throw Error(ErrorCode::kPermission,
                "segment " + Quote(name) + " is owned by uid " + std::to_string(st.st_uid) +
                    ", not by this process's uid " + std::to_string(::geteuid()) +
                    "; refusing a segment another user controls");
  }
  return static_cast<std::uint64_t>(st.st_size);
}

std::string Hex(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Validates the header of an attached segment of `file_size` bytes.
void CheckHeader(const std::string& name, const SegmentHeader& h, std::uint64_t file_size) {
  if (h.layout_version != kLayoutVersion) {
    throw Error(ErrorCode::kVersionMismatch,
                "segment " + Quote(name) + " has layout version " +
                    std::to_string(h.layout_version) + ", this library uses version " +
                    std::to_string(kLayoutVersion) +
                    "; stop its users and remove it, or use the matching library");
  }
  Layout layout;
  if (h.header_size != sizeof(SegmentHeader) || h.entry_size != sizeof(Entry) ||
      !ComputeLayout(h.max_meters, h.value_words, &layout) || layout.table_slots != h.table_slots ||
      layout.entries_offset != h.entries_offset || layout.values_offset != h.values_offset ||
      layout.total_size != h.total_size) {
    throw Error(ErrorCode::kSizeMismatch, "segment " + Quote(name) +
                                              " has an inconsistent header (max_meters " +
                                              std::to_string(h.max_meters) + ", value_words " +
                                              std::to_string(h.value_words) + ", table_slots " +
                                              std::to_string(h.table_slots) + ", total_size " +
                                              std::to_string(h.total_size) + "); refusing it");
  }
  if (h.total_size != file_size) {
    throw Error(ErrorCode::kSizeMismatch,
                "segment " + Quote(name) + " header says " + std::to_string(h.total_size) +
                    " bytes but the file has " + std::to_string(file_size) + "; refusing it");
  }
}

}  // namespace

bool ComputeLayout(std::uint32_t max_meters, std::uint64_t value_words, Layout* out) {
  if (max_meters == 0 || max_meters > kMaxMeters) return false;
  if (value_words < detail::layout::kWordsPerLine || value_words > kMaxValueWords) return false;
  // At least 4/3 slots per meter, so an EMPTY slot always ends a probe.
  const std::uint64_t slots = NextPowerOfTwo(std::uint64_t{max_meters} + max_meters / 3 + 1);
  out->table_slots = static_cast<std::uint32_t>(slots);
  out->entries_offset = sizeof(SegmentHeader);
  out->values_offset = out->entries_offset + slots * sizeof(Entry);
  out->total_size = out->values_offset + value_words * sizeof(Word);
  return true;
}

void ValidateSegmentName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 200 && name[0] != '.';
  for (char c : name) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-');
  }
  if (!ok) {
    throw Error(ErrorCode::kInvalidArgument,
                "invalid segment name '" + name +
                    "': use 1..200 characters from [A-Za-z0-9._-], not starting with '.'");
  }
}

Logger DefaultLogger() {
  return [](LogLevel level, std::string_view message) {
    if (level < LogLevel::kWarning) return;
    std::fprintf(stderr, "spectator: %s: %.*s\n", level == LogLevel::kError ? "error" : "warning",
                 static_cast<int>(message.size()), message.data());
  };
}

Segment::~Segment() = default;

bool RemoveSegment(const std::string& name) noexcept {
  return bip::shared_memory_object::remove(name.c_str());
}

std::unique_ptr<Segment> Segment::Open(const SegmentOptions& options, const Logger& log) {
  ValidateSegmentName(options.name);
  Layout wanted;
  if (!ComputeLayout(options.max_meters, options.value_words, &wanted)) {
    throw Error(ErrorCode::kInvalidArgument,
                "segment '" + options.name + "': max_meters must be 1.." +
                    std::to_string(kMaxMeters) + " and value_words 8.." +
                    std::to_string(kMaxValueWords));
  }
  if ((options.mode & ~0777U) != 0 || (options.mode & 0600U) != 0600U) {
    throw Error(ErrorCode::kInvalidArgument,
                "segment '" + options.name + "': mode must be within 0777 and include 0600");
  }

  std::unique_ptr<Segment> seg(new Segment());
  seg->name_ = options.name;
  seg->mapping_ = std::make_unique<Mapping>();
  const char* name = options.name.c_str();

  // Create-or-attach, retried because another process may remove the segment
  // between our failed create and our open.
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (options.create_if_missing) {
      bool made = false;
      try {
        bip::permissions perm(options.mode);
        bip::shared_memory_object shm(bip::create_only, name, bip::read_write, perm);
        made = true;
        const int fd = shm.get_mapping_handle().handle;
        ::fchmod(fd, options.mode);  // the requested mode, whatever the umask
        shm.truncate(static_cast<bip::offset_t>(wanted.total_size));
        bip::mapped_region region(shm, bip::read_write);
        InitializeSegment(region.get_address(), options.max_meters, options.value_words, wanted,
                          NowUnixNs());
        seg->mapping_->shm.swap(shm);
        seg->mapping_->region.swap(region);
        seg->size_ = wanted.total_size;
        seg->created_ = true;
        seg->view_ = ViewOf(seg->mapping_->region.get_address());
        return seg;
      } catch (const bip::interprocess_exception& e) {
        if (made) bip::shared_memory_object::remove(name);  // do not leave a half-made segment
        if (e.get_error_code() != bip::already_exists_error) {
          ThrowFromBoost(options.name, e, "cannot create");
        }
      }
    }

    bip::shared_memory_object shm;
    try {
      bip::shared_memory_object opened(bip::open_only, name, bip::read_write);
      shm.swap(opened);
    } catch (const bip::interprocess_exception& e) {
      if (e.get_error_code() == bip::not_found_error) {
        if (options.create_if_missing) continue;  // removed meanwhile: create it
        throw Error(ErrorCode::kSystem, "segment " + Quote(options.name) + " does not exist");
      }
      ThrowFromBoost(options.name, e, "cannot open");
    }
    const int fd = shm.get_mapping_handle().handle;

    // The creator may still be sizing or initialising it: wait, bounded.
    const auto deadline = std::chrono::steady_clock::now() + kInitTimeout;
    std::uint64_t size = CheckFile(options.name, fd);
    while (size < sizeof(SegmentHeader) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      size = CheckFile(options.name, fd);
    }
    if (size < sizeof(SegmentHeader)) {
      throw Error(ErrorCode::kNotInitialised,
                  "segment " + Quote(options.name) + " has " + std::to_string(size) +
                      " bytes, less than a header; its creator may have died. Remove it");
    }
    bip::mapped_region region;
    try {
      bip::mapped_region mapped(shm, bip::read_write, 0, static_cast<std::size_t>(size));
      region.swap(mapped);
    } catch (const bip::interprocess_exception& e) {
      ThrowFromBoost(options.name, e, "cannot map");
    }
    auto* h = static_cast<SegmentHeader*>(region.get_address());
    for (;;) {
      // relaxed: the magic is only compared; the header fields are read after
      // the acquire load of `ready` below.
      const std::uint64_t magic = h->magic.load(std::memory_order_relaxed);
      if (magic != 0 && magic != kMagic) {
        throw Error(ErrorCode::kForeignSegment,
                    "segment " + Quote(options.name) + " is not a spectator-shm segment (magic " +
                        Hex(magic) + ", expected " + Hex(kMagic) + "); refusing to touch it");
      }
      // acquire: pairs with the release store in InitializeSegment.
      if (h->ready.load(std::memory_order_acquire) == kReadyValue && magic == kMagic) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        throw Error(ErrorCode::kNotInitialised,
                    "segment " + Quote(options.name) +
                        " was never initialised; its creator may have died. Remove it");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    CheckHeader(options.name, *h, size);
    if (h->max_meters != options.max_meters || h->value_words != options.value_words) {
      if (log) {
        log(LogLevel::kInfo, "segment '" + options.name + "' exists with max_meters " +
                                 std::to_string(h->max_meters) + " and value_words " +
                                 std::to_string(h->value_words) + " (asked for " +
                                 std::to_string(options.max_meters) + " and " +
                                 std::to_string(options.value_words) + "); using the segment's");
      }
    }
    seg->mapping_->shm.swap(shm);
    seg->mapping_->region.swap(region);
    seg->size_ = size;
    seg->view_ = ViewOf(seg->mapping_->region.get_address());
    return seg;
  }
  throw Error(ErrorCode::kSystem, "segment " + Quote(options.name) +
                                      ": could not create or open it (it kept disappearing)");
}

}  // namespace spectator::internal
