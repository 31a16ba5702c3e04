// What the shim knows about each socket fd, indexed by fd number.
//
// Entries are atomic 32-bit words in lazily allocated chunks of 4096, so a
// process pays 16 KiB per 4096 fd numbers it actually sends on (or sends
// files from), nothing for the rest, and no lock anywhere.  "Unknown" (0) means: never seen, or
// closed since; the engine classifies such an fd on first use.  Fds beyond kMaxFds are not tracked
// (pass-through).
#pragma once

#include <atomic>
#include <cstdint>

#include "kernel/ktls.h"

namespace zctls {

enum class SocketKind : std::uint8_t {
  unknown = 0,   // classify on next send
  not_ktls = 1,  // plain socket, file, pipe...: no syscall ever again
  ktls_tx = 2,   // TLS TX key installed
  ulp_only = 3,  // tls ULP but no TX key yet: re-checked on each send
};

struct FdState {
  SocketKind kind = SocketKind::unknown;  // (two bits)
  bool file_sent = false;    // ktls_tx: counted in ktls_tx_file_sockets (once per socket)
  bool flag_on = false;      // TLS_TX_ZEROCOPY_RO as the kernel has it
  bool app_managed = false;  // the application set the flag itself (app_flag decides)
  bool app_counted = false;  // counted in app_flag_sockets (once per socket)
  // ktls_tx: whether its TX mode was learnt ([kernel] offload), and the
  // answer: software kTLS, where the flag has no effect and sends need
  // nothing from zctls.
  bool tx_mode_known = false;
  bool software_tx = false;
  // ktls_tx: its TX key's TLS version, from the application's TLS_TX (or
  // read back when the socket was keyed out of sight).
  kernel::KeyVersion tx_version = kernel::KeyVersion::unknown;  // (two bits)
  // How many times this fd number was closed (or dup2'd over) through the
  // hooks, modulo 2^22: an in-flight record holding a file fd knows without
  // a syscall that the fd was closed since.  A hint only: whoever relies on
  // "not closed" still compares inode numbers when it looks at the file.
  std::uint32_t epoch = 0;

  std::uint32_t pack() const noexcept;
  static FdState unpack(std::uint32_t word) noexcept;
};

class FdTable {
 public:
  static constexpr int kChunkBits = 12;
  static constexpr int kChunks = 256;
  static constexpr int kMaxFds = kChunks << kChunkBits;  // 1 Mi fd numbers

  FdTable() = default;
  ~FdTable();
  FdTable(const FdTable&) = delete;
  FdTable& operator=(const FdTable&) = delete;

  FdState get(int fd) const noexcept;
  // Returns false when fd is out of range or memory is short: not tracked.
  // Keeps the fd's epoch (state.epoch is ignored).
  bool set(int fd, FdState state) noexcept;
  // The fd's epoch, with its entry allocated so that a close will change it.
  std::uint32_t pin_epoch(int fd) noexcept;
  // Sets the fd's file_sent bit; true if this call set it (false: already
  // set, or the fd is not tracked).
  bool mark_file_sent(int fd) noexcept;
  void forget(int fd) noexcept;  // close: back to unknown, epoch + 1
  // forget(fd), unless its epoch has moved on from `epoch` (another thread
  // closed the number and made something new on it meanwhile).
  void forget_if(int fd, std::uint32_t epoch) noexcept;
  void forget_range(unsigned first, unsigned last) noexcept;  // close_range
  // Whether an fd in [first, last] is a kTLS socket (ktls_tx or ulp_only).
  bool any_tls_in(unsigned first, unsigned last) const noexcept;

 private:
  using Chunk = std::atomic<std::uint32_t>;
  std::atomic<std::uint32_t>* slot(int fd, bool create) const noexcept;
  template <typename Visit>
  bool walk(unsigned first, unsigned last, Visit visit) const noexcept;
  mutable std::atomic<Chunk*> chunks_[kChunks] = {};
};

}  // namespace zctls
