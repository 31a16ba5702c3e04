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
//
// Exit status 0 only if all went as the kernel says it should.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>

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
    if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
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
  if (!make_ktls(*pair)) return 1;
  if (onto_fd_2(*pair) != 2) return 1;
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
    say("syslog: stderr note " + yes(logged.find("stderr (fd 2) is a socket") != std::string::npos) +
        ", config error " + yes(logged.find("cannot open") != std::string::npos));
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

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 3 && a[0] == "fork-storm") return run_fork_storm(std::stoi(a[1]), a[2]);
  if (a.size() == 3 && a[0] == "log-into-socket") return run_log_into_socket(a[1], a[2]);
  std::fprintf(stderr, "usage: %s fork-storm|log-into-socket ...\n", argv[0]);
  return 2;
}
