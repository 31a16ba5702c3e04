// libzctls.so preloaded into a real kTLS program (zctls_test_sender) on a
// real kTLS kernel.  The witnesses are independent of the shim: strace of
// the program's setsockopt/getsockopt calls, and the program's own raw
// getsockopt of TLS_TX_ZEROCOPY_RO after each send.
#include "e2e_support.h"

namespace {

using zctls_e2e::count;
using zctls_e2e::lines_of;
using zctls_e2e::Outcome;
using zctls_e2e::ShimE2E;
using zctls_e2e::spit;

TEST_F(ShimE2E, RawFlagFollowsTheConfigPerSend) {
  const Outcome r = run("ZCTLS_CONFIG=" + config(),
                        "raw " + static_file() + " " + private_file() + " " + static_file());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "a.bin flag=1\nb.bin flag=0\na.bin flag=1\nbytes ok\n") << r.err;
  EXPECT_EQ(r.flag_sets(), (std::vector<int>{1, 0, 1})) << r.strace;
  EXPECT_EQ(r.err, "");
}

TEST_F(ShimE2E, Sendfile64IsHookedToo) {
  const Outcome r =
      run("ZCTLS_CONFIG=" + config(), "raw64 " + static_file() + " " + private_file());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "a.bin flag=1\nb.bin flag=0\nbytes ok\n");
  EXPECT_EQ(r.flag_sets(), (std::vector<int>{1, 0})) << r.strace;
}

TEST_F(ShimE2E, ForkedChildKnowsTheSocket) {
  const Outcome r = run("ZCTLS_CONFIG=" + config(), "fork " + static_file() + " " + private_file());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out,
            "parent a.bin flag=1\nparent b.bin flag=0\nchild b.bin flag=0\nchild a.bin "
            "flag=1\nbytes ok\n");
  // Parent: on, off.  Child: already off for b, on for a.  No call repeated.
  EXPECT_EQ(r.flag_sets(), (std::vector<int>{1, 0, 1})) << r.strace;
}

TEST_F(ShimE2E, SocketInheritedAcrossExecIsClassifiedLazily) {
  const Outcome r = run("ZCTLS_CONFIG=" + config(),
                        "exec " + static_file() + " " + private_file() + " " + static_file());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out,
            "inherited a.bin flag=1\ninherited b.bin flag=0\ninherited a.bin flag=1\nbytes ok\n")
      << r.err;
  EXPECT_EQ(r.flag_sets(), (std::vector<int>{1, 0, 1})) << r.strace;
  // The new image asked the kernel what the fd is: TCP_ULP, then TLS_TX.
  EXPECT_NE(r.strace.find("SOL_TCP, TCP_ULP, \"tls\""), std::string::npos) << r.strace;
}

TEST_F(ShimE2E, FlagIsSetOnlyWhenItMustChange) {
  const Outcome r =
      run("ZCTLS_CONFIG=" + config(), "raw " + static_file() + " " + static_file() + " " +
                                          private_file() + " " + private_file());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "a.bin flag=1\na.bin flag=1\nb.bin flag=0\nb.bin flag=0\nbytes ok\n");
  EXPECT_EQ(r.flag_sets(), (std::vector<int>{1, 0})) << r.strace;
}

TEST_F(ShimE2E, WithoutTheShimNothingChanges) {
  const Outcome r = run("ZCTLS_CONFIG=" + config(), "raw " + static_file() + " " + private_file(),
                        /*preload=*/false);
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "a.bin flag=0\nb.bin flag=0\nbytes ok\n");
  EXPECT_TRUE(r.flag_sets().empty());
}

TEST_F(ShimE2E, OpenSslSendfileFollowsTheConfig) {
  const Outcome r = run("ZCTLS_CONFIG=" + config(),
                        "openssl " + static_file() + " " + private_file() + " " + static_file());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "ktls send=yes\na.bin flag=1\nb.bin flag=0\na.bin flag=1\nbytes ok\n") << r.err;
  EXPECT_EQ(r.flag_sets(), (std::vector<int>{1, 0, 1})) << r.strace;
  // OpenSSL set kTLS up through the shim's setsockopt hook.
  EXPECT_NE(r.strace.find("SOL_TLS, TLS_TX,"), std::string::npos);
}

