#include "zctls/stats.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

#include "zctls/json.h"

namespace zctls {

std::size_t Counters::this_thread_shard() noexcept {
  static std::atomic<std::size_t> next{0};
  // initial-exec: a plain %fs-relative load instead of a __tls_get_addr
  // call per count (libzctls.so is preloaded, so its TLS is static).
  thread_local const std::size_t shard __attribute__((tls_model("initial-exec"))) =
      next.fetch_add(1, std::memory_order_relaxed) % kShards;
  return shard;
}

namespace {

constexpr const char* kRetiredName = "zctls-retired.stats";

#define ZCTLS_COPY(key, reason, help) \
  { key, "zctls_copy_sends_total", "reason=\"" reason "\"", help }
const CounterName kNames[kCounterCount] = {
    {"sends", "zctls_sends_total", "", "sendfile calls on kTLS TX sockets"},
    {"bytes", "zctls_sent_bytes_total", "", "Bytes sent by sendfile on kTLS TX sockets"},
    {"zerocopy_sends", "zctls_zerocopy_sends_total", "",
     "Sends with TLS_TX_ZEROCOPY_RO turned on by zctls"},
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
     "Of those, changes after sendfile returned and before the peer acknowledged"},
    {"aborts", "zctls_aborts_total", "", "Connections shut down by on_change = abort"},
    {"decision_cache_hits", "zctls_decision_cache_hits_total", "",
     "Per-file decisions found in the cache"},
    {"decision_cache_misses", "zctls_decision_cache_misses_total", "",
     "Per-file decisions made by matching the rules"},
    {"config_loads", "zctls_config_loads_total", "", "Configurations loaded"},
    {"config_reloads", "zctls_config_reloads_total", "",
     "Configurations reloaded after the file changed"},
    {"config_errors", "zctls_config_errors_total", "", "Configurations rejected"},
};
#undef ZCTLS_COPY

bool read_exact(const std::string& path, void* buf, std::size_t size) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  const ssize_t n = pread(fd, buf, size, 0);
  close(fd);
  return n == static_cast<ssize_t>(size);
}

bool parse_file(const std::string& path, ProcessStats& out) {
  StatsFile file;
  if (!read_exact(path, &file, sizeof file) || file.magic != StatsFile::kMagic) return false;
  out.pid = file.pid;
  out.comm.assign(file.comm, strnlen(file.comm, sizeof file.comm));
  const int known = file.counters < static_cast<std::uint32_t>(kCounterCount)
                        ? static_cast<int>(file.counters)
                        : kCounterCount;
  for (int i = 0; i < known; ++i)
    out.values[static_cast<std::size_t>(i)] = file.block.get(static_cast<Counter>(i));
  out.alive =
      file.pid > 0 && file.start_time != 0 && process_start_time(file.pid) == file.start_time;
  return true;
}

std::string state_of(const ProcessStats& p) {
  return p.retired ? "retired" : p.alive ? "alive" : "exited";
}

// Writes a StatsFile (for the retired totals) atomically.
int write_stats_file(const std::string& dir, const std::string& name, const StatsFile& file) {
  const std::string tmp = dir + "/." + name + "." + std::to_string(getpid()) + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return errno;
  const bool ok = write(fd, &file, sizeof file) == static_cast<ssize_t>(sizeof file);
  const int err = ok ? 0 : errno;
  close(fd);
  if (!ok || rename(tmp.c_str(), (dir + "/" + name).c_str()) != 0) {
    const int e = ok ? errno : err;
    unlink(tmp.c_str());
    return e;
  }
  return 0;
}

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

std::vector<ProcessStats> read_stats_dir(const std::string& dir) {
  std::vector<ProcessStats> all;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return all;
  while (const dirent* entry = readdir(d)) {
    const std::string_view name = entry->d_name;
    if (!name.starts_with("zctls-") || !name.ends_with(".stats")) continue;
    ProcessStats p;
    p.file = dir + "/" + std::string(name);
    if (!parse_file(p.file, p)) continue;
    p.retired = name == kRetiredName;
    if (p.retired) p.alive = false;
    all.push_back(std::move(p));
  }
  closedir(d);
  std::sort(all.begin(), all.end(), [](const ProcessStats& a, const ProcessStats& b) {
    return a.retired != b.retired ? b.retired : a.pid < b.pid;
  });
  return all;
}

std::array<std::uint64_t, kCounterCount> totals(const std::vector<ProcessStats>& all) {
  std::array<std::uint64_t, kCounterCount> sum{};
  for (const ProcessStats& p : all)
    for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += p.values[i];
  return sum;
}

