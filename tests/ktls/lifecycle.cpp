// zctls_test_lifecycle: process and fd lifecycle events around kTLS
// sockets, for ShimE2E lifecycle tests.  Like zctls_test_sender it knows
// nothing about zctls; every flag it prints is a raw getsockopt.
//
//   spawn HOW SENDER FIRST SECOND
//                     HOW = fork-exec | posix_spawn | vfork: a child
//                     started that way runs `SENDER inherited` on this
//                     process's kTLS socket (FIRST then SECOND); then this
//                     process sends FIRST then SECOND on it
//   dup2 STATIC PRIVATE
//                     dup2 of one kTLS socket over another, and of a
//                     plain socket over a kTLS one, between sends
//   close-range STATIC PRIVATE
//                     close_range over a kTLS socket whose number a new
//                     kTLS socket then gets; CLOSE_RANGE_CLOEXEC forgets
//                     nothing
//   race SECONDS STATIC
//                     one thread sends on fd number X while another keeps
//                     moving kTLS and plain sockets onto X and closing it;
//                     then X must behave like what it is
//   signal BIG        SIGALRM (no SA_RESTART) interrupts sendfile blocked
//                     on a full socket: once after some bytes (partial
//                     count), once before any (EINTR)
//
// Prints one line per observation and "bytes ok" where the bytes are
// checked; exit status 0 only if all went as the kernel says it should.
#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>

#include "ktls_app.h"

using namespace zctls_ktls_app;

extern char** environ;

namespace {

std::string flag_of(int fd) { return "flag=" + std::to_string(raw_flag(fd)); }

void keep_across_exec(int fd) { fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) & ~FD_CLOEXEC); }

