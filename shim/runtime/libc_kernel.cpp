#include "libc_kernel.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <new>
#include <string>
#include <vector>

#include "backtrace.h"
#include "clock.h"
#include "fork_safe.h"
#include "real_calls.h"
#include "kernel/ktls.h"
#include "kernel/mounts.h"

namespace zctls::runtime {
namespace {

constexpr kernel::SockoptCalls kRealSockopt{real::setsockopt, real::getsockopt};

// The process's mount table as last read (/proc/self/mountinfo), shared by
// the sending threads.  A new table is published when the text changed; an
// old one is freed once no reader is inside (readers count themselves in
// before loading the pointer, so a count of zero seen after the swap means
// nobody holds the old one).  One reader at a time refreshes, at most once
// a second; the others use what is there.  The retired tables are a plain
// array: a fork in the middle of its update leaves a leak in the child,
// never a table freed twice.
class MountView {
 public:
  NameLookup other_names(int fd, std::string_view path, std::vector<std::string>* out) {
    std::uint64_t id = 0;
    unsigned major = 0, minor = 0;
    if (!kernel::mount_id_of(fd, &id, &major, &minor)) return NameLookup::unknowable;
    const Reading reading(readers_);
    const Snapshot* now = current_.load();
    if (now == nullptr) {
      const int err = read_errno_.load(std::memory_order_relaxed);
      return err == EMFILE || err == ENFILE || err == ENOMEM ? NameLookup::unreadable
                                                             : NameLookup::unknown_mount;
    }
    for (const kernel::Mount& m : now->mounts) {
      if (m.id != id) continue;
      // The path the kernel gave the open file is not under its own mount
      // point (a chroot, a lazily unmounted tree): its names are unknown.
      auto names = kernel::other_names(now->mounts, id, path);
      if (!names) return NameLookup::unknowable;
      *out = std::move(*names);
      return NameLookup::known;
    }
    // Not listed: a mount made since the table was read, or one outside
    // the process's root (the kernel lists only mounts it can reach).  The
    // latter only in a process whose root is not a mount point (a chroot
    // into a plain directory: no mount at "/" in its table), and with no
    // mount of the file's filesystem listed at all; a lazily unmounted
    // tree or another namespace's fd in an unchrooted process stays
    // unknown.
    for (const kernel::Mount& m : now->mounts)
      if ((m.major == major && m.minor == minor) || m.point == "/")
        return NameLookup::unknown_mount;
    return NameLookup::outside_root;
  }

