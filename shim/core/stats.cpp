// The counters' names and the name of a process's stats file: what the
// library needs.  Reading the directory is the zctls command's
// (cli/stats_dir.cpp).
#include "zctls/stats.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "zctls/kernel_quirks.h"

namespace zctls {

std::size_t Counters::this_thread_shard() noexcept {
  static std::atomic<std::size_t> next{0};
  // initial-exec: a plain %fs-relative load instead of a __tls_get_addr
  // call per count.  libzctls-engine.so is dlopened: glibc places its TLS
  // in the static surplus (integration/exports keeps the segment small).
  thread_local const std::size_t shard __attribute__((tls_model("initial-exec"))) =
      next.fetch_add(1, std::memory_order_relaxed) % kShards;
  return shard;
}

namespace {

#define ZCTLS_COPY(key, reason, help) \
  { key, "zctls_copy_sends_total", "reason=\"" reason "\"", help }
const CounterName kNames[kCounterCount] = {
    {"sends", "zctls_sends_total", "", "sendfile calls on kTLS TX sockets"},
    {"bytes", "zctls_sent_bytes_total", "", "Bytes sent by sendfile on kTLS TX sockets"},
    {"zerocopy_sends", "zctls_zerocopy_sends_total", "",
     "Sends with TLS_TX_ZEROCOPY_RO on (set by zctls, or by the application)"},
    {"zerocopy_bytes", "zctls_zerocopy_bytes_total", "", "Bytes sent with the flag on"},
    ZCTLS_COPY("copy_no_rule", "no_rule", "Sends by copy, by reason"),
    ZCTLS_COPY("copy_rule_off", "rule_off", ""),
    ZCTLS_COPY("copy_settle", "settle", ""),
    ZCTLS_COPY("copy_quarantine", "quarantine", ""),
    ZCTLS_COPY("copy_kernel_unsupported", "kernel_unsupported", ""),
    ZCTLS_COPY("copy_kernel_quirk", "kernel_quirk", ""),
    ZCTLS_COPY("copy_app_managed", "app_managed", ""),
    ZCTLS_COPY("copy_no_config", "no_config", ""),
    {"integrity_events", "zctls_integrity_events_total", "",
     "Files that changed while their bytes were sent zerocopy"},
    {"integrity_events_in_flight", "zctls_integrity_events_in_flight_total", "",
     "Of those, changes after sendfile returned: before the peer acknowledged, or found "
     "after it on a connection that had retransmitted"},
    {"aborts", "zctls_aborts_total", "", "Connections shut down by on_change = abort"},
    {"decision_cache_hits", "zctls_decision_cache_hits_total", "",
     "Per-file decisions found in the cache"},
    {"decision_cache_misses", "zctls_decision_cache_misses_total", "",
     "Per-file decisions made by matching the rules"},
    {"config_loads", "zctls_config_loads_total", "", "Configurations loaded"},
    {"config_reloads", "zctls_config_reloads_total", "",
     "Configurations reloaded after the file changed"},
    {"config_errors", "zctls_config_errors_total", "", "Configurations rejected"},
    {"flag_off_other_sends", "zctls_flag_off_other_sends_total", "",
     "Times the flag was turned off before a splice into a kTLS socket"},
    ZCTLS_COPY("copy_unlinked", "unlinked", ""),
    ZCTLS_COPY("copy_hard_links", "hard_links", ""),
    {"changes_between_sends", "zctls_changes_between_sends_total", "",
     "Files under a zerocopy rule that changed between two sends, no byte at risk"},
    {"copy_bytes", "zctls_copy_bytes_total", "", "Bytes sent by copy"},
    ZCTLS_COPY("copy_names_unknown", "names_unknown", ""),
    {"app_flag_sockets", "zctls_app_flag_sockets_total", "",
     "kTLS sockets whose TLS_TX_ZEROCOPY_RO the application set itself"},
    {"app_flag_sends", "zctls_app_flag_sends_total", "",
     "Sends on sockets whose flag the application set"},
    {"app_zerocopy_sends", "zctls_app_zerocopy_sends_total", "",
     "Of the zerocopy sends, those with the flag as the application set it (app_flag = respect)"},
    {"app_zerocopy_bytes", "zctls_app_zerocopy_bytes_total", "", "Bytes of those sends"},
    ZCTLS_COPY("copy_software_ktls", "software_ktls", ""),
    {"software_tx_sockets", "zctls_software_tx_sockets_total", "",
     "kTLS TX sockets found to be software kTLS, where the flag has no effect"},
    {"ktls_tx_sockets", "zctls_ktls_tx_sockets_total", "",
     "kTLS TX sockets (a TX key installed, or first met by a send)"},
    {"ktls_tx_file_sockets", "zctls_ktls_tx_file_sockets_total", "",
     "Of those, sockets that sent a file by sendfile; the rest never did (generated or proxied "
     "responses only, for instance), and zctls had nothing to decide on them"},
    {"software_tls13_sockets", "zctls_software_tls13_sockets_total", "",
     "Of the software kTLS TX sockets, those with a TLS 1.3 key: device offload takes TLS 1.2 "
     "keys only (every kernel up to " ZCTLS_NEWEST_KNOWN_KERNEL
     "), so these are software whatever the NIC"},
};
#undef ZCTLS_COPY

}  // namespace

const CounterName& name_of(Counter c) noexcept { return kNames[static_cast<int>(c)]; }

std::string stats_file_name(pid_t pid, std::uint64_t start_time) {
  return "zctls-" + std::to_string(pid) + "-" + std::to_string(start_time) + ".stats";
}

std::uint64_t process_start_time(pid_t pid) noexcept {
  char path[40];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  char buf[1024];
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  const ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  // "pid (comm) state ppid ... starttime": comm may hold spaces and
  // parentheses, so count fields after the last ')'.  starttime is field
  // 22; the state after ')' is field 3.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return 0;
  for (int field = 2; field < 22 && p != nullptr; ++field) p = std::strchr(p + 1, ' ');
  return p != nullptr ? std::strtoull(p + 1, nullptr, 10) : 0;
}

}  // namespace zctls