TEST_F(ShimE2E, ParallelConnectionsFromThreads) {
  const Outcome r = run("ZCTLS_CONFIG=" + config(),
                        "threads 4 " + static_file() + " " + private_file() + " " + static_file());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  for (int t = 0; t < 4; ++t) {
    const std::string p = "t" + std::to_string(t) + " ";
    EXPECT_NE(r.out.find(p + "a.bin flag=1\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(p + "b.bin flag=0\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(p + "bytes ok\n"), std::string::npos) << r.out;
  }
  EXPECT_EQ(r.flag_sets().size(), 12U) << r.strace;
}

TEST_F(ShimE2E, ReusedFdNumberGetsNoStaleState) {
  const Outcome r = run("ZCTLS_CONFIG=" + config(), "reuse " + static_file());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  const std::vector<std::string> out = lines_of(r.out);
  ASSERT_EQ(out.size(), 3U) << r.out;
  std::smatch m;
  ASSERT_TRUE(std::regex_match(out[0], m, std::regex(R"(ktls fd=(\d+) flag=1)"))) << out[0];
  EXPECT_EQ(out[1], "plain fd=" + m[1].str() + " sent=yes");
  EXPECT_EQ(out[2], "bytes ok");
  // After the kTLS socket was reported (and closed), no SOL_TLS call at all.
  const std::size_t reported = r.strace.find("ktls fd=");
  ASSERT_NE(reported, std::string::npos) << r.strace;
  EXPECT_EQ(r.strace.find("SOL_TLS", reported), std::string::npos) << r.strace.substr(reported);
}

TEST_F(ShimE2E, FailuresKeepTheirReturnValueAndErrno) {
  const std::string args = "errors " + static_file();
  const Outcome with = run("ZCTLS_CONFIG=" + config(), args);
  const Outcome without = run("ZCTLS_CONFIG=" + config(), args, /*preload=*/false);
  EXPECT_EQ(with.status, 0) << with.out << with.err;
  EXPECT_EQ(with.out, without.out);
  EXPECT_NE(with.out.find("bad out fd: rc=-1 errno=EBADF"), std::string::npos) << with.out;
  EXPECT_NE(with.out.find("bad in fd on kTLS: rc=-1 errno=EBADF"), std::string::npos);
  EXPECT_NE(with.out.find("bad offset pointer: rc=-1 errno=EFAULT"), std::string::npos);
  EXPECT_NE(with.out.find("full non-blocking socket: rc=-1 errno=EAGAIN after data"),
            std::string::npos)
      << with.out;
  // The matching file did go zerocopy on the way.
  EXPECT_EQ(with.flag_sets(), (std::vector<int>{1}));
}

TEST_F(ShimE2E, BrokenConfigPassesThroughWithAMessage) {
  spit(config(), "[[rule]]\npath = \"" + dir_ + "/static/**\"\nzerocopy = true\npth = 1\n" +
                     zctls_e2e::kNoSettle);
  const Outcome r = run("ZCTLS_CONFIG=" + config(), "raw " + static_file() + " " + private_file());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "a.bin flag=0\nb.bin flag=0\nbytes ok\n");
  EXPECT_TRUE(r.flag_sets().empty()) << r.strace;
  EXPECT_NE(r.err.find(config() + ":4:1: unknown key 'pth' in [[rule]] #1; zctls passes "
                                  "everything through"),
            std::string::npos)
      << r.err;
}

TEST_F(ShimE2E, MissingConfigFileIsAnErrorWhenNamed) {
  const Outcome r = run("ZCTLS_CONFIG=" + dir_ + "/nope.toml", "raw " + static_file());
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "a.bin flag=0\nbytes ok\n");
  EXPECT_NE(r.err.find("nope.toml: cannot open: No such file or directory"), std::string::npos)
      << r.err;
}

TEST_F(ShimE2E, EnvironmentRulesComeFirst) {
  // The file says static/** zerocopy; ZCTLS_RULES overrides it for a.bin and
  // turns private/ on.
  const Outcome r =
      run("ZCTLS_CONFIG=" + config() + " 'ZCTLS_RULES=-**/a.bin;+" + dir_ + "/private/**'",
          "raw " + static_file() + " " + private_file());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "a.bin flag=0\nb.bin flag=1\nbytes ok\n") << r.err;
}

TEST_F(ShimE2E, KillSwitch) {
  const Outcome r = run("ZCTLS_CONFIG=" + config() + " ZCTLS_DISABLE=1", "raw " + static_file());
  EXPECT_EQ(r.out, "a.bin flag=0\nbytes ok\n");
  EXPECT_TRUE(r.flag_sets().empty());
}

