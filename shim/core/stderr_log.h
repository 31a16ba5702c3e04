// Whether fd 2 is somewhere a log line may go: the engine's logger
// (log.cpp) and the hooks' one message (hooks/engine_loader.cpp) ask it
// before writing there.  A daemon that closed fd 2 may have a client's
// socket on that number by now: a line written there would land in that
// connection.  Raw syscalls only (async-signal-safe, no errno kept: the
// callers keep it).
#pragma once

#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>
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
  if (syscall(SYS_fstat, 2, &st) != 0) return "closed";
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

}  // namespace zctls
