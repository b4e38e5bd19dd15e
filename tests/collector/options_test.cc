// The collector's command line: flags, environment fallbacks, and one clear
// error for anything wrong.
#include "options.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace spectator::collector {
namespace {

using Action = ParseResult::Action;

ParseResult Parse(std::vector<const char*> args, std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), "spectator-collector");
  return ParseCommandLine(static_cast<int>(args.size()), args.data(),
                          [&env](const char* name) -> const char* {
                            auto it = env.find(name);
                            return it == env.end() ? nullptr : it->second.c_str();
                          });
}

TEST(Options, DefaultsFollowTheDesign) {
  const ParseResult r = Parse({});
  ASSERT_EQ(r.action, Action::kRun);
  EXPECT_EQ(r.options.segment, "spectator");
  EXPECT_EQ(r.options.uri, "");
  EXPECT_EQ(r.options.step, std::chrono::seconds(5));
  EXPECT_EQ(r.options.batch_size, 10000u);
  EXPECT_FALSE(r.options.once);
  EXPECT_FALSE(r.options.dump);
  EXPECT_TRUE(r.options.common_tags.empty());
}

TEST(Options, FlagsInBothSpellings) {
  const ParseResult r = Parse({"--segment", "web", "--uri=http://atlas:7101/api/v1/publish",
                               "--step", "0.25", "--batch-size=500", "--once"});
  ASSERT_EQ(r.action, Action::kRun) << r.error;
  EXPECT_EQ(r.options.segment, "web");
  EXPECT_EQ(r.options.uri, "http://atlas:7101/api/v1/publish");
  EXPECT_EQ(r.options.step, std::chrono::milliseconds(250));
  EXPECT_EQ(r.options.batch_size, 500u);
  EXPECT_TRUE(r.options.once);
}

TEST(Options, EnvironmentIsTheFallbackAndFlagsWin) {
  const std::map<std::string, std::string> env = {{"SPECTATOR_SEGMENT", "from-env"},
                                                  {"SPECTATOR_URI", "http://env/publish"}};
  EXPECT_EQ(Parse({}, env).options.segment, "from-env");
  EXPECT_EQ(Parse({}, env).options.uri, "http://env/publish");
  EXPECT_EQ(Parse({"--segment", "flag"}, env).options.segment, "flag");
}

TEST(Options, CommonTagsComeFromFlagsAndNetflixVariablesSortedByKey) {
  const ParseResult r =
      Parse({"--tag", "zone=override", "--tag", "b=2", "--tag", "a=x y"},
            {{"NETFLIX_APP", "demo"}, {"EC2_REGION", "us-east-1"}, {"NETFLIX_STACK", ""}});
  ASSERT_EQ(r.action, Action::kRun) << r.error;
  const CommonTags expected = {{"a", "x_y"},
                               {"b", "2"},
                               {"nf.app", "demo"},
                               {"nf.region", "us-east-1"},
                               {"zone", "override"}};
  EXPECT_EQ(r.options.common_tags, expected) << "empty variables add nothing; values are sanitised";
  EXPECT_EQ(Parse({"--tag", "nf.app=flag"}, {{"NETFLIX_APP", "env"}}).options.common_tags,
            (CommonTags{{"nf.app", "flag"}}));
}

TEST(Options, HelpAndVersion) {
  EXPECT_EQ(Parse({"--help"}).action, Action::kHelp);
  EXPECT_EQ(Parse({"--segment", "x", "--version"}).action, Action::kVersion);
  EXPECT_NE(Usage().find("--batch-size"), std::string::npos);
}

TEST(Options, EveryBadInputIsOneClearError) {
  struct Case {
    std::vector<const char*> args;
    const char* mentions;
  };
  const std::vector<Case> cases = {
      {{"--bogus"}, "unknown option '--bogus'"},
      {{"--segment"}, "--segment needs a value"},
      {{"--step", "0"}, "--step must be"},
      {{"--step", "abc"}, "--step must be"},
      {{"--step", "nan"}, "--step must be"},
      {{"--batch-size", "0"}, "--batch-size must be"},
      {{"--batch-size", "12x"}, "--batch-size must be"},
      {{"--tag", "novalue"}, "--tag must be KEY=VALUE"},
      {{"--tag", "=v"}, "--tag must be KEY=VALUE"},
      {{"--tag", "statistic=count"}, "reserved"},
      {{"--uri", "atlas:7101"}, "--uri must start with http://"},
      {{"--once", "--dump"}, "exclusive"},
      {{"--once=yes"}, "takes no value"},
      {{"--log-level", "loud"}, "--log-level must be"},
  };
  for (const Case& c : cases) {
    const ParseResult r = Parse(c.args);
    EXPECT_EQ(r.action, Action::kError) << c.args[0];
    EXPECT_NE(r.error.find(c.mentions), std::string::npos) << r.error;
    EXPECT_EQ(r.error.find('\n'), std::string::npos) << "one line: " << r.error;
  }
}

