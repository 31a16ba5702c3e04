// Reading the stats directory: the zctls command's (stats_dir.cpp).  The
// library never reads other processes' files; it only writes its own
// (zctls/stats.h, shim/runtime/shared_stats.cpp).
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "zctls/stats.h"

namespace zctls {

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
