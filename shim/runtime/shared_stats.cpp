#include "shared_stats.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>

#include "log.h"
#include "real_calls.h"

namespace zctls::runtime {
namespace {

void program_name(char (&comm)[16]) noexcept {
  std::memset(comm, 0, sizeof comm);
  const int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  const ssize_t n = read(fd, comm, sizeof comm - 1);
  real::close(fd);
  if (n > 0 && comm[n - 1] == '\n') comm[n - 1] = '\0';
}

}  // namespace

Counters* share_counters(const StatsConfig& stats) noexcept {
  if (stats.dir.empty()) return nullptr;
  try {
    const pid_t pid = getpid();
    const std::uint64_t start = process_start_time(pid);
    const std::string path = stats.dir + "/" + stats_file_name(pid, start);
    // O_EXCL|O_NOFOLLOW: the directory is shared (a sticky tmpfs by
    // default); never follow or adopt a file another user planted.
    bool fresh = true;
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST) {
      // This process before an exec (same pid, same start time): go on
      // counting in its file if it is ours.
      fresh = false;
      fd = open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
      struct stat st {};
      const bool ours =
          fd >= 0 && fstat(fd, &st) == 0 && st.st_uid == geteuid() && S_ISREG(st.st_mode);
      if (ours && st.st_size != static_cast<off_t>(sizeof(StatsFile))) {
        // Ours, in another layout: written before an exec by the library
        // of before an upgrade.  Its counts stay in the totals as an
        // exited process's (start time 0, another name); this image starts
        // a file of its own.
        const std::uint64_t exited = 0;
        const std::string aside = path.substr(0, path.size() - 6) + "-before-exec.stats";
        const bool moved = pwrite(fd, &exited, sizeof exited, offsetof(StatsFile, start_time)) ==
                               static_cast<ssize_t>(sizeof exited) &&
                           rename(path.c_str(), aside.c_str()) == 0;
        real::close(fd);
        fd = moved ? open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644)
                   : -1;
        fresh = moved;
      } else if (fd >= 0 && !ours) {
        real::close(fd);
        fd = -1;
        errno = EEXIST;
      }
    }
    if (fd < 0) {
      log(LogLevel::warn, "cannot create the stats file %s: %s; counters stay private",
          path.c_str(), std::strerror(errno));
      return nullptr;
    }
    void* map = MAP_FAILED;
    if (!fresh || ftruncate(fd, sizeof(StatsFile)) == 0)
      map = mmap(nullptr, sizeof(StatsFile), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    const int err = errno;
    real::close(fd);
    if (map == MAP_FAILED) {
      log(LogLevel::warn, "cannot map the stats file %s: %s; counters stay private", path.c_str(),
          std::strerror(err));
      if (fresh) unlink(path.c_str());
      return nullptr;
    }
    StatsFile* file = fresh ? new (map) StatsFile : static_cast<StatsFile*>(map);
    file->pid = pid;
    file->start_time = start;
    program_name(file->comm);
    return &file->block;
  } catch (...) {
    return nullptr;
  }
}

}  // namespace zctls::runtime
