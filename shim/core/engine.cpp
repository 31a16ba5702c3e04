#include "engine.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>
#include <string_view>

#include "log.h"

namespace zctls {
namespace {

// readlink of /proc/self/fd/N appends this to files that have been unlinked.
constexpr std::string_view kDeletedSuffix = " (deleted)";

constexpr std::int64_t kReloadCheckInterval = 1'000'000'000;  // ns

FileKey key_of(const struct stat& st) {
  return {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
          st.st_ctim.tv_sec, st.st_ctim.tv_nsec};
}

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
  } else if (reloader_ != nullptr && reload_due()) {
    if (const Config* fresh = reloader_()) adopt(fresh);
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
    // backs says (issue 18 #6: a stale "flag on" made a zerocopy send go
    // out with the flag off, counted as zerocopy).  Its flag starts off.
    fds_.forget(fd);
    const bool tls = value != nullptr && length >= 3 &&
                     std::memcmp(value, kernel::kTlsUlpName, 3) == 0 &&
                     (length == 3 || static_cast<const char*>(value)[3] == '\0');
    if (tls) fds_.set(fd, FdState{SocketKind::ulp_only});
    return;
  }
  if (what == kernel::AppSockopt::tls_tx_key) {
    // A fresh TX key: the kernel's flag is off unless the application set
    // it earlier (which made the fd app-managed and recorded the value).
    state.kind = SocketKind::ktls_tx;
  } else {
    // The application manages the flag on this socket from now on.  The
    // kernel accepted the value, so it is an unsigned int of 0 or 1.
    unsigned int on = 0;
    if (value != nullptr && length == sizeof on) std::memcpy(&on, value, sizeof on);
    state.app_managed = true;
    state.flag_on = on != 0;
    if (state.kind != SocketKind::ktls_tx) state.kind = SocketKind::ulp_only;
  }
  fds_.set(fd, state);
}

FdState Engine::classify(int fd) noexcept {
  FdState state;
  switch (kernel_.query_tx(fd)) {
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
  fds_.set(fd, state);
  return state;
}

void Engine::before_other_send(int fd) noexcept {
  FdState state = fds_.get(fd);
  if (state.kind == SocketKind::unknown || state.kind == SocketKind::ulp_only)
    state = classify(fd);
  if (state.kind != SocketKind::ktls_tx || state.app_managed || !state.flag_on ||
      kernel_unsupported_.load(std::memory_order_relaxed))
    return;
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
      case Decision::kDefault:
        return Counter::copy_no_rule;
      default:
        return Counter::copy_rule_off;
    }
  }
  // The rules allow it; the file's recent history may not.
  ticket.before = FileSnapshot::of(*st);
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

Decision Engine::rules_decide(int in_fd, const struct stat& st, const Config& config,
                             std::uint32_t generation) noexcept {
  const FileKey key = key_of(st);
  const bool linked = st.st_nlink > 1;
  // by_path: the name the server opened decides, so the decision is per
  // name, not per inode: never cached.
  const bool cacheable = !linked || config.integrity.hard_links == HardLinks::copy;
  if (cacheable) {
    if (const auto cached = decisions_.find(key, generation)) {
      counters().add(Counter::decision_cache_hits);
      return *cached;
    }
  }
  counters().add(Counter::decision_cache_misses);
  Decision decision;  // unknown path: copy
  char why[160] = "";
  try {
    decision = decide_by_names(in_fd, st, config, why, sizeof why);
  } catch (...) {
    decision = Decision{};  // out of memory listing names: copy
  }
  if (cacheable) decisions_.store(key, generation, decision);
  return decision;
}

