// What the exported hooks call around the real functions (send_hooks.cpp,
// fd_hooks.cpp): the hook library's side of zctls.  Until this process
// meets a kTLS TX socket these only keep the plain-fd bitmap (plain_fds.h);
// from then on they forward to the engine (engine_abi.h), which front.cpp
// loads at that moment.  Each function is noexcept, keeps errno, and does
// nothing when ZCTLS_DISABLE is set.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>

#include "engine_abi.h"

namespace zctls::hooks {

// A send's state from before_send to after_send: opaque engine bytes.
struct Ticket {
  bool counted;  // after_send has work to do
  alignas(16) unsigned char bytes[ZCTLS_TICKET_BYTES];
};

// True if `fd` is known to be a plain (not kTLS) socket or file: the hook
// can make the real call and nothing else.  One atomic load and a bitmap
// (or fd-table) read; false whenever in doubt.
bool known_plain(int fd) noexcept;
void before_send(Ticket& ticket, int out_fd, int in_fd, const off_t* offset) noexcept;
void after_send(const Ticket& ticket, ssize_t result, const off_t* offset) noexcept;
void after_setsockopt(int fd, int level, int optname, const void* value, socklen_t length) noexcept;
// The pair around a real close: before_close looks at the socket one last
// time and returns its close epoch; after_close forgets the number unless
// another thread's new fd on it overtook the close (kNoEpoch: forget).
inline constexpr std::uint32_t kNoEpoch = ZCTLS_NO_EPOCH;
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

}  // namespace zctls::hooks