  // `force`: a caller met a mount the table lacks, and waits for a read
  // (another thread's, if one is under way: threads deciding their first
  // files at once all get here; those that skipped a busy lock decided
  // "names unknown", copy: ShimE2E.ParallelConnectionsFromThreads).
  // Otherwise at most once a second, and never waiting.
  bool refresh(bool force) {
    const std::int64_t now = clock_ns(CLOCK_MONOTONIC_COARSE);
    if (force) {
      lock_.lock();
    } else if (now < next_refresh_.load(std::memory_order_relaxed) || !lock_.try_lock()) {
      return false;
    }
    bool changed = false;
    try {
      next_refresh_.store(now + 1'000'000'000, std::memory_order_relaxed);
      std::string text;
      const Snapshot* old = current_.load();
      // No room to retire the old table (readers kept it busy through
      // kRetired changes): keep it, and read again next time.
      const bool read = kernel::read_mountinfo(&text);
      read_errno_.store(read ? 0 : errno, std::memory_order_relaxed);
      if (read && (old == nullptr || old->text != text) && retired_count_ < kRetired) {
        auto* fresh = new Snapshot{kernel::parse_mountinfo(text), std::move(text)};
        // The first table retires nothing: no decision used an older one
        // (decisions that looked for other names waited for this read).
        if (old != nullptr) {
          retired_[retired_count_] = old;
          ++retired_count_;
          changed = true;
        }
        current_.store(fresh);
      }
      if (readers_.load() == 0) {
        const int n = retired_count_;
        retired_count_ = 0;  // first: a fork below leaks, never double-frees
        for (int i = 0; i < n; ++i) delete retired_[i];
      }
    } catch (...) {
      read_errno_.store(ENOMEM, std::memory_order_relaxed);
    }
    lock_.unlock();
    return changed;
  }

 private:
  struct Snapshot {
    std::vector<kernel::Mount> mounts;
    std::string text;
  };
  // Counts a reader in for its lifetime (an exception included).
  class Reading {
   public:
    explicit Reading(std::atomic<int>& readers) noexcept : readers_(readers) {
      readers_.fetch_add(1);
    }
    ~Reading() { readers_.fetch_sub(1); }
    Reading(const Reading&) = delete;
    Reading& operator=(const Reading&) = delete;

   private:
    std::atomic<int>& readers_;
  };
  static constexpr int kRetired = 16;
  std::atomic<const Snapshot*> current_{nullptr};
  std::atomic<int> readers_{0};
  std::atomic<std::int64_t> next_refresh_{0};
  std::atomic<int> read_errno_{0};  // why the last read failed (0: it did not)
  SpinLock lock_;
  const Snapshot* retired_[kRetired] = {};  // under lock_
  int retired_count_ = 0;
};

class LibcKernel final : public KernelPort {
 public:
  // newfstatat(fd, "", AT_EMPTY_PATH): the syscall glibc (2.33+) makes for
  // the server's own fstat(), so that a seccomp allow-list built from
  // what the server calls has it (the fstat syscall, which kernels before
  // 6.11 served without the empty-path lookup, was one the list lacked).
  // Raw, not glibc's fstat: an interposer (libfaketime) would move the
  // times the settle window compares with the kernel's clock.  Twice per
  // zerocopy send.
  int stat_fd(int fd, struct stat* st) noexcept override {
    return syscall(SYS_newfstatat, fd, "", st, AT_EMPTY_PATH) == 0 ? 0 : errno;
  }
  ssize_t fd_path(int fd, char* buf, std::size_t size) noexcept override {
    char link[32];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    const ssize_t n = readlink(link, buf, size);
    return n > 0 && static_cast<std::size_t>(n) < size ? n : -1;
  }
  kernel::TxKind query_tx(int fd, kernel::KeyVersion* version) noexcept override {
    return kernel::query_tx(fd, kRealSockopt, version);
  }
  kernel::TxOffload tx_offload(int fd) noexcept override {
    const int saved = errno;
    const kernel::TxOffload mode = kernel::tx_offload(fd, monotonic_ns());
    errno = saved;
    return mode;
  }
  kernel::FlagState get_zerocopy(int fd) noexcept override {
    return kernel::get_tx_zerocopy(fd, kRealSockopt);
  }
  int set_zerocopy(int fd, bool on) noexcept override {
    return kernel::set_tx_zerocopy(fd, on, kRealSockopt);
  }
  // The kernel's clocks (clock.h), coarse: read from the vDSO, no syscall;
  // a few ms of resolution is plenty for a settle window of seconds.
  std::int64_t realtime_ns() noexcept override { return clock_ns(CLOCK_REALTIME_COARSE); }
  std::int64_t monotonic_ns() noexcept override { return clock_ns(CLOCK_MONOTONIC_COARSE); }
  void peer_name(int fd, char* buf, std::size_t size) noexcept override {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      if (addr.ss_family == AF_INET) {
        const auto* in4 = reinterpret_cast<const sockaddr_in*>(&addr);
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
        port = ntohs(in4->sin_port);
      } else if (addr.ss_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
      }
    }
    std::snprintf(buf, size, addr.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host, port);
  }
  off_t file_position(int fd) noexcept override { return lseek(fd, 0, SEEK_CUR); }
  kernel::KernelIdentity kernel_identity() noexcept override {
    return kernel::read_kernel_identity();
  }
  bool read_offset(const off_t* where, off_t* value) noexcept override {
    // The pointer comes from the application and is only checked by the
    // real sendfile (EFAULT): copy it through the kernel, which fails
    // instead of faulting.
    if (where == nullptr) return false;
    iovec local{value, sizeof *value};
    iovec remote{const_cast<off_t*>(where), sizeof *where};
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) ==
           static_cast<ssize_t>(sizeof *value);
  }
  void shutdown_socket(int fd) noexcept override { shutdown(fd, SHUT_RDWR); }
  bool tcp_progress(int fd, kernel::TcpProgress* out) noexcept override {
    return kernel::tcp_progress(fd, kRealSockopt, out);
  }
  void backtrace(char* buf, std::size_t size) noexcept override { runtime::backtrace(buf, size); }
  NameLookup other_names(int fd, std::string_view path,
                         std::vector<std::string>* out) noexcept override {
    try {
      return mounts_.other_names(fd, path, out);
    } catch (...) {
      return NameLookup::unknowable;
    }
  }
  bool refresh_mounts(bool now) noexcept override { return mounts_.refresh(now); }
  void write_back(int fd) noexcept override {
    const int saved = errno;
    syscall(SYS_sync_file_range, fd, 0, 0,
            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    errno = saved;
  }

 private:
  MountView mounts_;
};

// Constant-initialised (no constructor runs, no guard), never destroyed:
// threads may still send while exit() runs static destructors.
union Holder {
  LibcKernel kernel;
  constexpr Holder() : kernel() {}
  ~Holder() {}
};
Holder g_holder;

}  // namespace

KernelPort& libc_kernel() noexcept { return g_holder.kernel; }

}  // namespace zctls::runtime
