// The counter registry (include/zctls/counter_list.h): the order other
// processes and versions read (the "ZCLSTST3" stats file), and every place
// an operator reads a counter from: README, zctls(1), `zctls stats
// --prometheus`, the Grafana dashboard.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "stats_dir.h"
#include "zctls/stats.h"

namespace {

using zctls::Counter;
using zctls::name_of;

std::string slurp(const char* path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

Counter at(int i) { return static_cast<Counter>(i); }

// The stats file layout, slot by slot.  A stats file written by one zctls
// is summed by another's `zctls stats` slot by slot: a counter here may
// only be appended (and kCounterSlots, 64, bounds them; more needs a new
// magic and a reader for the old layout).
TEST(Counters, TheStatsFileLayoutIsAppendOnly) {
  const std::vector<std::string> layout = {
      "sends", "bytes", "zerocopy_sends", "zerocopy_bytes", "copy_no_rule", "copy_rule_off",
      "copy_settle", "copy_quarantine", "copy_kernel_unsupported", "copy_kernel_quirk",
      "copy_app_managed", "copy_no_config", "integrity_events", "integrity_events_in_flight",
      "aborts", "decision_cache_hits", "decision_cache_misses", "config_loads",
      "config_reloads", "config_errors", "flag_off_other_sends", "copy_unlinked",
      "copy_hard_links", "changes_between_sends", "copy_bytes", "copy_names_unknown",
      "app_flag_sockets", "app_flag_sends", "app_zerocopy_sends", "app_zerocopy_bytes",
      "copy_software_ktls", "software_tx_sockets", "ktls_tx_sockets", "ktls_tx_file_sockets",
      "software_tls13_sockets"};
  ASSERT_GE(zctls::kCounterCount, static_cast<int>(layout.size()))
      << "a counter was removed: the stats file layout changed";
  for (std::size_t i = 0; i < layout.size(); ++i)
    EXPECT_EQ(name_of(at(static_cast<int>(i))).key, layout[i]) << "slot " << i;
  EXPECT_EQ(zctls::kCounterCount, static_cast<int>(layout.size()))
      << "a new counter: append its key to `layout` above";
  EXPECT_EQ(zctls::StatsFile::kMagic, 0x33545354534c435aULL);  // "ZCLSTST3"
}

TEST(Counters, EachHasAKeyAMetricAndAMeaning) {
  for (int i = 0; i < zctls::kCounterCount; ++i) {
    const zctls::CounterName& n = name_of(at(i));
    EXPECT_FALSE(n.key.empty()) << i;
    EXPECT_EQ(n.metric.rfind("zctls_", 0), 0u) << n.key;
    EXPECT_FALSE(n.help.empty()) << n.key;
    EXPECT_FALSE(n.about.empty()) << n.key;
    EXPECT_EQ(zctls::is_copy_reason(at(i)), !n.label.empty()) << n.key;
  }
}

TEST(Counters, ReadmeListsEveryCounter) {
  const std::string readme = slurp(ZCTLS_SOURCE_DIR "/README.md");
  ASSERT_FALSE(readme.empty());
  for (int i = 0; i < zctls::kCounterCount; ++i) {
    const std::string key(name_of(at(i)).key);
    EXPECT_NE(readme.find("`" + key + "`"), std::string::npos)
        << key << ": add it to README's table of counters";
  }
}

TEST(Counters, ManPageListsEveryCounter) {
  const std::string man = slurp(ZCTLS_SOURCE_DIR "/man/zctls.1.in");
  ASSERT_FALSE(man.empty());
  for (int i = 0; i < zctls::kCounterCount; ++i) {
    std::string key(name_of(at(i)).key);
    // roff: an underscore is itself, a hyphen would be \-.
    EXPECT_NE(man.find(".B " + key + "\n"), std::string::npos)
        << key << ": add it to zctls(1)'s COUNTERS";
  }
}

TEST(Counters, PrometheusOutputHasEveryCounter) {
  std::vector<zctls::ProcessStats> all(1);
  all[0].pid = 1;
  all[0].alive = true;
  for (int i = 0; i < zctls::kCounterCount; ++i)
    all[0].values[static_cast<std::size_t>(i)] = 1000 + static_cast<std::uint64_t>(i);
  const std::string text = zctls::prometheus_text(all);
  for (int i = 0; i < zctls::kCounterCount; ++i) {
    const zctls::CounterName& n = name_of(at(i));
    std::string line(n.metric);
    if (!n.label.empty()) line += "{" + std::string(n.label) + "}";
    line += " " + std::to_string(1000 + i) + "\n";
    EXPECT_NE(text.find(line), std::string::npos) << n.key << "\n" << text;
    EXPECT_NE(text.find("# HELP " + std::string(n.metric) + " "), std::string::npos) << n.key;
  }
}

// What the dashboard is meant to show: bytes by path, copies by reason,
// integrity events, sockets.  Each metric family named here appears in a
// panel's query.
TEST(Counters, GrafanaDashboardShowsWhatItIsMeantTo) {
  const std::string dashboard = slurp(ZCTLS_SOURCE_DIR "/examples/grafana/zctls.json");
  ASSERT_FALSE(dashboard.empty());
  const Counter shown[] = {Counter::zerocopy_bytes,   Counter::copy_bytes,
                           Counter::copy_no_rule,     Counter::copy_software_ktls,
                           Counter::integrity_events, Counter::integrity_events_in_flight,
                           Counter::ktls_tx_sockets};
  for (Counter c : shown) {
    const std::string metric(name_of(c).metric);
    EXPECT_NE(dashboard.find(metric + "{"), std::string::npos)
        << name_of(c).key << ": no panel queries " << metric;
  }
}

}  // namespace
