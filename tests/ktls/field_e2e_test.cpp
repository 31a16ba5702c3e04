// Regression tests for the ways real deployments broke zctls (issue 18),
// one per bug, in the manner of cwrap's socket_wrapper: each runs
// zctls_test_field (or another program) with the shim and checks what the
// kernel, the peer or an independent listener saw.
#include "e2e_support.h"

#if !defined(ZCTLS_FIELD_PATH) || !defined(ZCTLS_SSL_LOADER_PATH) || !defined(ZCTLS_SSL_PLUGIN_PATH)
#error \
    "ZCTLS_FIELD_PATH, ZCTLS_SSL_LOADER_PATH and ZCTLS_SSL_PLUGIN_PATH must name the test programs"
#endif

namespace {

using zctls_e2e::Outcome;
using zctls_e2e::ShimE2E;
using zctls_e2e::spit;

class FieldFailures : public ShimE2E {
 protected:
  Outcome field(const std::string& args, const std::string& env = "", bool preload = true) {
    return run(env.empty() ? "ZCTLS_CONFIG=" + config() : env, args, preload, ZCTLS_FIELD_PATH,
               /*traced=*/false);
  }
  std::string big_file(std::size_t size = 4'000'000) {
    const std::string path = dir_ + "/static/big.bin";
    spit(path, std::string(size, 'z'));
    return path;
  }
};

// #1: forks beside a thread that keeps sending zerocopy; each child closes
// the socket, for which the shim looks at its in-flight record under a
// lock the sending thread may hold at the fork.  Before fork_safe.h about
// 1 % of children spun for ever (2 of 400 on the 6.1 bench).
TEST_F(FieldFailures, ForkBesideASendingThreadLeavesNoChildStuck) {
  const Outcome r = field("fork-storm 400 " + static_file());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "children 400 stuck 0 failed 0\n") << r.err;
}

// #2: a daemon's kTLS socket on fd 2 and a missing config: the error goes
// to syslog (with a note saying why), never into the client's stream.
TEST_F(FieldFailures, ConfigErrorNeverLandsInAClientsStreamOnFd2) {
  const Outcome r =
      field("log-into-socket config " + static_file(), "ZCTLS_CONFIG=" + dir_ + "/missing.toml");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, "peer got exactly the file: yes\nsyslog: stderr note yes, config error yes\n");
}

// #2: the same for an integrity warning reported at the socket's close.
TEST_F(FieldFailures, IntegrityWarningNeverLandsInAClientsStreamOnFd2) {
  spit(config(),
       "[[rule]]\npath = \"" + dir_ +
           "/static/**\"\nzerocopy = true\n[integrity]\nsettle = 0\non_change = \"log\"\n");
  const Outcome r = field("log-into-socket integrity " + big_file());
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, "peer got exactly what was sent: yes\nsyslog: stderr note yes, integrity yes\n");
}

// #3: a program not linked to libssl gets it from a module it dlopens, as
// servers load theirs.  With RTLD_LOCAL the module's SSL_sendfile bound to
// the shim's export, which could not see that libssl: -1/ENOSYS, nothing
// sent.  The shim no longer exports SSL_sendfile; libssl's own sendfile(2)
// call is what it governs, from any copy loaded any way.
TEST_F(FieldFailures, SslSendfileFromAModuleWorksHoweverItWasLoaded) {
  const std::string files = " " ZCTLS_SSL_PLUGIN_PATH " " + static_file() + " " + private_file();
  for (const std::string mode : {"global", "local"}) {
    SCOPED_TRACE(mode);
    const Outcome with =
        run("ZCTLS_CONFIG=" + config(), mode + files, true, ZCTLS_SSL_LOADER_PATH, false);
    const Outcome without = run("", mode + files, false, ZCTLS_SSL_LOADER_PATH, false);
    EXPECT_EQ(with.status, 0) << with.out << with.err;
    EXPECT_EQ(with.out, mode + ":\nktls send=yes\na.bin flag=1\nb.bin flag=0\nbytes ok\n");
    EXPECT_EQ(without.out, mode + ":\nktls send=yes\na.bin flag=0\nb.bin flag=0\nbytes ok\n");
  }
}

// A process without libssl sees none in its global scope, shim or not
// (a program probing for kTLS support with dlsym must get the same answer).
TEST_F(FieldFailures, NoSslSendfileAppearsInAProcessWithoutLibssl) {
  const Outcome with = run("ZCTLS_CONFIG=" + config(), "probe", true, ZCTLS_SSL_LOADER_PATH, false);
  EXPECT_EQ(with.out, "SSL_sendfile in the global scope: no\n");
}

// The limit ARCHITECTURE.md states: a module dlopened RTLD_DEEPBIND and its
// libssl bind libc's sendfile in their own scope first, so the shim never
// sees those sends.  They work exactly as without it (and go by copy).
TEST_F(FieldFailures, DeepbindModulesAreNotSeenAndWorkAsWithout) {
#ifdef __SANITIZE_ADDRESS__
  GTEST_SKIP() << "ASan refuses dlopen with RTLD_DEEPBIND (google/sanitizers#611)";
#endif
  const std::string args = "deepbind " ZCTLS_SSL_PLUGIN_PATH " " + static_file();
  const Outcome with = run("ZCTLS_CONFIG=" + config(), args, true, ZCTLS_SSL_LOADER_PATH, false);
  const Outcome without = run("", args, false, ZCTLS_SSL_LOADER_PATH, false);
  EXPECT_EQ(with.status, 0) << with.out << with.err;
  EXPECT_EQ(with.out, "deepbind:\nktls send=yes\na.bin flag=0\nbytes ok\n");
  EXPECT_EQ(with.out, without.out);
}