Decision Engine::decide_by_names(int in_fd, const struct stat& st, const Config& config,
                                 char* why, std::size_t why_size) {
  char path[4096];
  const ssize_t len = kernel_.fd_path(in_fd, path, sizeof path);
  if (len <= 0) return Decision{};
  const std::string_view p(path, static_cast<std::size_t>(len));
  Decision decision;
  // An unlinked file can still change through other open fds and has no
  // path a rule could name; a file with other hard links has names zctls
  // cannot list (a copy rule's among them, maybe).
  if (st.st_nlink == 0 || p.ends_with(kDeletedSuffix)) {
    decision.rule = Decision::kUnlinked;
    std::snprintf(why, why_size, "unlinked");
  } else if (st.st_nlink > 1 && config.integrity.hard_links == HardLinks::copy) {
    decision.rule = Decision::kHardLinks;
    std::snprintf(why, why_size, "%ju hard links", static_cast<std::uintmax_t>(st.st_nlink));
  } else {
    decision = config.decide(p);
    std::snprintf(why, why_size, "%s",
                  decision.rule >= 0
                      ? config.rules[static_cast<std::size_t>(decision.rule)].origin.c_str()
                      : "default");
    // Every other name the file has here (bind mounts, the filesystem
    // mounted twice) must allow it too: the first that says copy decides.
    if (decision.zerocopy) decision = decide_other_names(in_fd, p, config, decision, why, why_size);
  }
  if (log_enabled(LogLevel::debug))
    log(LogLevel::debug, "%.*s: %s (%s)", static_cast<int>(p.size()), p.data(),
        decision.zerocopy ? "zerocopy" : "copy", why);
  return decision;
}

Decision Engine::decide_other_names(int in_fd, std::string_view path, const Config& config,
                                    Decision decision, char* why, std::size_t why_size) {
  // Mounts come and go: the table is read again at a file being decided,
  // at most once a second, and at once for a mount it does not have yet.
  // A changed table retires every decision made with the old one.
  if (kernel_.refresh_mounts(false)) decision_generation_.fetch_add(1, std::memory_order_acq_rel);
  std::vector<std::string> names;
  NameLookup found = kernel_.other_names(in_fd, path, &names);
  if (found == NameLookup::unknown_mount) {
    if (kernel_.refresh_mounts(true)) decision_generation_.fetch_add(1, std::memory_order_acq_rel);
    names.clear();
    found = kernel_.other_names(in_fd, path, &names);
  }
  if (found != NameLookup::known) {
    std::snprintf(why, why_size, "its other names cannot be known");
    return Decision{};
  }
  for (const std::string& name : names) {
    const Decision other = config.decide(name);
    if (other.zerocopy) continue;
    std::snprintf(why, why_size, "also %s: %s", name.c_str(),
                  other.rule >= 0 ? config.rules[static_cast<std::size_t>(other.rule)].origin.c_str()
                                  : "default");
    return other;
  }
  return decision;
}

SendTicket Engine::before_send(int out_fd, int in_fd, const off_t* offset) noexcept {
  SendTicket ticket;
  FdState state = fds_.get(out_fd);
  if (state.kind == SocketKind::unknown || state.kind == SocketKind::ulp_only)
    state = classify(out_fd);
  if (state.kind != SocketKind::ktls_tx) return ticket;
  ticket.counted = true;
  Counters& count = counters();
  if (state.app_managed) {
    count.add(Counter::copy_app_managed);
    return ticket;
  }
  if (kernel_unsupported_.load(std::memory_order_relaxed)) {
    count.add(Counter::copy_kernel_unsupported);
    return ticket;
  }
  std::uint32_t generation = 0;
  const Config* cfg = config(&generation);
  FileStat file(in_fd);
  // First the bytes of an earlier zerocopy send, so that a change found
  // there quarantines the file before this send is decided.
  check_in_flight(out_fd, &file, in_fd, InFlightCheck::sending);
  // No usable config: zerocopy is never turned on (and was never turned on
  // by us, since nothing could decide it).
  const Counter verdict = cfg != nullptr ? zerocopy_verdict(file, in_fd, offset, *cfg, generation, ticket)
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
  // counted) like any zerocopy send.
  if (state.flag_on) {
    ticket.guarded = true;
    ticket.out_fd = out_fd;
    ticket.in_fd = in_fd;
  } else {
    count.add(want ? Counter::copy_kernel_unsupported : verdict);
  }
  return ticket;
}

