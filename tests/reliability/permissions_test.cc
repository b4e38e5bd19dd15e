// Fault 5: permissions. A segment is created owner-only (0600) whatever the
// umask, or with exactly the configured mode; a process of another user can
// neither attach nor remove it; unsafe segment names are refused before any
// file is touched.
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "reliability_support.h"
#include "spectator/internal/reader.h"
#include "spectator/spectator.h"
#include "support/fork_helpers.h"
#include "support/temp_segment.h"

namespace spectator::reliability {
namespace {

using namespace std::chrono_literals;
using testing::ForkChild;
using testing::TempSegment;

constexpr uid_t kNobody = 65534;

void Quiet(LogLevel, std::string_view) {}

struct stat StatOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st;
}

TEST(Permissions, SegmentIsOwnerOnlyWhateverTheUmask) {
  for (mode_t mask : {0000, 0022, 0077, 0277, 0777}) {
    TempSegment seg;
    const mode_t old = ::umask(mask);
    { Registry r(seg.options()); }
    ::umask(old);
    const struct stat st = StatOf(seg.path());
    EXPECT_EQ(st.st_mode & 07777, 0600u) << "umask " << std::oct << mask;
    EXPECT_EQ(st.st_uid, ::geteuid());
  }
}

TEST(Permissions, ConfiguredModeIsAppliedExactlyAndUnsafeModesAreRefused) {
  for (std::uint32_t mode : {0600U, 0640U, 0660U, 0644U, 0666U, 0700U}) {
    TempSegment seg;
    SegmentOptions o = seg.options();
    o.mode = mode;
    const mode_t old = ::umask(0077);
    { Registry r(o); }
    ::umask(old);
    EXPECT_EQ(StatOf(seg.path()).st_mode & 07777, mode) << std::oct << mode;
  }
  // Without owner read+write, or with bits beyond 0777 (setuid, sticky):
  // refused before anything is created.
  for (std::uint32_t mode : {0000U, 0400U, 0200U, 0066U, 01600U, 04600U, 02600U, 0xFFFFFFFFU}) {
    TempSegment seg;
    SegmentOptions o = seg.options();
    o.mode = mode;
    try {
      Registry r(o);
      ADD_FAILURE() << "accepted mode " << std::oct << mode;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
      EXPECT_NE(std::string(e.what()).find(seg.name()), std::string::npos) << e.what();
    }
    EXPECT_NE(::access(seg.path().c_str(), F_OK), 0) << "created with a refused mode";
  }
}

// Runs `body` in a child that has become the user nobody (65534), and
// returns its exit code. 77 means the child could not drop to nobody.
int AsNobody(const std::function<int()>& body) {
  const pid_t pid = ForkChild([&] {
    if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0 ||
        ::geteuid() != kNobody) {
      return 77;
    }
    return body();
  });
  return WaitChildFor(pid, std::chrono::steady_clock::now() + 30s);
}

// Exit codes of an attach attempt made by another user.
int AttachAttempt(const SegmentOptions& options, const std::string& fragment) {
  try {
    Registry r(options);
    return 1;  // attached: the failure this test exists to catch
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kPermission) return 10 + static_cast<int>(e.code());
    const std::string what = e.what();
    if (what.find(options.name) == std::string::npos) return 3;
    if (what.find(fragment) == std::string::npos) return 4;
    return 0;
  }
}

TEST(Permissions, AnotherUserCannotAttachOrRemoveTheSegment) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root to run a child as another user (nobody, 65534)";
  }
  TempSegment seg;
  SegmentOptions o = seg.options();
  o.logger = &Quiet;
  Registry owner(o);
  owner.GetCounter("c").Add(3);
  const int probe = AsNobody([] { return 0; });
  if (probe == 77) GTEST_SKIP() << "this environment does not allow setuid to nobody";
  ASSERT_EQ(probe, 0);

  // 0600: the open itself is denied.
  EXPECT_EQ(AsNobody([&] { return AttachAttempt(o, "permission denied"); }), 0);
  SegmentOptions no_create = o;
  no_create.create_if_missing = false;
  EXPECT_EQ(AsNobody([&] { return AttachAttempt(no_create, "permission denied"); }), 0);
  // Even with every permission bit set, the owner check refuses it.
  ASSERT_EQ(::chmod(seg.path().c_str(), 0666), 0);
  EXPECT_EQ(AsNobody([&] { return AttachAttempt(o, "owned by uid 0"); }), 0);
  // /dev/shm is sticky: another user cannot remove it either.
  EXPECT_EQ(AsNobody([&] { return Registry::Remove(seg.name()) ? 1 : 0; }), 0);
  EXPECT_EQ(::access(seg.path().c_str(), F_OK), 0);

  // The reverse: a segment created by nobody is refused by root.
  TempSegment theirs;
  SegmentOptions t = theirs.options();
  t.logger = &Quiet;
  t.mode = 0666;
  EXPECT_EQ(AsNobody([&] {
              Registry r(t);
              return r.GetCounter("c").IsLive() ? 0 : 2;
            }),
            0);
  EXPECT_EQ(StatOf(theirs.path()).st_uid, kNobody);
  EXPECT_EQ(AttachAttempt(t, "owned by uid 65534"), 0);

  // Nothing the other user tried changed the owner's meters.
  SegmentReader reader(owner);
  const ScanResult r = ScanSegment(reader, SegmentReader::Mode::kPeek);
  EXPECT_EQ(r.by_id.size(), 1u);
  EXPECT_EQ(r.by_id.at("c").count, 3);
}

