// Process and fd lifecycle around kTLS sockets (zctls_test_lifecycle),
// with the flag read back by the application's own getsockopt.
#include "e2e_support.h"

#ifndef ZCTLS_LIFECYCLE_PATH
#error "ZCTLS_LIFECYCLE_PATH must name zctls_test_lifecycle"
#endif

namespace {

using zctls_e2e::count;
using zctls_e2e::Outcome;
using zctls_e2e::ShimE2E;

class Lifecycle : public ShimE2E {
 protected:
  Outcome lifecycle(const std::string& args, bool preload = true) {
    return run("ZCTLS_CONFIG=" + config(), args, preload, ZCTLS_LIFECYCLE_PATH);
  }
  std::string files() const { return static_file() + " " + private_file(); }
};

// A child started by fork+exec, posix_spawn or vfork+exec keeps the shim
// (LD_PRELOAD is inherited) and classifies the inherited socket itself.
// The parent's own sends on the socket afterwards keep their bytes.
//
// Known limitation, shown here: the child leaves the flag on, and the
// parent's zctls, which cannot see another process's setsockopt, still
// believes it off, so the parent's next copy-rule send goes out with the
// flag on (until a zerocopy-rule send resets what it knows).  Servers do
// not send on one connection from two processes (nginx gives each
// connection to one worker); README "Limits" says so.
TEST_F(Lifecycle, SpawnedChildrenKeepTheShimAndTheParentGoesOn) {
  for (const std::string how : {"fork-exec", "posix_spawn", "vfork"}) {
    SCOPED_TRACE(how);
    const Outcome r = lifecycle("spawn " + how + " " ZCTLS_SENDER_PATH " " + private_file() + " " +
                                static_file());
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(r.out,
              "inherited b.bin flag=0\ninherited a.bin flag=1\nbytes ok\nchild exit=0\n"
              "parent b.bin flag=1\nparent a.bin flag=1\nbytes ok\n")
        << r.err;
  }
}

TEST_F(Lifecycle, WithoutTheShimSpawnedChildrenNeverSetTheFlag) {
  const Outcome r = lifecycle(
      "spawn posix_spawn " ZCTLS_SENDER_PATH " " + private_file() + " " + static_file(), false);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(count(r.out, "flag=1"), 0) << r.out;
  EXPECT_EQ(count(r.out, "bytes ok"), 2) << r.out;
}

// dup2 of a kTLS socket (flag on) over another (flag off): the number's
// next copy send turns the flag off.  A plain socket dup2'd over a kTLS
// number is sent on plainly, with no SOL_TLS call for it.
TEST_F(Lifecycle, Dup2OverAKtlsFd) {
  const Outcome r = lifecycle("dup2 " + files());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out,
            "a a.bin flag=1\nb b.bin flag=0\na-via-dup2 b.bin flag=0\nplain-via-dup2 sent\n"
            "bytes ok\n")
      << r.err;
}

// close_range forgets the numbers it closes (a new kTLS socket on one gets
// its own flag); CLOSE_RANGE_CLOEXEC closes nothing and forgets nothing.
TEST_F(Lifecycle, CloseRange) {
  const Outcome r = lifecycle("close-range " + files());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out,
            "cloexec b.bin flag=0\nold a.bin flag=1\nsame number yes\nnew a.bin flag=1\n"
            "new b.bin flag=0\nbytes ok\n")
      << r.err;
}

// Threads racing dup2/close against sendfile on one fd number: every send
// gets the kernel's answer (success or EBADF, nothing else), nothing
// crashes, and afterwards the number behaves like what it then is.
TEST_F(Lifecycle, ThreadsRacingCloseAndSendfileOnOneNumber) {
  const Outcome r = lifecycle("race 3 " + static_file());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out,
            "race sends>0 yes EBADF>0 yes moves>0 yes\nafter race kTLS sent flag=1\n"
            "after race plain sent\nbytes ok\n")
      << r.err;
}

// A signal interrupting a blocked sendfile: the partial count, then EINTR
// with the offset untouched, exactly as without the shim.
TEST_F(Lifecycle, SignalInterruptingABlockedSendfile) {
  std::string big(8 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 13 + 1);
  zctls_e2e::spit(dir_ + "/static/big.bin", big);
  const Outcome with = lifecycle("signal " + dir_ + "/static/big.bin");
  const Outcome without = lifecycle("signal " + dir_ + "/static/big.bin", false);
  EXPECT_EQ(with.status, 0) << with.out << with.err;
  EXPECT_EQ(without.status, 0) << without.out << without.err;
  // The second call usually gets EINTR; when TCP has made a little room
  // meanwhile it gets a short count instead.  Either way the offset must
  // agree with what the call returned.
  const std::regex expected(
      "first partial offset-consistent=yes\n"
      "second (EINTR|partial) offset-consistent=yes\n"
      "rest flag=([01])\nbytes ok\n");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(without.out, m, expected)) << without.out;
  EXPECT_EQ(m[2], "0");
  ASSERT_TRUE(std::regex_match(with.out, m, expected)) << with.out;
  EXPECT_EQ(m[2], "1");
}

}  // namespace
