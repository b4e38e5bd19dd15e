#include "segment.h"

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <thread>
#include <vector>

#include "process.h"
#include "spectator/error.h"

namespace spectator::internal {

namespace bip = boost::interprocess;

struct Segment::Mapping {
  bip::shared_memory_object shm;
  bip::mapped_region region;
};

namespace {

// How long an opener waits for another process that is replacing a stale
// segment (it holds the holders' lock exclusively for microseconds), and how
// long a process that found a stale segment waits for other openers of it to
// let go of their shared lock before it concludes that somebody uses it.
constexpr auto kReplaceTimeout = std::chrono::seconds(2);
constexpr auto kStaleOpenersTimeout = std::chrono::milliseconds(200);

std::string ShmPath(const std::string& name) { return "/dev/shm/" + name; }

std::string Quote(const std::string& name) { return "'" + name + "' (" + ShmPath(name) + ")"; }

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

std::string Mib(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
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

// The gid that SegmentOptions::group names (a group name or a number).
bool ResolveGroup(const std::string& group, gid_t* out) {
  if (group.empty()) return false;
  if (std::all_of(group.begin(), group.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    *out = static_cast<gid_t>(std::strtoul(group.c_str(), nullptr, 10));
    return true;
  }
  std::vector<char> buf(16384);
  struct group gr {};
  struct group* found = nullptr;
  if (::getgrnam_r(group.c_str(), &gr, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    return false;
  }
  *out = found->gr_gid;
  return true;
}

bool IsMemberOf(gid_t gid) {
  if (::getegid() == gid) return true;
  const int n = ::getgroups(0, nullptr);
  if (n <= 0) return false;
  std::vector<gid_t> groups(static_cast<std::size_t>(n));
  const int got = ::getgroups(n, groups.data());
  return got > 0 && std::find(groups.begin(), groups.begin() + got, gid) != groups.begin() + got;
}

// Checks type and ownership of the opened object, then returns its stat.
// A segment of another uid is accepted only when the caller named its group
// and that group shares it (SegmentOptions::group).
struct stat CheckFile(const std::string& name, int fd, const SegmentOptions& options) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    throw Error(ErrorCode::kSystem, "segment " + Quote(name) + ": fstat: " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    throw Error(ErrorCode::kForeignSegment, "segment " + Quote(name) + " is not a regular file");
  }
  if (st.st_uid == ::geteuid()) return st;
  gid_t gid = 0;
  const bool shared = ResolveGroup(options.group, &gid) && st.st_gid == gid && IsMemberOf(gid) &&
                      (st.st_mode & 0060) == 0060 && (st.st_mode & 0002) == 0;
  if (!shared) {
    throw Error(ErrorCode::kPermission,
                "segment " + Quote(name) + " is owned by uid " + std::to_string(st.st_uid) +
                    ", not by this process's uid " + std::to_string(::geteuid()) +
                    (options.group.empty()
                         ? std::string("; refusing a segment another user controls (to share one, "
                                       "create it with a group and mode 0660 and name that group)")
                         : "; it is not shared with group '" + options.group +
                               "' (group read-write, not writable by others, and this process "
                               "a member)"));
  }
  return st;
}

std::string Hex(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// What is wrong with a segment that has our magic, or nothing.
struct Problem {
  ErrorCode code = ErrorCode::kSystem;
  std::string what;       // "has layout version 1, this library uses version 2"
  bool counts_known = false;  // the header is readable: `meters` means something
  std::uint64_t meters = 0;
};

std::optional<Problem> CheckHeader(const SegmentHeader& h, std::uint64_t file_size) {
  if (h.layout_version != kLayoutVersion) {
    // Other versions keep magic and version in place; their meter count does
    // not have to, so it is not reported.
    return Problem{ErrorCode::kVersionMismatch,
                   "has layout version " + std::to_string(h.layout_version) +
                       ", this library uses version " + std::to_string(kLayoutVersion)};
  }
  // acquire: pairs with the release store in InitializeSegment (a segment is
  // only linked under its name once ready, so this is a consistency check).
  if (h.ready.load(std::memory_order_acquire) != kReadyValue) {
    return Problem{ErrorCode::kNotInitialised, "was never initialised (its creator died)"};
  }
  Layout layout;
  if (h.header_size != sizeof(SegmentHeader) || h.entry_size != sizeof(Entry) ||
      !ComputeLayout(h.max_meters, h.value_words, &layout) || layout.table_slots != h.table_slots ||
      layout.entries_offset != h.entries_offset || layout.values_offset != h.values_offset ||
      layout.reserve_meters != h.reserve_meters || layout.reserve_words != h.reserve_words ||
      layout.ids_offset != h.ids_offset || layout.id_bytes != h.id_bytes ||
      layout.reserve_id_bytes != h.reserve_id_bytes || layout.total_size != h.total_size) {
    return Problem{ErrorCode::kSizeMismatch,
                   "has an inconsistent header (max_meters " + std::to_string(h.max_meters) +
                       ", value_words " + std::to_string(h.value_words) + ", table_slots " +
                       std::to_string(h.table_slots) + ", total_size " +
                       std::to_string(h.total_size) + ")"};
  }
  // relaxed: a statistic for the log line.
  const std::uint64_t meters = h.meters.load(std::memory_order_relaxed);
  if (h.total_size != file_size) {
    return Problem{ErrorCode::kSizeMismatch,
                   "header says " + std::to_string(h.total_size) + " bytes but the file has " +
                       std::to_string(file_size),
                   true, meters};
  }
  return std::nullopt;
}

// Layout version 1 took no holders' lock: before replacing such a segment,
// look for a process that still maps it (a draining worker of the previous
// deployment). /proc/<pid>/maps names the file and its inode. Processes in
// other pid namespaces, or of other users, are not visible here.
bool MappedByAnotherProcess(const std::string& path, ino_t inode) {
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return false;
  const std::string self = std::to_string(::getpid());
  const std::string inode_text = " " + std::to_string(inode) + " ";
  bool found = false;
  while (dirent* d = ::readdir(proc)) {
    if (d->d_name[0] < '0' || d->d_name[0] > '9' || self == d->d_name) continue;
    std::ifstream maps(std::string("/proc/") + d->d_name + "/maps");
    std::string line;
    while (!found && std::getline(maps, line)) {
      found = line.find(inode_text) != std::string::npos && line.find(path) != std::string::npos;
    }
    if (found) break;
  }
  ::closedir(proc);
  return found;
}

// How an attempt to attach ended when it did not attach.
enum class AttachResult { kAttached, kAbsent, kRetry };

}  // namespace

bool ComputeLayout(std::uint32_t max_meters, std::uint64_t value_words, Layout* out) {
  if (max_meters == 0 || max_meters > kMaxMeters) return false;
  if (value_words < detail::layout::kWordsPerLine || value_words > kMaxValueWords) return false;
  // The reserve for overflow meters (segment_layout.h invariant 7): one entry
  // per 16 meters (at least 16), two value lines and 64 arena bytes each, and
  // the nine per-type overflow meters.
  const std::uint64_t reserve = std::max<std::uint64_t>(16, max_meters / 16);
  out->reserve_meters = static_cast<std::uint32_t>(reserve + kPerTypeMeters);
  out->reserve_words = reserve * 2 * detail::layout::kWordsPerLine + kPerTypeWords;
  out->id_bytes = std::uint64_t{max_meters} * kIdBytesPerMeter;
  out->reserve_id_bytes = reserve * 64 + kPerTypeIdBytes;
  // At least 4/3 slots per entry, so an EMPTY slot always ends a probe.
  const std::uint64_t entries = std::uint64_t{max_meters} + out->reserve_meters;
  const std::uint64_t slots = NextPowerOfTwo(entries + entries / 3 + 1);
  out->table_slots = static_cast<std::uint32_t>(slots);
  out->entries_offset = sizeof(SegmentHeader);
  // Entries are 32 bytes and slots a power of two >= 32: values start on a line.
  out->values_offset = out->entries_offset + slots * sizeof(Entry);
  out->ids_offset = out->values_offset + (value_words + out->reserve_words) * sizeof(Word);
  out->total_size = out->ids_offset + out->id_bytes + out->reserve_id_bytes;
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

namespace {

// Creates the segment under a temporary name (never a valid segment name: it
// starts with '.'), sizes it, reserves every page (posix_fallocate: tmpfs
// allocates pages on first touch, and a touch that finds /dev/shm full is a
// SIGBUS in whichever process makes it), initialises it, takes the holders'
// lock, and only then links it under its name, atomically and only if the
// name is free. So nobody ever sees a half-made segment, and one that does
// not fit is never seen at all. Returns false when another process linked
// its segment first.
bool Create(const SegmentOptions& options, const Layout& wanted, Segment::Mapping* out) {
  static std::atomic<unsigned> counter{0};
  // relaxed: only uniqueness within the process matters.
  const std::string temp = ".spectator-new-" + std::to_string(::getpid()) + "-" +
                           std::to_string(counter.fetch_add(1, std::memory_order_relaxed)) + "-" +
                           options.name;
  gid_t gid = 0;
  const bool with_group = !options.group.empty();
  if (with_group && !ResolveGroup(options.group, &gid)) {
    throw Error(ErrorCode::kInvalidArgument,
                "segment '" + options.name + "': no such group '" + options.group + "'");
  }
  bip::shared_memory_object shm;
  try {
    bip::shared_memory_object made(bip::create_only, temp.c_str(), bip::read_write,
                                   bip::permissions(options.mode));
    shm.swap(made);
  } catch (const bip::interprocess_exception& e) {
    ThrowFromBoost(options.name, e, "cannot create");
  }
  struct Cleanup {
    const std::string& name;
    bool armed = true;
    ~Cleanup() {
      if (armed) bip::shared_memory_object::remove(name.c_str());
    }
  } cleanup{temp};
  const int fd = shm.get_mapping_handle().handle;
  ::fchmod(fd, options.mode);  // the requested mode, whatever the umask
  if (with_group && ::fchown(fd, static_cast<uid_t>(-1), gid) != 0) {
    throw Error(ErrorCode::kPermission, "segment " + Quote(options.name) +
                                            ": cannot give it to group '" + options.group +
                                            "': " + std::strerror(errno));
  }
  try {
    shm.truncate(static_cast<bip::offset_t>(wanted.total_size));
  } catch (const bip::interprocess_exception& e) {
    ThrowFromBoost(options.name, e, "cannot size");
  }
  int rc;
  do {
    rc = ::posix_fallocate(fd, 0, static_cast<off_t>(wanted.total_size));
  } while (rc == EINTR);
  if (rc == ENOSPC || rc == EFBIG) {
    struct statvfs fs {};
    const std::string left =
        ::fstatvfs(fd, &fs) == 0
            ? Mib(static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize) + " free of " +
                  Mib(static_cast<std::uint64_t>(fs.f_blocks) * fs.f_frsize)
            : std::string("free space unknown");
    throw Error(ErrorCode::kNoSpace,
                "segment " + Quote(options.name) + " needs " + Mib(wanted.total_size) + " (" +
                    std::to_string(wanted.total_size) + " bytes) but /dev/shm has only " + left +
                    "; not created. Make /dev/shm larger (e.g. docker --shm-size, a Kubernetes "
                    "emptyDir with medium Memory) or ask for fewer meters or value words");
  }
  if (rc != 0) {
    throw Error(ErrorCode::kSystem, "segment " + Quote(options.name) +
                                        ": cannot reserve its pages: " + std::strerror(rc));
  }
  bip::mapped_region region;
  try {
    bip::mapped_region mapped(shm, bip::read_write);
    region.swap(mapped);
  } catch (const bip::interprocess_exception& e) {
    ThrowFromBoost(options.name, e, "cannot map");
  }
  InitializeSegment(region.get_address(), options.max_meters, options.value_words, wanted,
                    NowUnixNs());
  if (const int lock_error = LockShared(fd); lock_error != 0) {
    throw Error(ErrorCode::kSystem, "segment " + Quote(options.name) +
                                        ": cannot lock it: " + std::strerror(lock_error));
  }
  if (::link(ShmPath(temp).c_str(), ShmPath(options.name).c_str()) != 0) {
    if (errno == EEXIST) return false;  // another process was first: attach to theirs
    throw Error(ErrorCode::kSystem, "segment " + Quote(options.name) +
                                        ": cannot publish it: " + std::strerror(errno));
  }
  // The name holds the file now; the temporary name goes.
  out->shm.swap(shm);
  out->region.swap(region);
  return true;
}


// One attempt to attach to the segment under its name. A segment with our
// magic that this library cannot use (another layout version, an
// inconsistent header or size) is replaced when nobody has it open: the
// caller then creates a fresh one. A file without our magic is never touched.
AttachResult Attach(const SegmentOptions& options, const Logger& log, Segment::Mapping* out,
                    std::uint64_t* size_out) {
  const std::string& name = options.name;
  bip::shared_memory_object shm;
  try {
    bip::shared_memory_object opened(bip::open_only, name.c_str(), bip::read_write);
    shm.swap(opened);
  } catch (const bip::interprocess_exception& e) {
    if (e.get_error_code() == bip::not_found_error) return AttachResult::kAbsent;
    ThrowFromBoost(name, e, "cannot open");
  }
  const int fd = shm.get_mapping_handle().handle;
  const struct stat st = CheckFile(name, fd, options);
  // The holders' lock first: while we hold it, nobody replaces the file.
  const int lock_error = LockShared(fd);
  if (lock_error == EAGAIN) return AttachResult::kRetry;  // being replaced right now
  if (lock_error != 0) {
    throw Error(ErrorCode::kSystem,
                "segment " + Quote(name) + ": cannot lock it: " + std::strerror(lock_error));
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  std::uint64_t magic = 0;
  bip::mapped_region region;
  if (size >= sizeof magic) {
    try {
      bip::mapped_region mapped(shm, bip::read_write, 0, static_cast<std::size_t>(size));
      region.swap(mapped);
    } catch (const bip::interprocess_exception& e) {
      ThrowFromBoost(name, e, "cannot map");
    }
    // relaxed: only compared; the header is checked after `ready` is acquired.
    magic = static_cast<SegmentHeader*>(region.get_address())->magic.load(std::memory_order_relaxed);
  }
  if (magic != kMagic) {
    throw Error(ErrorCode::kForeignSegment,
                "segment " + Quote(name) + " is not a spectator-shm segment (" +
                    std::to_string(size) + " bytes, magic " + Hex(magic) + ", expected " +
                    Hex(kMagic) + "); refusing to touch it");
  }
  std::optional<Problem> problem;
  if (size < sizeof(SegmentHeader)) {
    problem = Problem{ErrorCode::kSizeMismatch,
                      "has " + std::to_string(size) + " bytes, less than a header"};
  } else {
    problem = CheckHeader(*static_cast<const SegmentHeader*>(region.get_address()), size);
  }
  if (!problem) {
    const auto& h = *static_cast<const SegmentHeader*>(region.get_address());
    if ((h.max_meters != options.max_meters || h.value_words != options.value_words) && log) {
      log(LogLevel::kInfo, "segment '" + name + "' exists with max_meters " +
                               std::to_string(h.max_meters) + " and value_words " +
                               std::to_string(h.value_words) + " (asked for " +
                               std::to_string(options.max_meters) + " and " +
                               std::to_string(options.value_words) + "); using the segment's");
    }
    out->shm.swap(shm);
    out->region.swap(region);
    *size_out = size;
    return AttachResult::kAttached;
  }

  // A stale segment of ours. Replace it only when nobody uses it.
  std::string refused = "segment " + Quote(name) + " " + problem->what;
  const std::uint32_t version =
      size >= sizeof(SegmentHeader)
          ? static_cast<const SegmentHeader*>(region.get_address())->layout_version
          : 0;
  if (!options.create_if_missing) {
    throw Error(problem->code, refused + "; not replacing it (this open may not create)");
  }
  // Unmap, drop our shared lock, then ask for the exclusive one. Other
  // openers that found the same stale file are about to do the same: give
  // them a moment before concluding that a live process holds it. (Openers
  // of this build map a segment only while they hold the shared lock, so
  // under the exclusive lock only a build without locks can still map it.)
  {
    bip::mapped_region unmapped;
    region.swap(unmapped);
  }
  Unlock(fd);
  const auto give_up = std::chrono::steady_clock::now() + kStaleOpenersTimeout;
  while (!TryLockExclusive(fd)) {
    if (IsLockedExclusively(fd)) return AttachResult::kRetry;  // another opener replaces it
    if (std::chrono::steady_clock::now() > give_up) {
      throw Error(problem->code, refused +
                                     "; it is open in another process (a server or collector "
                                     "of that build), so it is left alone: stop them, or use "
                                     "the matching library");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (version == 1 && MappedByAnotherProcess(ShmPath(name), st.st_ino)) {
    throw Error(problem->code, refused +
                                   "; a process of layout version 1 still maps it, so it is left "
                                   "alone: stop it, or use the matching library");
  }
  // Still the file under the name? (Another replacer may have swapped it
  // before we got the lock.) Nobody else can unlink it now: that takes this
  // exclusive lock, and a creator links only where the name is free.
  struct stat now {};
  if (::stat(ShmPath(name).c_str(), &now) != 0 || now.st_ino != st.st_ino ||
      now.st_dev != st.st_dev) {
    return AttachResult::kRetry;
  }
  if (::unlink(ShmPath(name).c_str()) != 0) {
    throw Error(ErrorCode::kSystem, refused + "; cannot remove it: " + std::strerror(errno));
  }
  if (log) {
    log(LogLevel::kWarning,
        "replaced stale segment " + Quote(name) + ": it " + problem->what +
            (problem->counts_known ? "; discarded its " + std::to_string(problem->meters) + " meters"
                                   : std::string("")) +
            "; no process had it open");
  }
  return AttachResult::kRetry;  // the caller creates the fresh segment
}

}  // namespace

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
  const std::string path = ShmPath(options.name);

  // Attach, or create, or replace a stale segment and create; retried while
  // other processes create, remove or replace the segment under us.
  const auto deadline = std::chrono::steady_clock::now() + kReplaceTimeout;
  for (;;) {
    if (std::chrono::steady_clock::now() > deadline) {
      throw Error(ErrorCode::kSystem, "segment " + Quote(options.name) +
                                          ": could not create or open it (other processes kept "
                                          "creating, replacing or removing it)");
    }
    const AttachResult attached = Attach(options, log, seg->mapping_.get(), &seg->size_);
    if (attached == AttachResult::kAttached) {
      seg->view_ = ViewOf(seg->mapping_->region.get_address(),
                          seg->mapping_->shm.get_mapping_handle().handle);
      return seg;
    }
    if (attached == AttachResult::kRetry) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    if (!options.create_if_missing) {
      throw Error(ErrorCode::kSystem, "segment " + Quote(options.name) + " does not exist");
    }
    if (Create(options, wanted, seg->mapping_.get())) {
      seg->size_ = wanted.total_size;
      seg->view_ = ViewOf(seg->mapping_->region.get_address(),
                          seg->mapping_->shm.get_mapping_handle().handle);
      return seg;
    }
  }
}

}  // namespace spectator::internal