TEST_F(ShimE2E, ApplicationSetFlagIsLeftAloneUnderRespect) {
  const Outcome r = run("ZCTLS_CONFIG=" + config() + " ZCTLS_APP_FLAG=respect",
                        "appflag " + private_file() + " " + static_file());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  // b.bin would be "copy" by the config, but the application chose (and
  // app_flag = "respect", the opt-out, leaves it so).
  EXPECT_EQ(r.out, "b.bin flag=1\na.bin flag=1\nbytes ok\n");
  EXPECT_EQ(r.flag_sets(), (std::vector<int>{1})) << "only the application's own call";
}

// Issue 19: OpenSSL >= 3.2 with KTLSTxZerocopySendfile sets the flag on
// every connection right after the TX key (ZCTLS_TEST_APP_FLAG=1 makes the
// sender do the same).  app_flag = "respect" (the opt-out) leaves it, and
// says so once.
TEST_F(ShimE2E, AnApplicationsFlagIsRespectedAndSaidOnce) {
  spit(config(), "app_flag = \"respect\"\n" + zctls_e2e::slurp(config()));
  const Outcome r = run("ZCTLS_CONFIG=" + config() + " ZCTLS_TEST_APP_FLAG=1",
                        "raw " + private_file() + " " + static_file() + " " + private_file());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "b.bin flag=1\na.bin flag=1\nb.bin flag=1\nbytes ok\n") << r.err;
  EXPECT_EQ(r.flag_sets(), (std::vector<int>{1})) << "only the application's own call";
  EXPECT_EQ(zctls_e2e::count(r.err, "KTLSTxZerocopySendfile"), 1) << r.err;
  EXPECT_NE(r.err.find("app_flag = \"respect\""), std::string::npos) << r.err;
  // A warning: the rules do not reach this socket.
  EXPECT_NE(r.err.find("warn: fd "), std::string::npos) << r.err;
}

// app_flag = "govern": the rules decide the application's flag too, before
// each send (the default since issue 30, the file key and the environment
// variable).
TEST_F(ShimE2E, GovernedApplicationFlagFollowsTheRules) {
  const std::string rules = zctls_e2e::slurp(config());
  for (const char* how : {"by default", "app_flag", "ZCTLS_APP_FLAG"}) {
    SCOPED_TRACE(how);
    const bool by_env = std::string(how) == "ZCTLS_APP_FLAG";
    spit(config(), (by_env                           ? "app_flag = \"respect\"\n"
                    : std::string(how) == "app_flag" ? "app_flag = \"govern\"\n"
                                                     : "") +
                       rules);
    const Outcome r = run("ZCTLS_CONFIG=" + config() + " ZCTLS_TEST_APP_FLAG=1" +
                              (by_env ? " ZCTLS_APP_FLAG=govern" : ""),
                          "raw " + private_file() + " " + static_file() + " " + private_file());
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(r.out, "b.bin flag=0\na.bin flag=1\nb.bin flag=0\nbytes ok\n") << r.err;
    // The application's 1, then zctls's: off, on, off.
    EXPECT_EQ(r.flag_sets(), (std::vector<int>{1, 0, 1, 0})) << r.strace;
    EXPECT_NE(r.err.find("app_flag = \"govern\""), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("notice: fd "), std::string::npos) << "a notice: the rules apply" << r.err;
  }
}

// The engine (libzctls-engine.so) is loaded from the directory of the
// hooks, at the first kTLS TX socket; a relative LD_PRELOAD path is taken
// from the working directory of the time.
TEST_F(ShimE2E, EngineLoadsBesideARelativePreloadPath) {
  const std::string shim = ZCTLS_SHIM_PATH;
  const std::string shim_dir = shim.substr(0, shim.rfind('/'));
  char here[4096];
  ASSERT_NE(getcwd(here, sizeof here), nullptr);
  ASSERT_EQ(chdir(shim_dir.c_str()), 0);
  const Outcome r =
      run("LD_PRELOAD=./libzctls.so ZCTLS_CONFIG=" + config(),
          "raw " + static_file() + " " + private_file() + " " + static_file(), /*preload=*/false);
  ASSERT_EQ(chdir(here), 0);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "a.bin flag=1\nb.bin flag=0\na.bin flag=1\nbytes ok\n") << r.err;
  EXPECT_EQ(r.flag_sets(), (std::vector<int>{1, 0, 1})) << r.strace;
}