std::string prometheus_text(const std::vector<ProcessStats>& all) {
  const auto sum = totals(all);
  std::string out;
  std::string_view family;
  for (int i = 0; i < kCounterCount; ++i) {
    const CounterName& n = kNames[i];
    if (n.metric != family) {
      family = n.metric;
      out += "# HELP " + std::string(n.metric) + " " + std::string(n.help) + "\n";
      out += "# TYPE " + std::string(n.metric) + " counter\n";
    }
    out += std::string(n.metric);
    if (!n.label.empty()) out += "{" + std::string(n.label) + "}";
    out += " " + std::to_string(sum[static_cast<std::size_t>(i)]) + "\n";
  }
  int alive = 0, exited = 0;
  for (const ProcessStats& p : all) {
    if (p.alive) ++alive;
    if (!p.alive && !p.retired) ++exited;
  }
  out += "# HELP zctls_processes Processes with zctls counters, by state\n";
  out += "# TYPE zctls_processes gauge\n";
  out += "zctls_processes{state=\"alive\"} " + std::to_string(alive) + "\n";
  out += "zctls_processes{state=\"exited\"} " + std::to_string(exited) + "\n";
  return out;
}

std::string stats_json(const std::vector<ProcessStats>& all) {
  const auto counters_json = [](const std::array<std::uint64_t, kCounterCount>& values) {
    std::string out = "{";
    for (int i = 0; i < kCounterCount; ++i) {
      if (i > 0) out += ", ";
      out += "\"" + std::string(kNames[i].key) +
             "\": " + std::to_string(values[static_cast<std::size_t>(i)]);
    }
    return out + "}";
  };
  std::string out = "{\"processes\": [";
  for (std::size_t i = 0; i < all.size(); ++i) {
    const ProcessStats& p = all[i];
    out += std::string(i > 0 ? ", " : "") + "{\"pid\": " + std::to_string(p.pid) +
           ", \"comm\": " + json_quote(p.comm) + ", \"state\": \"" + state_of(p) +
           "\", \"counters\": " + counters_json(p.values) + "}";
  }
  return out + "], \"totals\": " + counters_json(totals(all)) + "}\n";
}

std::string stats_table(const std::vector<ProcessStats>& all) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-8s %-16s %-8s %12s %12s %12s %8s\n", "PID", "PROGRAM",
                "STATE", "SENDS", "ZEROCOPY", "COPY", "EVENTS");
  out += line;
  const auto row = [&](const std::string& pid, const std::string& comm, const std::string& state,
                       const std::array<std::uint64_t, kCounterCount>& v) {
    const auto get = [&](Counter c) { return v[static_cast<std::size_t>(c)]; };
    std::uint64_t copies = 0;
    for (int i = static_cast<int>(Counter::copy_no_rule);
         i <= static_cast<int>(Counter::copy_no_config); ++i)
      copies += v[static_cast<std::size_t>(i)];
    std::snprintf(line, sizeof line, "%-8s %-16s %-8s %12llu %12llu %12llu %8llu\n", pid.c_str(),
                  comm.c_str(), state.c_str(), static_cast<unsigned long long>(get(Counter::sends)),
                  static_cast<unsigned long long>(get(Counter::zerocopy_sends)),
                  static_cast<unsigned long long>(copies),
                  static_cast<unsigned long long>(get(Counter::integrity_events)));
    out += line;
  };
  for (const ProcessStats& p : all)
    row(p.retired ? "-" : std::to_string(p.pid), p.retired ? "(pruned)" : p.comm, state_of(p),
        p.values);
  const auto sum = totals(all);
  row("total", "", "", sum);
  out += "\n";
  for (int i = 0; i < kCounterCount; ++i) {
    std::snprintf(line, sizeof line, "  %-28s %llu\n", std::string(kNames[i].key).c_str(),
                  static_cast<unsigned long long>(sum[static_cast<std::size_t>(i)]));
    out += line;
  }
  return out;
}

int write_textfile(const std::string& dir, const std::string& text) noexcept {
  try {
    const std::string tmp = dir + "/.zctls.prom." + std::to_string(getpid()) + ".tmp";
    const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return errno;
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = write(fd, text.data() + done, text.size() - done);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
      } else if (n == 0 || errno != EINTR) {
        break;
      }
    }
    const bool ok = done == text.size();
    const int err = ok ? 0 : errno;
    close(fd);
    if (!ok || rename(tmp.c_str(), (dir + "/zctls.prom").c_str()) != 0) {
      const int e = ok ? errno : err;
      unlink(tmp.c_str());
      return e != 0 ? e : EIO;
    }
    return 0;
  } catch (...) {
    return ENOMEM;
  }
}

int prune_stats_dir(const std::string& dir, std::string* error) {
  const std::vector<ProcessStats> all = read_stats_dir(dir);
  StatsFile retired;
  int folded = 0;
  for (const ProcessStats& p : all) {
    if (p.alive) continue;
    for (int i = 0; i < kCounterCount; ++i)
      retired.block.add(static_cast<Counter>(i), p.values[static_cast<std::size_t>(i)]);
    if (!p.retired) ++folded;
  }
  std::snprintf(retired.comm, sizeof retired.comm, "(pruned)");
  if (folded == 0) return 0;
  if (const int err = write_stats_file(dir, kRetiredName, retired); err != 0) {
    if (error != nullptr) *error = dir + "/" + kRetiredName + ": " + std::strerror(err);
    return -1;
  }
  for (const ProcessStats& p : all)
    if (!p.alive && !p.retired) unlink(p.file.c_str());
  return folded;
}

}  // namespace zctls