TEST(Options, ModeAndGroupFromFlagsOrTheEnvironment) {
  const ParseResult defaults = Parse({});
  EXPECT_EQ(defaults.options.mode, 0600u);
  EXPECT_EQ(defaults.options.group, "");
  const ParseResult r = Parse({"--mode", "0660", "--group=root"});
  ASSERT_EQ(r.action, Action::kRun) << r.error;
  EXPECT_EQ(r.options.mode, 0660u);
  EXPECT_EQ(r.options.group, "root");
  EXPECT_EQ(Parse({"--mode", "640"}).options.mode, 0640u) << "the leading 0 is optional";
  EXPECT_EQ(Parse({"--mode", "0600"}).options.mode, 0600u);
  EXPECT_EQ(Parse({"--group", "4242"}).options.group, "4242") << "a gid needs no group entry";
  const std::map<std::string, std::string> env = {{"SPECTATOR_SEGMENT_MODE", "0666"},
                                                  {"SPECTATOR_SEGMENT_GROUP", "0"}};
  EXPECT_EQ(Parse({}, env).options.mode, 0666u);
  EXPECT_EQ(Parse({}, env).options.group, "0");
  EXPECT_EQ(Parse({"--mode", "0660", "--group", "root"}, env).options.mode, 0660u);
  EXPECT_EQ(Parse({"--mode", "0660", "--group", "root"}, env).options.group, "root");
  EXPECT_EQ(Parse({}, {{"SPECTATOR_SEGMENT_MODE", ""}}).options.mode, 0600u) << "empty: unset";
  EXPECT_NE(Usage().find("--mode MODE"), std::string::npos);
  EXPECT_NE(Usage().find("--group GROUP"), std::string::npos);
}

TEST(Options, MaxCatchUpIsSecondsAndNoneByDefault) {
  EXPECT_EQ(Parse({}).options.max_catch_up, std::chrono::nanoseconds(0)) << "no limit";
  EXPECT_EQ(Parse({"--max-catch-up", "600"}).options.max_catch_up, std::chrono::seconds(600));
  EXPECT_EQ(Parse({"--max-catch-up=0.25"}).options.max_catch_up, std::chrono::milliseconds(250));
  for (const char* bad : {"0", "-1", "abc", "inf", "1e10"}) {
    const ParseResult r = Parse({"--max-catch-up", bad});
    EXPECT_EQ(r.action, Action::kError) << bad;
    EXPECT_NE(r.error.find("--max-catch-up must be a number of seconds"), std::string::npos)
        << r.error;
  }
  EXPECT_NE(Usage().find("--max-catch-up SECONDS"), std::string::npos);
}

TEST(Options, BadModeOrGroupIsOneClearError) {
  struct Case {
    std::vector<const char*> args;
    std::map<std::string, std::string> env;
    const char* mentions;
  };
  const std::vector<Case> cases = {
      {{"--mode", "0400"}, {}, "--mode must be octal permission bits"},  // no owner write
      {{"--mode", "0060"}, {}, "include 0600"},
      {{"--mode", "01660"}, {}, "within 0777"},  // setuid/sticky bits
      {{"--mode", "0680"}, {}, "got '0680'"},    // not octal
      {{"--mode", "rw-rw----"}, {}, "--mode must be"},
      {{"--mode", ""}, {}, "--mode must be"},
      {{"--mode", "00000660"}, {}, "--mode must be"},
      {{"--mode"}, {}, "--mode needs a value"},
      {{"--group", "no-such-group-spectator"}, {}, "--group 'no-such-group-spectator' names no group"},
      {{"--group", ""}, {}, "--group '' is empty"},
      {{"--group", "4294967295"}, {}, "not a valid gid"},
      {{"--group", "99999999999"}, {}, "not a valid gid"},
      {{}, {{"SPECTATOR_SEGMENT_MODE", "777x"}}, "SPECTATOR_SEGMENT_MODE must be octal"},
      {{}, {{"SPECTATOR_SEGMENT_GROUP", "no-such-group-spectator"}}, "SPECTATOR_SEGMENT_GROUP"},
  };
  for (const Case& c : cases) {
    const ParseResult r = Parse(c.args, c.env);
    EXPECT_EQ(r.action, Action::kError) << c.mentions;
    EXPECT_NE(r.error.find(c.mentions), std::string::npos) << r.error;
    EXPECT_EQ(r.error.find('\n'), std::string::npos) << "one line: " << r.error;
  }
}


