// Regression tests for the second round of field failures (issue 31), one
// per input: each runs zctls_test_field2 with the shim (and, where the
// answer is "as without zctls", without it) and checks what the kernel,
// the peer or the program's own stack saw.
#include "e2e_support.h"

#if !defined(ZCTLS_FIELD2_PATH)
#error "ZCTLS_FIELD2_PATH must name the test program"
#endif

namespace {

using zctls_e2e::Outcome;
using zctls_e2e::ShimE2E;
using zctls_e2e::spit;

class FieldRound2 : public ShimE2E {
 protected:
  Outcome field2(const std::string& args, const std::string& env = "", bool preload = true) {
    return run("ZCTLS_CONFIG=" + config() + " " + env, args, preload, ZCTLS_FIELD2_PATH,
               /*traced=*/false);
  }
  // The most of its stack a scenario used, from "stack used N".
  static long stack_of(const std::string& out) {
    const std::size_t at = out.find("stack used ");
    return at == std::string::npos ? -1 : std::stol(out.substr(at + 11));
  }
};

// #1: a log line inside sendfile waited on a full stderr pipe for good.
// Now a line that does not fit is dropped (and counted in the next one's
// "suppressed"); fd 2's flags stay the application's.
TEST_F(FieldRound2, AFullStderrPipeNeverHoldsASend) {
  spit(config(), "[[rule]]\npath = \"" + dir_ +
                     "/static/**\"\nzerocopy = true\n[integrity]\nsettle = 0\n"
                     "on_change = \"log\"\n");
  const Outcome r = field2("stderr-full " + dir_ + "/static 40", "ZCTLS_LOG_LEVEL=debug");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "sent 40\nfd 2 flags unchanged: yes\n");
}

// #3: a vfork child shares the parent's memory: its close, dup2 or
// close_range of the kTLS socket made the parent's socket lose the
// application's flag (app_flag = "respect").  The parent's socket keeps it.
TEST_F(FieldRound2, AVforkChildChangesNothingTheParentSees) {
  spit(config(), "app_flag = \"respect\"\n[[rule]]\npath = \"" + dir_ +
                     "/static/**\"\nzerocopy = true\n" + zctls_e2e::kNoSettle);
  for (const std::string how : {"close", "dup2", "close_range"}) {
    SCOPED_TRACE(how);
    const Outcome with = field2("vfork " + how + " " + private_file(), "ZCTLS_TEST_APP_FLAG=1");
    const Outcome without = run("ZCTLS_TEST_APP_FLAG=1", "vfork " + how + " " + private_file(),
                                false, ZCTLS_FIELD2_PATH, false);
    EXPECT_EQ(with.status, 0) << with.out << with.err;
    EXPECT_EQ(without.out, "before flag=1\nafter flag=1\nbytes ok\n") << without.err;
    EXPECT_EQ(with.out, without.out) << with.err;
  }
}

// #3 as reported: unmodified CPython's subprocess.run, whose vfork child
// runs close_range in the parent's memory, turned the application's flag
// off for the next send.
TEST_F(FieldRound2, CPythonsSubprocessLeavesTheApplicationsFlag) {
  spit(config(), "app_flag = \"respect\"\n[[rule]]\npath = \"" + dir_ +
                     "/static/**\"\nzerocopy = true\n" + zctls_e2e::kNoSettle);
  const std::string script = ZCTLS_KTLS_DIR "/subprocess_vfork.py " + private_file();
  const Outcome with = run("ZCTLS_CONFIG=" + config(), script, true, "python3", false);
  const Outcome without = run("", script, false, "python3", false);
  EXPECT_EQ(without.out, "before flag=1\nafter flag=1\n") << without.err;
  EXPECT_EQ(with.status, 0) << with.out << with.err;
  EXPECT_EQ(with.out, without.out) << with.err;
}

