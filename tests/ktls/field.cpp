// zctls_test_field: the inputs with which real deployments broke zctls
// (issue 18), one scenario each, for the regression tests in
// field_e2e_test.cpp.  Like the other kTLS test programs it knows nothing
// about zctls: it prints what the kernel and its peers say.
//
//   fork-storm N FILE   one thread loops sendfile(sock, FILE, 4096) while
//                       the main thread forks N children that each
//                       close(sock) and _exit(0); a child alive after 10 s
//                       is stuck
//   log-into-socket config FILE
//   log-into-socket integrity BIG
//                       a daemon's kTLS socket on fd 2, and a syslog of its
//                       own on /dev/log (a private mount namespace): the
//                       shim's config error (config: ZCTLS_CONFIG names a
//                       missing file) or integrity warning (integrity: BIG
//                       changes during a blocked send) must reach syslog,
//                       and not one byte of it the peer
//   stale-fd CLOSE PLACE STATIC PRIVATE
//                       a kTLS socket sends a file (STATIC for PLACE moved
//                       and setup, PRIVATE for received: the flag zctls
//                       remembers is then the wrong one for what comes
//                       next); CLOSE closes it: closefrom, fclose (of a
//                       stream fdopened on it) or raw (the close syscall,
//                       which no hook sees); then PLACE puts another socket
//                       on its number:
//                         moved     a kTLS socket (flag off) moved there by
//                                   the dup3 syscall, then sends STATIC
//                         received  a kTLS socket whose flag another
//                                   process under zctls left on, received
//                                   over SCM_RIGHTS, then sends PRIVATE
//                         setup     a plain TCP socket moved there by the
//                                   dup3 syscall, made kTLS with setsockopt
//                                   on that number, then sends STATIC
//                       prints "same number yes", "flag=N" (raw getsockopt
//                       after the send) and "bytes ok"
//   splice STATIC PRIVATE
//                       sendfile STATIC (zerocopy), then PRIVATE through a
//                       pipe with splice(2) into the same kTLS socket:
//                       prints the flag after each
//   names hardlink STATIC LINK
//                       LINK is made a hard link of STATIC; both names are
//                       sent on one connection: prints each one's flag
//   names bind STATIC_DIR MIRROR
//                       in a mount namespace of its own: STATIC_DIR/a.bin
//                       is sent; STATIC_DIR is bind-mounted at MIRROR (an
//                       empty directory); after a second, STATIC_DIR/b.bin
//                       and a.bin again: prints each one's flag
//   send-unlinked FILE  a copy of FILE beside it, opened, unlinked, sent:
//                       prints its flag (issue 22: a process whose first
//                       send is of an unlinked file)
//   mmap-store DIR      the premise of [integrity] writeback, on DIR's
//                       filesystem: a store through a shared mapping into a
//                       page already dirty moves no timestamp, and after
//                       sync_file_range one does: exit 0 if both hold, 77
//                       on a filesystem without page_mkwrite (tmpfs), else
//                       1.  Needs no kTLS.
//   cancel              a thread blocked in each hooked cancellation point
//                       (accept, accept4, recvmsg, recvmmsg, splice, fcntl
//                       F_SETLKW) is
//                       cancelled with pthread_cancel: prints
//                       "NAME cancelled" for each: the hook keeps the call
//                       a cancellation point and lets the unwinding through
//                       (libeatmydata's rule).  Needs no kTLS.
//
// Exit status 0 only if all went as the kernel says it should.
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>

#include "ktls_app.h"

using namespace zctls_ktls_app;

