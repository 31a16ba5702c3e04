// The shim's own messages: one line each, "zctls[PID]: LEVEL: text",
// rate-limited to kLogBurst lines per second (the number dropped is
// reported with the next line that gets through).  Never allocates, never
// changes errno, safe inside close() (async-signal-safe syscalls only), and
// never writes into an fd that is not the log ([log] target):
//
//   stderr    fd 2, checked before every line (one fstat): a regular file,
//             a pipe or FIFO, a terminal or /dev/null is a log; a socket is
//             one only if it is the journal's (systemd's JOURNAL_STREAM,
//             captured at load).  A daemon that closed fds 0-2 may have a
//             client's TCP socket there: its messages then go to syslog
//             (else a config error's bytes would land in a client's TLS
//             stream), and the first such line says so.
//   file:P    P opened, written and closed for every line (O_APPEND): no fd
//             is kept that the application could close and reuse, and a
//             rotated file is followed.  If P cannot be opened: syslog.
//   syslog    one datagram to /dev/log per line, on a socket opened for that
//             line (glibc's syslog() keeps a socket open across calls, whose
//             number a daemon's closefrom() can hand to a client), as
//             "<PRI>PROGRAM[PID]: zctls[PID]: LEVEL: text" with the daemon
//             facility; no /dev/log (a container): the line is dropped.
#pragma once

#include "zctls/config.h"

namespace zctls {

inline constexpr int kLogBurst = 20;

void set_log_level(LogLevel level) noexcept;
LogLevel log_level() noexcept;
bool log_enabled(LogLevel level) noexcept;

// Targets.  log_to_file keeps the pointer: `path` must live for the rest of
// the process (the runtime passes a published Config's, never freed).
void log_to_stderr() noexcept;  // the default
void log_to_syslog() noexcept;
void log_to_file(const char* path) noexcept;
// Takes JOURNAL_STREAM's value ("DEV:INO", or nullptr), as the hook
// library captured it at load: called once, when the engine attaches.
void capture_log_environment(const char* journal_stream) noexcept;

__attribute__((format(printf, 2, 3))) void log(LogLevel level, const char* format, ...) noexcept;

}  // namespace zctls
