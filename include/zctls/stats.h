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

// A process's stats file in the directory, by pid and start time (which
// tells a reused pid apart): what the library writes and the CLI reads.
std::string stats_file_name(pid_t pid, std::uint64_t start_time);  // "zctls-PID-START.stats"
std::uint64_t process_start_time(pid_t pid) noexcept;              // 0 if unknown

}  // namespace zctls