TEST(Permissions, UnsafeSegmentNamesAreRefusedBeforeAnyFileIsTouched) {
  const std::string victim = "/tmp/spectator-reliability-victim-" + std::to_string(::getpid());
  { std::ofstream(victim) << "keep me\n"; }
  const std::vector<std::string> names = {
      "",
      "/",
      "a/b",
      "/abs",
      "..",
      ".",
      "../x",
      "x/../y",
      "../../tmp/spectator-reliability-victim-" + std::to_string(::getpid()),
      ".hidden",
      std::string(201, 'n'),
      std::string(4096, 'n'),
      std::string("a\0b", 3),
      "sp ace",
      "tab\t",
      "new\nline",
      "caf\xc3\xa9",
      "%2e%2e",
      "star*",
      "tilde~",
      "back\\slash",
  };
  for (const std::string& name : names) {
    SegmentOptions o;
    o.name = name;
    o.logger = &Quiet;
    try {
      Registry r(o);
      ADD_FAILURE() << "accepted segment name of " << name.size() << " bytes";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    }
    EXPECT_FALSE(Registry::Remove(name));
  }
  std::ifstream in(victim);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "keep me") << "a refused name reached a file outside /dev/shm";
  ::unlink(victim.c_str());
  EXPECT_NE(::access("/dev/shm/a", F_OK), 0);

  // The edges of what is allowed.
  for (const std::string& name :
       {std::string(200, 'n'), std::string("a"), std::string("A-z_0.9")}) {
    const std::string unique = name.size() == 200 ? std::to_string(::getpid()) + name.substr(10)
                                                  : name + "-" + std::to_string(::getpid());
    SegmentOptions o;
    o.name = unique.substr(0, 200);
    o.max_meters = 16;
    o.value_words = 1024;
    Registry::Remove(o.name);
    { Registry r(o); }
    EXPECT_TRUE(Registry::Remove(o.name)) << o.name;
  }
}

}  // namespace
}  // namespace spectator::reliability

namespace spectator::reliability {
namespace {

// A collector running as its own user shares the segment with the
// application's user through a group: created with SegmentOptions::group and
// mode 0660, attached by another uid that names the group and is a member.
TEST(Permissions, AnotherUserInTheSegmentsGroupAttachesWhenItNamesTheGroup) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a child as another user";
  TempSegment seg;
  SegmentOptions o = seg.options();
  o.logger = &Quiet;
  o.mode = 0660;
  o.group = std::to_string(kNobody);  // nogroup, by number
  Registry owner(o);
  ASSERT_EQ(StatOf(seg.path()).st_gid, kNobody);
  ASSERT_EQ(StatOf(seg.path()).st_mode & 0777, 0660u);

  // uid nobody, gid 65534: a member of the segment's group.
  auto as_member = [&](const std::function<int()>& body) {
    return WaitChildFor(ForkChild([&] {
                          if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 ||
                              ::setuid(kNobody) != 0) {
                            return 77;
                          }
                          return body();
                        }),
                        std::chrono::steady_clock::now() + 30s);
  };
  EXPECT_EQ(as_member([&] {
              Registry shared(o);
              Counter c = shared.GetCounter("from.app");
              c.Add(5);
              return c.IsLive() ? 0 : 1;
            }),
            0);
  SegmentReader reader(owner);
  double seen = 0;
  reader.Scan(SegmentReader::Mode::kPeek, std::chrono::system_clock::now(),
              [&](const MeterReading& r) {
                if (r.id == "from.app") seen = r.count;
              });
  EXPECT_EQ(seen, 5);

  // Without naming the group, another uid's segment is still refused.
  SegmentOptions unnamed = o;
  unnamed.group.clear();
  EXPECT_EQ(as_member([&] { return AttachAttempt(unnamed, "owned by uid 0"); }), 0);
  // Naming the group without being a member: refused (by the open itself).
  EXPECT_EQ(WaitChildFor(ForkChild([&] {
                           if (::setgroups(0, nullptr) != 0 || ::setgid(1) != 0 ||
                               ::setuid(kNobody) != 0) {
                             return 77;
                           }
                           return AttachAttempt(o, "permission denied");  // the kernel refuses
                         }),
                         std::chrono::steady_clock::now() + 30s),
            0);
}

}  // namespace
}  // namespace spectator::reliability
