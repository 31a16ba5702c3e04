// The zctls command against real kTLS sockets and the real shim: run,
// check, explain, status, stats (table, JSON, Prometheus parsed by the
// reference parser), the node_exporter textfile, and config hot reload.
#include <cstdint>
#include <sstream>
#include <utility>
#include <vector>

#include "e2e_support.h"

namespace {

using zctls_e2e::count;
using zctls_e2e::ShimE2E;
using zctls_e2e::slurp;
using zctls_e2e::spit;

class CliE2E : public ShimE2E {
 protected:
  void SetUp() override {
    ShimE2E::SetUp();
    stats_ = dir_ + "/stats";
    ASSERT_EQ(mkdir(stats_.c_str(), 0755), 0);
    write_config(true);
  }
  void write_config(bool zerocopy, const std::string& extra = "") {
    spit(config(), "[[rule]]\npath = \"" + dir_ +
                       "/static/**\"\nzerocopy = " + (zerocopy ? "true" : "false") + "\n" +
                       zctls_e2e::kNoSettle + "[stats]\ndir = \"" + stats_ +
                       "\"\ntextfile_dir = \"" + dir_ + "\"\n" + extra);
  }
  // Runs a shell command line; returns its exit status, stdout in *out.
  int sh(const std::string& cmd, std::string* out = nullptr) {
    const std::string file = dir_ + "/sh.out";
    const int rc = std::system(("(" + cmd + ") > " + file + " 2> " + dir_ + "/sh.err").c_str());
    if (out != nullptr) *out = slurp(file);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }
  std::string err() { return slurp(dir_ + "/sh.err"); }
  std::string zctls() const { return ZCTLS_CLI_PATH; }
  // The parsed Prometheus samples of `file`, one "name{labels} value" each.
  std::string parsed(const std::string& file) {
    std::string out;
    EXPECT_EQ(sh(std::string(ZCTLS_PROMETHEUS_CHECK) + " " + file, &out), 0) << err();
    return out;
  }
  // Shell function `wait_for COUNTER`: until the shim's totals show COUNTER
  // at least once (120 s at most, then "no COUNTER" and status 1).
  std::string wait_for_counter() const {
    return "wait_for() { end=$(($(date +%s) + 120)); "
           "while [ $(date +%s) -lt $end ]; do [ \"$(" +
           totals("$1") +
           ")\" -ge 1 ] 2>/dev/null && return 0; sleep 0.1; done; "
           "echo \"no $1\" >&2; return 1; }; ";
  }
  // Shell command printing the shim's totals of these counters, in order.
  std::string totals(const std::string& counters) const {
    return zctls() + " stats --dir " + stats_ +
           " --json | /usr/bin/python3 -c 'import json,sys; t=json.load(sys.stdin)[\"totals\"]; "
           "print(*(t[c] for c in sys.argv[1:]))' " +
           counters;
  }
  std::string stats_;
};

TEST_F(CliE2E, RunPrependsToLdPreloadAndSetsTheConfig) {
  std::string out;
  ASSERT_EQ(sh("LD_PRELOAD=/nonexistent/keep.so " + zctls() + " run --config " + config() +
                   " -- sh -c 'echo \"$LD_PRELOAD|$ZCTLS_CONFIG\"'",
               &out),
            0)
      << err();
  EXPECT_EQ(out, std::string(ZCTLS_SHIM_PATH) + ":/nonexistent/keep.so|" + config() + "\n");
  EXPECT_EQ(sh(zctls() + " run -- /nonexistent/program"), 127);
  EXPECT_EQ(sh(zctls() + " run --config " + config()), 64) << "no command";
}

TEST_F(CliE2E, CheckAndExplain) {
  std::string out;
  EXPECT_EQ(sh(zctls() + " check " + config(), &out), 0) << err();
  EXPECT_EQ(out, config() +
                     ": ok: 1 rule, default copy, on_change quarantine, kernel_quirks auto, "
                     "offload auto\n");
  // This config still names [stats] textfile_dir, which nothing writes now.
  EXPECT_NE(err().find(config() + ": warning: [stats] textfile_dir is ignored"), std::string::npos)
      << err();
  spit(dir_ + "/bad.toml", "[[rule]]\npath = \"/x/[a\"\nzerocopy = true\nbogus = 1\n");
  EXPECT_EQ(sh(zctls() + " check " + dir_ + "/bad.toml"), 1);
  EXPECT_NE(err().find(dir_ + "/bad.toml:2:"), std::string::npos) << err();
  EXPECT_NE(err().find(dir_ + "/bad.toml:4:1: unknown key 'bogus'"), std::string::npos) << err();
  EXPECT_EQ(
      sh(zctls() + " explain --config " + config() + " " + static_file() + " " + private_file(),
         &out),
      0)
      << err();
  EXPECT_EQ(out, static_file() + ": zerocopy by rule 1 (" + config() + ":1:1, path \"" + dir_ +
                     "/static/**\")\n" + private_file() + ": copy by default (no rule matches)\n");
}

TEST_F(CliE2E, StatsCountWhatTheRunDid) {
  // static (zerocopy), private (no rule: copy), static again (cache hit).
  std::string out;
  ASSERT_EQ(sh(zctls() + " run --config " + config() + " -- " ZCTLS_SENDER_PATH " raw " +
                   static_file() + " " + private_file() + " " + static_file(),
               &out),
            0)
      << out << err();
  EXPECT_EQ(out, "a.bin flag=1\nb.bin flag=0\na.bin flag=1\nbytes ok\n");
  ASSERT_EQ(sh(zctls() + " stats --dir " + stats_ + " --prometheus > " + dir_ + "/stats.prom"), 0);
  const std::string samples = parsed(dir_ + "/stats.prom");
  for (const char* expected :
       {"zctls_sends_total{} 3\n", "zctls_sent_bytes_total{} 700001\n",
        "zctls_zerocopy_sends_total{} 2\n", "zctls_zerocopy_bytes_total{} 600000\n",
        "zctls_copy_sends_total{reason=\"no_rule\"} 1\n",
        "zctls_copy_sends_total{reason=\"settle\"} 0\n", "zctls_integrity_events_total{} 0\n",
        "zctls_decision_cache_hits_total{} 1\n", "zctls_decision_cache_misses_total{} 2\n",
        "zctls_config_loads_total{} 1\n", "zctls_config_errors_total{} 0\n",
        "zctls_processes{state=\"alive\"} 0\n", "zctls_processes{state=\"exited\"} 1\n"})
    EXPECT_NE(samples.find(expected), std::string::npos) << expected << " in\n" << samples;
  // JSON, checked by a JSON parser.
  ASSERT_EQ(sh(zctls() + " stats --dir " + stats_ +
                   " --json | /usr/bin/python3 -c 'import json,sys; "
                   "d=json.load(sys.stdin); p=d[\"processes\"][0]; "
                   "print(p[\"comm\"], p[\"state\"], d[\"totals\"][\"zerocopy_sends\"])'",
               &out),
            0)
      << err();
  EXPECT_EQ(out, "zctls_test_send exited 2\n");
  // The library writes no textfile, not even with [stats] textfile_dir
  // set (issue 20 #5: no file I/O inside a server's sendfile); the timer
  // below does.
  struct stat st {};
  EXPECT_NE(stat((dir_ + "/zctls.prom").c_str(), &st), 0) << "the library wrote a textfile";
  // `stats --prune --textfile`, for a timer: the shipped unit's ExecStart
  // line, packaged paths mapped to this test's, writes the same totals and
  // folds the exited process into the retired file.
  ASSERT_EQ(mkdir((dir_ + "/node-exporter").c_str(), 0755), 0);
  const std::string unit = slurp(ZCTLS_EXAMPLES_DIR "/systemd/zctls-textfile.service");
  const std::size_t exec = unit.find("\nExecStart=");
  ASSERT_NE(exec, std::string::npos) << unit;
  std::string command = unit.substr(exec + 11, unit.find('\n', exec + 1) - exec - 11);
  const std::pair<std::string, std::string> packaged_paths[] = {
      {"/usr/bin/zctls", zctls()},
      {"/etc/zctls.toml", config()},
      {"/var/lib/prometheus/node-exporter", dir_ + "/node-exporter"}};
  for (const auto& [from, to] : packaged_paths) {
    const std::size_t at = command.find(from);
    ASSERT_NE(at, std::string::npos) << from << " in " << command;
    command.replace(at, from.size(), to);
  }
  ASSERT_EQ(sh(command, &out), 0) << command << err();
  EXPECT_EQ(out, "");
  EXPECT_NE(err().find("folded 1 exited process into the retired totals"), std::string::npos)
      << err();
  const std::string timer_textfile = parsed(dir_ + "/node-exporter/zctls.prom");
  for (const char* expected : {"zctls_sends_total{} 3\n", "zctls_zerocopy_sends_total{} 2\n",
                               "zctls_processes{state=\"exited\"} 0\n"})
    EXPECT_NE(timer_textfile.find(expected), std::string::npos) << expected << timer_textfile;
  EXPECT_EQ(sh(zctls() + " stats --dir " + stats_ + " --textfile " + dir_ + "/missing"), 1);
  EXPECT_NE(err().find("cannot write " + dir_ + "/missing/zctls.prom"), std::string::npos) << err();
  // Exited processes stay in the totals after --prune folds them; a prune
  // with nothing to fold says nothing.
  ASSERT_EQ(sh(zctls() + " stats --dir " + stats_ + " --prune --prometheus", &out), 0);
  EXPECT_EQ(err(), "");
  EXPECT_NE(out.find("zctls_zerocopy_sends_total 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("zctls_processes{state=\"exited\"} 0\n"), std::string::npos) << out;
  EXPECT_EQ(sh("ls " + stats_, &out), 0);
  EXPECT_EQ(out, "zctls-retired.stats\n");
}

// Other tests may hold kTLS sockets in the same guest at the same time:
// only the held sender's sockets are looked at.
TEST_F(CliE2E, StatusShowsEveryKtlsSocketAndItsFlag) {
  std::string out;
  const std::string held = dir_ + "/held.out";
  ASSERT_EQ(sh(zctls() + " run --config " + config() + " -- " ZCTLS_SENDER_PATH " hold 30 " +
                   static_file() + " > " + held + " & pid=$!; " +
                   "for i in $(seq 300); do grep -q holding " + held +
                   " && break; sleep 0.1; done; " + zctls() + " status --config " + config() +
                   " --json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); "
                   "mine=[s for s in d[\"sockets\"] "
                   "if any(p[\"pid\"] == int(sys.argv[1]) for p in s[\"processes\"])]; "
                   "[print(s[\"processes\"][0][\"comm\"], s[\"version\"], s[\"cipher\"], "
                   "s[\"txconf\"], s[\"rxconf\"], s[\"zerocopy_flag\"], s[\"zerocopy\"]) "
                   "for s in sorted(mine, key=lambda s: s[\"txconf\"])]; "
                   "print(len(d[\"zctls_processes\"]))' $pid; " +
                   zctls() + " status | grep -c \"^  zctls_test_send\\[$pid\\] \"; kill $pid",
               &out),
            0)
      << err();
  EXPECT_EQ(out,
            "zctls_test_send TLS 1.3 aes-gcm-128 base sw False off\n"
            "zctls_test_send TLS 1.3 aes-gcm-128 sw base True no_effect\n"
            "1\n"
            "2\n")
      << err();
}

TEST_F(CliE2E, ReloadWhileSendingSwitchesCleanlyAndLosesNothing) {
  std::string out;
  // Back-to-back sends on one connection while the config changes twice:
  // first to a broken file (kept out), then to a rule that turns zerocopy
  // off.  Each step waits for the shim's own counters to show the previous
  // one took (for 120 s at most), so the order holds however slow the
  // guest is; the sender stops when told (at most after 300 s).
  const std::string stop = dir_ + "/stop";
  ASSERT_EQ(
      sh(wait_for_counter() + zctls() + " run --config " + config() +
             " -- " ZCTLS_SENDER_PATH " repeat 300 " + static_file() + " " + stop + " > " + dir_ +
             "/repeat.out & pid=$!; " + "for i in $(seq 1200); do grep -q first " + dir_ +
             "/repeat.out && break; sleep 0.1; done; printf 'default = 7\\n' > " + config() +
             "; wait_for config_errors && " + "printf '[[rule]]\\npath = \"" + dir_ +
             "/static/**\"\\nzerocopy = false\\n[integrity]\\nsettle = 0\\n[stats]"
             "\\ndir = \"" +
             stats_ + "\"\\n' > " + config() +
             " && wait_for config_reloads && sleep 1; waited=$?; touch " + stop +
             "; wait $pid; rc=$?; cat " + dir_ +
             "/repeat.out; [ $waited = 0 ] && exit $rc; "
             "exit 99",
         &out),
      0)
      << out << err();
  // Every send went one way or the other, switching once: 1...10...0.
  const std::string flags =
      out.substr(out.find("flags="), out.find('\n', out.find("flags=")) - out.find("flags="));
  EXPECT_TRUE(std::regex_match(flags, std::regex("flags=1+0+"))) << flags;
  EXPECT_NE(out.find("\nbytes ok\n"), std::string::npos) << out;
  ASSERT_EQ(sh(totals("config_loads config_reloads config_errors sends zerocopy_sends "
                      "copy_rule_off"),
               &out),
            0)
      << err();
  std::istringstream fields(out);
  std::uint64_t loads = 0, reloads = 0, errors = 0, sends = 0, zerocopy = 0, rule_off = 0;
  fields >> loads >> reloads >> errors >> sends >> zerocopy >> rule_off;
  EXPECT_EQ(std::vector<std::uint64_t>({loads, reloads, errors}),
            std::vector<std::uint64_t>({2, 1, 1}))
      << out;
  EXPECT_EQ(sends, zerocopy + rule_off) << out;
}

// `printf > file` and editors truncate before they write: a config that
// keeps changing is not read until two checks (a second apart) find it the
// same, so no half-written version goes into force.  Rewritten in place
// every 50 ms for 3 s (by one process, however slow the guest is at
// starting programs), it is read once, after the writing stops.
TEST_F(CliE2E, ConfigStillBeingWrittenIsReadOnceItIsQuiet) {
  std::string out;
  const std::string stop = dir_ + "/stop", next = dir_ + "/next.toml",
                    writer = dir_ + "/rewrite.py";
  spit(next, "[[rule]]\npath = \"" + dir_ + "/static/**\"\nzerocopy = false\n[stats]\ndir = \"" +
                 stats_ + "\"\n");
  // Prints the reloads counted while it was still rewriting.
  spit(writer,
       "import json, subprocess, sys, threading, time\n"
       "config, text, zctls, stats = sys.argv[1], open(sys.argv[2]).read(), sys.argv[3], "
       "sys.argv[4]\n"
       "stop = threading.Event()\n"
       "def rewrite():\n"
       "    while not stop.is_set():\n"
       "        with open(config, 'w') as f:\n"
       "            f.write(text)\n"
       "        time.sleep(0.05)\n"
       "thread = threading.Thread(target=rewrite)\n"
       "thread.start()\n"
       "time.sleep(3)\n"
       "out = subprocess.run([zctls, 'stats', '--dir', stats, '--json'], capture_output=True, "
       "check=True).stdout\n"
       "stop.set()\n"
       "thread.join()\n"
       "print(json.loads(out)['totals']['config_reloads'])\n");
  ASSERT_EQ(sh(wait_for_counter() + zctls() + " run --config " + config() +
                   " -- " ZCTLS_SENDER_PATH " repeat 300 " + static_file() + " " + stop + " > " +
                   dir_ + "/repeat.out & pid=$!; for i in $(seq 1200); do grep -q first " + dir_ +
                   "/repeat.out && break; sleep 0.1; done; /usr/bin/python3 " + writer + " " +
                   config() + " " + next + " " + zctls() + " " + stats_ +
                   " && wait_for config_reloads && sleep 3 && " + totals("config_reloads") +
                   "; waited=$?; touch " + stop +
                   "; wait $pid; rc=$?; [ $waited = 0 ] && exit $rc; "
                   "exit 99",
               &out),
            0)
      << out << err();
  EXPECT_EQ(out, "0\n1\n") << "reloads while the file was changing, then after" << err();
}

}  // namespace