// #4: decisions were cached per inode while rules are by path: after
// static/a.bin went zerocopy, its hard link uploads/a.bin (a copy rule)
// did too.  zctls cannot list a file's other links: both go by copy.
TEST_F(FieldFailures, AHardLinkedFileGoesByCopyUnderEveryName) {
  spit(config(), "[[rule]]\npath = \"" + dir_ +
                     "/static/**\"\nzerocopy = true\n[[rule]]\npath = \"" + dir_ +
                     "/private/**\"\nzerocopy = false\n" + zctls_e2e::kNoSettle);
  const Outcome r = field("names hardlink " + static_file() + " " + dir_ + "/private/linked.bin");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "a.bin flag=0\nlinked.bin flag=0\nbytes ok\n") << r.err;
}

// #4: the same filesystem mounted twice: static/ bind-mounted under
// private/ (no rule: copy) gives every static file a copy-rule name.  Seen
// within a second of the mount (at the next file zctls decides), and then
// for files decided before it too.
TEST_F(FieldFailures, ABindMountUnderACopyRuleMakesItsFilesCopy) {
  spit(dir_ + "/static/b.bin", std::string(50000, 'b'));
  ASSERT_EQ(mkdir((dir_ + "/private/mirror").c_str(), 0755), 0);
  const Outcome r = field("names bind " + dir_ + "/static " + dir_ + "/private/mirror");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "a.bin flag=1\nb.bin flag=0\na.bin flag=0\nbytes ok\n") << r.err;
}

// #5: after a zerocopy sendfile the flag stays on (zctls sets it only when
// it must change); a splice of a copy-rule file through a pipe into the
// same socket went out with it on.  The splice hook turns it off first.
TEST_F(FieldFailures, SpliceIntoAKtlsSocketGoesWithTheFlagOff) {
  const Outcome r = field("splice " + static_file() + " " + private_file());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "sendfile a.bin flag=1\nsplice b.bin flag=0\nbytes ok\n") << r.err;
}

// #6: an fd closed where no hook saw it (glibc's closefrom closes through
// close_range inside libc; fclose inside stdio) left its entry: a kTLS
// socket later on that number was sent on with the old socket's flag.
// Each closing path forgets; each way a socket can arrive on a number
// (here: the dup3 syscall, SCM_RIGHTS, a kTLS setup on the number) is
// either seen by a hook or preceded by one that forgot.
struct StaleCase {
  const char* close;
  const char* place;
  int flag;  // what the rules want for what the new socket sends
};

TEST_F(FieldFailures, NoStaleStateAfterAnFdClosedBehindTheHooks) {
  const StaleCase cases[] = {
      {"closefrom", "moved", 1},
      {"closefrom", "received", 0},
      {"closefrom", "setup", 1},
      {"fclose", "moved", 1},
      {"fclose", "received", 0},
      {"fclose", "setup", 1},
      // The close syscall itself: the next socket call on the number
      // (recvmsg with SCM_RIGHTS, setsockopt TCP_ULP) forgets.  A socket
      // moved there by a syscall too is the limit ARCHITECTURE.md states.
      {"raw", "received", 0},
      {"raw", "setup", 1},
  };
  for (const StaleCase& c : cases) {
    SCOPED_TRACE(std::string(c.close) + " " + c.place);
    const Outcome r = field(std::string("stale-fd ") + c.close + " " + c.place + " " +
                            static_file() + " " + private_file());
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(r.out, "same number yes\nflag=" + std::to_string(c.flag) + "\nbytes ok\n") << r.err;
  }
}

// #9: libfaketime preloaded after the shim (FAKETIME=+5s) answers every
// clock_gettime call that goes through the global scope.  The settle
// window compared the kernel's file times with that clock, so a file
// written a moment before its send looked 5 s old and went zerocopy.  The
// shim now reads libc's own clock: the file goes by copy until it is
// 2 s quiet, as without libfaketime.  The program's own sleep is real.
TEST_F(FieldFailures, SettleWindowHoldsWithLibfaketimePreloadedToo) {
  const std::string faketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
  spit(config(), "[[rule]]\npath = \"" + dir_ +
                     "/static/**\"\nzerocopy = true\n"
                     "[integrity]\nsettle = 2\n");
  const Outcome r =
      run("LD_PRELOAD=" ZCTLS_SHIM_PATH ":" + faketime + " FAKETIME=+5s ZCTLS_CONFIG=" + config(),
          "settle 2.5 " + static_file());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "fresh flag=0\nsettled flag=1\nbytes ok\n") << r.err;
  EXPECT_EQ(r.flag_sets(), (std::vector<int>{1})) << r.strace;
}

}  // namespace