void Engine::handle_set_failure(int out_fd, int err) noexcept {
  if ((err == ENOPROTOOPT || err == EINVAL) &&
      kernel_.query_tx(out_fd) == kernel::TxKind::ktls_tx) {
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

void Engine::after_send(const SendTicket& ticket, ssize_t result, const off_t* offset) noexcept {
  if (!ticket.counted) return;
  Counters& count = counters();
  const auto sent_bytes = result > 0 ? static_cast<std::uint64_t>(result) : 0;
  count.add(Counter::sends);
  count.add(Counter::bytes, sent_bytes);
  if (!ticket.guarded) return;
  count.add(Counter::zerocopy_sends);
  count.add(Counter::zerocopy_bytes, sent_bytes);
  // A call that moved nothing (EAGAIN on a full queue, an error) put
  // nothing new in flight; an earlier record of the socket stays.
  if (result <= 0) return;
  struct stat st {};
  if (kernel_.stat_fd(ticket.in_fd, &st) != 0) return;
  const FileSnapshot after = FileSnapshot::of(st);
  // Where the send started: sendfile advanced `offset` by `result` bytes.
  // Without an offset pointer the file position would cost an lseek on
  // every send: it is asked only for a log line.
  const long long sent = static_cast<long long>(result);
  const long long start = offset != nullptr ? static_cast<long long>(*offset) - sent : -1;
  if (content_may_have_changed(changed_fields(ticket.before, after))) {
    const long long where =
        start >= 0 ? start : static_cast<long long>(kernel_.file_position(ticket.in_fd)) - sent;
    integrity_event(ticket.out_fd, ticket.in_fd, ticket.before, after, where, sent,
                    "during a zerocopy send", false);
  }
  // Recorded after an event too, with the changed file's snapshot: the
  // socket's next send or its close then finds no change to report again
  // (one write, one event, even when an earlier send's bytes of this file
  // are unacknowledged), and still catches a further one.
  remember_in_flight(ticket, after, start, sent);
}

void Engine::remember_in_flight(const SendTicket& ticket, const FileSnapshot& after,
                                long long offset, long long length) noexcept {
  const std::uint32_t epoch = fds_.pin_epoch(ticket.in_fd);
  const LockedSlot slot(in_flight_, ticket.out_fd);
  // A record of another file on this socket survived this send's check
  // (check_in_flight): its bytes were unacknowledged a moment ago.  Keep
  // it; it is the older risk.
  const bool other_file_in_flight =
      slot->sock == ticket.out_fd && (slot->in_fd != ticket.in_fd || slot->in_epoch != epoch ||
                                      (changed_fields(slot->snapshot, after) & kChangedInode) != 0);
  if (other_file_in_flight) return;
  if (slot->sock < 0) in_flight_count_.fetch_add(1, std::memory_order_relaxed);
  slot->sock = ticket.out_fd;
  slot->in_fd = ticket.in_fd;
  slot->in_epoch = epoch;
  slot->serial = in_flight_serial_.fetch_add(1, std::memory_order_relaxed) + 1;
  slot->snapshot = after;
  slot->end = 0;
  slot->offset = offset;
  slot->length = length;
}

void Engine::drop_in_flight(int sock, std::uint64_t serial) noexcept {
  const LockedSlot slot(in_flight_, sock);
  // Only the record that was checked: another thread may have replaced it.
  if (slot->sock == sock && slot->serial == serial) {
    slot->sock = -1;
    in_flight_count_.fetch_sub(1, std::memory_order_relaxed);
  }
}

void Engine::set_in_flight_end(int sock, std::uint64_t serial, std::uint64_t end) noexcept {
  const LockedSlot slot(in_flight_, sock);
  if (slot->sock == sock && slot->serial == serial && slot->end == 0) slot->end = end;
}

void Engine::check_in_flight(int sock, FileStat* file, int in_fd, InFlightCheck when) noexcept {
  if (in_flight_count_.load(std::memory_order_relaxed) == 0 || sock < 0) return;
  // A copy of the record, so that the checks below run unlocked.
  int rec_fd = -1;
  std::uint32_t rec_epoch = 0;
  std::uint64_t serial = 0, end = 0;
  FileSnapshot before;
  long long offset = 0, length = 0;
  {
    const LockedSlot slot(in_flight_, sock);
    if (slot->sock != sock) return;
    rec_fd = slot->in_fd;
    rec_epoch = slot->in_epoch;
    serial = slot->serial;
    end = slot->end;
    before = slot->snapshot;
    offset = slot->offset;
    length = slot->length;
  }

  // The file fd was closed since (nginx closes it after each response):
  // there is no open file left to check, and no syscall to spend.
  if (fds_.get(rec_fd).epoch != rec_epoch) {
    drop_in_flight(sock, serial);
    return;
  }
  // Whether bytes written up to `end` (or, not known yet, everything
  // written so far) are all acknowledged.
  const auto delivered = [&](bool* known) {
    kernel::TcpProgress progress;
    *known = kernel_.tcp_progress(sock, &progress);
    if (!*known) return true;
    if (end == 0 && progress.acked < progress.written)
      set_in_flight_end(sock, serial, progress.written);
    return progress.acked >= (end != 0 ? end : progress.written);
  };
  bool known = false;
  const struct stat* st = nullptr;
  struct stat own {};
  if (rec_fd == in_fd && file != nullptr) {
    // The same fd sends again (the next chunk of a response): the fstat
    // this send makes for its decision shows any change since the record.
    st = file->get(kernel_);
  } else {
    // Another file, or the close: ask TCP first.
    if (delivered(&known)) {
      drop_in_flight(sock, serial);
      return;
    }
    if (kernel_.stat_fd(rec_fd, &own) == 0) st = &own;
  }
  if (st == nullptr) {
    drop_in_flight(sock, serial);  // nothing left to compare with
    return;
  }
  const FileSnapshot now = FileSnapshot::of(*st);
  const unsigned fields = changed_fields(before, now);
  const bool same_file = (fields & kChangedInode) == 0;
  bool changed = same_file && content_may_have_changed(fields);
  // A change found through the same fd: it matters only if some of the
  // bytes were still unacknowledged (asked only now, when it is rare).  If
  // all were, no byte was at risk, but a file under a zerocopy rule was
  // written between two sends of one response: the operator should know
  // that this "static" tree is not static (a notice, counted apart).
  if (changed && !known && delivered(&known)) {
    drop_in_flight(sock, serial);
    change_between_sends(sock, rec_fd, before, now);
    return;
  }
  if (!same_file || changed || when == InFlightCheck::closing) drop_in_flight(sock, serial);
  if (!changed) return;
  counters().add(Counter::integrity_events_in_flight);
  integrity_event(sock, rec_fd, before, now, offset, length,
                  "after a zerocopy send returned, before its bytes were acknowledged",
                  when == InFlightCheck::closing);
}

Engine::ChangeReport Engine::describe(int sock, int in_fd, const FileSnapshot& before,
                                     const FileSnapshot& after) noexcept {
  ChangeReport r;
  const ssize_t len = kernel_.fd_path(in_fd, r.path, sizeof r.path - 1);
  if (len > 0) r.path[len] = '\0';
  kernel_.peer_name(sock, r.peer, sizeof r.peer);
  describe_changes(changed_fields(before, after), r.fields, sizeof r.fields);
  return r;
}

void Engine::change_between_sends(int sock, int in_fd, const FileSnapshot& before,
                                  const FileSnapshot& after) noexcept {
  counters().add(Counter::changes_between_sends);
  if (!log_enabled(LogLevel::notice)) return;
  const ChangeReport r = describe(sock, in_fd, before, after);
  log(LogLevel::notice,
      "integrity: %s changed between two zerocopy sends (fd %d, peer %s, changed: %s); every "
      "byte sent before was acknowledged: none at risk; a file under a zerocopy rule is being "
      "written",
      r.path, sock, r.peer, r.fields);
}

void Engine::integrity_event(int sock, int in_fd, const FileSnapshot& before,
                             const FileSnapshot& after, long long offset, long long length,
                             const char* when, bool closing) noexcept {
  counters().add(Counter::integrity_events);
  const Config* cfg = config_.load(std::memory_order_acquire);
  const OnChange action = cfg != nullptr ? cfg->integrity.on_change : OnChange::log;
  // Keep the inode out of zerocopy until it is stable again, whatever else
  // the policy does: it is being written to.
  if (action != OnChange::log) quarantine_.add(after, kernel_.monotonic_ns());
  if (action == OnChange::abort) {
    kernel_.shutdown_socket(sock);
    counters().add(Counter::aborts);
  }
  if (!log_enabled(LogLevel::warn)) return;
  const ChangeReport r = describe(sock, in_fd, before, after);
  log(LogLevel::warn,
      "integrity: %s changed %s (fd %d, peer %s, offset %lld, length %lld, changed: %s); "
      "action: %s",
      r.path, when, sock, r.peer, offset, length, r.fields, to_string(action).data());
  // Not from close(), which must stay async-signal-safe: the first
  // backtrace dlopens libunwind.
  if (!closing && log_enabled(LogLevel::debug)) {
    char stack[900];
    kernel_.backtrace(stack, sizeof stack);
    log(LogLevel::debug, "integrity: sent from %s", stack);
  }
}

}  // namespace zctls
