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
#include <string>
#include <string_view>
#include <vector>

#include "decision_cache.h"
#include "fd_table.h"
#include "fork_safe.h"
#include "integrity.h"
#include "zctls/config.h"
#include "kernel/kernel_quirks.h"
#include "kernel/ktls.h"
#include "zctls/stats.h"
#include "kernel/tx_offload.h"

namespace zctls {

// What KernelPort::other_names found.
enum class NameLookup {
  known,          // every other name is listed (possibly none)
  unknown_mount,  // the file's mount is not in the table read last
  unknowable,     // no mount id (statx) or no mount table: assume the worst
  unreadable,     // no mount table could be read for want of fds or memory:
                  // asked again at the file's next send
  outside_root,   // neither the file's mount nor any other of its filesystem
                  // is in the table: the process's root (a chroot into a
                  // plain directory) hides them, and no other name of the
                  // file can be opened from here (known, with no names, once
                  // a fresh table says the same)
};

class KernelPort {
 public:
  virtual int stat_fd(int fd, struct stat* st) noexcept = 0;  // 0 or an errno value
  // The path of an open file (readlink of /proc/self/fd/N): its length, or
  // -1 if unknown or longer than `size`.
  virtual ssize_t fd_path(int fd, char* buf, std::size_t size) noexcept = 0;
  // Whether fd is a kTLS TX socket (kernel::query_tx), and its key's TLS
  // version when it is.
  virtual kernel::TxKind query_tx(int fd, kernel::KeyVersion* version) noexcept = 0;
  // A kTLS TX socket's mode, asked once per socket under offload = "auto"
  // (kernel/tx_offload.h): software, device, or unknown (treated as device).
  virtual kernel::TxOffload tx_offload(int fd) noexcept = 0;
  virtual kernel::FlagState get_zerocopy(int fd) noexcept = 0;
  virtual int set_zerocopy(int fd, bool on) noexcept = 0;  // 0 or an errno value
  virtual std::int64_t realtime_ns() noexcept = 0;         // file timestamps' clock
  virtual std::int64_t monotonic_ns() noexcept = 0;        // for durations
  // The connection's peer as "address:port" for log lines ("?" if unknown).
  virtual void peer_name(int fd, char* buf, std::size_t size) noexcept = 0;
  virtual off_t file_position(int fd) noexcept = 0;  // lseek(fd, 0, SEEK_CUR)
  virtual void shutdown_socket(int fd) noexcept = 0;
  // The calling thread's stack as "f1 <- f2 <- ...", for debug logs of
  // integrity events: which code path sent the file.
  virtual void backtrace(char* buf, std::size_t size) noexcept = 0;
  virtual bool tcp_progress(int fd, kernel::TcpProgress* out) noexcept = 0;
  virtual kernel::KernelIdentity kernel_identity() noexcept = 0;
  // Reads the application's sendfile offset without trusting the pointer:
  // false if it cannot be read (the real call will then fail with EFAULT).
  virtual bool read_offset(const off_t* where, off_t* value) noexcept = 0;
  // The other names (kernel/mounts.h) of the open file `fd`, reached as
  // `path`, under the other mounts of its filesystem in this process's
  // mount namespace, from the mount table as last read.
  virtual NameLookup other_names(int fd, std::string_view path,
                                 std::vector<std::string>* out) noexcept = 0;
  // sync_file_range of the whole file: its dirty pages written back
  // ([integrity] writeback).
  virtual void write_back(int fd) noexcept = 0;
  // Reads the mount table again, at most once a second unless `now`
  // (else does nothing): whether it changed.
  virtual bool refresh_mounts(bool now) noexcept = 0;

 protected:
  ~KernelPort() = default;
};

// Loads the config the first time a kTLS TX socket sends (so a process that
// never uses kTLS never reads it).  Returns nullptr for "pass everything
// through" (no config, or a broken one); must have logged why.
using ConfigLoader = const Config* (*)();
// Called at most once a second from the send path: a new config if the
// file changed and parses, else nullptr (a broken one is logged and the
// current config stays).  Configs are never freed: a thread may still be
// deciding with the previous one.
using ConfigReloader = const Config* (*)();

// Who decided how a send goes.
enum class SendOrigin : std::uint8_t {
  not_ktls,   // not a kTLS TX socket: nothing to count or check
  zctls,      // the rules (or, without a config, pass-through)
  app,        // a socket whose flag the application set
  app_first,  // the same, and that socket's first send
};

// What before_send learned, for after_send: who decided, how the send goes
// and why, and the file as it was just before.
struct SendTicket {
  SendOrigin origin = SendOrigin::not_ktls;
  // Counter::zerocopy_sends: the flag is on for this send;
  // Counter::app_zerocopy_sends: on as the application set it (app_flag =
  // respect); else the copy reason.
  Counter reason = Counter::copy_no_config;
  bool checked = false;  // `before` holds the file: compare it after the send
  int out_fd = -1, in_fd = -1;
  FileSnapshot before;