namespace {

int run_fork_storm(int children, const std::string& file) {
  const k::LoopbackPair pair;
  if (!make_ktls(pair)) return 1;
  Drain drain(pair.server());
  const int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  std::atomic<bool> stop{false};
  std::atomic<long> sends{0};
  std::thread sender([&] {
    while (!stop.load()) {
      off_t off = 0;
      if (sendfile(pair.client(), fd, &off, 4096) > 0) sends.fetch_add(1);
    }
  });
  while (sends.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  int stuck = 0, failed = 0;
  for (int i = 0; i < children; ++i) {
    const pid_t pid = fork();
    if (pid == 0) {
      close(pair.client());
      _exit(0);
    }
    int status = 0;
    bool done = false;
    for (int ms = 0; ms < 10'000 && !done; ++ms) {
      done = waitpid(pid, &status, WNOHANG) == pid;
      if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (!done) {
      ++stuck;
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ++failed;
    }
  }
  stop.store(true);
  sender.join();
  shutdown(pair.client(), SHUT_WR);
  std::fprintf(stderr, "fork-storm: %ld sends, %s\n", sends.load(), drain.finish().c_str());
  say("children " + std::to_string(children) + " stuck " + std::to_string(stuck) + " failed " +
      std::to_string(failed));
  close(fd);
  return stuck == 0 && failed == 0 ? 0 : 1;
}

// A syslog of this process's own: /dev/log in a private mount namespace.
class PrivateSyslog {
 public:
  PrivateSyslog() {
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        mount("tmpfs", "/dev", "tmpfs", 0, "mode=0755") != 0) {
      say(std::string("no private /dev: ") + strerrorname_np(errno));
      return;
    }
    sock_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, "/dev/log");
    if (bind(sock_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      say(std::string("cannot bind /dev/log: ") + strerrorname_np(errno));
      close(sock_);
      sock_ = -1;
    }
  }
  ~PrivateSyslog() {
    if (sock_ >= 0) close(sock_);
  }
  bool ok() const { return sock_ >= 0; }
  // Every message received so far, one per line.
  std::string messages() {
    std::string all;
    char buf[2048];
    for (ssize_t n; (n = recv(sock_, buf, sizeof buf, MSG_DONTWAIT)) > 0;)
      all.append(buf, static_cast<std::size_t>(n)).push_back('\n');
    return all;
  }

 private:
  int sock_ = -1;
};

// Moves the kTLS sender of `pair` to fd 2, as a daemon that closed its
// standard fds gets it: the lowest free number.
int onto_fd_2(const k::LoopbackPair& pair) {
  close(2);
  const int fd = fcntl(pair.client(), F_DUPFD_CLOEXEC, 2);
  return fd;
}

std::string yes(bool b) { return b ? "yes" : "no"; }

int run_log_into_socket(const std::string& what, const std::string& file) {
  PrivateSyslog syslog;
  if (!syslog.ok()) return 1;
  static auto* pair = new k::LoopbackPair;  // never closed twice: its client moves to fd 2
  // On fd 2 before its keys, as a daemon's accepted socket is from the
  // start: the config is read at the TX key, and its error must not go
  // into the stream either.
  if (onto_fd_2(*pair) != 2) return 1;
  if (!make_ktls(*pair)) return 1;
  const std::string bytes = slurp(file);
  const int fd = open(file.c_str(), O_RDWR | O_CLOEXEC);
  if (what == "config") {
    Receiver receiver(pair->server(), bytes);
    off_t off = 0;
    while (off < static_cast<off_t>(bytes.size()))
      if (sendfile(2, fd, &off, bytes.size() - static_cast<std::size_t>(off)) <= 0) break;
    close(2);
    const bool same = receiver.compare();
    say("peer got exactly the file: " + yes(same));
    const std::string logged = syslog.messages();
    say("syslog: stderr note " +
        yes(logged.find("stderr (fd 2) is a socket") != std::string::npos) + ", config error " +
        yes(logged.find("cannot open") != std::string::npos));
    close(fd);
    return same ? 0 : 1;
  }
  // integrity: the file changes while a blocking send of it waits for the
  // peer (which does not read yet): the shim reports it when the send
  // returns, and fd 2 is the socket that send was on.
  std::string got;
  ssize_t sent = -1;
  std::thread sender([&] {
    off_t off = 0;
    sent = sendfile(2, fd, &off, bytes.size());
  });
  wait_until_blocked(2);
  const char byte = 'c';
  pwrite(fd, &byte, 1, 1 << 20);
  {
    Drain drain(pair->server());
    sender.join();
    shutdown(2, SHUT_WR);  // the peer's EOF (a close alone may not send it promptly)
    close(2);
    got = drain.finish();
  }
  const bool same = got == "recv=" + std::to_string(sent) + " rx=EOF";
  say("peer got exactly what was sent: " + yes(same) +
      (same ? "" : " (sent " + std::to_string(sent) + ", " + got + ")"));
  const std::string logged = syslog.messages();
  say("syslog: stderr note " + yes(logged.find("stderr (fd 2) is a socket") != std::string::npos) +
      ", integrity " + yes(logged.find("integrity: " + file + " changed") != std::string::npos));
  close(fd);
  return same ? 0 : 1;
}

// Sends all of `path` on `sock` with sendfile; the bytes go to `peer`,
// which a Receiver checks.
bool send_and_check(int sock, int peer, const std::string& path) {
  Receiver receiver(peer, slurp(path));
  send_file(sock, path);
  return receiver.compare();
}

// Occupies every free fd number below `number` (which is open), so that
// once it is closed the kernel hands out exactly `number` next.
void fill_gaps_below(int number) {
  for (;;) {
    const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd > number) {
      close(fd);
      return;
    }
  }
}

// Another process under zctls makes a kTLS pair, sends STATIC on it (its
// shim turns the flag on and leaves it on), and passes both ends over
// `channel` (a socketpair: the child sends on [0], this process receives
// on [1]).  Returns the client end as received here (the lowest free
// number), or -1; `*peer` gets the server end.
int receive_flagged_socket(const int channel[2], const std::string& fixed, int* peer) {
  std::fflush(stdout);
  const pid_t child = fork();
  if (child == 0) {
    const k::LoopbackPair pair;
    if (!make_ktls(pair) || !send_and_check(pair.client(), pair.server(), fixed)) _exit(1);
    int fds[2] = {pair.client(), pair.server()};
    char data = 'x';
    iovec iov{&data, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof fds)] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof fds);
    std::memcpy(CMSG_DATA(c), fds, sizeof fds);
    _exit(sendmsg(channel[0], &msg, 0) == 1 ? 0 : 1);
  }
  char data = 0;
  iovec iov{&data, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  const ssize_t got = recvmsg(channel[1], &msg, 0);
  int status = 0;
  waitpid(child, &status, 0);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (got != 1 || c == nullptr || c->cmsg_type != SCM_RIGHTS || status != 0) return -1;
  int fds[2];
  std::memcpy(fds, CMSG_DATA(c), sizeof fds);
  *peer = fds[1];
  return fds[0];
}

