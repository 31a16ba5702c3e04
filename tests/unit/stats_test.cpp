// `zctls stats` output from process counters: totals keep exited and
// pruned processes; the Prometheus text has one HELP/TYPE per family, a
// `reason` label only on copies and no paths; JSON and the table add up.
#include "zctls/stats.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace zctls {
namespace {

ProcessStats process(int pid, const char* comm, bool alive, bool retired = false) {
  ProcessStats p;
  p.pid = pid;
  p.comm = comm;
  p.alive = alive;
  p.retired = retired;
  return p;
}

void set(ProcessStats& p, Counter c, std::uint64_t v) { p.values[static_cast<std::size_t>(c)] = v; }

std::vector<ProcessStats> three_processes() {
  ProcessStats worker = process(101, "nginx", true);
  set(worker, Counter::sends, 10);
  set(worker, Counter::zerocopy_sends, 7);
  set(worker, Counter::copy_no_rule, 2);
  set(worker, Counter::copy_quarantine, 1);
  set(worker, Counter::integrity_events, 1);
  ProcessStats gone = process(99, "nginx", false);
  set(gone, Counter::sends, 5);
  set(gone, Counter::zerocopy_sends, 5);
  ProcessStats retired = process(0, "", false, true);
  set(retired, Counter::sends, 100);
  set(retired, Counter::copy_settle, 100);
  return {worker, gone, retired};
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(Stats, TotalsKeepExitedAndPrunedProcesses) {
  const auto sum = totals(three_processes());
  EXPECT_EQ(sum[static_cast<std::size_t>(Counter::sends)], 115U);
  EXPECT_EQ(sum[static_cast<std::size_t>(Counter::zerocopy_sends)], 12U);
  EXPECT_EQ(sum[static_cast<std::size_t>(Counter::copy_settle)], 100U);
}

TEST(Stats, PrometheusTextHasOneFamilyPerMetricAndOnlyReasonLabels) {
  const std::string text = prometheus_text(three_processes());
  EXPECT_NE(text.find("zctls_sends_total 115\n"), std::string::npos) << text;
  EXPECT_NE(text.find("zctls_zerocopy_sends_total 12\n"), std::string::npos) << text;
  EXPECT_NE(text.find("zctls_copy_sends_total{reason=\"no_rule\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("zctls_copy_sends_total{reason=\"settle\"} 100\n"), std::string::npos);
  EXPECT_NE(text.find("zctls_copy_sends_total{reason=\"quarantine\"} 1\n"), std::string::npos);
  EXPECT_EQ(count_of(text, "# TYPE zctls_copy_sends_total counter\n"), 1U);
  EXPECT_EQ(count_of(text, "# HELP zctls_copy_sends_total "), 1U);
  EXPECT_NE(text.find("zctls_processes{state=\"alive\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("zctls_processes{state=\"exited\"} 1\n"), std::string::npos)
      << "the pruned file is not a process";
  // Every sample line: a zctls_ name, at most a reason or state label.
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.rfind("#", 0) == 0) continue;
    EXPECT_EQ(line.rfind("zctls_", 0), 0U) << line;
    const std::size_t brace = line.find('{');
    if (brace != std::string::npos) {
      const std::string label = line.substr(brace + 1, line.find('=') - brace - 1);
      EXPECT_TRUE(label == "reason" || label == "state") << line;
    }
    EXPECT_EQ(line.find('/'), std::string::npos) << "no paths: " << line;
  }
}

TEST(Stats, JsonListsEveryProcessWithItsStateAndTotals) {
  const std::string json = stats_json(three_processes());
  EXPECT_NE(json.find("{\"pid\": 101, \"comm\": \"nginx\", \"state\": \"alive\""),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("{\"pid\": 99, \"comm\": \"nginx\", \"state\": \"exited\""),
            std::string::npos);
  EXPECT_NE(json.find("\"state\": \"retired\""), std::string::npos);
  EXPECT_NE(json.find("\"totals\": {\"sends\": 115, "), std::string::npos) << json;
}

// The table's rows as whitespace-separated words, by their first word.
std::vector<std::string> row(const std::string& table, const std::string& first) {
  std::size_t start = 0;
  while (start < table.size()) {
    const std::size_t end = table.find('\n', start);
    std::vector<std::string> words;
    std::size_t at = start;
    while (at < end) {
      const std::size_t b = table.find_first_not_of(' ', at);
      if (b >= end) break;
      const std::size_t e = std::min(table.find(' ', b), end);
      words.push_back(table.substr(b, e - b));
      at = e;
    }
    if (!words.empty() && words[0] == first) return words;
    start = end + 1;
  }
  return {};
}

TEST(Stats, TableRowsAddUpCopiesOverAllReasons) {
  const std::string table = stats_table(three_processes());
  using Row = std::vector<std::string>;
  // nginx[101]: 10 sends, 7 zerocopy, 3 copies (no_rule 2 + quarantine 1), 1 event.
  EXPECT_EQ(row(table, "101"), (Row{"101", "nginx", "alive", "10", "7", "3", "1"})) << table;
  EXPECT_EQ(row(table, "99"), (Row{"99", "nginx", "exited", "5", "5", "0", "0"}));
  EXPECT_EQ(row(table, "-"), (Row{"-", "(pruned)", "retired", "100", "0", "100", "0"}));
  EXPECT_EQ(row(table, "total"), (Row{"total", "115", "12", "103", "1"}));
}

}  // namespace
}  // namespace zctls
