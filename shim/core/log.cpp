#include "log.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "clock.h"
#include "stderr_log.h"

namespace zctls {
namespace {

enum class Target : int { stderr_stream, syslog, file };

std::atomic<int> g_level{static_cast<int>(LogLevel::notice)};
std::atomic<int> g_target{static_cast<int>(Target::stderr_stream)};
std::atomic<const char*> g_file{nullptr};
// systemd's JOURNAL_STREAM ("DEV:INO" of the stream socket it connected
// stderr to); both 0 when unset.
std::atomic<unsigned long long> g_journal_dev{0}, g_journal_ino{0};
std::atomic<bool> g_said_stderr{false}, g_said_file{false};
std::atomic<std::int64_t> g_window{0};  // the second the current budget is for
std::atomic<int> g_sent{0};
std::atomic<int> g_dropped{0};

int syslog_priority(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::error:
      return LOG_ERR;
    case LogLevel::warn:
      return LOG_WARNING;
    case LogLevel::notice:
      return LOG_NOTICE;
    case LogLevel::info:
      return LOG_INFO;
    case LogLevel::debug:
      return LOG_DEBUG;
  }
  return LOG_NOTICE;
}

// True if this line fits the budget of the current second.
bool take_budget() noexcept {
  const std::int64_t second = clock_ns(CLOCK_MONOTONIC_COARSE) / 1'000'000'000;
  std::int64_t window = g_window.load(std::memory_order_relaxed);
  if (second != window &&
      g_window.compare_exchange_strong(window, second, std::memory_order_relaxed))
    g_sent.store(0, std::memory_order_relaxed);
  if (g_sent.fetch_add(1, std::memory_order_relaxed) < kLogBurst) return true;
  g_dropped.fetch_add(1, std::memory_order_relaxed);
  return false;
}

// Raw syscalls throughout: no libc wrapper another preload (or the shim's
// own close hook) could stand in front of.
int sys_close(int fd) noexcept { return static_cast<int>(syscall(SYS_close, fd)); }

void write_all(int fd, const char* text, std::size_t n) noexcept {
  while (n > 0) {
    const long w = syscall(SYS_write, fd, text, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    text += w;
    n -= static_cast<std::size_t>(w);
  }
}

// The program's name (/proc/self/comm) for the syslog tag, read once.
char g_ident[16];
std::atomic<bool> g_ident_read{false};

const char* ident() noexcept {
  if (!g_ident_read.load(std::memory_order_acquire)) {
    char name[sizeof g_ident] = "zctls";
    const int fd =
        static_cast<int>(syscall(SYS_openat, AT_FDCWD, "/proc/self/comm", O_RDONLY | O_CLOEXEC, 0));
    if (fd >= 0) {
      const long n = syscall(SYS_read, fd, name, sizeof name - 1);
      sys_close(fd);
      if (n > 0) name[n - (name[n - 1] == '\n' ? 1 : 0)] = '\0';
    }
    // Two threads may both get here: they write the same bytes.
    std::memcpy(g_ident, name, sizeof g_ident);
    g_ident_read.store(true, std::memory_order_release);
  }
  return g_ident;
}

void send_syslog(LogLevel level, const char* line, int n) noexcept {
  char message[1200];
  const int m = std::snprintf(message, sizeof message, "<%d>%s[%d]: %.*s",
                              LOG_DAEMON | syslog_priority(level), ident(),
                              static_cast<int>(getpid()), n, line);
  if (m <= 0) return;
  const int fd = static_cast<int>(syscall(SYS_socket, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (fd < 0) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, "/dev/log", sizeof "/dev/log");
  // MSG_DONTWAIT: a full journal drops the line rather than stall a send.
  syscall(SYS_sendto, fd, message,
          static_cast<std::size_t>(m < static_cast<int>(sizeof message) ? m : sizeof message - 1),
          MSG_DONTWAIT | MSG_NOSIGNAL, &addr, sizeof addr);
  sys_close(fd);
}

// Formats one line; returns its length (without a newline).
int format_line(char* line, std::size_t size, LogLevel level, const char* format,
                va_list args) noexcept {
  int n = std::snprintf(line, size, "zctls[%d]: %s: ", static_cast<int>(getpid()),
                        to_string(level).data());
  const int text = std::vsnprintf(line + n, size - static_cast<std::size_t>(n), format, args);
  if (text > 0) n += text;
  const int room = static_cast<int>(size) - 48;
  if (n > room) n = room;
  if (const int dropped = g_dropped.exchange(0, std::memory_order_relaxed); dropped > 0)
    n += std::snprintf(line + n, size - static_cast<std::size_t>(n),
                       " (%d earlier messages suppressed)", dropped);
  return n;
}

// One line to syslog, with the level and text given (for "said once" notes).
void note_to_syslog(const char* format, ...) noexcept {
  char line[512];
  va_list args;
  va_start(args, format);
  const int n = format_line(line, sizeof line, LogLevel::notice, format, args);
  va_end(args);
  send_syslog(LogLevel::notice, line, n);
}

// Whether fd 2 is a log; if not, `why` says what it is.
bool stderr_is_a_log(const char** why) noexcept {
  *why = stderr_not_a_log(g_journal_dev.load(std::memory_order_relaxed),
                          g_journal_ino.load(std::memory_order_relaxed));
  return *why == nullptr;
}

void emit(LogLevel level, char* line, int n) noexcept {
  switch (static_cast<Target>(g_target.load(std::memory_order_relaxed))) {
    case Target::stderr_stream: {
      const char* why = "";
      if (stderr_is_a_log(&why)) {
        line[n] = '\n';
        // Never waits (stderr_log.h): a line that does not fit now is
        // dropped, and counted in the next one's "suppressed".
        if (!write_line_to_fd2(line, static_cast<std::size_t>(n) + 1))
          g_dropped.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      if (!g_said_stderr.exchange(true))
        note_to_syslog("stderr (fd 2) is %s: zctls logs to syslog instead", why);
      break;
    }
    case Target::file: {
      const char* path = g_file.load(std::memory_order_acquire);
      const int fd =
          path == nullptr
              ? -1
              : static_cast<int>(syscall(
                    SYS_openat, AT_FDCWD, path,
                    // O_NONBLOCK: a FIFO with no reader must not block a send.
                    O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0640));
      if (fd >= 0) {
        line[n] = '\n';
        write_all(fd, line, static_cast<std::size_t>(n) + 1);
        sys_close(fd);
        return;
      }
      if (!g_said_file.exchange(true))
        note_to_syslog("cannot open the log file %s (%s): zctls logs to syslog instead",
                       path != nullptr ? path : "?", strerrorname_np(errno));
      break;
    }
    case Target::syslog:
      break;
  }
  send_syslog(level, line, n);
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

void log_to_stderr() noexcept {
  g_target.store(static_cast<int>(Target::stderr_stream), std::memory_order_relaxed);
}
void log_to_syslog() noexcept {
  g_target.store(static_cast<int>(Target::syslog), std::memory_order_relaxed);
}
void log_to_file(const char* path) noexcept {
  g_file.store(path, std::memory_order_release);
  g_said_file.store(false, std::memory_order_relaxed);
  g_target.store(static_cast<int>(Target::file), std::memory_order_release);
}

void capture_log_environment(const char* stream) noexcept {
  unsigned long long dev = 0, ino = 0;
  if (parse_journal_stream(stream, &dev, &ino)) {
    g_journal_dev.store(dev, std::memory_order_relaxed);
    g_journal_ino.store(ino, std::memory_order_relaxed);
  }
}

void log(LogLevel level, const char* format, ...) noexcept {
  if (!log_enabled(level) || !take_budget()) return;
  const int saved = errno;
  char line[1024];
  va_list args;
  va_start(args, format);
  const int n = format_line(line, sizeof line - 1, level, format, args);  // room for '\n'
  va_end(args);
  emit(level, line, n);
  errno = saved;
}

}  // namespace zctls
