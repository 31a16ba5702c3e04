// Where the counters land (issue 22): every send of a process counted
// exactly once, in the stats file its config names ([stats] dir) or in none
// (dir = ""), whatever its first send was, and no file anywhere else.
// Checked through `zctls stats --json` and `--prometheus`:
//   sends = zerocopy_sends + the copy reasons,  bytes = zerocopy_bytes + copy_bytes.
// Each run gets a /dev/shm of its own (a mount namespace), so that "no file
// anywhere else" can be seen while other tests share the guest.
#include <regex>

#include "e2e_support.h"

#ifndef ZCTLS_FIELD_PATH
#error "ZCTLS_FIELD_PATH must name zctls_test_field"
#endif

namespace {

using zctls_e2e::lines_of;
using zctls_e2e::slurp;
using zctls_e2e::spit;

class CountersE2E : public zctls_e2e::ShimE2E {
 protected:
  void SetUp() override {
    ShimE2E::SetUp();
    stats_ = dir_ + "/stats";
    ASSERT_EQ(mkdir(stats_.c_str(), 0755), 0);
  }
  // Config: static/** zerocopy, `rules` after, no settle unless `extra`
  // sets it, [stats] dir = `dir`.
  void configure(const std::string& dir, const std::string& rules = "",
                 const std::string& integrity = "settle = 0\n") {
    spit(config(), "[[rule]]\npath = \"" + dir_ + "/static/**\"\nzerocopy = true\n" + rules +
                       "[integrity]\n" + integrity + "[stats]\ndir = \"" + dir + "\"\n");
  }

