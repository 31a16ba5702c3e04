// Regression tests for the ways real deployments broke zctls (issue 18),
// one per bug, in the manner of cwrap's socket_wrapper: each runs
// zctls_test_field (or another program) with the shim and checks what the
// kernel, the peer or an independent listener saw.
#include "e2e_support.h"

#ifndef ZCTLS_FIELD_PATH
#error "ZCTLS_FIELD_PATH must name zctls_test_field"
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
  const Outcome r = field("log-into-socket config " + static_file(),
                          "ZCTLS_CONFIG=" + dir_ + "/missing.toml");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, "peer got exactly the file: yes\nsyslog: stderr note yes, config error yes\n");
}

// #2: the same for an integrity warning reported at the socket's close.
TEST_F(FieldFailures, IntegrityWarningNeverLandsInAClientsStreamOnFd2) {
  spit(config(), "[[rule]]\npath = \"" + dir_ +
                     "/static/**\"\nzerocopy = true\n[integrity]\nsettle = 0\non_change = \"log\"\n");
  const Outcome r = field("log-into-socket integrity " + big_file());
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, "peer got exactly what was sent: yes\nsyslog: stderr note yes, integrity yes\n");
}

// #9: libfaketime preloaded after the shim (FAKETIME=+5s) answers every
// clock_gettime call that goes through the global scope.  The settle
// window compared the kernel's file times with that clock, so a file
// written a moment before its send looked 5 s old and went zerocopy.  The
// shim now reads libc's own clock: the file goes by copy until it is
// 2 s quiet, as without libfaketime.  The program's own sleep is real.
TEST_F(FieldFailures, SettleWindowHoldsWithLibfaketimePreloadedToo) {
  const std::string faketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
  spit(config(), "[[rule]]\npath = \"" + dir_ + "/static/**\"\nzerocopy = true\n"
                 "[integrity]\nsettle = 2\n");
  const Outcome r = run("LD_PRELOAD=" ZCTLS_SHIM_PATH ":" + faketime +
                            " FAKETIME=+5s ZCTLS_CONFIG=" + config(),
                        "settle 2.5 " + static_file());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "fresh flag=0\nsettled flag=1\nbytes ok\n") << r.err;
  EXPECT_EQ(r.flag_sets(), (std::vector<int>{1})) << r.strace;
}

}  // namespace
