// The stats directory as `zctls stats` and `zctls status` read it: every
// process file and the retired file, the totals, the Prometheus text and
// its textfile, and the prune that folds exited processes (declared in
// stats_dir.h; the library only writes its own file: shared_stats.cpp).
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <utility>

#include "json.h"
#include "stats_dir.h"
#include "zctls/stats.h"

namespace zctls {
namespace {

constexpr const char* kRetiredName = "zctls-retired.stats";

// One process file, or the retired file: its header and summed counters,
// its inode number (which names it across a rename or unlink), and what
// follows the counters (the retired file's list of folded files).
struct RawFile {
  std::uint32_t counters = 0;  // how many its writer knew
  pid_t pid = 0;
  std::uint64_t start_time = 0;
  char comm[16] = "";
  std::array<std::uint64_t, kCounterCount> values{};
  std::uint64_t inode = 0;
  std::string trailer;
};

// The layouts a file may have: this version's, and the one before the
// socket counters (servers still running the older library after an
// upgrade write it until they restart).  Same header, block at the same
// offset; only the shard's stride differs.
struct Layout {
  std::uint64_t magic;
  std::size_t slots;  // counters a shard has room for
};
constexpr Layout kLayouts[] = {{StatsFile::kMagic, kCounterSlots},
                               {0x32545354534c435aULL /* "ZCLSTST2" */, 32}};
constexpr std::size_t kBlockOffset = offsetof(StatsFile, block);
static_assert(kBlockOffset == 64 && offsetof(StatsFile, counters) == 8 &&
                  offsetof(StatsFile, pid) == 12 && offsetof(StatsFile, start_time) == 16 &&
                  offsetof(StatsFile, comm) == 24,
              "the header both layouts share");

// The default directory, /dev/shm, is writable by every user: a FIFO
// there must not block the reader (O_NONBLOCK, regular files only) and a
// huge file must not be read into memory (kMaxTrailer).
constexpr off_t kMaxTrailer = 4 << 20;  // ~100 000 folded names

bool read_layout(int fd, off_t size, RawFile& out) {
  StatsFile header;  // only its header is read into it
  if (pread(fd, &header, kBlockOffset, 0) != static_cast<ssize_t>(kBlockOffset)) return false;
  const Layout* layout = nullptr;
  for (const Layout& l : kLayouts)
    if (header.magic == l.magic) layout = &l;
  if (layout == nullptr) return false;
  const std::size_t block_bytes = Counters::kShards * layout->slots * sizeof(std::uint64_t);
  const off_t end = static_cast<off_t>(kBlockOffset + block_bytes);
  if (size < end || size - end > kMaxTrailer) return false;
  std::vector<std::uint64_t> block(Counters::kShards * layout->slots);
  if (pread(fd, block.data(), block_bytes, kBlockOffset) != static_cast<ssize_t>(block_bytes))
    return false;
  out.counters = header.counters;
  out.pid = header.pid;
  out.start_time = header.start_time;
  std::memcpy(out.comm, header.comm, sizeof out.comm);
  const std::size_t known =
      std::min({static_cast<std::size_t>(header.counters), layout->slots, out.values.size()});
  for (std::size_t shard = 0; shard < Counters::kShards; ++shard)
    for (std::size_t i = 0; i < known; ++i) out.values[i] += block[shard * layout->slots + i];
  out.trailer.resize(static_cast<std::size_t>(size - end));
  return out.trailer.empty() || pread(fd, out.trailer.data(), out.trailer.size(), end) ==
                                    static_cast<ssize_t>(out.trailer.size());
}

bool read_file(const std::string& path, RawFile& out) {
  out = RawFile{};
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return false;
  struct stat st {};
  const bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && read_layout(fd, st.st_size, out);
  out.inode = st.st_ino;
  close(fd);
  return ok;
}

ProcessStats process_stats(const std::string& path, const RawFile& raw) {
  ProcessStats out;
  out.file = path;
  out.inode = raw.inode;
  out.pid = raw.pid;
  out.comm.assign(raw.comm, strnlen(raw.comm, sizeof raw.comm));
  out.values = raw.values;
  out.counters = raw.counters;
  out.alive = raw.pid > 0 && raw.start_time != 0 && process_start_time(raw.pid) == raw.start_time;
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
// lock (`zctls stats` from a timer may run beside a prune).  A prune rewrites the
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

namespace {

// A label value in the text exposition format: backslash, double quote and
// newline escaped (prometheus/docs, "Text-based format").  A comm is any
// 15 bytes a process chose (prctl PR_SET_NAME); a byte that is not
// printable ASCII becomes '?', since invalid UTF-8 would make node_exporter
// reject the whole file.
std::string label_value(std::string_view raw) {
  std::string out;
  for (const char ch : raw) {
    const auto byte = static_cast<unsigned char>(ch);
    if (ch == '\\' || ch == '"') out += '\\';
    if (ch == '\n') {
      out += "\\n";
      continue;
    }
    out += byte >= 0x20 && byte < 0x7f ? ch : '?';
  }
  return out;
}

}  // namespace

std::string prometheus_text(const std::vector<ProcessStats>& all) {
  const auto sum = totals(all);
  std::string out;
  // One block per family (metric name), in the order families first
  // appear: counters are appended over time, so one family's members need
  // not be neighbours (copy reasons), and a family may be announced once.
  std::vector<bool> done(kCounterCount, false);
  for (int i = 0; i < kCounterCount; ++i) {
    if (done[static_cast<std::size_t>(i)]) continue;
    const CounterName& first = name_of(static_cast<Counter>(i));
    const std::string_view family = first.metric;
    out += "# HELP " + std::string(family) + " " + std::string(first.help) + "\n";
    out += "# TYPE " + std::string(family) + " counter\n";
    for (int j = i; j < kCounterCount; ++j) {
      const CounterName& n = name_of(static_cast<Counter>(j));
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
  // Per live process (a dashboard's "sends per process"): labelled by pid
  // and comm, so a reload's new workers are new series and exited ones end;
  // their counts stay in the totals above.
  const struct {
    Counter counter;
    const char* metric;
    const char* help;
  } per_process[] = {
      {Counter::sends, "zctls_process_sends_total",
       "sendfile calls on kTLS TX sockets, per live process"},
      {Counter::zerocopy_sends, "zctls_process_zerocopy_sends_total",
       "Sends with the flag on, per live process"},
  };
  for (const auto& family : per_process) {
    out += std::string("# HELP ") + family.metric + " " + family.help + "\n";
    out += std::string("# TYPE ") + family.metric + " counter\n";
    // One series per pid: a second file claiming a live pid (a copy under
    // another name) would be a duplicate series, and node_exporter rejects
    // a textfile with one.  `all` is sorted by pid.
    pid_t last = -1;
    for (const ProcessStats& p : all) {
      if (!p.alive || p.pid == last) continue;
      last = p.pid;
      out += std::string(family.metric) + "{pid=\"" + std::to_string(p.pid) + "\",comm=\"" +
             label_value(p.comm) + "\"} " +
             std::to_string(p.values[static_cast<std::size_t>(family.counter)]) + "\n";
    }
  }
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
