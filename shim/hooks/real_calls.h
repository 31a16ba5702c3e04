// The functions the hooks stand in front of: the next definition in the
// lookup order (RTLD_NEXT), resolved lazily, once per function, with no
// lock (a race resolves twice to the same pointer).  If a symbol cannot be
// resolved, or resolves back to the shim, the raw syscall stands in, so a
// hook can always do what the application asked for.
//
// Defined in the hook library (real_calls.cpp); inside the engine, the
// three it calls (setsockopt, getsockopt, close) forward to the hook
// library's (shim/engine/real_forward.cpp), as does libc_clock_gettime.
#pragma once

#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

namespace zctls::real {

// noexcept where glibc's declaration is __THROW; the others are
// cancellation points (real_calls.cpp).
ssize_t sendfile(int out_fd, int in_fd, off_t* offset, size_t count) noexcept;
ssize_t sendfile64(int out_fd, int in_fd, off_t* offset, size_t count) noexcept;
int setsockopt(int fd, int level, int optname, const void* value, socklen_t length) noexcept;
int getsockopt(int fd, int level, int optname, void* value, socklen_t* length) noexcept;
int close(int fd);
int dup2(int oldfd, int newfd) noexcept;
int dup3(int oldfd, int newfd, int flags) noexcept;
int close_range(unsigned first, unsigned last, int flags) noexcept;
void closefrom(int lowfd) noexcept;
ssize_t splice(int fd_in, loff_t* off_in, int fd_out, loff_t* off_out, size_t len,
               unsigned int flags);
int fclose(FILE* stream);
int pclose(FILE* stream);
FILE* freopen(const char* path, const char* mode, FILE* stream);
FILE* freopen64(const char* path, const char* mode, FILE* stream);
int socket(int domain, int type, int protocol) noexcept;
int socketpair(int domain, int type, int protocol, int* sv) noexcept;
int accept(int fd, sockaddr* addr, socklen_t* len);
int accept4(int fd, sockaddr* addr, socklen_t* len, int flags);
int dup(int fd) noexcept;
int fcntl(int fd, int cmd, void* arg);
int fcntl64(int fd, int cmd, void* arg);
ssize_t recvmsg(int fd, msghdr* msg, int flags);
int recvmmsg(int fd, mmsghdr* msgs, unsigned int n, int flags, timespec* timeout);
int pidfd_getfd(int pidfd, int targetfd, unsigned int flags) noexcept;

// The C library's own clock_gettime, looked up in libc.so.6 itself rather
// than in the global scope (where a time-faking preload would answer), or
// nullptr.  Called once, when the engine attaches (clock.h).
using ClockGettimeFn = int (*)(clockid_t, timespec*);
ClockGettimeFn libc_clock_gettime() noexcept;

}  // namespace zctls::real
