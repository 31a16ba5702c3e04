// The shim's own messages: one line each, "zctls[PID]: LEVEL: text", written
// with a single write(2) to stderr (nginx points stderr at its error.log).
// Rate-limited to kBurst lines per second; the number of lines dropped is
// reported with the next line that gets through.  Never allocates, never
// changes errno.  (Syslog and file targets: a later issue.)
#pragma once

#include "zctls/config.h"

namespace zctls {

inline constexpr int kLogBurst = 20;

void set_log_level(LogLevel level) noexcept;
LogLevel log_level() noexcept;
bool log_enabled(LogLevel level) noexcept;
void set_log_fd(int fd) noexcept;  // default 2; for tests

__attribute__((format(printf, 2, 3))) void log(LogLevel level, const char* format, ...) noexcept;

}  // namespace zctls