TEST(Options, PrometheusListenTakesHostAndPortAndBindsLoopbackByDefault) {
  EXPECT_FALSE(Parse({}).options.prometheus);
  const auto listen = [](std::vector<const char*> args, std::map<std::string, std::string> env =
                                                             {}) {
    const ParseResult r = Parse(std::move(args), std::move(env));
    EXPECT_EQ(r.action, Action::kRun) << r.error;
    EXPECT_TRUE(r.options.prometheus);
    return r.options.prometheus_listen.ToString();
  };
  EXPECT_EQ(listen({"--prometheus-listen", "9464"}), "127.0.0.1:9464");
  EXPECT_EQ(listen({"--prometheus-listen=0"}), "127.0.0.1:0");
  EXPECT_EQ(listen({"--prometheus-listen", "0.0.0.0:9464"}), "0.0.0.0:9464");
  EXPECT_EQ(listen({"--prometheus-listen", "[::1]:80"}), "[::1]:80");
  EXPECT_EQ(listen({"--prometheus-listen", "localhost:1"}), "localhost:1");
  EXPECT_EQ(listen({}, {{"SPECTATOR_PROMETHEUS_LISTEN", "127.0.0.2:5"}}), "127.0.0.2:5");
  EXPECT_EQ(listen({"--prometheus-listen", "6"}, {{"SPECTATOR_PROMETHEUS_LISTEN", "5"}}),
            "127.0.0.1:6")
      << "the flag wins";
  // --once and --dump serve nothing: the variable yields to them.
  const ParseResult dump = Parse({"--dump"}, {{"SPECTATOR_PROMETHEUS_LISTEN", "5"}});
  EXPECT_EQ(dump.action, Action::kRun);
  EXPECT_FALSE(dump.options.prometheus);
}

TEST(Options, BadPrometheusListenIsOneClearError) {
  struct Case {
    std::vector<const char*> args;
    std::map<std::string, std::string> env;
    std::string error;
  };
  const std::vector<Case> cases = {
      {{"--prometheus-listen", ":9464"}, {}, "--prometheus-listen ':9464': the host is empty"},
      {{"--prometheus-listen", "::1:80"}, {}, "--prometheus-listen '::1:80': an IPv6 host needs brackets"},
      {{"--prometheus-listen", "host:"}, {}, "--prometheus-listen 'host:': the port must be"},
      {{"--prometheus-listen", "host:65536"}, {}, "--prometheus-listen 'host:65536': the port must be"},
      {{"--prometheus-listen", "x:y"}, {}, "--prometheus-listen 'x:y': the port must be"},
      {{"--prometheus-listen"}, {}, "--prometheus-listen needs a value"},
      {{}, {{"SPECTATOR_PROMETHEUS_LISTEN", "a:b"}}, "SPECTATOR_PROMETHEUS_LISTEN 'a:b': the port"},
      {{"--prometheus-listen", "1", "--once"}, {}, "--prometheus-listen and --once are exclusive"},
      {{"--dump", "--prometheus-listen", "1"}, {}, "--prometheus-listen and --dump are exclusive"},
  };
  for (const Case& c : cases) {
    const ParseResult r = Parse(c.args, c.env);
    EXPECT_EQ(r.action, Action::kError) << c.error;
    EXPECT_EQ(r.error.rfind(c.error, 0), 0U) << "got: " << r.error;
  }
}

}  // namespace
}  // namespace spectator::collector