  bool counted() const noexcept { return origin != SendOrigin::not_ktls; }
  bool zerocopy() const noexcept {
    return reason == Counter::zerocopy_sends || reason == Counter::app_zerocopy_sends;
  }
  bool on_app_socket() const noexcept {
    return origin == SendOrigin::app || origin == SendOrigin::app_first;
  }
};

class Engine {
 public:
  Engine(KernelPort& kernel, ConfigLoader loader, ConfigReloader reloader = nullptr) noexcept
      : kernel_(kernel), loader_(loader), reloader_(reloader) {}

  // The application's own successful setsockopt (seen by the hook).
  void after_app_setsockopt(int fd, int level, int optname, const void* value,
                            socklen_t length) noexcept;
  // Just before the application closes fd: last chance to see whether a
  // file changed while bytes sent from it were still unacknowledged.
  void before_close(int fd) noexcept { check_in_flight(fd, nullptr, -1, InFlightCheck::closing); }
  void after_close(int fd) noexcept { fds_.forget(fd); }
  // The fd's close epoch now, for after_close_since: a close that another
  // thread's new socket on the same number overtook must not forget it.
  std::uint32_t close_epoch(int fd) const noexcept { return fds_.get(fd).epoch; }
  void after_close_since(int fd, std::uint32_t epoch) noexcept { fds_.forget_if(fd, epoch); }
  void after_close_range(unsigned first, unsigned last) noexcept { fds_.forget_range(first, last); }
  // dup2/dup3: `newfd` now names another file; learn it again when used.
  // The same for any fd number that now names something new (accept,
  // socket, SCM_RIGHTS, dup, fcntl F_DUPFD, fclose...).
  void after_dup(int newfd) noexcept { fds_.forget(newfd); }
  void forget(int fd) noexcept { fds_.forget(fd); }
  // Whether any fd in [first, last] is a kTLS socket: what a child sharing
  // this memory (vfork) must not make the engine forget.
  bool holds_tls_in(unsigned first, unsigned last) const noexcept {
    return fds_.any_tls_in(first, last);
  }

  // Just before data reaches fd by a path other than sendfile (splice from
  // a pipe): zctls cannot know which file the data came from, so a kTLS TX
  // socket whose flag zctls left on gets it turned off.
  void before_other_send(int fd) noexcept;

  // Called just before the real sendfile(out_fd, in_fd, offset, ...).  Sets
  // or clears the flag on out_fd if, and only if, it must change.  Never
  // fails: anything unexpected leaves the socket as it was.  `offset` is
  // the application's pointer, unchecked (may be null or invalid).
  SendTicket before_send(int out_fd, int in_fd, const off_t* offset) noexcept;
  // Called after it with its result: a zerocopy send whose file changed
  // meanwhile is an integrity event.  `offset` is sendfile's offset
  // argument (only read if the call succeeded: then it is valid).
  void after_send(const SendTicket& ticket, ssize_t result, const off_t* offset) noexcept;

  // A socket classified as not kTLS (plain TCP, a pipe, a file): sends on
  // it need nothing from the engine.  (Sockets get in-flight records only
  // while they are kTLS TX, and lose them when closed.)
  bool known_plain(int fd) const noexcept { return fds_.get(fd).kind == SocketKind::not_ktls; }

  // For tests and diagnostics.
  FdState fd_state(int fd) const noexcept { return fds_.get(fd); }
  bool kernel_unsupported() const noexcept { return kernel_unsupported_.load(); }
  // Page size zerocopy offsets must be aligned to (kernel bug guard), or 0.
  std::size_t quirk_alignment() const noexcept { return quirk_alignment_.load(); }
  // The counters: in process memory until the runtime shares them
  // (use_counters, before the first one is counted).
  Counters& counters() noexcept { return *counters_.load(std::memory_order_relaxed); }
  std::uint64_t count(Counter c) const noexcept {
    return counters_.load(std::memory_order_relaxed)->get(c);
  }
  void use_counters(Counters* shared) noexcept { counters_.store(shared); }
  // Whether the first config load has happened (its result may be "pass
  // through", nullptr).
  bool config_loaded() const noexcept { return config_loaded_.load(std::memory_order_acquire); }
  // The config in force (nullptr before the first load or when passing
  // through), and the engine's clock, for the runtime's periodic work.
  const Config* current_config() const noexcept { return config_.load(std::memory_order_acquire); }
  // Bumped by every config and mount-table change: decisions are cached
  // under it.
  std::uint32_t decision_generation() const noexcept {
    return decision_generation_.load(std::memory_order_acquire);
  }

