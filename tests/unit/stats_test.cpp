// `zctls stats` output from process counters: totals keep exited and
// pruned processes; the Prometheus text has one HELP/TYPE per family, a
// `reason` label only on copies and no paths; JSON and the table add up.
// The stats directory itself: --prune folds exited processes so that a
// reader running at the same time never sees the totals move backwards or
// count a process twice.
#include "stats_dir.h"
#include "zctls/stats.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "stats_format.h"

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
  // Live processes only, by pid and comm: the exited one is in the totals.
  EXPECT_NE(text.find("zctls_process_sends_total{pid=\"101\",comm=\"nginx\"} 10\n"),
            std::string::npos);
  EXPECT_NE(text.find("zctls_process_zerocopy_sends_total{pid=\"101\",comm=\"nginx\"} 7\n"),
            std::string::npos);
  EXPECT_EQ(text.find("pid=\"99\""), std::string::npos);
  // Every sample line: a zctls_ name, at most a reason, state or mode
  // label, or a live process's pid and comm.
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
      EXPECT_TRUE(label == "reason" || label == "state" || label == "mode" || label == "pid")
          << line;
    }
    EXPECT_EQ(line.find('/'), std::string::npos) << "no paths: " << line;
  }
}

TEST(Stats, PrometheusLabelValuesAreEscapedAndPrintable) {
  std::vector<ProcessStats> all{process(7, "a\"b\\c\nd\xff\x01", true), process(7, "copy", true)};
  const std::string text = prometheus_text(all);
  EXPECT_NE(text.find("zctls_process_sends_total{pid=\"7\",comm=\"a\\\"b\\\\c\\nd??\"} 0\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("comm=\"copy\""), std::string::npos) << "one series per pid: " << text;
}

TEST(Stats, JsonListsEveryProcessWithItsStateAndTotals) {
  const std::string json = zctls::cli::stats_json(three_processes());
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
  const std::string table = zctls::cli::stats_table(three_processes());
  using Row = std::vector<std::string>;
  // nginx[101]: 10 sends, 7 zerocopy, 3 copies (no_rule 2 + quarantine 1), 1 event.
  EXPECT_EQ(row(table, "101"), (Row{"101", "nginx", "alive", "10", "7", "3", "0", "1", "0"}))
      << table;
  EXPECT_EQ(row(table, "99"), (Row{"99", "nginx", "exited", "5", "5", "0", "0", "0", "0"}));
  EXPECT_EQ(row(table, "-"), (Row{"-", "(pruned)", "retired", "100", "0", "100", "0", "0", "0"}));
  EXPECT_EQ(row(table, "total"), (Row{"total", "115", "12", "103", "0", "1", "0"}));
  EXPECT_EQ(table.find("software kTLS"), std::string::npos) << "no software sockets, no note";
}

// Copy reasons appended later (unlinked, hard links, software kTLS) count
// as copies too.
TEST(Stats, EveryCopyReasonIsACopy) {
  int reasons = 0;
  for (int i = 0; i < zctls::kCounterCount; ++i) {
    const auto c = static_cast<zctls::Counter>(i);
    const bool labelled = zctls::name_of(c).metric == "zctls_copy_sends_total";
    EXPECT_EQ(zctls::is_copy_reason(c), labelled) << zctls::name_of(c).key;
    reasons += labelled ? 1 : 0;
  }
  EXPECT_EQ(reasons, 12);
  auto all = three_processes();
  all[0].values[static_cast<std::size_t>(zctls::Counter::copy_hard_links)] += 4;
  EXPECT_EQ(row(zctls::cli::stats_table(all), "101")[5], "7");
}

// Sends on software kTLS sockets: copies, in their own column, and a note
// when every send was one (zctls idle because nothing offloads).
TEST(Stats, SoftwareKtlsSendsHaveAColumnAndANote) {
  std::vector<zctls::ProcessStats> all(1);
  const auto at = [](zctls::Counter c) { return static_cast<std::size_t>(c); };
  all[0].pid = 7;
  all[0].comm = "nginx";
  all[0].alive = true;
  all[0].values[at(zctls::Counter::sends)] = 6;
  all[0].values[at(zctls::Counter::copy_software_ktls)] = 6;
  all[0].values[at(zctls::Counter::software_tx_sockets)] = 2;
  std::string table = zctls::cli::stats_table(all);
  using Row = std::vector<std::string>;
  EXPECT_EQ(row(table, "7"), (Row{"7", "nginx", "alive", "6", "0", "6", "6", "0", "0"})) << table;
  EXPECT_NE(table.find("Every kTLS send was on a software kTLS socket"), std::string::npos)
      << table;
  all[0].values[at(zctls::Counter::sends)] += 1;  // one send elsewhere: no note
  all[0].values[at(zctls::Counter::zerocopy_sends)] += 1;
  table = zctls::cli::stats_table(all);
  EXPECT_EQ(table.find("Every kTLS send was on a software kTLS socket"), std::string::npos)
      << table;
}

