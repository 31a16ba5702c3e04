#include "zctls/stats.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <utility>

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
};
#undef ZCTLS_COPY

// One process file, or the retired file: its StatsFile, its inode number
// (which names it across a rename or unlink), and what follows the
// StatsFile (the retired file's list of folded files).
struct RawFile {
  StatsFile stats;
  std::uint64_t inode = 0;
  std::string trailer;
};

// The default directory, /dev/shm, is writable by every user: a FIFO
// there must not block the reader (O_NONBLOCK, regular files only) and a
// huge file must not be read into memory (kMaxTrailer).
constexpr off_t kMaxTrailer = 4 << 20;  // ~100 000 folded names

bool read_file(const std::string& path, RawFile& out) {
  out.trailer.clear();
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return false;
  struct stat st {};
  bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
            st.st_size - static_cast<off_t>(sizeof out.stats) <= kMaxTrailer &&
            pread(fd, &out.stats, sizeof out.stats, 0) == static_cast<ssize_t>(sizeof out.stats) &&
            out.stats.magic == StatsFile::kMagic;
  out.inode = st.st_ino;
  if (ok && st.st_size > static_cast<off_t>(sizeof out.stats)) {
    out.trailer.resize(static_cast<std::size_t>(st.st_size) - sizeof out.stats);
    ok = pread(fd, out.trailer.data(), out.trailer.size(), sizeof out.stats) ==
         static_cast<ssize_t>(out.trailer.size());
  }
  close(fd);
  return ok;
}

ProcessStats process_stats(const std::string& path, const RawFile& raw) {
  ProcessStats out;
  const StatsFile& file = raw.stats;
  out.file = path;
  out.inode = raw.inode;
  out.pid = file.pid;
  out.comm.assign(file.comm, strnlen(file.comm, sizeof file.comm));
  const int known = file.counters < static_cast<std::uint32_t>(kCounterCount)
                        ? static_cast<int>(file.counters)
                        : kCounterCount;
  for (int i = 0; i < known; ++i)
    out.values[static_cast<std::size_t>(i)] = file.block.get(static_cast<Counter>(i));
  out.alive =
      file.pid > 0 && file.start_time != 0 && process_start_time(file.pid) == file.start_time;
  return out;
}

std::string base_name(const std::string& path) { return path.substr(path.rfind('/') + 1); }

// A process file's name, and nothing else: the folded list comes from a
// file that, in /dev/shm, any user could have written, and prune (often
// root) unlinks what it lists.
bool is_process_file_name(std::string_view name) {
  return name.starts_with("zctls-") && name.ends_with(".stats") && name != kRetiredName &&
         name.find('/') == std::string_view::npos;
}

// The retired file's trailer: "generation N\n", bumped by every prune
// that rewrites it, then "NAME INODE\n" for each process file whose
// counters it already holds and that may not be unlinked yet.
using FoldedFiles = std::set<std::pair<std::string, std::uint64_t>>;
struct Trailer {
  std::uint64_t generation = 0;  // 0: none, or written before prunes kept one
  FoldedFiles folded;
};
constexpr std::string_view kGenerationKey = "generation ";

Trailer parse_trailer(const std::string& text) {
  Trailer trailer;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(at, end - at);
    at = end + 1;
    const std::size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    const std::uint64_t number = std::strtoull(line.c_str() + space + 1, nullptr, 10);
    if (line.starts_with(kGenerationKey))
      trailer.generation = number;
    else if (is_process_file_name(std::string_view(line).substr(0, space)))
      trailer.folded.emplace(line.substr(0, space), number);
  }
  return trailer;
}