// #2: a thread with a 16 KiB stack (and a 16 KiB makecontext coroutine)
// sending on kTLS: a new file's decision put an 8 KiB and a 4 KiB buffer
// on its stack, and it overflowed.  Beyond what the same scenario uses
// without zctls, a send (a new file's decision, a warm send) and close use
// at most 2 KiB of the caller's stack, a log line from inside included; the process's first kTLS
// socket (the engine's load and the config's parse) fits in 16 KiB too.
TEST_F(FieldRound2, SmallStacksHoldASendAndAClose) {
#ifdef __SANITIZE_ADDRESS__
  GTEST_SKIP() << "ASan's own frames are larger than the stacks under test";
#endif
  spit(dir_ + "/static/c.bin", std::string(70000, 'c'));
  const std::string files = static_file() + " " + dir_ + "/static/c.bin " + private_file();
  for (const std::string mode : {"small-stack 16 send", "small-stack 16 first", "coroutine 16"}) {
    SCOPED_TRACE(mode);
    const Outcome with = field2(mode + " " + files);
    const Outcome without = field2(mode + " " + files, "", false);
    EXPECT_EQ(with.status, 0) << with.out << with.err;
    EXPECT_EQ(without.status, 0) << without.out << without.err;
    const long extra = stack_of(with.out) - stack_of(without.out);
    std::printf("%s: %ld bytes with zctls, %ld without\n", mode.c_str(), stack_of(with.out),
                stack_of(without.out));
    if (mode != "small-stack 16 first") {
      EXPECT_LE(extra, 2048) << with.out << without.out;
      // With a log line from inside each new file's decision too.
      const Outcome logging = field2(mode + " " + files, "ZCTLS_LOG_LEVEL=debug");
      std::printf("%s, logging every decision: %ld bytes\n", mode.c_str(), stack_of(logging.out));
      EXPECT_EQ(logging.status, 0) << logging.out << logging.err;
      EXPECT_LE(stack_of(logging.out) - stack_of(without.out), 2048) << logging.out;
    }
  }
}

// #9: a relative ZCTLS_CONFIG was looked up when the engine first read
// it, after the program's chdir: "cannot open", and pass-through.  It is
// taken from the working directory the library was loaded in.
TEST_F(FieldRound2, ARelativeConfigPathIsResolvedAtLoad) {
  const std::string cmd = "cd '" + dir_ +
                          "' && env LD_PRELOAD=" ZCTLS_SHIM_PATH
                          " ZCTLS_CONFIG=zctls.toml " ZCTLS_FIELD2_PATH " chdir " +
                          static_file() + " > out 2> err";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << zctls_e2e::slurp(dir_ + "/err");
  EXPECT_EQ(zctls_e2e::slurp(dir_ + "/out"), "flag=1\nbytes ok\n")
      << zctls_e2e::slurp(dir_ + "/err");
}

// #6: no fd free when the first TX key loaded the engine: dlopen failed
// with errno 0, which was taken for a permanent failure.  It is tried
// again a second later, and the next send goes by the rules.
TEST_F(FieldRound2, NoFreeFdAtTheFirstKeyIsTriedAgain) {
  const Outcome r = field2("emfile " + static_file());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "no fd was free at the key: yes\nflag=1\nbytes ok\n") << r.err;
  EXPECT_NE(r.err.find("tries again"), std::string::npos) << r.err;
}

// #8: two builds preloaded from two directories: the second copy's hooks
// are the first's real calls, and it took the first's flag for the
// application's.  The first acts; the second stands aside and says so.
TEST_F(FieldRound2, ASecondCopyOfTheLibraryStandsAside) {
  const std::string shim = ZCTLS_SHIM_PATH;
  const std::string from = shim.substr(0, shim.rfind('/'));
  const std::string copy = dir_ + "/copy";
  const std::string cmd = "mkdir '" + copy + "' && cp '" + shim + "' '" + from +
                          "/" ZCTLS_ENGINE_FILE "' '" + copy + "/'";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const Outcome r = run("LD_PRELOAD=" + copy + "/libzctls.so:" + shim +
                            " ZCTLS_CONFIG=" + config() + " ZCTLS_LOG_LEVEL=info",
                        "chdir " + static_file(), false, ZCTLS_FIELD2_PATH, false);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "flag=1\nbytes ok\n") << r.err;
  EXPECT_EQ(zctls_e2e::count(r.err, "that copy of zctls acts"), 1) << r.err;
  EXPECT_EQ(r.err.find("itself"), std::string::npos) << r.err;
}

// #4a: a directory renamed from under a zerocopy rule into a copy rule
// (inode and ctime unchanged) kept its cached decision: flag 1 for
// uploads/v1/app.js.  Decisions more than a second old are served only
// after the fd's path is read again.
TEST_F(FieldRound2, ARenamedDirectoryGoesByItsNewNamesRule) {
  const Outcome r = field2("rename " + dir_ + "/static " + dir_ + "/private");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "app.js flag=1\napp.js flag=0\nbytes ok\n") << r.err;
}