TEST(Stats, SocketsThatNeverSentAFileAreSaid) {
  std::vector<zctls::ProcessStats> all = three_processes();
  EXPECT_EQ(zctls::cli::stats_table(all).find("never sent a file"), std::string::npos)
      << "no sockets counted (an older writer): nothing said";
  all[0].values[static_cast<std::size_t>(zctls::Counter::ktls_tx_sockets)] = 9;
  all[0].values[static_cast<std::size_t>(zctls::Counter::ktls_tx_file_sockets)] = 2;
  all[1].values[static_cast<std::size_t>(zctls::Counter::ktls_tx_sockets)] = 1;
  const std::string table = zctls::cli::stats_table(all);
  EXPECT_NE(table.find("kTLS TX sockets: 10, of which 8 never sent a file"), std::string::npos)
      << table;
  EXPECT_NE(zctls::prometheus_text(all).find("zctls_ktls_tx_file_sockets_total 2\n"),
            std::string::npos);
}

TEST(Stats, Tls13SoftwareSocketsAreSaid) {
  std::vector<zctls::ProcessStats> all = three_processes();
  EXPECT_EQ(zctls::cli::stats_table(all).find("TLS 1.3"), std::string::npos);
  all[0].values[static_cast<std::size_t>(zctls::Counter::software_tx_sockets)] = 5;
  all[0].values[static_cast<std::size_t>(zctls::Counter::software_tls13_sockets)] = 4;
  const std::string table = zctls::cli::stats_table(all);
  EXPECT_NE(table.find("Software kTLS TX sockets: 5, of which 4 had TLS 1.3 keys"),
            std::string::npos)
      << table;
  EXPECT_NE(zctls::prometheus_text(all).find("zctls_software_tls13_sockets_total 4\n"),
            std::string::npos);
}

// A stats directory with process files written as the shim writes them.
class StatsDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/zctls-stats-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // pid 0 never runs: an exited process.  Returns the file's path.
  std::string write_process(const std::string& name, int pid, std::uint64_t start_time,
                            std::uint64_t sends) {
    StatsFile file;
    file.pid = pid;
    file.start_time = start_time;
    file.block.add(Counter::sends, sends);
    const std::string path = dir_ + "/" + name;
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    EXPECT_GE(fd, 0) << path;
    EXPECT_EQ(write(fd, &file, sizeof file), static_cast<ssize_t>(sizeof file));
    close(fd);
    return path;
  }
  std::string write_alive(const std::string& name, std::uint64_t sends) {
    return write_process(name, getpid(), process_start_time(getpid()), sends);
  }
  std::uint64_t total_sends() {
    return totals(read_stats_dir(dir_))[static_cast<std::size_t>(Counter::sends)];
  }
  std::vector<std::string> files() {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir_))
      names.push_back(entry.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }
  int prune() {
    std::string error;
    const int folded = prune_stats_dir(dir_, &error);
    EXPECT_GE(folded, 0) << error;
    return folded;
  }
  std::string dir_;
};

TEST_F(StatsDir, PruneFoldsExitedProcessesAndKeepsTheTotals) {
  write_alive("zctls-1-1.stats", 5);
  write_process("zctls-2-2.stats", 0, 0, 3);
  write_process("zctls-3-3.stats", 0, 0, 4);
  EXPECT_EQ(total_sends(), 12U);
  EXPECT_EQ(prune(), 2);
  EXPECT_EQ(files(), (std::vector<std::string>{"zctls-1-1.stats", "zctls-retired.stats"}));
  EXPECT_EQ(total_sends(), 12U);
  const std::string text = prometheus_text(read_stats_dir(dir_));
  EXPECT_NE(text.find("zctls_processes{state=\"exited\"} 0\n"), std::string::npos) << text;
  // Again: nothing to fold, nothing rewritten.
  write_process("zctls-4-4.stats", 0, 0, 10);
  EXPECT_EQ(prune(), 1);
  EXPECT_EQ(prune(), 0);
  EXPECT_EQ(total_sends(), 22U);
}

