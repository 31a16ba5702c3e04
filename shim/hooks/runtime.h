// The process-wide side of the shim: the engine instance, and the glue
// every hook calls.  Each function here is noexcept, keeps errno, and does
// nothing when zctls is disabled or when called from inside the shim itself
// (a thread-local guard).
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>

#include "engine.h"

namespace zctls::shim {

// The process's engine, built by the first hook that needs one; nullptr if
// memory ran out then (the hooks pass through).
Engine* engine() noexcept;

// True if `fd` is known to be a plain (not kTLS) socket or file: the hook
// can make the real call and nothing else.  One atomic load and an fd-table
// read; false whenever in doubt.
bool known_plain(int fd) noexcept;
SendTicket before_send(int out_fd, int in_fd, const off_t* offset) noexcept;
void after_send(const SendTicket& ticket, ssize_t result, const off_t* offset) noexcept;
void after_setsockopt(int fd, int level, int optname, const void* value, socklen_t length) noexcept;
// The pair around a real close: before_close looks at the socket one last
// time and returns its close epoch; after_close forgets the number unless
// another thread's new fd on it overtook the close (kNoEpoch: forget).
inline constexpr std::uint32_t kNoEpoch = ~0U;
std::uint32_t before_close(int fd) noexcept;
void after_close(int fd, std::uint32_t epoch = kNoEpoch) noexcept;
void after_close_range(unsigned first, unsigned last, int flags) noexcept;
void after_dup(int oldfd, int newfd) noexcept;
// A call created fd(s) (socket, accept, dup, fcntl F_DUPFD, SCM_RIGHTS...):
// whatever was known about those numbers is stale.
void after_new_fd(int fd) noexcept;
void after_new_fds(const int* fds, int n) noexcept;
// recvmsg's result: the fds an SCM_RIGHTS message brought, if any.
void after_received_fds(const struct msghdr* msg) noexcept;
// Before data reaches `fd` by another way than sendfile (splice).
void before_other_send(int fd) noexcept;

}  // namespace zctls::shim