int run_stale_fd(const std::string& how, const std::string& place, const std::string& fixed,
                 const std::string& other) {
  int channel[2] = {-1, -1};
  if (place == "received" && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, channel) != 0)
    return 1;
  // The new socket, made first so that its fds sit below the old one's
  // number (closefrom closes everything from that number up).
  static auto* fresh = new k::LoopbackPair;  // never destroyed: see onto_fd_2
  if (place == "moved" && !make_ktls(*fresh)) return 1;
  // The old socket, and what zctls learns of it.
  static auto* old = new k::LoopbackPair;
  if (!make_ktls(*old)) return 1;
  const bool sent =
      send_and_check(old->client(), old->server(), place == "received" ? other : fixed);
  const int number = old->client();
  fill_gaps_below(number);
  if (how == "closefrom") {
    closefrom(number);  // the old server end too, if above
  } else if (how == "fclose") {
    std::fclose(fdopen(number, "r+"));
  } else {
    syscall(SYS_close, number);
  }
  // The new socket on the same number.
  int sock = -1, peer = fresh->server();
  if (place == "received") {
    sock = receive_flagged_socket(channel, fixed, &peer);
  } else {
    sock = static_cast<int>(syscall(SYS_dup3, fresh->client(), number, 0));
  }
  if (place == "setup") {
    const int errs[] = {
        k::attach_tls_ulp(sock),
        k::install_key(sock, k::Direction::tx, k::TlsVersion::tls13, k::Cipher::aes_gcm_128, key()),
        k::attach_tls_ulp(peer),
        k::install_key(peer, k::Direction::rx, k::TlsVersion::tls13, k::Cipher::aes_gcm_128,
                       key())};
    for (const int e : errs)
      if (e != 0) return 1;
  }
  say(std::string("same number ") + (sock == number ? "yes" : "no"));
  const bool same = send_and_check(sock, peer, place == "received" ? other : fixed);
  say("flag=" + std::to_string(raw_flag(sock)));
  say(sent && same ? "bytes ok" : "BYTES DIFFER");
  return sent && same && sock == number ? 0 : 1;
}