// A prune killed after it wrote the retired file and before it unlinked
// what it folded: readers count those files once, and the next prune
// unlinks them without folding them again.
TEST_F(StatsDir, FilesFoldedButNotYetUnlinkedCountOnce) {
  write_alive("zctls-1-1.stats", 5);
  const std::string exited = write_process("zctls-2-2.stats", 0, 0, 3);
  const std::string kept = dir_ + "/kept";  // same inode, a name readers skip
  ASSERT_EQ(link(exited.c_str(), kept.c_str()), 0);
  EXPECT_EQ(prune(), 1);
  ASSERT_EQ(link(kept.c_str(), exited.c_str()), 0);  // as if never unlinked
  EXPECT_EQ(total_sends(), 8U) << "counted by the retired file only";
  EXPECT_EQ(prune(), 0);
  EXPECT_EQ(files(), (std::vector<std::string>{"kept", "zctls-1-1.stats", "zctls-retired.stats"}));
  EXPECT_EQ(total_sends(), 8U);
}

// The folded list names files by inode too: a new file under a folded
// name (a persistent stats dir after a reboot) is a new process.
TEST_F(StatsDir, ANewFileUnderAFoldedNameCounts) {
  const std::string exited = write_process("zctls-2-2.stats", 0, 0, 3);
  const std::string kept = dir_ + "/kept";
  ASSERT_EQ(link(exited.c_str(), kept.c_str()), 0);  // keeps the old inode in use
  EXPECT_EQ(prune(), 1);
  write_process("zctls-2-2.stats", 0, 0, 7);
  EXPECT_EQ(total_sends(), 10U);
  EXPECT_EQ(prune(), 1);
  EXPECT_EQ(total_sends(), 10U);
}

// Servers still running the library of before the socket counters (a
// package upgrade, no restart yet) write the 32-counter layout: `zctls
// stats` sums it with the new one, and a prune folds it (and a retired
// file an older prune wrote) into a new-layout retired file.
TEST_F(StatsDir, FilesOfTheLayoutBeforeTheSocketCountersAreRead) {
  constexpr int kOldSlots = 32;
  const auto write_v2 = [&](const std::string& name, std::uint64_t sends,
                            const std::string& trailer) {
    std::vector<std::uint64_t> words(8 + Counters::kShards * kOldSlots, 0);
    words[0] = 0x32545354534c435aULL;  // "ZCLSTST2"
    words[1] = 31;                     // 31 counters (high half, the pid: 0, exited)
    words[8 + 3 * kOldSlots + static_cast<int>(Counter::sends)] = sends - 1;         // shard 3
    words[8 + 9 * kOldSlots + static_cast<int>(Counter::sends)] = 1;                 // shard 9
    words[8 + 9 * kOldSlots + static_cast<int>(Counter::software_tx_sockets)] = 99;  // unknown
    const int fd = open((dir_ + "/" + name).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    const auto bytes = static_cast<ssize_t>(words.size() * sizeof words[0]);
    ASSERT_EQ(write(fd, words.data(), static_cast<std::size_t>(bytes)), bytes);
    ASSERT_EQ(write(fd, trailer.data(), trailer.size()), static_cast<ssize_t>(trailer.size()));
    close(fd);
  };
  write_v2("zctls-5-5.stats", 6, "");
  write_v2("zctls-retired.stats", 10, "generation 3\n");
  write_alive("zctls-1-1.stats", 5);
  const auto all = read_stats_dir(dir_);
  ASSERT_EQ(all.size(), 3U);
  EXPECT_EQ(total_sends(), 21U);
  EXPECT_EQ(totals(all)[static_cast<std::size_t>(Counter::software_tx_sockets)], 0U)
      << "a counter its writer did not know reads 0";
  EXPECT_EQ(prune(), 1);
  EXPECT_EQ(files(), (std::vector<std::string>{"zctls-1-1.stats", "zctls-retired.stats"}));
  EXPECT_EQ(total_sends(), 21U);
  struct stat st {};
  ASSERT_EQ(stat((dir_ + "/zctls-retired.stats").c_str(), &st), 0);
  EXPECT_GE(st.st_size, static_cast<off_t>(sizeof(StatsFile))) << "rewritten in today's layout";
}

// /dev/shm is writable by everyone: a FIFO or a huge file under a stats
// name is skipped, neither blocking the reader (`zctls stats` from the
// textfile timer) nor read into memory.
TEST_F(StatsDir, FifosAndHugeFilesAreSkipped) {
  write_alive("zctls-1-1.stats", 5);
  ASSERT_EQ(mkfifo((dir_ + "/zctls-2-2.stats").c_str(), 0644), 0);
  ASSERT_EQ(mkfifo((dir_ + "/zctls-retired.stats").c_str(), 0644), 0);
  const std::string huge = write_process("zctls-3-3.stats", 0, 0, 7);
  ASSERT_EQ(truncate(huge.c_str(), 64 << 20), 0);  // sparse
  const std::string cut = write_process("zctls-4-4.stats", 0, 0, 9);
  ASSERT_EQ(truncate(cut.c_str(), 4160), 0);  // the magic, but short of its layout's counters
  EXPECT_EQ(total_sends(), 5U);
}

// A retired file planted in a shared directory cannot make prune (often
// root) unlink anything but a process file of that directory.
TEST_F(StatsDir, PruneUnlinksOnlyProcessFilesWhateverTheRetiredFileSays) {
  ASSERT_EQ(mkdir((dir_ + "/private").c_str(), 0755), 0);
  const std::string victim = dir_ + "/private/victim";
  const std::string bystander = dir_ + "/bystander";
  for (const std::string& path : {victim, bystander}) {
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    close(fd);
  }
  struct stat victim_st {
  }, bystander_st{};
  ASSERT_EQ(stat(victim.c_str(), &victim_st), 0);
  ASSERT_EQ(stat(bystander.c_str(), &bystander_st), 0);
  StatsFile planted;
  const std::string trailer = "generation 7\nprivate/victim " + std::to_string(victim_st.st_ino) +
                              "\n../" + std::filesystem::path(dir_).filename().string() +
                              "/bystander " + std::to_string(bystander_st.st_ino) + "\nbystander " +
                              std::to_string(bystander_st.st_ino) + "\n";
  const int fd =
      open((dir_ + "/zctls-retired.stats").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, &planted, sizeof planted), static_cast<ssize_t>(sizeof planted));
  ASSERT_EQ(write(fd, trailer.data(), trailer.size()), static_cast<ssize_t>(trailer.size()));
  close(fd);
  write_process("zctls-2-2.stats", 0, 0, 3);
  EXPECT_EQ(prune(), 1);
  EXPECT_EQ(access(victim.c_str(), F_OK), 0);
  EXPECT_EQ(access(bystander.c_str(), F_OK), 0);
  EXPECT_EQ(total_sends(), 3U);
}

