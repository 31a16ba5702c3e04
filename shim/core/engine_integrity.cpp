// The engine's integrity guard around zerocopy sends: the check after each
// send, the in-flight record of bytes not yet acknowledged, and the events
// and notices they raise (ARCHITECTURE.md, "The path of one send", 7-8).
#include <cstdio>

#include "engine.h"
#include "log.h"

namespace zctls {

void Engine::after_send(const SendTicket& ticket, ssize_t result, const off_t* offset) noexcept {
  if (!ticket.counted()) return;
  // Every count of one send in one place, into one block: sends = zerocopy
  // sends + the copy reasons, bytes = zerocopy bytes + copy bytes.
  Counters& count = counters();
  const auto sent_bytes = result > 0 ? static_cast<std::uint64_t>(result) : 0;
  count.add(Counter::sends);
  count.add(Counter::bytes, sent_bytes);
  if (ticket.on_app_socket()) {
    if (ticket.origin == SendOrigin::app_first) count.add(Counter::app_flag_sockets);
    count.add(Counter::app_flag_sends);
  }
  if (!ticket.zerocopy()) {
    count.add(ticket.reason);
    count.add(Counter::copy_bytes, sent_bytes);
    return;
  }
  count.add(Counter::zerocopy_sends);
  count.add(Counter::zerocopy_bytes, sent_bytes);
  if (ticket.reason == Counter::app_zerocopy_sends) {
    count.add(Counter::app_zerocopy_sends);
    count.add(Counter::app_zerocopy_bytes, sent_bytes);
  }
  // A call that moved nothing (EAGAIN on a full queue, an error) put
  // nothing new in flight; an earlier record of the socket stays.
  if (result <= 0 || !ticket.checked) return;
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
  const std::uint32_t sock_epoch = fds_.pin_epoch(ticket.out_fd);
  const LockedSlot slot(in_flight_, ticket.out_fd);
  // A record of another file on this socket survived this send's check
  // (check_in_flight): its bytes were unacknowledged a moment ago.  Keep
  // it; it is the older risk.  (A record of an earlier socket on this
  // number is void.)
  const bool other_file_in_flight = slot->sock == ticket.out_fd && slot->sock_epoch == sock_epoch &&
                                    (slot->in_fd != ticket.in_fd || slot->in_epoch != epoch ||
                                     (changed_fields(slot->snapshot, after) & kChangedInode) != 0);
  if (other_file_in_flight) return;
  if (slot->sock < 0) in_flight_count_.fetch_add(1, std::memory_order_relaxed);
  slot->sock = ticket.out_fd;
  slot->sock_epoch = sock_epoch;
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
  std::uint32_t rec_epoch = 0, sock_epoch = 0;
  std::uint64_t serial = 0, end = 0;
  FileSnapshot before;
  long long offset = 0, length = 0;
  {
    const LockedSlot slot(in_flight_, sock);
    if (slot->sock != sock) return;
    rec_fd = slot->in_fd;
    rec_epoch = slot->in_epoch;
    sock_epoch = slot->sock_epoch;
    serial = slot->serial;
    end = slot->end;
    before = slot->snapshot;
    offset = slot->offset;
    length = slot->length;
  }

  // The file fd was closed since (nginx closes it after each response):
  // there is no open file left to check, and no syscall to spend.  Or the
  // socket was: dup2'd over or closed by close_range/closefrom, which
  // forget without looking; this number is another connection now.
  if (fds_.get(rec_fd).epoch != rec_epoch || fds_.get(sock).epoch != sock_epoch) {
    drop_in_flight(sock, serial);
    return;
  }
  // Whether bytes written up to `end` (or, not known yet, everything
  // written so far) are all acknowledged.
  bool retransmitted = false;
  const auto delivered = [&](bool* known) {
    kernel::TcpProgress progress;
    *known = kernel_.tcp_progress(sock, &progress);
    if (!*known) return true;
    retransmitted = progress.retransmitted != 0;
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
  // A change found through the same fd (the next chunk of a response):
  // asked only now, when it is rare, whether some of the bytes were still
  // unacknowledged.  If all were acknowledged and the connection never
  // sent a byte twice, each byte went out once and no retransmission can
  // have carried changed bytes: not at risk, but a file under a zerocopy
  // rule was written between two sends of one response, and the operator
  // should know that this "static" tree is not static (a notice, counted
  // apart).  If it did retransmit, the acknowledgement says nothing about
  // when: a retransmission after the change read the new bytes from the
  // page (what the emulated offload NIC showed with nginx, whose next
  // chunk comes only after the stall's bytes are acknowledged).  The
  // connection's count is since it began: an older retransmission makes
  // this an event too (the safe side).
  bool after_ack = false;
  if (changed && !known && delivered(&known)) {
    if (!retransmitted) {
      drop_in_flight(sock, serial);
      change_between_sends(sock, rec_fd, before, now);
      return;
    }
    after_ack = true;
  }
  if (!same_file || changed || when == InFlightCheck::closing) drop_in_flight(sock, serial);
  if (!changed) return;
  counters().add(Counter::integrity_events_in_flight);
  integrity_event(sock, rec_fd, before, now, offset, length,
                  after_ack ? "after a zerocopy send returned, on a connection that has "
                              "retransmitted (its bytes are acknowledged now, maybe after "
                              "a retransmission carried the change)"
                            : "after a zerocopy send returned, before its bytes were acknowledged",
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
      "byte sent before was acknowledged and none sent twice: none at risk; a file under a "
      "zerocopy rule is being written",
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