  struct Run {
    int status = -1;
    std::string out, shm, json_sums, prometheus_sums, files;
  };
  // Runs PROGRAM ARGS under the shim with a private /dev/shm, then reads
  // the counters of `dir` (the stats dir, or /dev/shm itself) there.
  Run run_counted(const std::string& program, const std::string& args, const std::string& dir,
                  const std::string& config_path) {
    Run r;
    const std::string out = dir_ + "/run.out", shm = dir_ + "/run.shm", json = dir_ + "/run.json",
                      prom = dir_ + "/run.prom", files = dir_ + "/run.files";
    const std::string cli = ZCTLS_CLI_PATH;
    const std::string inner =
        "mount -t tmpfs tmpfs /dev/shm && env LD_PRELOAD=" ZCTLS_SHIM_PATH " ZCTLS_CONFIG=" +
        config_path + " " + program + " " + args + " > " + out + " 2>&1; rc=$?; ls /dev/shm > " +
        shm + "; ls " + dir + " > " + files + "; " + cli + " stats --dir " + dir + " --json > " +
        json + "; " + cli + " stats --dir " + dir + " --prometheus > " + prom + "; exit $rc";
    const int rc = std::system(("unshare -m sh -c '" + inner + "'").c_str());
    r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    r.out = slurp(out);
    r.shm = slurp(shm);
    r.files = slurp(files);
    r.json_sums =
        python(json,
               "import json,sys; t=json.load(open(sys.argv[1]))['totals']; "
               "c=sum(v for k,v in t.items() if k.startswith('copy_') and k!='copy_bytes'); "
               "print(t['sends'], t['zerocopy_sends']+c, t['bytes'], "
               "t['zerocopy_bytes']+t['copy_bytes'], t['sends']>0)");
    r.prometheus_sums = python(
        prom,
        "import re,sys; v={}\n"
        "for l in open(sys.argv[1]):\n"
        " m=re.match(r'(zctls_\\w+)(\\{[^}]*\\})? (\\d+)$', l.strip())\n"
        " if m: v[m.group(1)]=v.get(m.group(1),0)+int(m.group(3))\n"
        "print(v['zctls_sends_total'], "
        "v['zctls_zerocopy_sends_total']+v['zctls_copy_sends_total'], "
        "v['zctls_sent_bytes_total'], v['zctls_zerocopy_bytes_total']+v['zctls_copy_bytes_total'], "
        "v['zctls_sends_total']>0)");
    return r;
  }
  std::string python(const std::string& file, const std::string& code) {
    const std::string script = dir_ + "/sums.py", out = dir_ + "/sums.out";
    spit(script, code);
    std::system(("/usr/bin/python3 " + script + " " + file + " > " + out + " 2>&1").c_str());
    return slurp(out);
  }
  // The invariants hold in JSON and Prometheus, and there were sends.
  void check_invariants(const Run& r) {
    const std::regex same(R"((\d+) \1 (\d+) \2 True\n)");
    EXPECT_TRUE(std::regex_match(r.json_sums, same)) << "JSON: " << r.json_sums << r.out;
    EXPECT_TRUE(std::regex_match(r.prometheus_sums, same)) << "Prometheus: " << r.prometheus_sums;
  }
  int json_total(const std::string& counter) {
    return std::stoi(python(dir_ + "/run.json",
                            "import json,sys; print(json.load(open(sys.argv[1]))"
                            "['totals']['" +
                                counter + "'])"));
  }
  std::string stats_;
};

struct FirstSend {
  const char* name;
  const char* reason;  // the counter the first send must land in
  std::string program, args, rules, integrity;
};

// Each kind of first send, and a fork child's, with [stats] dir a
// directory: one file per process there, none in /dev/shm.
TEST_F(CountersE2E, EveryKindOfFirstSendLandsOnceWhereTheConfigSays) {
  const std::string field = ZCTLS_FIELD_PATH, sender = ZCTLS_SENDER_PATH;
  const std::string s = static_file(), p = private_file();
  const std::vector<FirstSend> cases = {
      {"zerocopy", "zerocopy_sends", sender, "raw " + s + " " + p, "", "settle = 0\n"},
      {"no rule", "copy_no_rule", sender, "raw " + p + " " + s, "", "settle = 0\n"},
      {"rule off", "copy_rule_off", sender, "raw " + p,
       "[[rule]]\npath = \"" + dir_ + "/private/**\"\nzerocopy = false\n", "settle = 0\n"},
      {"settle", "copy_settle", sender, "settle 0 " + s, "", "settle = 2\n"},
      {"kernel quirk", "copy_kernel_quirk", sender, "offsets " + s + " 100 0", "",
       "settle = 0\nkernel_quirks = \"on\"\n"},
      // The application's flag on: zerocopy sends of its own (issue 19),
      // under app_flag = "respect" (under the default, govern, the rules').
      {"app-managed", "app_zerocopy_sends", "ZCTLS_APP_FLAG=respect " + sender, "appflag " + s,
       "", "settle = 0\n"},
      {"unlinked", "copy_unlinked", field, "send-unlinked " + s, "", "settle = 0\n"},
      {"hard links", "copy_hard_links", field, "names hardlink " + s + " " + dir_ + "/private/l",
       "", "settle = 0\n"},
  };
  for (const FirstSend& c : cases) {
    SCOPED_TRACE(c.name);
    configure(stats_, c.rules, c.integrity);
    const Run r = run_counted(c.program, c.args, stats_, config());
    EXPECT_EQ(r.status, 0) << r.out;
    check_invariants(r);
    EXPECT_GE(json_total(c.reason), 1) << r.out;
    EXPECT_EQ(lines_of(r.files).size(), 1U) << "one process, one file: " << r.files;
    EXPECT_EQ(r.shm, "") << "nothing in /dev/shm";
    std::system(("rm -f " + stats_ + "/* " + dir_ + "/private/l").c_str());
  }
}

TEST_F(CountersE2E, AForkChildsSendsLandInItsOwnFile) {
  configure(stats_);
  const Run r = run_counted(ZCTLS_SENDER_PATH, "fork " + static_file() + " " + private_file(),
                            stats_, config());
  EXPECT_EQ(r.status, 0) << r.out;
  check_invariants(r);
  EXPECT_EQ(lines_of(r.files).size(), 2U) << "parent and child: " << r.files;
  EXPECT_EQ(r.shm, "");
}

// No usable config: the default directory, /dev/shm (here the run's own).
TEST_F(CountersE2E, WithoutAConfigTheDefaultDirectory) {
  const Run r =
      run_counted(ZCTLS_SENDER_PATH, "raw " + static_file(), "/dev/shm", dir_ + "/missing.toml");
  EXPECT_EQ(r.status, 0) << r.out;
  check_invariants(r);
  EXPECT_GE(json_total("copy_no_config"), 1);
  EXPECT_EQ(lines_of(r.shm).size(), 1U) << r.shm;
}

// Issue 19 #4: a process whose kTLS sockets never send a file (a server's
// generated or proxied responses) still has a stats file, which says so:
// ktls_tx_sockets counts them at their TX key, ktls_tx_file_sockets does not.
TEST_F(CountersE2E, SocketsThatNeverSendAFileAreCountedAtTheirKey) {
  configure(stats_);
  Run r = run_counted(ZCTLS_SENDER_PATH, "nofile 3", stats_, config());
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(lines_of(r.files).size(), 1U) << "a stats file without a send: " << r.files;
  EXPECT_EQ(json_total("ktls_tx_sockets"), 3) << r.out;
  EXPECT_EQ(json_total("ktls_tx_file_sockets"), 0);
  EXPECT_EQ(json_total("sends"), 0);
  std::system(("rm -f " + stats_ + "/*").c_str());
  r = run_counted(ZCTLS_SENDER_PATH, "raw " + static_file() + " " + private_file(), stats_,
                  config());
  EXPECT_EQ(r.status, 0) << r.out;
  check_invariants(r);
  EXPECT_EQ(json_total("ktls_tx_sockets"), 1);
  EXPECT_EQ(json_total("ktls_tx_file_sockets"), 1) << "two files, one socket";
}

// A process that exec'd from the library of before an upgrade finds its
// own stats file in the older layout: it keeps those counts, as an exited
// process's file beside its new one, instead of counting privately.
TEST_F(CountersE2E, AnOlderLayoutsFileFromBeforeAnExecIsKept) {
  configure(stats_);
  const Run r = run_counted(ZCTLS_SENDER_PATH, "planted-v2 " + stats_ + " " + static_file(), stats_,
                            config());
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.find("cannot"), std::string::npos) << r.out;
  const std::vector<std::string> files = lines_of(r.files);
  ASSERT_EQ(files.size(), 2U) << r.files;
  EXPECT_NE(r.files.find("-before-exec.stats\n"), std::string::npos) << r.files;
  EXPECT_GE(json_total("sends"), 5 + 1) << "the old file's 5 and this image's own";
  EXPECT_EQ(json_total("ktls_tx_sockets"), 1);
}

// dir = "": counters stay in the process, no file anywhere (the fork
// child made one in /dev/shm before: issue 22).
TEST_F(CountersE2E, PrivateCountersMakeNoFileAnywhere) {
  configure("");
  for (const std::string mode : {"raw", "fork"}) {
    SCOPED_TRACE(mode);
    const Run r = run_counted(ZCTLS_SENDER_PATH, mode + " " + static_file() + " " + private_file(),
                              stats_, config());
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_EQ(r.shm, "");
    EXPECT_EQ(r.files, "");
  }
}

}  // namespace