// Hooks without their engine (a copy elsewhere, a chroot without it): one
// line says so, and every send passes through untouched.
TEST_F(ShimE2E, WithoutItsEngineTheHooksPassThrough) {
  const std::string lonely = dir_ + "/lonely";
  ASSERT_EQ(mkdir(lonely.c_str(), 0755), 0);
  ASSERT_EQ(std::system(("cp " ZCTLS_SHIM_PATH " '" + lonely + "/'").c_str()), 0);
  const Outcome r =
      run("LD_PRELOAD=" + lonely + "/libzctls.so ZCTLS_CONFIG=" + config(),
          "raw " + static_file() + " " + private_file() + " " + static_file(), /*preload=*/false);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "a.bin flag=0\nb.bin flag=0\na.bin flag=0\nbytes ok\n") << r.err;
  EXPECT_TRUE(r.flag_sets().empty()) << r.strace;
  EXPECT_EQ(count(r.err, "cannot load the engine " + lonely + "/" ZCTLS_ENGINE_FILE ": "), 1)
      << r.err;
  EXPECT_NE(r.err.find("passes everything through"), std::string::npos) << r.err;
}

// A file of the engine's name from another build (another ABI; an
// upgrade that changes the ABI ships another file name): refused, said
// once, everything passes through.
TEST_F(ShimE2E, AnotherBuildsEngineIsRefused) {
  const std::string dir = dir_ + "/upgraded";
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(std::system(("cp " ZCTLS_SHIM_PATH " '" + dir +
                         "/' && cp " ZCTLS_OTHER_ENGINE_PATH " '" + dir + "/" ZCTLS_ENGINE_FILE "'")
                            .c_str()),
            0);
  const Outcome r =
      run("LD_PRELOAD=" + dir + "/libzctls.so ZCTLS_CONFIG=" + config(),
          "raw " + static_file() + " " + private_file() + " " + static_file(), /*preload=*/false);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "a.bin flag=0\nb.bin flag=0\na.bin flag=0\nbytes ok\n") << r.err;
  EXPECT_TRUE(r.flag_sets().empty()) << r.strace;
  EXPECT_EQ(count(r.err, "it is from another build of zctls"), 1) << r.err;
}

TEST_F(ShimE2E, DebugLogNamesTheRule) {
  const Outcome r = run("ZCTLS_CONFIG=" + config() + " ZCTLS_LOG_LEVEL=debug",
                        "raw " + static_file() + " " + private_file());
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.err.find(static_file() + ": zerocopy (" + config() + ":1:1)"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(private_file() + ": copy (default)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("config " + config() + ": 1 rules, default copy"), std::string::npos)
      << r.err;
}

}  // namespace

namespace zctls_e2e {
namespace {

// Every file of tests/hostile-configs/ as the shim's config, on real kTLS
// sockets: a broken one is reported with its position and everything passes
// through (flag never set, bytes intact); a valid one (its rules name other
// trees) sends all the same.  What each file must give: the manifest,
// checked against the loader itself by unit/HostileConfigs.*.
TEST_F(ShimE2E, HostileConfigsPassEverythingThrough) {
  const std::string dir = ZCTLS_HOSTILE_CONFIGS_DIR;
  int files = 0;
  for (const auto& line : lines_of(slurp(dir + "/expected"))) {
    if (line.empty() || line[0] == '#') continue;
    const std::size_t tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    const std::string name = line.substr(0, tab), want = line.substr(tab + 1);
    SCOPED_TRACE(name);
    ++files;
    // The sender's own getsockopt after each send is the witness (no
    // strace: 44 runs).
    const Outcome r =
        run("ZCTLS_CONFIG=" + dir + "/" + name, "raw " + static_file() + " " + private_file(), true,
            ZCTLS_SENDER_PATH, false);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("bytes ok"), std::string::npos) << r.out << r.err;
    if (want.rfind("ok ", 0) == 0) continue;
    EXPECT_EQ(r.out, "a.bin flag=0\nb.bin flag=0\nbytes ok\n") << r.err;
    // "L:C message" or "- message": the message, at that position.
    const std::size_t space = want.find(' ');
    const std::string where = want.substr(0, space), message = want.substr(space + 1);
    const std::string located =
        where == "-" ? message : dir + "/" + name + ":" + where + ": " + message;
    EXPECT_NE(r.err.find(located), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("zctls passes everything through"), std::string::npos) << r.err;
  }
  EXPECT_GE(files, 30);
}

}  // namespace
}  // namespace zctls_e2e
