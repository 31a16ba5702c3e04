// The shim's decision core: per-fd kTLS state, per-file decisions, and the
// one rule that matters — before a send on a kTLS TX socket, make the
// kernel's TLS_TX_ZEROCOPY_RO equal to what the config says for the file.
//
// Plain C++ with no dlsym: every kernel interaction goes through KernelPort,
// which the shim implements with the real libc functions and the unit
// tests implement with scripted kernel replies.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>

#include "decision_cache.h"
#include "fd_table.h"
#include "zctls/config.h"
#include "zctls/ktls.h"

namespace zctls {

class KernelPort {
 public:
  virtual int stat_fd(int fd, struct stat* st) noexcept = 0;  // 0 or an errno value
  // The path of an open file (readlink of /proc/self/fd/N): its length, or
  // -1 if unknown or longer than `size`.
  virtual ssize_t fd_path(int fd, char* buf, std::size_t size) noexcept = 0;
  virtual kernel::TxKind query_tx(int fd) noexcept = 0;
  virtual kernel::FlagState get_zerocopy(int fd) noexcept = 0;
  virtual int set_zerocopy(int fd, bool on) noexcept = 0;  // 0 or an errno value

 protected:
  ~KernelPort() = default;
};

// Loads the config the first time a kTLS TX socket sends (so a process that
// never uses kTLS never reads it).  Returns nullptr for "pass everything
// through" (no config, or a broken one); must have logged why.
using ConfigLoader = const Config* (*)();

class Engine {
 public:
  Engine(KernelPort& kernel, ConfigLoader loader) noexcept : kernel_(kernel), loader_(loader) {}

  // The application's own successful setsockopt (seen by the hook).
  void after_app_setsockopt(int fd, int level, int optname, const void* value,
                            socklen_t length) noexcept;
  void after_close(int fd) noexcept { fds_.forget(fd); }
  void after_close_range(unsigned first, unsigned last) noexcept { fds_.forget_range(first, last); }
  // dup2/dup3: `newfd` now names another file; learn it again when used.
  void after_dup(int newfd) noexcept { fds_.forget(newfd); }

  // Called just before the real sendfile(out_fd, in_fd, ...).  Sets or
  // clears the flag on out_fd if, and only if, it must change.  Never fails:
  // anything unexpected leaves the socket as it was.
  void before_send(int out_fd, int in_fd) noexcept;

  // In a child after fork: a config load another thread had under way in
  // the parent will never finish here; let the child load it again.
  void after_fork_in_child() noexcept;

  // For tests and diagnostics.
  FdState fd_state(int fd) const noexcept { return fds_.get(fd); }
  bool kernel_unsupported() const noexcept { return kernel_unsupported_.load(); }

 private:
  FdState classify(int fd) noexcept;
  bool wants_zerocopy(int in_fd, const Config& config) noexcept;
  const Config* config() noexcept;

  KernelPort& kernel_;
  ConfigLoader loader_;
  FdTable fds_;
  DecisionCache decisions_;
  std::atomic<const Config*> config_{nullptr};
  std::atomic<int> config_state_{0};  // 0 not loaded, 1 loading, 2 done
  std::atomic<bool> kernel_unsupported_{false};
};

}  // namespace zctls