// #4b: static/ (or one file of it) bind-mounted under private/ (no rule:
// copy) after its file was decided: both names were sent zerocopy until
// another file's decision.  Within about a second of the mount, both go by
// copy.
TEST_F(FieldRound2, ABindMountMadeAfterTheDecisionMakesBothNamesCopy) {
  for (const std::string how : {"dir", "file"}) {
    SCOPED_TRACE(how);
    const std::string mirror = dir_ + "/private/mirror-" + how;
    ASSERT_EQ(mkdir(mirror.c_str(), 0755), 0);
    const Outcome r = field2("bind-late " + how + " " + dir_ + "/static " + mirror);
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(r.out, "a.bin flag=1\na.bin flag=0\na.bin flag=0\nbytes ok\n") << r.err;
  }
}

// #5: a server under a seccomp filter built from the syscalls it makes
// itself (SCMP_ACT_KILL on the rest) was killed by the shim's own (the
// fstat syscall where glibc's fstat makes newfstatat, readlink, statx,
// getpid).  What zctls may add once the process's first kTLS send is done
// is the list README.md states; with it the program runs; without it, the
// shim's syscalls kill it (the check is not blind).
TEST_F(FieldRound2, UnderASeccompAllowListOfItsOwnPlusTheDocumentedOnes) {
  spit(dir_ + "/static/new.bin", std::string(30000, 'n'));
  // What the program itself makes after its filter (without zctls).
  const std::string own =
      "read,write,openat,close,newfstatat,sendfile,getsockopt,futex,clock_nanosleep,exit_group,"
      "exit,mmap,munmap,madvise,brk,mprotect,rt_sigprocmask,rt_sigreturn";
  // What zctls adds per send, per new file, per second and per kTLS
  // close (README.md, "Under a seccomp filter"; clock_gettime is the
  // vDSO's).
#ifdef __aarch64__
  const std::string zctls = "setsockopt,readlinkat,statx,getpid";
#else
  const std::string zctls = "setsockopt,readlink,statx,getpid";
#endif
  const std::string files = " " + static_file() + " " + dir_ + "/static/new.bin " + private_file();
  const std::string expected = "a.bin flag=1\nnew.bin flag=1\nb.bin flag=0\na.bin flag=1\nclosed\n";
  const Outcome without = field2("seccomp " + own + files, "", false);
  EXPECT_EQ(without.status, 0) << without.out << without.err;
  EXPECT_EQ(without.out, "a.bin flag=0\nnew.bin flag=0\nb.bin flag=0\na.bin flag=0\nclosed\n");
  const Outcome with = field2("seccomp " + own + "," + zctls + files);
  EXPECT_EQ(with.status, 0) << with.out << with.err;
  EXPECT_EQ(with.out, expected) << with.err;
  const Outcome blind = field2("seccomp " + own + files);
  EXPECT_NE(blind.status, 0) << "the shim's own syscalls were all in the program's list";
}

// #7: a server chrooted into a plain directory (lighttpd's server.chroot):
// the kernel lists no mount of the files' filesystem in its mountinfo, and
// every send was copy_names_unknown.  A name the process cannot reach is
// not one it serves: the opened name decides (rules as the chrooted
// process sees paths).
TEST_F(FieldRound2, AChrootIntoAPlainDirectoryGoesByTheRules) {
  const std::string root = dir_ + "/root";
  ASSERT_EQ(
      std::system(("mkdir -p " + root + "/static " + root + "/private && cp " + static_file() +
                   " " + root + "/static/ && cp " + private_file() + " " + root + "/private/")
                      .c_str()),
      0);
  spit(config(), "[[rule]]\npath = \"/static/**\"\nzerocopy = true\n" + zctls_e2e::kNoSettle);
  const Outcome r = field2("chroot " + root);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "a.bin flag=1\nb.bin flag=0\n") << r.err;
}

// #10: a rule written for a symlinked deploy path never matches (zctls
// matches the resolved path); the engine says so when it loads the config,
// with the rule to write instead, as `zctls check` does.
TEST_F(FieldRound2, ARuleThroughASymlinkIsReportedWhenTheConfigLoads) {
  ASSERT_EQ(symlink("static", (dir_ + "/current").c_str()), 0);
  spit(config(),
       "[[rule]]\npath = \"" + dir_ + "/current/**\"\nzerocopy = true\n" + zctls_e2e::kNoSettle);
  const Outcome r = field2("chdir " + dir_ + "/current/a.bin");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "flag=0\nbytes ok\n") << r.err;
  EXPECT_NE(r.err.find(dir_ + "/current is a symbolic link (to static)"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("\"" + dir_ + "/static/**\""), std::string::npos) << r.err;
}

}  // namespace
