// The fault-injection table (fault_table.h): zctls_test_fault_table runs
// every row twice, with libzctls_test_faults.so alone and behind
// libzctls.so, and the application must see exactly the same thing.  Then
// each row's own expectations: the injected failure or short count is what
// the application got, the fault fired where it should, and (on kTLS) the
// flag, read by the application's own getsockopt, is safe.
#include "fault_table.h"

#include <map>

#include "e2e_support.h"

#ifndef ZCTLS_FAULTS_PATH
#error "ZCTLS_FAULTS_PATH must name libzctls_test_faults.so"
#endif
#ifndef ZCTLS_FAULT_TABLE_PATH
#error "ZCTLS_FAULT_TABLE_PATH must name zctls_test_fault_table"
#endif

namespace zctls_e2e {
namespace {

using zctls_fault_table::Action;
using zctls_fault_table::Row;

struct Line {
  std::string app;  // what must not change with the shim
  int fired = -1;
  int flag = -99;
  int flag_then = -99;
};

class FaultTable : public ShimE2E {
 protected:
  struct Run {
    int status = -1;
    std::string err;
    std::map<std::string, Line> lines;
  };

  Run run_table(const std::string& mode, bool shim) {
    const std::string out = dir_ + "/table.out", err = dir_ + "/table.err";
    const std::string preload =
        shim ? std::string(ZCTLS_SHIM_PATH ":" ZCTLS_FAULTS_PATH) : std::string(ZCTLS_FAULTS_PATH);
    const std::string cmd = "env LD_PRELOAD=" + preload + " ZCTLS_CONFIG=" + config() + " " +
                            ZCTLS_FAULT_TABLE_PATH + " " + mode + " " + static_file() + " " +
                            private_file() + " > " + out + " 2> " + err;
    const int rc = std::system(cmd.c_str());
    Run r;
    r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    r.err = slurp(err);
    static const std::regex re(
        R"(^(\S+) app: (.*) \| fired=(-?\d+) flag=(-?\d+) flag_then=(-?\d+)$)");
    for (const auto& l : lines_of(slurp(out))) {
      std::smatch m;
      if (!std::regex_match(l, m, re)) {
        ADD_FAILURE() << "unparsed line: " << l;
        continue;
      }
      r.lines[m[1]] = {m[2], std::stoi(m[3]), std::stoi(m[4]), std::stoi(m[5])};
    }
    return r;
  }

  // Where the fault fires: the application's own calls always; the calls
  // the shim makes only with the shim, and only on kTLS, except the
  // classification, which the shim does for every socket it meets.
  static int expected_fired(const Row& row, bool ktls, bool shim) {
    if (!row.what->shim_internal) return 1;
    if (!shim) return 0;
    return ktls || row.what->action == Action::shim_classify ? 1 : 0;
  }

  // The flag right after the faulted step, with the shim, on kTLS.
  static int expected_flag(const Row& row) {
    switch (row.what->action) {
      case Action::sendfile_offset:
      case Action::sendfile_position:
      case Action::sendfile64_offset:
        return 1;  // turned on for the static file before the call failed
      case Action::close_socket:
      case Action::dup2_over:
      case Action::dup3_over:
      case Action::close_range_socket:
        return 1;  // on since the first send; the failed call changed nothing
      case Action::shim_flag_off:
        // Could not be turned off: this private-file send went zerocopy.
        // The shim must say so (checked on stderr) and turn it off next time.
        return 1;
      default:
        return 0;
    }
  }

  void check(const std::string& mode) {
    const bool ktls = mode == "ktls";
    const Run plain = run_table(mode, false);
    const Run shim = run_table(mode, true);
    ASSERT_EQ(plain.status, 0) << plain.err;
    ASSERT_EQ(shim.status, 0) << shim.err;
    const auto table = zctls_fault_table::rows();
    ASSERT_EQ(plain.lines.size(), table.size()) << plain.err;
    ASSERT_EQ(shim.lines.size(), table.size()) << shim.err;
    int stuck_rows = 0;
    for (const Row& row : table) {
      SCOPED_TRACE(row.name);
      const Line& a = plain.lines.at(row.name);
      const Line& b = shim.lines.at(row.name);
      EXPECT_EQ(a.app, b.app);
      EXPECT_EQ(a.fired, expected_fired(row, ktls, false));
      EXPECT_EQ(b.fired, expected_fired(row, ktls, true));
      // What the application's faulted call returned.
      std::smatch call;
      static const std::regex call_re(R"(call rc=(-?\d+) errno=(\S+) )");
      ASSERT_TRUE(std::regex_search(b.app, call, call_re)) << b.app;
      const std::string rc = call[1], err = call[2];
      if (row.what->shim_internal) {
        // The shim's own failure is not the application's: the send moved
        // everything it asked for, and errno was left alone.
        EXPECT_EQ(rc, std::to_string(zctls_fault_table::kSendCount));
        EXPECT_EQ(err, "EDOM");
      } else if (row.err != 0) {
        EXPECT_EQ(rc, "-1");
        EXPECT_EQ(err, strerrorname_np(row.err));
      } else {
        EXPECT_EQ(rc, std::to_string(row.short_count));
        EXPECT_EQ(err, "EDOM");
      }
      // The peer read everything that was sent, and nothing failed to decrypt.
      EXPECT_NE(b.app.find(" rx=EOF"), std::string::npos) << b.app;
      if (!ktls) continue;
      EXPECT_EQ(a.flag, 0);
      EXPECT_EQ(a.flag_then, 0);
      EXPECT_EQ(b.flag, expected_flag(row)) << b.app;
      // After the fault the shim is back in charge: the follow-up send of a
      // copy-rule file has the flag off; after the application's own flag
      // call failed, the shim still manages the socket (static file: on).
      EXPECT_EQ(b.flag_then, row.what->action == Action::setsockopt_flag ? 1 : 0) << b.app;
      if (row.what->action == Action::shim_flag_off) ++stuck_rows;
    }
    if (ktls) {
      // Each send that went zerocopy against the rules was reported.
      EXPECT_EQ(count(shim.err, "could not turn zerocopy off"), stuck_rows) << shim.err;
    }
  }
};

TEST_F(FaultTable, KtlsApplicationSeesTheRealCallsOutcome) { check("ktls"); }

TEST_F(FaultTable, PlainSocketApplicationSeesTheRealCallsOutcome) { check("plain"); }

}  // namespace
}  // namespace zctls_e2e
