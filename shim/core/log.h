// The shim's own messages: one line each, "zctls[PID]: LEVEL: text", to
// stderr (nginx points stderr at its error.log), a file (one write(2) per
// line, O_APPEND), or syslog (LOG_DAEMON; never openlog: that would change
// the host program's ident).  Rate-limited to kLogBurst lines per second;
// the number of lines dropped is reported with the next line that gets
// through.  Never allocates, never changes errno.
#pragma once

#include "zctls/config.h"

namespace zctls {

inline constexpr int kLogBurst = 20;

void set_log_level(LogLevel level) noexcept;
LogLevel log_level() noexcept;
bool log_enabled(LogLevel level) noexcept;
void set_log_fd(int fd) noexcept;  // write lines to fd (default 2, stderr)
void set_log_syslog() noexcept;    // send lines to syslog instead
// The application closed (or dup2'd over) fd: if it was the log file, go
// back to stderr rather than write into whatever gets that number next.
void forget_log_fd(int fd) noexcept;
void forget_log_fd_range(unsigned first, unsigned last) noexcept;  // close_range

__attribute__((format(printf, 2, 3))) void log(LogLevel level, const char* format, ...) noexcept;

}  // namespace zctls