 private:
  // fstat(in_fd) at most once per send, shared by the in-flight check of
  // the same file and the decision.
  class FileStat {
   public:
    explicit FileStat(int fd) noexcept : fd_(fd) {}
    const struct stat* get(KernelPort& kernel) noexcept {
      if (!fetched_) ok_ = kernel.stat_fd(fd_, &st_) == 0, fetched_ = true;
      return ok_ ? &st_ : nullptr;
    }

   private:
    int fd_;
    bool fetched_ = false, ok_ = false;
    struct stat st_ {};
  };

  FdState classify(int fd) noexcept;
  // A kTLS TX socket met for the first time (its TX key, or a send on a
  // socket keyed out of sight): loads the config, counts it.
  void count_new_tx_socket() noexcept;
  // Learns a kTLS TX socket's TX mode (once per socket) under `config`'s
  // [kernel] offload, counting the software ones.
  void learn_tx_mode(int fd, FdState& state, const Config& config) noexcept;
  // Whether this kernel gives only TLS 1.2 keys device offload
  // (kernel::device_offload_is_tls12_only), learnt once.
  bool tls13_stays_software() noexcept;
  // Counter::zerocopy_sends for "zerocopy", else the copy reason.
  Counter zerocopy_verdict(FileStat& file, int in_fd, const off_t* offset, const Config& config,
                           std::uint32_t generation, SendTicket& ticket) noexcept;
  bool offset_is_safe(int in_fd, const off_t* offset) noexcept;
  void adopt_kernel_quirks(const Config* config) noexcept;
  // The rules' decision for the file open as in_fd: cached per inode and
  // decision generation, else decide_by_names.
  Decision rules_decide(int in_fd, const struct stat& st, const Config& config,
                        std::uint32_t generation) noexcept;
  // By every name the file has: the opened one (readlink), its link count,
  // and its other mounts.  `why` gets the reason for the debug log.  May
  // throw std::bad_alloc.
  // `passing`: set when the answer is a copy for want of fds or memory,
  // which must not be cached.
  // `name`: the hash of the path decided for (DecisionCache::name_hash).
  Decision decide_by_names(int in_fd, const struct stat& st, const Config& config, char* why,
                           std::size_t why_size, bool* passing, std::uint32_t* name);
  // Whether a cached decision's path is still in_fd's (and no mount came or
  // went): if so, its check time moves to now_s.  One readlink; the mount
  // table is read at most once a second.
  bool same_names(int in_fd, const DecisionCache::Found& cached, std::uint32_t now_s) noexcept;
  Decision decide_other_names(int in_fd, std::string_view path, const Config& config,
                              Decision decision, char* why, std::size_t why_size, bool* passing);
  bool reload_due() noexcept;
  void handle_set_failure(int out_fd, int err) noexcept;
  // A send on a socket whose flag the application set: counted once per
  // socket, said once per process.  Under app_flag = respect, fills the
  // ticket (the application's zerocopy sends are checked like zctls's) and
  // returns true: nothing else to decide.
  bool app_flag_send(int out_fd, int in_fd, FdState& state, const Config* cfg,
                     SendTicket& ticket) noexcept;
  // An integrity event on socket `sock` for the file open as `in_fd`;
  // `closing`: reported from inside close() (async-signal-safe: no
  // backtrace, no allocation).
  void integrity_event(int sock, int in_fd, const FileSnapshot& before, const FileSnapshot& after,
                       long long offset, long long length, const char* when, bool closing) noexcept;
  // What a log line about a changed file names: its path, the peer, and
  // the fields that changed.  Fixed buffers: no allocation (close()).
  struct ChangeReport {
    char path[4096] = "?";
    char peer[64] = "";
    char fields[48] = "";
  };
  ChangeReport describe(int sock, int in_fd, const FileSnapshot& before,
                        const FileSnapshot& after) noexcept;
  // A file under a zerocopy rule changed between two sends of one
  // response, with every byte before acknowledged: a notice, no action.
  void change_between_sends(int sock, int in_fd, const FileSnapshot& before,
                            const FileSnapshot& after) noexcept;
  void remember_in_flight(const SendTicket& ticket, const FileSnapshot& after, long long offset,
                          long long length) noexcept;
  // Looks at the socket's in-flight record before a send of `file` (or, with
  // closing, before the socket's close).  At a send the record stays while
  // its bytes may be unacknowledged and the file is unchanged (that send
  // may move nothing: EAGAIN, or go by copy); at close it goes either way.
  enum class InFlightCheck { sending, closing };
  void check_in_flight(int sock, FileStat* file, int in_fd, InFlightCheck when) noexcept;
  void drop_in_flight(int sock, std::uint64_t serial) noexcept;
  void set_in_flight_end(int sock, std::uint64_t serial, std::uint64_t end) noexcept;
  // The config in force (loading or reloading it when due), and with it
  // the decision generation to cache under.
  const Config* config(std::uint32_t* generation = nullptr) noexcept;
  void adopt(const Config* config) noexcept;

