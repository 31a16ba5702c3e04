#include "log.h"

#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>

namespace zctls {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::warn)};
std::atomic<int> g_fd{2};               // -1: syslog
std::atomic<std::int64_t> g_window{0};  // the second the current budget is for
std::atomic<int> g_sent{0};
std::atomic<int> g_dropped{0};

int syslog_priority(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::error:
      return LOG_ERR;
    case LogLevel::warn:
      return LOG_WARNING;
    case LogLevel::info:
      return LOG_INFO;
    case LogLevel::debug:
      return LOG_DEBUG;
  }
  return LOG_NOTICE;
}

// True if this line fits the budget of the current second.
bool take_budget() noexcept {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  std::int64_t window = g_window.load(std::memory_order_relaxed);
  if (now.tv_sec != window &&
      g_window.compare_exchange_strong(window, now.tv_sec, std::memory_order_relaxed))
    g_sent.store(0, std::memory_order_relaxed);
  if (g_sent.fetch_add(1, std::memory_order_relaxed) < kLogBurst) return true;
  g_dropped.fetch_add(1, std::memory_order_relaxed);
  return false;
}
}  // namespace

void set_log_level(LogLevel level) noexcept {
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}
LogLevel log_level() noexcept {
  return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed));
}
bool log_enabled(LogLevel level) noexcept {
  return static_cast<int>(level) <= g_level.load(std::memory_order_relaxed);
}
void set_log_fd(int fd) noexcept { g_fd.store(fd, std::memory_order_relaxed); }
void set_log_syslog() noexcept { g_fd.store(-1, std::memory_order_relaxed); }
void forget_log_fd_range(unsigned first, unsigned last) noexcept {
  const int fd = g_fd.load(std::memory_order_relaxed);
  if (fd > 2 && static_cast<unsigned>(fd) >= first && static_cast<unsigned>(fd) <= last)
    forget_log_fd(fd);
}
void forget_log_fd(int fd) noexcept {
  int current = fd;
  if (fd > 2) g_fd.compare_exchange_strong(current, 2, std::memory_order_relaxed);
}

void log(LogLevel level, const char* format, ...) noexcept {
  if (!log_enabled(level) || !take_budget()) return;
  const int saved = errno;
  char line[1024];
  int n = std::snprintf(line, sizeof line, "zctls[%d]: %s: ", static_cast<int>(getpid()),
                        to_string(level).data());
  va_list args;
  va_start(args, format);
  n += std::vsnprintf(line + n, sizeof line - static_cast<std::size_t>(n), format, args);
  va_end(args);
  if (n > static_cast<int>(sizeof line) - 48) n = static_cast<int>(sizeof line) - 48;
  if (const int dropped = g_dropped.exchange(0, std::memory_order_relaxed); dropped > 0)
    n += std::snprintf(line + n, sizeof line - static_cast<std::size_t>(n),
                       " (%d earlier messages suppressed)", dropped);
  const int fd = g_fd.load(std::memory_order_relaxed);
  if (fd < 0) {
    line[n] = '\0';
    syslog(LOG_DAEMON | syslog_priority(level), "%s", line);
  } else {
    line[n++] = '\n';
    const ssize_t ignored = write(fd, line, static_cast<std::size_t>(n));
    (void)ignored;
  }
  errno = saved;
}

}  // namespace zctls