// Writes the retired file atomically: its counters, then the folded list.
// The temporary name is unpredictable and created O_EXCL: in a directory
// every user can write, a name known in advance could be a file planted
// there.
int write_retired_file(const std::string& dir, const StatsFile& file, const std::string& trailer) {
  std::string tmp = dir + "/." + kRetiredName + ".XXXXXX";
  const int fd = mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return errno;
  fchmod(fd, 0644);
  const bool ok = write(fd, &file, sizeof file) == static_cast<ssize_t>(sizeof file) &&
                  write(fd, trailer.data(), trailer.size()) == static_cast<ssize_t>(trailer.size());
  const int err = ok ? 0 : errno != 0 ? errno : EIO;
  close(fd);
  if (!ok || rename(tmp.c_str(), (dir + "/" + kRetiredName).c_str()) != 0) {
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

namespace {

// The retired file, if there is one.
bool read_retired(const std::string& dir, RawFile& raw, Trailer& trailer) {
  trailer = Trailer{};
  if (!read_file(dir + "/" + kRetiredName, raw)) return false;
  trailer = parse_trailer(raw.trailer);
  return true;
}

std::vector<ProcessStats> read_process_files(const std::string& dir) {
  std::vector<ProcessStats> all;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return all;
  std::vector<std::string> names;
  while (const dirent* entry = readdir(d)) {
    const std::string_view name = entry->d_name;
    if (is_process_file_name(name)) names.emplace_back(name);
  }
  closedir(d);
  for (const std::string& name : names) {
    RawFile raw;
    const std::string path = dir + "/" + name;
    if (read_file(path, raw)) all.push_back(process_stats(path, raw));
  }
  return all;
}

// The directory as a consistent sum, even while `--prune` runs, without a
// lock (the shim reads it from its send path).  A prune rewrites the
// retired file -- its totals now holding the exited processes it folds,
// their names in its trailer, its generation one higher -- and only then
// unlinks those files.  So: read the retired file, the process files, and
// the retired file again.  Same generation: no prune rewrote it meanwhile,
// and a process file it lists (folded, unlink under way) is skipped, so
// each process counts once.  Otherwise a process file read here may
// already be in the newer totals, or one may have vanished before it was
// read: read again.
std::vector<ProcessStats> read_stats_dir(const std::string& dir, Trailer* trailer_out,
                                         bool* consistent) {
  constexpr int kAttempts = 100;  // prunes are rare and short; then give the last look
  RawFile raw;
  Trailer trailer;
  bool have_retired = read_retired(dir, raw, trailer);
  bool same = false;
  std::vector<ProcessStats> all;
  for (int attempt = 0; attempt < kAttempts && !same; ++attempt) {
    all = read_process_files(dir);
    const std::uint64_t before = trailer.generation;
    const bool had_retired = have_retired;
    have_retired = read_retired(dir, raw, trailer);
    same = have_retired == had_retired && trailer.generation == before;
  }
  if (consistent != nullptr) *consistent = same;
  if (have_retired) {
    std::erase_if(all, [&](const ProcessStats& p) {
      return trailer.folded.count({base_name(p.file), p.inode}) != 0;
    });
    ProcessStats retired = process_stats(dir + "/" + kRetiredName, raw);
    retired.retired = true;
    retired.alive = false;
    all.push_back(std::move(retired));
  }
  if (trailer_out != nullptr) *trailer_out = trailer;
  std::sort(all.begin(), all.end(), [](const ProcessStats& a, const ProcessStats& b) {
    return a.retired != b.retired ? b.retired : a.pid < b.pid;
  });
  return all;
}

}  // namespace

std::vector<ProcessStats> read_stats_dir(const std::string& dir, bool* consistent) {
  return read_stats_dir(dir, nullptr, consistent);
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
  // One block per family (metric name), in the order families first
  // appear: counters are appended over time, so one family's members need
  // not be neighbours (copy reasons), and a family may be announced once.
  std::vector<bool> done(kCounterCount, false);
  for (int i = 0; i < kCounterCount; ++i) {
    if (done[static_cast<std::size_t>(i)]) continue;
    const std::string_view family = kNames[i].metric;
    out += "# HELP " + std::string(family) + " " + std::string(kNames[i].help) + "\n";
    out += "# TYPE " + std::string(family) + " counter\n";
    for (int j = i; j < kCounterCount; ++j) {
      const CounterName& n = kNames[j];
      if (n.metric != family) continue;
      done[static_cast<std::size_t>(j)] = true;
      out += std::string(n.metric);
      if (!n.label.empty()) out += "{" + std::string(n.label) + "}";
      out += " " + std::to_string(sum[static_cast<std::size_t>(j)]) + "\n";
    }
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

int write_textfile(const std::string& dir, const std::string& text) noexcept {
  try {
    // An unpredictable name, created O_EXCL (see write_retired_file).
    std::string tmp = dir + "/.zctls.prom.XXXXXX";
    const int fd = mkostemp(tmp.data(), O_CLOEXEC);
    if (fd < 0) return errno;
    fchmod(fd, 0644);  // node_exporter runs as another user
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

namespace {

// An exclusive lock on the directory for one prune at a time (readers take
// none; see read_stats_dir).  Waits at most 10 s: anyone who can open the
// directory can hold a lock on it.  -1 with errno (EWOULDBLOCK: still held).
int lock_directory(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  for (int tries = 0; flock(fd, LOCK_EX | LOCK_NB) != 0; ++tries) {
    if ((errno != EWOULDBLOCK && errno != EINTR) || tries == 1000) {
      const int err = errno;
      close(fd);
      errno = err;
      return -1;
    }
    usleep(10'000);
  }
  return fd;
}

}  // namespace

int prune_stats_dir(const std::string& dir, std::string* error) {
  const int lock = lock_directory(dir);
  if (lock < 0) {
    if (error != nullptr)
      *error = dir + ": " +
               (errno == EWOULDBLOCK ? "another prune has held it locked for 10 s"
                                     : std::string(std::strerror(errno)));
    return -1;
  }
  Trailer previous;
  // Under the lock no other prune runs, so this read is consistent.
  const std::vector<ProcessStats> all = read_stats_dir(dir, &previous, nullptr);
  StatsFile retired;
  std::snprintf(retired.comm, sizeof retired.comm, "(pruned)");
  std::string trailer =
      std::string(kGenerationKey) + std::to_string(previous.generation + 1) + "\n";
  std::vector<std::string> to_unlink;
  int folded = 0;
  for (const ProcessStats& p : all) {
    if (p.alive) continue;
    for (int i = 0; i < kCounterCount; ++i)
      retired.block.add(static_cast<Counter>(i), p.values[static_cast<std::size_t>(i)]);
    if (p.retired) continue;
    ++folded;
    trailer += base_name(p.file) + " " + std::to_string(p.inode) + "\n";
    to_unlink.push_back(p.file);
  }
  // Files an earlier prune folded but did not get to unlink (it was
  // killed): still listed, so that no reader counts them twice.
  for (const auto& [name, inode] : previous.folded) {
    struct stat st {};
    const std::string path = dir + "/" + name;
    if (lstat(path.c_str(), &st) == 0 && st.st_ino == inode) {
      trailer += name + " " + std::to_string(inode) + "\n";
      to_unlink.push_back(path);
    }
  }
  int result = folded;
  if (!to_unlink.empty()) {
    if (const int err = write_retired_file(dir, retired, trailer); err != 0) {
      if (error != nullptr) *error = dir + "/" + kRetiredName + ": " + std::strerror(err);
      result = -1;
    } else {
      for (const std::string& path : to_unlink) unlink(path.c_str());
    }
  }
  close(lock);
  return result;
}

}  // namespace zctls
