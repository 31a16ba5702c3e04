// The functions the hooks stand in front of: the next definition in the
// lookup order (RTLD_NEXT), resolved lazily, once per function, with no
// lock (a race resolves twice to the same pointer).  If a symbol cannot be
// resolved, or resolves back to the shim, the raw syscall stands in, so a
// hook can always do what the application asked for.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

namespace zctls::real {

ssize_t sendfile(int out_fd, int in_fd, off_t* offset, size_t count) noexcept;
ssize_t sendfile64(int out_fd, int in_fd, off_t* offset, size_t count) noexcept;
int setsockopt(int fd, int level, int optname, const void* value, socklen_t length) noexcept;
int getsockopt(int fd, int level, int optname, void* value, socklen_t* length) noexcept;
int close(int fd) noexcept;
int dup2(int oldfd, int newfd) noexcept;
int dup3(int oldfd, int newfd, int flags) noexcept;
int close_range(unsigned first, unsigned last, int flags) noexcept;

// The C library's own clock_gettime, looked up in libc.so.6 itself rather
// than in the global scope (where a time-faking preload would answer), or
// nullptr.  Called once, at load time (clock.h).
using ClockGettimeFn = int (*)(clockid_t, timespec*);
ClockGettimeFn libc_clock_gettime() noexcept;

}  // namespace zctls::real
