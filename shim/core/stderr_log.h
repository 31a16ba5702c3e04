// Whether fd 2 is somewhere a log line may go, and how to write one there
// without waiting: the engine's logger (log.cpp) and the hooks' messages
// (hooks/engine_loader.cpp) use both.  A daemon that closed fd 2 may have a
// client's socket on that number by now: a line written there would land
// in that connection.  Raw syscalls only (async-signal-safe, no errno
// kept: the callers keep it).
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

namespace zctls {

// systemd's JOURNAL_STREAM ("DEV:INO", or nullptr) into `dev` and `ino`;
// false (and both left alone) if it is not that.
inline bool parse_journal_stream(const char* stream, unsigned long long* dev,
                                 unsigned long long* ino) noexcept {
  unsigned long long d = 0, i = 0;
  if (stream == nullptr || sscanf(stream, "%llu:%llu", &d, &i) != 2) return false;
  *dev = d;
  *ino = i;
  return true;
}

// nullptr if fd 2 is a regular file, a pipe, a terminal, /dev/null or the
// journal's stream socket (systemd's JOURNAL_STREAM, as DEV and INO; 0 0:
// none); else what it is.
inline const char* stderr_not_a_log(unsigned long long journal_dev,
                                    unsigned long long journal_ino) noexcept {
  struct stat st {};
  if (syscall(SYS_newfstatat, 2, "", &st, AT_EMPTY_PATH) != 0) return "closed";
  if (S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode)) return nullptr;
  if (S_ISCHR(st.st_mode)) {
    // A terminal (a serial console too) or /dev/null (1:3); not whatever
    // other device a daemon may have opened on fd 2 (/dev/net/tun, fuse).
    termios tio{};
    if ((major(st.st_rdev) == 1 && minor(st.st_rdev) == 3) ||
        syscall(SYS_ioctl, 2, TCGETS, &tio) == 0)
      return nullptr;
    return "a device that is neither a terminal nor /dev/null";
  }
  if (S_ISSOCK(st.st_mode)) {
    if (journal_ino != 0 && journal_dev == st.st_dev && journal_ino == st.st_ino) return nullptr;
    return "a socket, not the journal's (JOURNAL_STREAM)";
  }
  return "neither a file, a pipe nor a terminal";
}

// Writes one line (`n` bytes, at most PIPE_BUF) to fd 2 without ever
// waiting for a reader: a log line inside a hook must not hold a server's
// send (a pipe nobody reads fills at 4-64 KiB and then blocks its writer
// for good).  fd 2's own file status flags are the application's and stay
// as they are:
//   a socket (the journal's)       sendto with MSG_DONTWAIT | MSG_NOSIGNAL
//   a pipe, FIFO or terminal       a non-blocking open file description of
//                                  its own (/proc/self/fd/2 opened again;
//                                  O_NONBLOCK on a FIFO with no reader
//                                  fails with ENXIO instead of SIGPIPE)
//   the same without /proc, or a   written only if ppoll() says it fits
//   pty master                     now
//   a regular file, /dev/null      write(2) as it is (it never waits for a
//                                  reader)
// Left: a reader that closes between the check and the write gets the
// process a SIGPIPE, as it would the application's own write.
// True if the whole line was written; false if it was dropped.
inline bool write_line_to_fd2(const char* text, size_t n) noexcept {
  struct stat st {};
  if (syscall(SYS_newfstatat, 2, "", &st, AT_EMPTY_PATH) != 0) return false;
  long w = -1;
  if (S_ISSOCK(st.st_mode))
    return syscall(SYS_sendto, 2, text, n, MSG_DONTWAIT | MSG_NOSIGNAL, nullptr, 0) ==
           static_cast<long>(n);
  if (S_ISREG(st.st_mode) || (S_ISCHR(st.st_mode) && major(st.st_rdev) == 1)) {
    do w = syscall(SYS_write, 2, text, n);
    while (w < 0 && errno == EINTR);
    return w == static_cast<long>(n);
  }
  // Not for a pty master (/dev/ptmx, 5:2): opening it again makes a new
  // terminal.
  const bool ptmx = S_ISCHR(st.st_mode) && major(st.st_rdev) == 5 && minor(st.st_rdev) == 2;
  const int fd = ptmx ? -1
                      : static_cast<int>(syscall(SYS_openat, AT_FDCWD, "/proc/self/fd/2",
                                                 O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0));
  if (fd >= 0) {
    w = syscall(SYS_write, fd, text, n);
    syscall(SYS_close, fd);
    return w == static_cast<long>(n);
  }
  if (!ptmx && errno == ENXIO) return false;  // a FIFO nobody reads
  pollfd p{2, POLLOUT, 0};
  const timespec now{0, 0};  // ppoll: aarch64 has no poll syscall
  if (syscall(SYS_ppoll, &p, 1, &now, nullptr, 0) != 1 ||
      (p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0)
    return false;
  return syscall(SYS_write, 2, text, n) == static_cast<long>(n);
}

}  // namespace zctls
