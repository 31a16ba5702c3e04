// The engine's send path: classifying sockets, the config in force, and
// the flag before each send.  (engine_names.cpp: the per-file decision;
// engine_integrity.cpp: the checks around zerocopy sends.)
#include "engine.h"

#include <cerrno>
#include <cstring>

#include "log.h"

namespace zctls {
namespace {

constexpr std::int64_t kReloadCheckInterval = 1'000'000'000;  // ns

}  // namespace

bool Engine::reload_due() noexcept {
  // Per send: a relaxed load and a coarse clock read (vDSO, no syscall);
  // a CAS once a second.
  std::int64_t next = next_reload_check_.load(std::memory_order_relaxed);
  const std::int64_t now = kernel_.monotonic_ns();
  if (now < next) return false;
  return next_reload_check_.compare_exchange_strong(next, now + kReloadCheckInterval,
                                                    std::memory_order_relaxed);
}

const Config* Engine::config(std::uint32_t* generation) noexcept {
  if (!config_loaded_.load(std::memory_order_acquire)) {
    // The first load (a few milliseconds, once per process): the other
    // threads wait, so that no send goes out undecided.  A child forked
    // while another thread was loading loads again (fork_safe.h).
    const SpinGuard guard(config_lock_);
    if (!config_loaded_.load(std::memory_order_acquire)) {
      const Config* loaded = loader_();
      next_reload_check_.store(kernel_.monotonic_ns() + kReloadCheckInterval,
                               std::memory_order_relaxed);
      adopt(loaded);
      config_loaded_.store(true, std::memory_order_release);
    }
  } else if (reloader_ != nullptr && reload_due() && reload_lock_.try_lock()) {
    // One reload at a time: one slower than the 1 s interval must not meet
    // the next in the config source.
    if (const Config* fresh = reloader_()) adopt(fresh);
    reload_lock_.unlock();
  }
  // The generation first, then the config: a config published after it
  // was read is newer, and a decision it makes is stored under an older
  // generation, where it is never served (adopt() stores, then bumps).
  if (generation != nullptr) *generation = decision_generation_.load(std::memory_order_acquire);
  return config_.load(std::memory_order_acquire);
}

void Engine::adopt(const Config* config) noexcept {
  adopt_kernel_quirks(config);
  config_.store(config, std::memory_order_release);
  decision_generation_.fetch_add(1, std::memory_order_acq_rel);
}

void Engine::adopt_kernel_quirks(const Config* config) noexcept {
  if (config == nullptr) return;
  const KernelQuirks mode = config->integrity.kernel_quirks;
  if (mode == KernelQuirks::off) {
    quirk_alignment_.store(0);
    return;
  }
  const kernel::KernelIdentity identity = kernel_.kernel_identity();
  try {
    const kernel::QuirkVerdict verdict = kernel::unaligned_zerocopy_bug(identity);
    const bool guard = mode == KernelQuirks::on || verdict.status != kernel::QuirkStatus::fixed;
    quirk_alignment_.store(guard ? identity.page_size : 0);
    log(guard ? LogLevel::info : LogLevel::debug,
        "kernel quirks (%s): unaligned-offset zerocopy corruption: %s; %s", to_string(mode).data(),
        verdict.reason.c_str(),
        guard ? "zerocopy only from page-aligned file offsets" : "no guard needed");
  } catch (...) {
    quirk_alignment_.store(identity.page_size);  // out of memory: stay on the safe side
  }
}

void Engine::after_app_setsockopt(int fd, int level, int optname, const void* value,
                                  socklen_t length) noexcept {
  const kernel::AppSockopt what = kernel::classify_sockopt(level, optname);
  if (what == kernel::AppSockopt::other) return;
  FdState state = fds_.get(fd);
  if (what == kernel::AppSockopt::ulp) {
    // The kernel takes one ULP per socket: this is a fresh socket on this
    // number, whatever an entry left by an fd closed behind the hooks'
    // backs says (a stale "flag on" would make a zerocopy send go out with
    // the flag off, counted as zerocopy).  Its flag starts off.
    fds_.forget(fd);
    const bool tls = value != nullptr && length >= 3 &&
                     std::memcmp(value, kernel::kTlsUlpName, 3) == 0 &&
                     (length == 3 || static_cast<const char*>(value)[3] == '\0');
    if (tls) fds_.set(fd, FdState{SocketKind::ulp_only});
    return;
  }
  bool new_tx_socket = false;
  if (what == kernel::AppSockopt::tls_tx_key) {
    // A fresh TX key: the kernel's flag is off unless the application set
    // it earlier (which made the fd app-managed and recorded the value).
    // A second key on a kTLS TX socket is a TLS 1.3 rekey, not a socket.
    new_tx_socket = state.kind != SocketKind::ktls_tx;
    state.kind = SocketKind::ktls_tx;
    state.tx_version = kernel::key_version(value, length);
  } else {
    // The application manages the flag on this socket from now on.  The
    // kernel accepted the value, so it is an unsigned int of 0 or 1.
    unsigned int on = 0;
    if (value != nullptr && length == sizeof on) std::memcpy(&on, value, sizeof on);
    state.app_managed = true;
    state.flag_on = on != 0;
    if (state.kind != SocketKind::ktls_tx) state.kind = SocketKind::ulp_only;
  }
  if (fds_.set(fd, state) && new_tx_socket) count_new_tx_socket();
}

void Engine::count_new_tx_socket() noexcept {
  // The config first (it says where counters go), here at the
  // TX key rather than at the first send, so that a process whose kTLS
  // sockets never send a file (generated or proxied responses only) still has
  // a stats file that says so.
  config();
  counters().add(Counter::ktls_tx_sockets);
}

FdState Engine::classify(int fd) noexcept {
  FdState state;
  // A ULP-only socket whose flag the application already set stays the
  // application's when its TX key turns up (installed out of our sight).
  // Still ULP-only, it keeps the value the application set, which the TX
  // key's hook then trusts (a send before the key must not reset it to
  // off while the kernel has it on).
  if (const FdState known = fds_.get(fd); known.kind == SocketKind::ulp_only) {
    state.app_managed = known.app_managed;
    state.app_counted = known.app_counted;
    state.flag_on = known.app_managed && known.flag_on;
  }
  switch (kernel_.query_tx(fd, &state.tx_version)) {
    case kernel::TxKind::not_ktls:
      state.kind = SocketKind::not_ktls;
      break;
    case kernel::TxKind::ulp_without_tx:
      state.kind = SocketKind::ulp_only;
      break;
    case kernel::TxKind::ktls_tx: {
      // A kTLS socket we did not see being set up: inherited across exec,
      // received over SCM_RIGHTS, or another fd number (dup, dup2) of a
      // socket whose flag this process set.  Its flag is read, and the rules
      // decide from now on: whoever turned it on (most likely zctls, in this
      // process or a parent) cannot be told apart, and a flag left on for a
      // file the rules send by copy is the unsafe way to be wrong.  Only a
      // setsockopt of the flag seen in this process makes it app-managed.
      state.kind = SocketKind::ktls_tx;
      const kernel::FlagState flag = kernel_.get_zerocopy(fd);
      state.flag_on = flag.error == 0 && flag.on;
      break;
    }
  }
  // (Counted once: only a tracked fd keeps its kind, and so is never
  // classified again until it is closed.)
  if (fds_.set(fd, state) && state.kind == SocketKind::ktls_tx) count_new_tx_socket();
  return state;
}

bool Engine::tls13_stays_software() noexcept {
  int known = tls13_software_.load(std::memory_order_relaxed);
  if (known < 0) {
    known = kernel::device_offload_is_tls12_only(kernel_.kernel_identity()) ? 1 : 0;
    tls13_software_.store(known, std::memory_order_relaxed);
  }
  return known == 1;
}

void Engine::learn_tx_mode(int fd, FdState& state, const Config& config) noexcept {
  state.tx_mode_known = true;
  if (config.kernel.offload == Offload::automatic) {
    if (state.tx_version == kernel::KeyVersion::tls13 && tls13_stays_software()) {
      // Decided by the key alone, before any query: device offload takes
      // TLS 1.2 keys only, on every kernel up to 7.3.
      state.software_tx = true;
      counters().add(Counter::software_tls13_sockets);
    } else {
      state.software_tx = kernel_.tx_offload(fd) == kernel::TxOffload::software;
    }
  }
  if (state.software_tx) counters().add(Counter::software_tx_sockets);
  fds_.set(fd, state);
}

void Engine::before_other_send(int fd) noexcept {
  FdState state = fds_.get(fd);
  if (state.kind == SocketKind::unknown || state.kind == SocketKind::ulp_only) state = classify(fd);
  if (state.kind != SocketKind::ktls_tx || !state.flag_on || state.software_tx ||
      kernel_unsupported_.load(std::memory_order_relaxed))
    return;
  // The config before anything is counted, and it says whether
  // an application's flag is ours to turn off.
  const Config* cfg = config();
  if (state.app_managed && (cfg == nullptr || cfg->app_flag == AppFlag::respect)) return;
  // Whatever reaches the socket this way, zctls cannot tell which file its
  // pages came from: the safe answer is copy.
  const int err = kernel_.set_zerocopy(fd, false);
  if (err == 0) {
    state.flag_on = false;
    fds_.set(fd, state);
    counters().add(Counter::flag_off_other_sends);
  } else {
    handle_set_failure(fd, err);
  }
}

Counter Engine::zerocopy_verdict(FileStat& file, int in_fd, const off_t* offset,
                                 const Config& config, std::uint32_t generation,
                                 SendTicket& ticket) noexcept {
  const struct stat* st = file.get(kernel_);
  if (st == nullptr || !S_ISREG(st->st_mode)) return Counter::copy_rule_off;
  const Decision decision = rules_decide(in_fd, *st, config, generation);
  if (!decision.zerocopy) {
    switch (decision.rule) {
      case Decision::kUnlinked:
        return Counter::copy_unlinked;
      case Decision::kHardLinks:
        return Counter::copy_hard_links;
      case Decision::kNamesUnknown:
        return Counter::copy_names_unknown;
      case Decision::kDefault:
        return Counter::copy_no_rule;
      default:
        return Counter::copy_rule_off;
    }
  }
  // The rules allow it; the file's recent history may not.
  ticket.before = FileSnapshot::of(*st);
  ticket.checked = true;
  const IntegrityConfig& policy = config.integrity;
  // (The clock is read only when some inode is quarantined.)
  if (quarantine_.size() > 0 &&
      quarantine_.holds(ticket.before, kernel_.monotonic_ns(), policy.quarantine_ns))
    return Counter::copy_quarantine;
  if (within_settle(ticket.before, kernel_.realtime_ns(), policy.settle_ns))
    return Counter::copy_settle;
  if (!offset_is_safe(in_fd, offset)) return Counter::copy_kernel_quirk;
  // Clean pages: a store through a shared mapping during or after the send
  // must fault, which moves mtime where the checks look.
  if (policy.writeback) kernel_.write_back(in_fd);
  return Counter::zerocopy_sends;
}

bool Engine::offset_is_safe(int in_fd, const off_t* offset) noexcept {
  const std::size_t alignment = quirk_alignment_.load(std::memory_order_relaxed);
  if (alignment == 0) return true;
  // The bug corrupts records cut from a page that a send starts in the
  // middle of; a send from a page boundary cuts records at page boundaries
  // (16 KiB records, 4 KiB pages).  Copy the unaligned ones rather than
  // split them: a split would change the counts the application sees.
  off_t start = 0;
  if (offset != nullptr) {
    if (!kernel_.read_offset(offset, &start)) return false;
  } else {
    start = kernel_.file_position(in_fd);
  }
  return start >= 0 && static_cast<std::size_t>(start) % alignment == 0;
}

SendTicket Engine::before_send(int out_fd, int in_fd, const off_t* offset) noexcept {
  SendTicket ticket;
  FdState state = fds_.get(out_fd);
  if (state.kind == SocketKind::unknown || state.kind == SocketKind::ulp_only)
    state = classify(out_fd);
  if (state.kind != SocketKind::ktls_tx) return ticket;
  ticket.origin = SendOrigin::zctls;
  // The config first, whatever this send turns out to be: its first load
  // moves the counters to the stats file [stats] names (a first send
  // counted before that would land in private memory, or in a file the
  // config did not ask for).  after_send counts the send, by the ticket.
  std::uint32_t generation = 0;
  const Config* cfg = config(&generation);
  if (!state.file_sent) {
    state.file_sent = true;
    // Marked by one atomic OR: of two threads making a socket's first send
    // at once, one counts it.
    if (fds_.mark_file_sent(out_fd)) counters().add(Counter::ktls_tx_file_sockets);
  }
  if (cfg != nullptr && !state.tx_mode_known) learn_tx_mode(out_fd, state, *cfg);
  if (state.software_tx) {
    // Software kTLS: the kernel copies whatever the flag says, so there is
    // nothing to set and nothing to check; counted, and that is all (an
    // application's flag too: counted as its socket, not said).
    ticket.reason = Counter::copy_software_ktls;
    if (state.app_managed) {
      ticket.origin = SendOrigin::app;
      if (!state.app_counted) {
        state.app_counted = true;
        fds_.set(out_fd, state);
        ticket.origin = SendOrigin::app_first;
      }
    }
    return ticket;
  }
  if (state.app_managed && app_flag_send(out_fd, in_fd, state, cfg, ticket)) return ticket;
  if (kernel_unsupported_.load(std::memory_order_relaxed)) {
    ticket.reason = Counter::copy_kernel_unsupported;
    return ticket;
  }
  FileStat file(in_fd);
  // First the bytes of an earlier zerocopy send, so that a change found
  // there quarantines the file before this send is decided.
  check_in_flight(out_fd, &file, in_fd, InFlightCheck::sending);
  // No usable config: zerocopy is never turned on (and was never turned on
  // by us, since nothing could decide it).
  const Counter verdict = cfg != nullptr
                              ? zerocopy_verdict(file, in_fd, offset, *cfg, generation, ticket)
                              : Counter::copy_no_config;
  const bool want = verdict == Counter::zerocopy_sends;
  if (want != state.flag_on) {
    const int err = kernel_.set_zerocopy(out_fd, want);
    if (err == 0) {
      state.flag_on = want;
      fds_.set(out_fd, state);
      unsupported_strikes_.store(0, std::memory_order_relaxed);
    } else {
      if (!want)
        log(LogLevel::warn,
            "fd %d: could not turn zerocopy off (%s): this send of a file the rules send by "
            "copy goes zerocopy, and is checked like one",
            out_fd, strerrorname_np(err));
      handle_set_failure(out_fd, err);
    }
  }
  // The flag, not the wish, says how the kernel sends: a flag that could
  // not be turned off still sends zerocopy, so the file is watched (and
  // counted) like any zerocopy send, against the file as it is now (the
  // rules took no snapshot of a copy-rule file; the fstat is the one
  // already made).
  if (state.flag_on) {
    ticket.reason = Counter::zerocopy_sends;
    ticket.out_fd = out_fd;
    ticket.in_fd = in_fd;
    if (!ticket.checked) {
      if (const struct stat* st = file.get(kernel_)) {
        ticket.before = FileSnapshot::of(*st);
        ticket.checked = true;
      }
    }
  } else {
    ticket.reason = want ? Counter::copy_kernel_unsupported : verdict;
  }
  return ticket;
}

bool Engine::app_flag_send(int out_fd, int in_fd, FdState& state, const Config* cfg,
                           SendTicket& ticket) noexcept {
  ticket.origin = SendOrigin::app;
  const AppFlag mode = cfg != nullptr ? cfg->app_flag : AppFlag::respect;
  if (!state.app_counted) {
    state.app_counted = true;
    fds_.set(out_fd, state);
    ticket.origin = SendOrigin::app_first;
    // A warning where the rules do not reach those sockets (respect, or no
    // config): files under copy rules go zerocopy there.
    if (!app_flag_said_.exchange(true, std::memory_order_relaxed))
      log(mode == AppFlag::govern ? LogLevel::notice : LogLevel::warn,
          "fd %d: the application sets TLS_TX_ZEROCOPY_RO itself (%s; OpenSSL's "
          "KTLSTxZerocopySendfile option does so on every connection); app_flag = \"%s\": %s",
          out_fd, state.flag_on ? "on" : "off", to_string(mode).data(),
          cfg == nullptr ? "no config, its sends go as it set them, unchecked"
          : mode == AppFlag::govern
              ? "the rules decide the flag before each send on such sockets"
              : "its sends go as it set them, zerocopy ones checked for changes");
  }
  if (cfg != nullptr && mode == AppFlag::govern) return false;  // the rules decide
  if (!state.flag_on) {
    ticket.reason = Counter::copy_app_managed;
    return true;
  }
  // The application's zerocopy send: the same checks as zctls's own (the
  // kernel sends it the same way).  Quarantine cannot stop it (the flag is
  // the application's), abort can.  Without a config nothing is checked.
  ticket.reason = Counter::app_zerocopy_sends;
  ticket.out_fd = out_fd;
  ticket.in_fd = in_fd;
  if (cfg == nullptr) return true;
  FileStat file(in_fd);
  check_in_flight(out_fd, &file, in_fd, InFlightCheck::sending);
  if (const struct stat* st = file.get(kernel_)) {
    ticket.before = FileSnapshot::of(*st);
    ticket.checked = true;
  }
  return true;
}

void Engine::handle_set_failure(int out_fd, int err) noexcept {
  if ((err == ENOPROTOOPT || err == EINVAL) &&
      kernel_.query_tx(out_fd, nullptr) == kernel::TxKind::ktls_tx) {
    // A kTLS socket (checked again: our state could be stale if the fd was
    // closed behind our back) that refuses the option: a kernel before 5.19.
    // Unless another thread moved a plain socket onto the number between
    // the set and the check and back (Lifecycle.ThreadsRacing... caught it
    // switching the whole process off): only a few refusals in a row, with
    // no success between them, stop zctls for the process.
    if (unsupported_strikes_.fetch_add(1, std::memory_order_relaxed) + 1 >= kUnsupportedStrikes &&
        !kernel_unsupported_.exchange(true))
      log(LogLevel::warn,
          "this kernel does not support TLS_TX_ZEROCOPY_RO (%s; Linux 5.19+ does); "
          "zctls passes everything through in this process",
          strerrorname_np(err));
  } else {
    // EBADF, ENOTCONN, or not a kTLS socket after all: the fd went away or
    // changed under us; learn it again on its next send.
    fds_.forget(out_fd);
  }
}

}  // namespace zctls