int run_splice(const std::string& fixed, const std::string& other) {
  const k::LoopbackPair pair;
  if (!make_ktls(pair)) return 1;
  Receiver receiver(pair.server(), slurp(fixed) + slurp(other));
  send_file(pair.client(), fixed);
  say("sendfile " + base(fixed) + " flag=" + std::to_string(raw_flag(pair.client())));
  int pipefd[2];
  if (pipe(pipefd) != 0) return 1;
  const int file = open(other.c_str(), O_RDONLY | O_CLOEXEC);
  const std::size_t size = slurp(other).size();
  std::size_t moved = 0;
  while (moved < size) {
    const ssize_t in = splice(file, nullptr, pipefd[1], nullptr, size - moved, 0);
    if (in <= 0) break;
    for (ssize_t out = 0; out < in;) {
      const ssize_t n =
          splice(pipefd[0], nullptr, pair.client(), nullptr, static_cast<std::size_t>(in - out), 0);
      if (n <= 0) return 1;
      out += n;
    }
    moved += static_cast<std::size_t>(in);
  }
  say("splice " + base(other) + " flag=" + std::to_string(raw_flag(pair.client())));
  const bool same = receiver.compare();
  say(same ? "bytes ok" : "BYTES DIFFER");
  close(file);
  return same ? 0 : 1;
}

int run_names(const std::string& how, const std::string& a, const std::string& b) {
  const k::LoopbackPair pair;
  if (!make_ktls(pair)) return 1;
  std::vector<std::string> sends;
  if (how == "hardlink") {
    if (link(a.c_str(), b.c_str()) != 0) return 1;
    sends = {a, b};
  } else {
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      return 1;
    sends = {a + "/a.bin", a + "/b.bin", a + "/a.bin"};
  }
  std::string all;
  for (const auto& f : sends) all += slurp(f);
  Receiver receiver(pair.server(), all);
  for (std::size_t i = 0; i < sends.size(); ++i) {
    if (how == "bind" && i == 1) {
      if (mount(a.c_str(), b.c_str(), nullptr, MS_BIND, nullptr) != 0) return 1;
      // zctls reads the mount table again at most once a second, at a file
      // it has not decided yet.
      std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    }
    send_file(pair.client(), sends[i]);
    say(base(sends[i]) + " flag=" + std::to_string(raw_flag(pair.client())));
  }
  const bool same = receiver.compare();
  say(same ? "bytes ok" : "BYTES DIFFER");
  return same ? 0 : 1;
}

int run_send_unlinked(const std::string& file) {
  const k::LoopbackPair pair;
  if (!make_ktls(pair)) return 1;
  const std::string copy = file + ".unlinked";
  const std::string bytes = slurp(file);
  {
    std::ofstream out(copy, std::ios::binary);
    out << bytes;
  }
  const int fd = open(copy.c_str(), O_RDONLY | O_CLOEXEC);
  unlink(copy.c_str());
  Receiver receiver(pair.server(), bytes);
  off_t off = 0;
  while (off < static_cast<off_t>(bytes.size()))
    if (sendfile(pair.client(), fd, &off, bytes.size() - static_cast<std::size_t>(off)) <= 0) break;
  say("unlinked flag=" + std::to_string(raw_flag(pair.client())));
  const bool same = receiver.compare();
  say(same ? "bytes ok" : "BYTES DIFFER");
  close(fd);
  return same ? 0 : 1;
}