  KernelPort& kernel_;
  ConfigLoader loader_;
  ConfigReloader reloader_;
  std::atomic<std::int64_t> next_reload_check_{0};
  FdTable fds_;
  DecisionCache decisions_;
  std::atomic<const Config*> config_{nullptr};
  std::atomic<std::uint32_t> decision_generation_{0};
  // The first load: one thread loads, the others wait (fork_safe.h).
  SpinLock config_lock_;
  SpinLock reload_lock_;  // one reload at a time (try_lock: the others go on)
  std::atomic<bool> config_loaded_{false};
  std::atomic<bool> kernel_unsupported_{false};
  std::atomic<bool> app_flag_said_{false};  // the app_flag log line, once per process
  // Consecutive confirmed refusals of the flag (handle_set_failure).
  static constexpr int kUnsupportedStrikes = 3;
  std::atomic<int> unsupported_strikes_{0};
  std::atomic<std::size_t> quirk_alignment_{0};
  std::atomic<int> tls13_software_{-1};  // tls13_stays_software: -1 not asked yet
  Counters local_counters_;
  std::atomic<Counters*> counters_{&local_counters_};
  Quarantine quarantine_;

  // The last zerocopy send of each socket, kept without asking the kernel
  // anything until the socket's next send or close looks at it:
  //  - the file fd was closed since (its epoch moved): dropped, no syscall;
  //  - the next send is of the same fd: its fstat, which the decision needs
  //    anyway, is compared with the record;
  //  - another file, or the close: TCP_INFO first (all acknowledged: drop),
  //    then an fstat of the recorded fd.
  // A newer zerocopy send of the same file replaces it; one of another file
  // does not while the older bytes are unacknowledged.  Direct-mapped by fd
  // number (a collision forgets the older record); each slot has its own
  // spinlock, taken only when records exist.
  struct InFlight {
    SpinLock lock;
    int sock = -1;
    int in_fd = -1;
    std::uint32_t in_epoch = 0;    // in_fd's FdTable epoch when recorded
    std::uint32_t sock_epoch = 0;  // sock's: a record of a socket closed
                                   // without close() (dup2, closefrom) is void
    std::uint64_t serial = 0;      // tells this record from a later one in the slot
    FileSnapshot snapshot;
    // TCP bytes written when its bytes were all written: 0 until a check
    // first asks TCP_INFO, then the bytes written by then (an upper bound).
    std::uint64_t end = 0;
    long long offset = 0, length = 0;  // offset -1: unknown (file position)
  };
  static constexpr int kInFlightSlots = 1024;
  InFlight in_flight_[kInFlightSlots];
  // The slot of `sock`, its spinlock held for the guard's lifetime.
  class LockedSlot {
   public:
    LockedSlot(InFlight* slots, int sock) noexcept : slot_(slots[sock & (kInFlightSlots - 1)]) {
      slot_.lock.lock();
    }
    ~LockedSlot() { slot_.lock.unlock(); }
    LockedSlot(const LockedSlot&) = delete;
    LockedSlot& operator=(const LockedSlot&) = delete;
    InFlight* operator->() const noexcept { return &slot_; }

   private:
    InFlight& slot_;
  };
  std::atomic<int> in_flight_count_{0};
  std::atomic<std::uint64_t> in_flight_serial_{0};
};

}  // namespace zctls
