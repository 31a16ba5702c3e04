// The counters' names and the name of a process's stats file: what the
// library needs.  Reading the directory is the zctls command's
// (cli/stats_dir.cpp).
#include "zctls/stats.h"

#include "kernel/kernel_quirks.h"  // ZCTLS_NEWEST_KNOWN_KERNEL, in a counter's help

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>


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

const CounterName kNames[kCounterCount] = {
#define ZCTLS_COUNTER(key, metric, help) {#key, metric, "", help, help},
#define ZCTLS_COPY_REASON(key, reason, about) \
  {#key, "zctls_copy_sends_total", "reason=\"" reason "\"", "Sends by copy, by reason", about},
#include "zctls/counter_list.h"
#undef ZCTLS_COUNTER
#undef ZCTLS_COPY_REASON
};

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
