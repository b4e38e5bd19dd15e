// The sd_notify protocol without libsystemd: which environment enables the
// notifications and the watchdog, and datagrams reaching abstract and path
// sockets.
#include "systemd.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "log.h"
#include "notify_listener.h"

namespace spectator::collector {
namespace {

using namespace std::chrono_literals;
using spectator::testing::NotifyListener;

SystemdNotifier From(const std::map<std::string, std::string>& env, pid_t pid = 4242) {
  return SystemdNotifier::FromEnvironment(
      [&env](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
      },
      pid);
}

class SystemdTest : public ::testing::Test {
 protected:
  void SetUp() override { SetLogLevel(LogLevel::kError); }
  void TearDown() override { SetLogLevel(LogLevel::kWarning); }
};

TEST_F(SystemdTest, WithoutNotifySocketEverythingIsANoOp) {
  SystemdNotifier n = From({{"WATCHDOG_USEC", "1000000"}});
  EXPECT_FALSE(n.enabled());
  EXPECT_EQ(n.watchdog(), 0us) << "no socket, no watchdog";
  EXPECT_FALSE(n.Notify("READY=1"));
  EXPECT_FALSE(From({{"NOTIFY_SOCKET", ""}}).enabled());
}

TEST_F(SystemdTest, DatagramsReachAnAbstractAndAPathSocket) {
  for (const bool path : {false, true}) {
    NotifyListener listener(path);
    SystemdNotifier n = From({{"NOTIFY_SOCKET", listener.address()}});
    ASSERT_TRUE(n.enabled()) << listener.address();
    EXPECT_TRUE(n.Notify("READY=1"));
    EXPECT_TRUE(n.Notify("STOPPING=1"));
    EXPECT_EQ(listener.Receive(5s), std::optional<std::string>("READY=1")) << listener.address();
    EXPECT_EQ(listener.Receive(5s), std::optional<std::string>("STOPPING=1"));
  }
}

TEST_F(SystemdTest, UnusableAddressesAreIgnored) {
  for (const char* bad : {"relative/path", "@", "vsock:2:1234",
                          "/tmp/a-path-longer-than-sun-path-allows-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}) {
    SystemdNotifier n = From({{"NOTIFY_SOCKET", bad}, {"WATCHDOG_USEC", "1000000"}});
    EXPECT_FALSE(n.enabled()) << bad;
    EXPECT_FALSE(n.Notify("READY=1")) << bad;
  }
}

TEST_F(SystemdTest, NoListenerMeansFalseNotACrash) {
  SystemdNotifier n = From({{"NOTIFY_SOCKET", "@spectator-test-nobody-listens-here"}});
  ASSERT_TRUE(n.enabled());
  EXPECT_FALSE(n.Notify("READY=1"));
  EXPECT_FALSE(n.Notify("WATCHDOG=1"));
}

TEST_F(SystemdTest, WatchdogAppliesUnlessWatchdogPidNamesAnotherProcess) {
  const std::string sock = "@spectator-test-watchdog";
  EXPECT_EQ(From({{"NOTIFY_SOCKET", sock}, {"WATCHDOG_USEC", "30000000"}}).watchdog(), 30s);
  EXPECT_EQ(From({{"NOTIFY_SOCKET", sock}, {"WATCHDOG_USEC", "200000"}, {"WATCHDOG_PID", "4242"}},
                 4242)
                .watchdog(),
            200ms);
  EXPECT_EQ(From({{"NOTIFY_SOCKET", sock}, {"WATCHDOG_USEC", "200000"}, {"WATCHDOG_PID", "17"}},
                 4242)
                .watchdog(),
            0us);
  for (const char* bad : {"0", "-5", "12abc", "", "99999999999999999999"}) {
    EXPECT_EQ(From({{"NOTIFY_SOCKET", sock}, {"WATCHDOG_USEC", bad}}).watchdog(), 0us) << bad;
  }
}

}  // namespace
}  // namespace spectator::collector
