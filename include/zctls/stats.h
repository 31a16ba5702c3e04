// Per-process counters, and how they are shared with `zctls stats`.
//
// Each process that uses kTLS keeps its counters in a small file it maps
// shared (StatsFile): updates are relaxed atomic adds on that mapping, no
// syscall and no lock.  `zctls stats` (and its node_exporter textfile)
// reads every such file in the stats directory.  The files outlive
// their processes on purpose: the totals keep what exited processes did,
// until `zctls stats --prune` folds them into one "retired" file or the
// machine reboots (the default directory is a tmpfs).
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "zctls/kernel_quirks.h"  // ZCTLS_NEWEST_KNOWN_KERNEL, in a counter's help

namespace zctls {

// Every counter, in the stats file's order (counter_list.h declares them).
enum class Counter : int {
#define ZCTLS_COUNTER(key, metric, help) key,
#define ZCTLS_COPY_REASON(key, reason, about) key,
#include "zctls/counter_list.h"
#undef ZCTLS_COUNTER
#undef ZCTLS_COPY_REASON
  count_
};
inline constexpr int kCounterCount = static_cast<int>(Counter::count_);
// The file layout (StatsFile, magic "ZCLSTST3") has room for kCounterSlots
// counters a shard: 16 shards of 512 bytes.  A reader sums the files of
// any writer with the same magic (the counters a writer did not know read
// 0, those the reader does not know are ignored); `zctls stats` also reads
// the layout before it ("ZCLSTST2", 32 counters in 256-byte shards: zctls
// 0.1 up to the socket counters), so that servers not yet restarted after
// an upgrade are still counted.  More than kCounterSlots counters need a
// new magic and a reader for the old one.
inline constexpr int kCounterSlots = 64;
static_assert(kCounterCount <= kCounterSlots, "a new stats file layout (see above)");

// A reason a send went by copy: sends = zerocopy_sends + the sum of these.
constexpr bool is_copy_reason(Counter c) noexcept {
  constexpr bool kCopyReason[] = {
#define ZCTLS_COUNTER(key, metric, help) false,
#define ZCTLS_COPY_REASON(key, reason, about) true,
#include "zctls/counter_list.h"
#undef ZCTLS_COUNTER
#undef ZCTLS_COPY_REASON
  };
  return kCopyReason[static_cast<int>(c)];
}

// One counter block; lives in a StatsFile mapping or in process memory.
// Sharded so that threads sending at once do not fight over cache lines: a
// thread adds to its own shard (picked round-robin at its first count), a
// reader sums them.  Adds are still atomic, so threads sharing a shard (more
// than kShards of them) lose nothing.
struct Counters {
  static constexpr int kShards = 16;
  struct alignas(64) Shard {
    std::array<std::atomic<std::uint64_t>, kCounterSlots> values{};
  };
  std::array<Shard, kShards> shards{};

  void add(Counter c, std::uint64_t n = 1) noexcept {
    shards[this_thread_shard()].values[static_cast<std::size_t>(c)].fetch_add(
        n, std::memory_order_relaxed);
  }
  std::uint64_t get(Counter c) const noexcept {
    std::uint64_t sum = 0;
    for (const Shard& s : shards)
      sum += s.values[static_cast<std::size_t>(c)].load(std::memory_order_relaxed);
    return sum;
  }
  static std::size_t this_thread_shard() noexcept;
};
static_assert(sizeof(Counters::Shard) == 512, "the stats file layout's stride (see kCounterSlots)");

// The shared file: a header that says whose counters these are, then the
// block.  Plain data, so a reader only needs read(2).
struct StatsFile {
  static constexpr std::uint64_t kMagic = 0x33545354534c435aULL;  // "ZCLSTST3"
  std::uint64_t magic = kMagic;
  std::uint32_t counters = kCounterCount;  // how many this writer knows
  std::int32_t pid = 0;
  std::uint64_t start_time = 0;  // /proc/PID/stat field 22: tells pid reuse apart
  char comm[16] = "";            // the program's name, for the table
  Counters block;
};

// Prometheus and JSON names.  `label` is empty or "reason=\"settle\"" etc.
struct CounterName {
  std::string_view key;     // "copy_settle": JSON and table
  std::string_view metric;  // "zctls_copy_sends_total"
  std::string_view label;   // "reason=\"settle\""
  std::string_view help;    // the metric family's HELP line
  std::string_view about;   // this counter's own meaning (a copy reason's: why)
};
const CounterName& name_of(Counter c) noexcept;

// --- reading the directory: the zctls command's (cli/stats_dir.cpp, in
// zctls_cli_core; the library never reads other processes' files) ---

struct ProcessStats {
  pid_t pid = 0;
  std::string comm;
  bool alive = false;    // the same process (pid and start time) still runs
  bool retired = false;  // the folded totals of pruned exited processes
  std::string file;
  std::uint64_t inode = 0;  // of `file` when read: prune's folded list names files by it
  std::array<std::uint64_t, kCounterCount> values{};
  std::uint32_t counters = kCounterCount;  // how many its writer knew (older ones: fewer)
  // Whether its writer counted sockets (a library older than those
  // counters, still running after an upgrade, did not: its 0 means nothing).
  bool counts_sockets() const noexcept {
    return counters > static_cast<std::uint32_t>(Counter::ktls_tx_file_sockets);
  }
  // Whether it counted TLS 1.3 software sockets apart (zctls 0.2).
  bool counts_tls13() const noexcept {
    return counters > static_cast<std::uint32_t>(Counter::software_tls13_sockets);
  }
};

std::string stats_file_name(pid_t pid, std::uint64_t start_time);  // "zctls-PID-START.stats"
std::uint64_t process_start_time(pid_t pid) noexcept;              // 0 if unknown
// Every process file and the retired file, each exited process counted
// exactly once even while prunes run (no lock: readers never wait).
// *consistent = false only if prunes kept rewriting the retired file
// through 100 attempts; the result may then count a process twice or not
// at all.
std::vector<ProcessStats> read_stats_dir(const std::string& dir, bool* consistent = nullptr);

// Totals over all processes (alive, exited and retired).
std::array<std::uint64_t, kCounterCount> totals(const std::vector<ProcessStats>& all);

// kTLS TX sockets that never sent a file: ktls_tx_sockets minus
// ktls_tx_file_sockets (never below 0: a fork child that sends first on a
// socket its parent keyed counts the send but not the socket).
inline std::uint64_t sockets_without_files(
    const std::array<std::uint64_t, kCounterCount>& values) noexcept {
  const std::uint64_t all = values[static_cast<std::size_t>(Counter::ktls_tx_sockets)];
  const std::uint64_t with = values[static_cast<std::size_t>(Counter::ktls_tx_file_sockets)];
  return all > with ? all - with : 0;
}

// The node_exporter / Prometheus text exposition of the totals, with HELP
// and TYPE lines, plus zctls_processes{state="alive|exited"} gauges.
std::string prometheus_text(const std::vector<ProcessStats>& all);

// Writes `text` to dir/zctls.prom atomically (temp file + rename).  Returns
// 0 or an errno value.
int write_textfile(const std::string& dir, const std::string& text) noexcept;

// Folds exited processes' files into dir/zctls-retired.stats and deletes
// them, so that the totals never move backwards or count a process twice
// for a concurrent reader; one prune at a time (flock on the directory).
// Returns how many were folded, or -1 with *error set.
int prune_stats_dir(const std::string& dir, std::string* error);

}  // namespace zctls