int run_mmap_store(const std::string& dir) {
  const std::string path = dir + "/zctls-mmap-store.bin";
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  unlink(path.c_str());
  if (fd < 0 || ftruncate(fd, 65536) != 0 || fsync(fd) != 0) return 1;
  auto* page = static_cast<char*>(mmap(nullptr, 65536, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  if (page == MAP_FAILED) return 1;
  const auto mtime = [&] {
    struct stat st {};
    fstat(fd, &st);
    return st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec;
  };
  const auto later = [] { std::this_thread::sleep_for(std::chrono::milliseconds(30)); };
  page[0] = 1;  // a clean page: the fault moves mtime
  const long long first = mtime();
  later();
  page[1] = 2;  // the page is dirty now: nothing moves
  const long long dirty = mtime();
  syscall(SYS_sync_file_range, fd, 0, 0,
          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
  later();
  page[2] = 3;  // clean again
  const long long cleaned = mtime();
  munmap(page, 65536);
  close(fd);
  struct statfs fs {};
  statfs(dir.c_str(), &fs);
  say("store into a dirty page moves mtime: " + yes(dirty != first));
  say("after writeback, a store moves mtime: " + yes(cleaned != dirty));
  if (cleaned == dirty) {
    std::fprintf(stderr, "filesystem type 0x%lx has no page_mkwrite time update\n",
                 static_cast<unsigned long>(fs.f_type));
    return 77;
  }
  return dirty == first ? 0 : 1;
}

void* run_blocking(void* arg) {
  (*static_cast<std::function<void()>*>(arg))();
  return nullptr;
}

int run_cancel() {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listener, 1) != 0)
    return 1;
  int pair[2], pipefd[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair) != 0 || pipe(pipefd) != 0) return 1;
  const int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
  // fcntl(F_SETLKW) blocks on a lock another process holds.
  char lock_path[] = "/tmp/zctls-cancel-XXXXXX";
  const int locked = mkstemp(lock_path);
  unlink(lock_path);
  const pid_t holder = fork();
  if (holder == 0) {
    struct flock lock {};
    lock.l_type = F_WRLCK;
    fcntl(locked, F_SETLK, &lock);
    pause();
    _exit(0);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const std::vector<std::pair<std::string, std::function<void()>>> cases = {
      {"accept", [&] { accept(listener, nullptr, nullptr); }},
      {"accept4", [&] { accept4(listener, nullptr, nullptr, 0); }},
      {"recvmsg",
       [&] {
         char b;
         iovec iov{&b, 1};
         msghdr m{};
         m.msg_iov = &iov;
         m.msg_iovlen = 1;
         recvmsg(pair[0], &m, 0);
       }},
      {"recvmmsg",
       [&] {
         char b;
         iovec iov{&b, 1};
         mmsghdr m{};
         m.msg_hdr.msg_iov = &iov;
         m.msg_hdr.msg_iovlen = 1;
         recvmmsg(pair[0], &m, 1, 0, nullptr);
       }},
      {"splice", [&] { splice(pipefd[0], nullptr, out, nullptr, 4096, 0); }},
      {"fcntl F_SETLKW",
       [&] {
         struct flock lock {};
         lock.l_type = F_WRLCK;
         fcntl(locked, F_SETLKW, &lock);
       }},
  };
  int failures = 0;
  for (const auto& [name, block] : cases) {
    pthread_t t;
    auto fn = block;
    pthread_create(&t, nullptr, run_blocking, &fn);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    pthread_cancel(t);
    void* result = nullptr;
    pthread_join(t, &result);
    const bool cancelled = result == PTHREAD_CANCELED;
    failures += cancelled ? 0 : 1;
    say(name + (cancelled ? " cancelled" : " NOT CANCELLED"));
  }
  kill(holder, SIGKILL);
  waitpid(holder, nullptr, 0);
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 3 && a[0] == "fork-storm") return run_fork_storm(std::stoi(a[1]), a[2]);
  if (a.size() == 3 && a[0] == "log-into-socket") return run_log_into_socket(a[1], a[2]);
  if (a.size() == 5 && a[0] == "stale-fd") return run_stale_fd(a[1], a[2], a[3], a[4]);
  if (a.size() == 3 && a[0] == "splice") return run_splice(a[1], a[2]);
  if (a.size() == 1 && a[0] == "cancel") return run_cancel();
  if (a.size() == 2 && a[0] == "mmap-store") return run_mmap_store(a[1]);
  if (a.size() == 2 && a[0] == "send-unlinked") return run_send_unlinked(a[1]);
  if (a.size() == 4 && a[0] == "names") return run_names(a[1], a[2], a[3]);
  std::fprintf(
      stderr,
      "usage: %s fork-storm|log-into-socket|stale-fd|splice|cancel|names|mmap-store|send-unlinked "
      "...\n",
      argv[0]);
  return 2;
}