int run_spawn(const std::string& how, const std::string& sender, const std::string& fixed,
              const std::string& other) {
  const k::LoopbackPair pair;
  if (!make_ktls(pair)) return 1;
  keep_across_exec(pair.client());
  keep_across_exec(pair.server());
  std::vector<std::string> args = {
      sender, "inherited", std::to_string(pair.client()), std::to_string(pair.server()),
      fixed,  other};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t child = -1;
  if (how == "posix_spawn") {
    if (posix_spawn(&child, sender.c_str(), nullptr, nullptr, argv.data(), environ) != 0) return 1;
  } else if (how == "vfork") {
    child = vfork();
    if (child == 0) {
      execve(sender.c_str(), argv.data(), environ);
      _exit(127);
    }
  } else {
    std::fflush(stdout);
    child = fork();
    if (child == 0) {
      execve(sender.c_str(), argv.data(), environ);
      _exit(127);
    }
  }
  int status = 0;
  waitpid(child, &status, 0);
  say("child exit=" + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  // The child changed the socket's flag behind this process's back: the
  // same files again, in the same order, must get the same flags.
  Receiver receiver(pair.server(), slurp(fixed) + slurp(other));
  send_file(pair.client(), fixed);
  say("parent " + base(fixed) + " " + flag_of(pair.client()));
  send_file(pair.client(), other);
  say("parent " + base(other) + " " + flag_of(pair.client()));
  const bool same = receiver.compare();
  say(same ? "bytes ok" : "BYTES DIFFER");
  return same && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

int run_dup2(const std::string& fixed, const std::string& other) {
  const k::LoopbackPair a, b, plain;
  if (!make_ktls(a) || !make_ktls(b) || plain.error() != 0) return 1;
  Receiver ra(a.server(), slurp(fixed) + slurp(other));
  Drain db(b.server());
  Receiver rp(plain.server(), slurp(fixed));
  send_file(a.client(), fixed);
  say("a " + base(fixed) + " " + flag_of(a.client()));
  send_file(b.client(), other);
  say("b " + base(other) + " " + flag_of(b.client()));
  // b's number now names a's socket, whose flag is on: sending a file the
  // rules keep off must turn it off, whatever was known about b.
  const int b_fd = dup(b.client());
  dup2(a.client(), b_fd);
  send_file(b_fd, other);
  say("a-via-dup2 " + base(other) + " " + flag_of(b_fd));
  // A plain socket over a kTLS number: a plain send, no SOL_TLS call.
  const int p_fd = dup(b.client());
  dup2(plain.client(), p_fd);
  const bool plain_sent = send_file(p_fd, fixed);
  say(std::string("plain-via-dup2 ") + (plain_sent ? "sent" : "FAILED"));
  close(b_fd);
  close(p_fd);
  shutdown(b.client(), SHUT_WR);
  const bool same = ra.compare() && rp.compare();
  say(same ? "bytes ok" : "BYTES DIFFER");
  return same && plain_sent ? 0 : 1;
}

int run_close_range(const std::string& fixed, const std::string& other) {
  // CLOSE_RANGE_CLOEXEC closes nothing: the socket and what the shim knows
  // of it stay.
  const k::LoopbackPair kept;
  if (!make_ktls(kept)) return 1;
  Receiver rk(kept.server(), slurp(fixed) + slurp(other));
  send_file(kept.client(), fixed);
  close_range(static_cast<unsigned>(kept.client()), static_cast<unsigned>(kept.client()),
              CLOSE_RANGE_CLOEXEC);
  send_file(kept.client(), other);
  say("cloexec " + base(other) + " " + flag_of(kept.client()));
  keep_across_exec(kept.client());

  // A socket whose flag is on, closed by close_range; a new kTLS socket
  // gets its number and must get its own flag (the kernel's default is
  // off), not the old one's.
  int number = -1;
  {
    static auto* old = new k::LoopbackPair;  // static: never freed, never a leak report
    if (!make_ktls(*old)) return 1;
    {
      Receiver r(old->server(), slurp(fixed));
      send_file(old->client(), fixed);
      say("old " + base(fixed) + " " + flag_of(old->client()));
    }
    number = old->client();
    close(old->server());
    close_range(static_cast<unsigned>(number), static_cast<unsigned>(number), 0);
    // The pair's destructor would close the number again: leak the object.
  }
  // The kernel hands the number out again (F_DUPFD, which the shim does
  // not see, as it does not see socket() or accept()).
  const k::LoopbackPair fresh;
  if (!make_ktls(fresh)) return 1;
  const bool got_it = fresh.client() == number;
  const int reused = got_it ? number : fcntl(fresh.client(), F_DUPFD, number);
  say(std::string("same number ") + (reused == number ? "yes" : "no"));
  Receiver rf(fresh.server(), slurp(fixed) + slurp(other));
  send_file(reused, fixed);
  say("new " + base(fixed) + " " + flag_of(reused));
  send_file(reused, other);
  say("new " + base(other) + " " + flag_of(reused));
  if (!got_it) close(reused);
  const bool same = rk.compare() && rf.compare();
  say(same ? "bytes ok" : "BYTES DIFFER");
  return same ? 0 : 1;
}

int run_race(double seconds, const std::string& fixed) {
  const k::LoopbackPair ktls, plain;
  if (!make_ktls(ktls) || plain.error() != 0) return 1;
  Drain dk(ktls.server());
  Drain dp(plain.server());
  const int file = open(fixed.c_str(), O_RDONLY | O_CLOEXEC);
  // One send first: the shim loads its config on the first kTLS send, and
  // an fd it opens for that must not be the number the race below closes
  // and dup2s over (a library's fd is fair game for such an application).
  off_t warm = 0;
  sendfile(ktls.client(), file, &warm, 4096);
  const int number = dup(ktls.client());
  std::atomic<bool> stop{false};
  std::atomic<long> sends{0}, failures{0}, moves{0};
  std::thread sender([&] {
    while (!stop.load()) {
      off_t off = 0;
      const ssize_t n = sendfile(number, file, &off, 4096);
      (n > 0 ? sends : failures).fetch_add(1);
      if (n < 0 && errno != EBADF) {
        say(std::string("unexpected errno ") + strerrorname_np(errno));
        stop.store(true);
      }
    }
  });
  // On one CPU the two threads can fall into lockstep, the sender always
  // running just after close (CI saw 0 sends in 912 tries).  So every 8th
  // move the mover waits until the sender has begun a call after the move:
  // both outcomes then happen on every run, and the other moves still race.
  const auto let_the_sender_in = [&] {
    const long seen = sends.load() + failures.load();
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (!stop.load() && sends.load() + failures.load() < seen + 2 &&
           std::chrono::steady_clock::now() < give_up)
      sched_yield();
  };
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!stop.load() && std::chrono::steady_clock::now() < end) {
    const bool settle = moves.load() % 8 == 0;
    dup2(ktls.client(), number);
    if (settle) let_the_sender_in();
    dup2(plain.client(), number);
    close(number);
    if (settle) let_the_sender_in();
    moves.fetch_add(1);
  }
  stop.store(true);
  sender.join();
  say("race sends>0 " + std::string(sends > 0 ? "yes" : "no") + " EBADF>0 " +
      (failures > 0 ? "yes" : "no") + " moves>0 " + (moves > 0 ? "yes" : "no"));
  std::fprintf(stderr, "race: %ld sends, %ld EBADF, %ld moves\n", sends.load(), failures.load(),
               moves.load());
  // Afterwards the number must behave like what it now is.
  const k::LoopbackPair fresh;
  if (!make_ktls(fresh)) return 1;
  Receiver rf(fresh.server(), slurp(fixed));
  dup2(fresh.client(), number);
  const bool ktls_sent = send_file(number, fixed);
  say("after race kTLS " + std::string(ktls_sent ? "sent " : "FAILED ") + flag_of(number));
  dup2(plain.client(), number);
  const bool plain_sent = send_file(number, fixed);
  say(std::string("after race plain ") + (plain_sent ? "sent" : "FAILED"));
  close(number);
  shutdown(fresh.client(), SHUT_WR);
  const bool same = rf.compare();
  say(same ? "bytes ok" : "BYTES DIFFER");
  for (const int fd : {ktls.client(), plain.client()}) shutdown(fd, SHUT_WR);
  close(file);
  return same && ktls_sent && plain_sent ? 0 : 1;
}

void on_alarm(int) {}

// sendfile of the rest of `file`, with SIGALRM every 300 ms; returns what
// the application sees.
std::string interrupted_send(int sock, int file, off_t* off, off_t size) {
  // Every 300 ms until the call returns: a single signal that arrives
  // before the call blocks (a loaded machine) would leave it blocked for
  // good, since the receiver is not reading.
  itimerval t{};
  t.it_value.tv_usec = 300'000;
  t.it_interval.tv_usec = 300'000;
  setitimer(ITIMER_REAL, &t, nullptr);
  const off_t before = *off;
  const ssize_t rc = sendfile(sock, file, off, static_cast<std::size_t>(size - *off));
  const int err = errno;
  const itimerval off_timer{};
  setitimer(ITIMER_REAL, &off_timer, nullptr);
  const bool consistent = rc < 0 ? *off == before : *off == before + rc;
  return std::string(rc > 0    ? "partial"
                     : rc == 0 ? "zero"
                               : strerrorname_np(err)) +
         " offset-consistent=" + (consistent ? "yes" : "NO");
}

int run_signal(const std::string& big) {
  struct sigaction sa {};
  sa.sa_handler = on_alarm;  // no SA_RESTART: the blocked call returns
  sigaction(SIGALRM, &sa, nullptr);
  const k::LoopbackPair pair;
  if (!make_ktls(pair)) return 1;
  const int file = open(big.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  fstat(file, &st);
  Receiver receiver(pair.server(), slurp(big), /*held=*/true);
  off_t off = 0;
  // Sends until the socket is full, then blocks: the signal ends it with a
  // partial count.
  say("first " + interrupted_send(pair.client(), file, &off, st.st_size));
  // Full from the start: the signal ends it before any byte (EINTR).
  say("second " + interrupted_send(pair.client(), file, &off, st.st_size));
  receiver.go();
  while (off < st.st_size) {
    if (sendfile(pair.client(), file, &off, static_cast<std::size_t>(st.st_size - off)) <= 0 &&
        errno != EINTR)
      break;
  }
  say("rest " + flag_of(pair.client()));
  const bool same = receiver.compare();
  say(same ? "bytes ok" : "BYTES DIFFER");
  close(file);
  return same ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 5 && a[0] == "spawn") return run_spawn(a[1], a[2], a[3], a[4]);
  if (a.size() == 3 && a[0] == "dup2") return run_dup2(a[1], a[2]);
  if (a.size() == 3 && a[0] == "close-range") return run_close_range(a[1], a[2]);
  if (a.size() == 3 && a[0] == "race") return run_race(std::stod(a[1]), a[2]);
  if (a.size() == 2 && a[0] == "signal") return run_signal(a[1]);
  std::fprintf(stderr, "usage: %s spawn|dup2|close-range|race|signal ...\n", argv[0]);
  return 2;
}