// Processes exit while two pruners and a reader run: every total the
// reader sees is at least the one before and at most what exists.  The
// processes keep exiting until the reader has summed the directory 200
// times, so that reads and prunes overlap on any machine; at most 10 exit
// per read, so the directory (and a read) stays small however much slower
// than the creator a sanitizer makes the reader.
TEST_F(StatsDir, ConcurrentPrunesNeverMoveTheTotalsBackOrCountTwice) {
  constexpr int kMinProcesses = 100, kMaxProcesses = 100'000, kReads = 200, kPerRead = 10;
  std::atomic<int> created{0}, reads{0};
  std::atomic<bool> done{false};
  std::thread creator([&] {
    for (int i = 0; i < kMaxProcesses && (i < kMinProcesses || reads.load() < kReads); ++i) {
      while (i >= kMinProcesses + reads.load() * kPerRead && reads.load() < kReads)
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      // Written under a name readers skip, then renamed: the shim's file
      // appears whole too (its header is written before it counts).
      const std::string tmp = write_process("tmp", 0, 0, 1);
      created.fetch_add(1);  // before it can be seen: the reader's upper bound
      std::rename(tmp.c_str(), (dir_ + "/zctls-" + std::to_string(i) + "-1.stats").c_str());
    }
    done = true;
  });
  std::vector<std::thread> pruners;
  for (int i = 0; i < 2; ++i)
    pruners.emplace_back([&] {
      while (!done) prune();
    });
  std::uint64_t previous = 0;
  int backwards = 0, too_many = 0, inconsistent = 0;
  while (!done) {
    bool consistent = false;
    const auto all = read_stats_dir(dir_, &consistent);
    const int existing = created.load();
    if (!consistent) {  // 100 prunes during one read: said so, not summed
      ++inconsistent;
      continue;
    }
    const std::uint64_t seen = totals(all)[static_cast<std::size_t>(Counter::sends)];
    if (seen < previous) ++backwards;
    if (seen > static_cast<std::uint64_t>(existing)) ++too_many;
    previous = seen;
    reads.fetch_add(1);
  }
  creator.join();
  for (std::thread& t : pruners) t.join();
  const int processes = created.load();
  EXPECT_GE(reads.load(), kReads) << processes << " processes, " << inconsistent << " retried out";
  EXPECT_EQ(backwards, 0) << "of " << reads.load() << " reads";
  EXPECT_EQ(too_many, 0) << "of " << reads.load() << " reads";
  EXPECT_EQ(total_sends(), static_cast<std::uint64_t>(processes));
  prune();
  EXPECT_EQ(files(), (std::vector<std::string>{"zctls-retired.stats"}));
  EXPECT_EQ(total_sends(), static_cast<std::uint64_t>(processes));
}

}  // namespace
}  // namespace zctls
