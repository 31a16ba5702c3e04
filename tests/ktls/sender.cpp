// zctls_test_sender: a small kTLS application for the shim's end-to-end
// tests.  It knows nothing about zctls: the tests run it with and without
// libzctls.so preloaded and watch it from outside (strace) and from inside
// (it reads TLS_TX_ZEROCOPY_RO with a raw getsockopt after each send).
//
//   raw FILE...           one kTLS connection (raw setsockopt setup), each
//                         FILE sent with sendfile; prints "FILE flag=N"
//   raw64 FILE...         the same with sendfile64
//   fork FILE...          the parent sends FILEs, then a forked child sends
//                         them again in reverse order on the same socket
//   openssl FILE...       the same through OpenSSL (kTLS on, SSL_sendfile)
//   threads N FILE...     N raw connections in parallel threads
//   reuse FILE            close a kTLS socket, get its number back as a
//                         plain TCP socket, sendfile FILE on it
//   exec FILE...          set kTLS up, then exec this program, which sends
//                         FILEs on the inherited socket ("inherited" mode)
//   modify N FILE         N trials: an in-place write during a blocked send
//   truncate FILE         ftruncate during a blocked send
//   deploy FILE           rename a new file over FILE between sends
//   settle SEC FILE       rewrite FILE, send it, wait SEC, send again
//   quarantine SEC FILE   change FILE during a send, send again now and
//                         after SEC
//   abort FILE            send FILE in two halves, changing it during the
//                         first
//   inflight FILE         a non-blocking send returns with bytes unacked;
//                         the file changes; the socket is closed
//   inflight-acked FILE   the same, but the peer read and ACKed everything
//   plain N FILE          plain TCP (no kTLS): FILE sent N times
//   appflag FILE...       the application sets the flag itself, then sends
//   errors FILE           failing sendfiles: prints return values and errno
//   hold SEC FILE...      like raw, then keeps the connection open SEC
//                         seconds after printing "holding" (for zctls status)
//   repeat SEC FILE [STOP]
//                         one connection, FILE sent again and again for SEC
//                         seconds, or until the file STOP exists (SEC then
//                         only bounds it); prints "first send done", then
//                         at the end "flags=" and each send's flag
//   offsets FILE AT...    one connection, 50000 bytes of FILE sent from each
//                         AT: "N" passes offset N, "@N" seeks to N and
//                         passes a null offset; prints "AT flag=N"
//
// Every mode checks that the receiver got exactly the files' bytes and
// prints "bytes ok" or "BYTES DIFFER"; exit status 0 only if all is well.
#include <fcntl.h>
#include <linux/sockios.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ktls_app.h"
#include "openssl_send.h"
#include "tls_sockets.h"
#include "kernel/ktls.h"
#include "kernel/loopback.h"
#include "zctls/stats.h"

namespace k = zctls::kernel;
using namespace zctls_ktls_app;

namespace {

// hold > 0: keep the connection open that many seconds after saying
// "holding" (for zctls status).
int run_raw(const std::vector<std::string>& files, const std::string& tag = "", double hold = 0) {
  const TestPair pair;
  if (!make_ktls(pair)) return 1;
  std::string all;
  for (const auto& f : files) all += slurp(f);
  Receiver receiver(pair.server(), all);
  bool ok = true;
  for (const auto& f : files) {
    ok = send_file(pair.client(), f) && ok;
    say(tag + base(f) + " flag=" + std::to_string(raw_flag(pair.client())));
  }
  const bool same = receiver.compare();
  say(tag + (same ? "bytes ok" : "BYTES DIFFER"));
  if (hold > 0) {
    say("holding");
    std::this_thread::sleep_for(std::chrono::duration<double>(hold));
  }
  return ok && same ? 0 : 1;
}

int run_offsets(const std::string& path, const std::vector<std::string>& starts) {
  constexpr std::size_t kCount = 50000;
  const std::string bytes = slurp(path);
  const TestPair pair;
  if (!make_ktls(pair)) return 1;
  std::string expected;
  for (const auto& at : starts)
    expected += bytes.substr(std::stoul(at[0] == '@' ? at.substr(1) : at), kCount);
  Receiver receiver(pair.server(), expected);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  bool ok = fd >= 0;
  for (const auto& at : starts) {
    const bool seek = at[0] == '@';
    off_t offset = static_cast<off_t>(std::stoul(seek ? at.substr(1) : at));
    if (seek) lseek(fd, offset, SEEK_SET);
    std::size_t left = std::min(kCount, bytes.size() - static_cast<std::size_t>(offset));
    while (ok && left > 0) {
      const ssize_t n = sendfile(pair.client(), fd, seek ? nullptr : &offset, left);
      ok = n > 0;
      if (ok) left -= static_cast<std::size_t>(n);
    }
    say(at + " flag=" + std::to_string(raw_flag(pair.client())));
  }
  if (fd >= 0) close(fd);
  const bool same = receiver.compare();
  say(same ? "bytes ok" : "BYTES DIFFER");
  return ok && same ? 0 : 1;
}

int run_repeat(double seconds, const std::string& path, const std::string& stop_file) {
  const TestPair pair;
  if (!make_ktls(pair)) return 1;
  const std::string bytes = slurp(path);
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::vector<int> flags;
  std::size_t total = 0;
  // Count what arrives, and check every byte against the file.
  std::atomic<bool> same{true};
  std::atomic<std::size_t> got{0};
  std::thread reader([&] {
    std::vector<char> buf(1 << 16);
    std::size_t at = 0;
    for (;;) {
      const ssize_t n = recv(pair.server(), buf.data(), buf.size(), 0);
      if (n <= 0) break;
      for (ssize_t i = 0; i < n; ++i, ++at)
        if (buf[static_cast<std::size_t>(i)] != bytes[at % bytes.size()]) same = false;
      got += static_cast<std::size_t>(n);
    }
  });
  bool ok = true;
  const auto stopped = [&] { return !stop_file.empty() && access(stop_file.c_str(), F_OK) == 0; };
  while (ok && std::chrono::steady_clock::now() < end && !stopped()) {
    ok = send_file(pair.client(), path);
    total += bytes.size();
    flags.push_back(raw_flag(pair.client()));
    if (flags.size() == 1) say("first send done");
  }
  shutdown(pair.client(), SHUT_WR);
  reader.join();
  std::string line;
  for (const int f : flags) line += std::to_string(f);
  say("flags=" + line);
  say(same && got == total ? "bytes ok" : "BYTES DIFFER");
  return ok && same && got == total ? 0 : 1;
}

int run_threads(int n, const std::vector<std::string>& files) {
  std::vector<std::thread> threads;
  std::vector<int> results(static_cast<std::size_t>(n), 1);
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&, i] {
      results[static_cast<std::size_t>(i)] = run_raw(files, "t" + std::to_string(i) + " ");
    });
  for (auto& t : threads) t.join();
  for (const int r : results)
    if (r != 0) return 1;
  return 0;
}

int run_reuse(const std::string& file) {
  int number = -1;
  {
    const TestPair tls;
    if (!make_ktls(tls)) return 1;
    number = tls.client();
    Receiver receiver(tls.server(), slurp(file));
    send_file(tls.client(), file);
    say("ktls fd=" + std::to_string(number) + " flag=" + std::to_string(raw_flag(number)));
    if (!receiver.compare()) return 1;
  }  // both ends closed here (through close(), which the shim sees)
  // Now make a plain TCP connection whose client gets the same number.
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  listen(listener, 1);
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  // The lowest free number: the one the kTLS client had, unless the
  // listener took it; then take it back with one more socket.
  int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (client != number) {
    say("could not get fd " + std::to_string(number) + " back (got " + std::to_string(client) +
        ")");
    return 1;
  }
  connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  const int server = accept(listener, nullptr, nullptr);
  Receiver receiver(server, slurp(file));
  const bool sent = send_file(client, file);
  // (No getsockopt of our own here: the test checks that nothing after
  // this point makes a SOL_TLS call on the reused number.)
  say("plain fd=" + std::to_string(client) + " sent=" + (sent ? "yes" : "no"));
  const bool same = receiver.compare();
  say(same ? "bytes ok" : "BYTES DIFFER");
  close(client);
  close(server);
  close(listener);
  return sent && same ? 0 : 1;
}

std::string outcome(ssize_t rc, int err) {
  return "rc=" + std::to_string(rc) + " errno=" + (rc < 0 ? strerrorname_np(err) : "-");
}

// nginx's master sets nothing up itself, but a forked child must see the
// state its parent left: here the parent sends first, the child goes on.
int run_fork(const std::vector<std::string>& files) {
  const TestPair pair;
  if (!make_ktls(pair)) return 1;
  std::string all;
  for (const auto& f : files) all += slurp(f);
  for (auto it = files.rbegin(); it != files.rend(); ++it) all += slurp(*it);
  Receiver receiver(pair.server(), all);
  for (const auto& f : files) {
    send_file(pair.client(), f);
    say("parent " + base(f) + " flag=" + std::to_string(raw_flag(pair.client())));
  }
  const pid_t child = fork();
  if (child == 0) {
    for (auto it = files.rbegin(); it != files.rend(); ++it) {
      send_file(pair.client(), *it);
      say("child " + base(*it) + " flag=" + std::to_string(raw_flag(pair.client())));
    }
    std::fflush(stdout);
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  const bool same = receiver.compare();
  say(same ? "bytes ok" : "BYTES DIFFER");
  return same && status == 0 ? 0 : 1;
}

// kTLS set up in one program image, used by the next one after exec: the
// shim in the new image never saw TLS_TX and must classify the fd itself.
int run_exec(const std::vector<std::string>& files) {
  const TestPair pair;
  if (!make_ktls(pair)) return 1;
  for (const int fd : {pair.client(), pair.server()})
    fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) & ~FD_CLOEXEC);
  std::vector<std::string> args = {"zctls_test_sender", "inherited", std::to_string(pair.client()),
                                   std::to_string(pair.server())};
  args.insert(args.end(), files.begin(), files.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  execv("/proc/self/exe", argv.data());
  say(std::string("exec failed: ") + strerrorname_np(errno));
  return 1;
}

int run_inherited(int client, int server, const std::vector<std::string>& files) {
  std::string all;
  for (const auto& f : files) all += slurp(f);
  Receiver receiver(server, all);
  for (const auto& f : files) {
    send_file(client, f);
    say("inherited " + base(f) + " flag=" + std::to_string(raw_flag(client)));
  }
  const bool same = receiver.compare();
  say(same ? "bytes ok" : "BYTES DIFFER");
  return same ? 0 : 1;
}

// --- integrity ----------------------------------------------------------

// sendfile of [offset, offset+count) while `change` runs once the send is
// blocked on a receiver that is not reading yet.  Returns sendfile's result.
//
// The socket buffers are fixed first (SO_SNDBUF/SO_RCVBUF turn autotuning
// off): with autotuning a 4 MB file could fit in the sender's queue plus
// the receiver's buffer (tcp_wmem/tcp_rmem maxima 4 and 6 MB), and on a
// loaded guest it did: sendfile returned before the change, which was then
// no change "during" the send (CI of 0147486).  A send that returned
// before the change anyway says so.
template <typename Change>
ssize_t send_while_changing(int sock, int file, off_t offset, std::size_t count, Receiver& receiver,
                            Change change) {
  const int snd = 512 * 1024, rcv = 128 * 1024;  // the kernel doubles both
  setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
  setsockopt(receiver.fd(), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  ssize_t rc = 0;
  int err = 0;
  std::atomic<bool> returned{false};
  std::thread sender([&] {
    rc = sendfile(sock, file, &offset, count);
    err = errno;
    returned = true;
  });
  wait_until_blocked(sock);
  change();
  if (returned) say("NOT DURING: sendfile returned before the change");
  receiver.go();
  sender.join();
  errno = err;
  return rc;
}

// One fresh kTLS connection sends the whole file while `change(fd, size)`
// runs once the send is blocked; returns "sent=N received=M".
template <typename Change>
std::string send_whole_while(const std::string& path, Change change) {
  const TestPair pair;
  if (!make_ktls(pair)) return "kTLS setup failed";
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  struct stat st {};
  fstat(fd, &st);
  // Reads until EOF: at most the file.
  Receiver receiver(pair.server(), std::string(static_cast<std::size_t>(st.st_size), '?'), true);
  const ssize_t rc = send_while_changing(pair.client(), fd, 0, static_cast<std::size_t>(st.st_size),
                                         receiver, [&] { change(fd, st.st_size); });
  shutdown(pair.client(), SHUT_WR);
  receiver.compare();
  close(fd);
  return "sent=" + std::to_string(rc) + " received=" + std::to_string(receiver.received());
}

// TRIALS times: an in-place write while the send is blocked.
int run_modify(int trials, const std::string& path) {
  for (int t = 0; t < trials; ++t) {
    say("trial " + std::to_string(t) + " " + send_whole_while(path, [t](int fd, off_t size) {
          const char byte = static_cast<char>(t);
          pwrite(fd, &byte, 1, size / 2);
        }));
  }
  return 0;
}

// The same with ftruncate to half the size.
int run_truncate(const std::string& path) {
  say("truncated during send: " +
      send_whole_while(path, [](int fd, off_t size) { ftruncate(fd, size / 2); }));
  return 0;
}

// A non-blocking send fills the socket and returns early; the file changes
// while those bytes wait for a peer that does not read; then the socket is
// closed.  With `acked`, the peer reads everything first.
int run_inflight(const std::string& path, bool acked) {
  const TestPair pair;
  if (!make_ktls(pair)) return 1;
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  struct stat st {};
  fstat(fd, &st);
  Receiver receiver(pair.server(), std::string(static_cast<std::size_t>(st.st_size), '?'), !acked);
  if (!acked) fcntl(pair.client(), F_SETFL, O_NONBLOCK);
  off_t off = 0;
  const ssize_t rc = sendfile(pair.client(), fd, &off, static_cast<std::size_t>(st.st_size));
  if (acked) {
    receiver.compare();
    // Received means acknowledged within the delayed-ACK time (<= 200 ms);
    // a TCG guest under load can be late, so give it a whole second.
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  const char byte = 'c';
  pwrite(fd, &byte, 1, 0);
  say(std::string(acked ? "sent and read " : "sent ") + std::to_string(rc) + " of " +
      std::to_string(st.st_size) + ", then changed the file");
  close(pair.client());  // the shim's last look at the socket
  close(fd);
  return 0;
}

// A rename deploy: the old fd keeps the old inode (no event), a new open of
// the path gets the new inode (its own decision).
int run_deploy(const std::string& path) {
  const TestPair pair;
  if (!make_ktls(pair)) return 1;
  const std::string old_bytes = slurp(path);
  const std::string new_bytes(old_bytes.size() + 1000, 'n');
  Receiver receiver(pair.server(), old_bytes + old_bytes + new_bytes);
  const int old_fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  off_t off = 0;
  sendfile(pair.client(), old_fd, &off, old_bytes.size());
  say("old file flag=" + std::to_string(raw_flag(pair.client())));
  { std::ofstream(path + ".new", std::ios::binary) << new_bytes; }
  rename((path + ".new").c_str(), path.c_str());
  off = 0;
  sendfile(pair.client(), old_fd, &off, old_bytes.size());
  say("old fd after deploy flag=" + std::to_string(raw_flag(pair.client())));
  const int new_fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  off = 0;
  sendfile(pair.client(), new_fd, &off, new_bytes.size());
  say("new file flag=" + std::to_string(raw_flag(pair.client())));
  close(old_fd);
  close(new_fd);
  const bool same = receiver.compare();
  say(same ? "bytes ok" : "BYTES DIFFER");
  return same ? 0 : 1;
}

// One kTLS connection sends FILE, waits SECONDS, sends it again, and says
// the flag after each send under the two labels.
// `just_before` runs once the connection is up (seconds under ASan on a
// loaded guest), right before the first send: what it does to the file is
// then "just now" however slow the setup was.
int send_twice(const std::string& path, const std::string& first, double seconds,
               const std::string& second, const std::function<void()>& just_before = {}) {
  const TestPair pair;
  if (!make_ktls(pair)) return 1;
  if (just_before) just_before();
  const std::string bytes = slurp(path);
  Receiver receiver(pair.server(), bytes + bytes);
  send_file(pair.client(), path);
  say(first + " flag=" + std::to_string(raw_flag(pair.client())));
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  send_file(pair.client(), path);
  say(second + " flag=" + std::to_string(raw_flag(pair.client())));
  const bool same = receiver.compare();
  say(same ? "bytes ok" : "BYTES DIFFER");
  return same ? 0 : 1;
}

// A file written just now, sent, then sent again after SECONDS.  Written
// after the connection is set up, which can take seconds on a loaded
// guest: "just now" must not depend on how long that took.
int run_settle(double seconds, const std::string& path) {
  const std::string bytes = slurp(path);
  return send_twice(path, "fresh", seconds, "settled",
                    [&] { std::ofstream(path, std::ios::binary) << bytes; });
}

// Changed during a send, then sent again at once and after SECONDS.
int run_quarantine(double seconds, const std::string& path) {
  return send_twice(path, "right after", seconds, "after quiet time", [&] { run_modify(1, path); });
}

// A file sent in two halves; the first changes during its send.
int run_abort(const std::string& path) {
  const TestPair pair;
  if (!make_ktls(pair)) return 1;
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  struct stat st {};
  fstat(fd, &st);
  const std::size_t half = static_cast<std::size_t>(st.st_size) / 2;
  Receiver receiver(pair.server(), std::string(static_cast<std::size_t>(st.st_size), '?'), true);
  const ssize_t first = send_while_changing(pair.client(), fd, 0, half, receiver, [&] {
    const char byte = 'x';
    pwrite(fd, &byte, 1, 0);
  });
  off_t off = static_cast<off_t>(half);
  errno = 0;
  const ssize_t second = sendfile(pair.client(), fd, &off, half);
  const int err = errno;
  receiver.compare();
  say("first half sent=" + std::to_string(first));
  // After shutdown the kernel fails the send with EPIPE; 6.12 may first
  // accept one record into kTLS's buffer (a short count) - never the half.
  say(std::string("second half: ") +
      (second == static_cast<ssize_t>(half) ? "complete" : "cut short") + " (rc=" +
      std::to_string(second) + (second < 0 ? std::string(" ") + strerrorname_np(err) : "") + ")");
  say("receiver got " + std::to_string(receiver.received()) + " of " + std::to_string(st.st_size));
  close(fd);
  return 0;
}

// Plain TCP, no kTLS anywhere: what most processes under the shim do.
int run_plain(int times, const std::string& file) {
  const TestPair pair;
  if (pair.error() != 0) return 1;
  std::string all;
  for (int i = 0; i < times; ++i) all += slurp(file);
  Receiver receiver(pair.server(), all);
  for (int i = 0; i < times; ++i) send_file(pair.client(), file);
  const bool same = receiver.compare();
  say(same ? "bytes ok" : "BYTES DIFFER");
  return same ? 0 : 1;
}

// The application turns zerocopy on itself, as OpenSSL 3.2's
// KTLSTxZerocopySendfile does; the shim must leave that socket alone.
int run_appflag(const std::vector<std::string>& files) {
  const TestPair pair;
  if (!make_ktls(pair)) return 1;
  const unsigned int one = 1;
  if (setsockopt(pair.client(), SOL_TLS, TLS_TX_ZEROCOPY_RO, &one, sizeof one) != 0) return 1;
  std::string all;
  for (const auto& f : files) all += slurp(f);
  Receiver receiver(pair.server(), all);
  for (const auto& f : files) {
    send_file(pair.client(), f);
    say(base(f) + " flag=" + std::to_string(raw_flag(pair.client())));
  }
  const bool same = receiver.compare();
  say(same ? "bytes ok" : "BYTES DIFFER");
  return same ? 0 : 1;
}

int run_errors(const std::string& file) {
  const int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  off_t off = 0;
  errno = 0;
  ssize_t rc = sendfile(-1, fd, &off, 100);
  say("bad out fd: " + outcome(rc, errno));
  const TestPair pair;
  if (!make_ktls(pair)) return 1;
  errno = 0;
  rc = sendfile(pair.client(), 987654, &off, 100);
  say("bad in fd on kTLS: " + outcome(rc, errno));
  errno = 0;
  rc = sendfile(pair.client(), fd, reinterpret_cast<off_t*>(8), 100);
  say("bad offset pointer: " + outcome(rc, errno));
  // Nobody reads the other end: a non-blocking socket fills up.
  fcntl(pair.client(), F_SETFL, O_NONBLOCK);
  ssize_t total = 0;
  for (int i = 0; i < 100000; ++i) {
    off = 0;
    errno = 0;
    rc = sendfile(pair.client(), fd, &off, 1 << 20);
    if (rc < 0) break;
    total += rc;
  }
  say("full non-blocking socket: " + outcome(rc, errno) + (total > 0 ? " after data" : ""));
  close(fd);
  return 0;
}

// Records the kernel's sock_diag reply for two real kTLS connections as
// hex, one datagram per line: the fixture behind the unit tests of
// parse_diag_datagram and `zctls status` (tests/unit/data/).  Pair one:
// TLS 1.3 AES-GCM-128, TX with the zerocopy flag set (sw: the kernel does
// not report it).  Pair two: TLS 1.2 AES-GCM-256, TX without it.
int run_diag_record(const std::string& out_path) {
  const TestPair first;
  const k::LoopbackPair second;
  if (!make_ktls(first) || second.error() != 0) return 1;
  const int errs[] = {
      k::set_tx_zerocopy(first.client(), true),
      k::attach_tls_ulp(second.client()),
      k::install_key(second.client(), k::Direction::tx, k::TlsVersion::tls12,
                     k::Cipher::aes_gcm_256, key()),
      k::attach_tls_ulp(second.server()),
      k::install_key(second.server(), k::Direction::rx, k::TlsVersion::tls12,
                     k::Cipher::aes_gcm_256, key()),
  };
  for (const int e : errs) {
    if (e != 0) {
      say(std::string("kTLS setup failed: ") + strerrorname_np(e));
      return 1;
    }
  }
  std::FILE* out = std::fopen(out_path.c_str(), "we");
  if (out == nullptr) return 1;
  std::vector<k::TlsSocket> sockets;
  const int err = k::list_tls_sockets(sockets, [out](const std::uint8_t* data, std::size_t size) {
    for (std::size_t i = 0; i < size; ++i) std::fprintf(out, "%02x", data[i]);
    std::fputc('\n', out);
  });
  std::fclose(out);
  say("recorded " + std::to_string(sockets.size()) + " kTLS sockets" +
      (err != 0 ? std::string(", error ") + strerrorname_np(err) : std::string()));
  return err == 0 && sockets.size() == 4 ? 0 : 1;
}

// kTLS sockets that never send a file: their bytes go by write(2), as a
// server's generated or proxied responses go by SSL_write.
int run_nofile(int sockets) {
  for (int i = 0; i < sockets; ++i) {
    const TestPair pair;
    if (!make_ktls(pair)) return 1;
    const char message[] = "generated, not a file";
    if (write(pair.client(), message, sizeof message) != static_cast<ssize_t>(sizeof message))
      return 1;
  }
  say("wrote on " + std::to_string(sockets) + " kTLS sockets");
  return 0;
}

// This process as if it had exec'd from the library of before the socket
// counters: its stats file is already there, in the 32-counter layout
// ("ZCLSTST2", 5 sends), before its first kTLS socket.  Then sends FILES.
int run_planted_v2(const std::string& dir, const std::vector<std::string>& files) {
  constexpr std::size_t kOldSlots = 32, kShards = 16;
  std::vector<std::uint64_t> words(8 + kShards * kOldSlots, 0);
  words[0] = 0x32545354534c435aULL;  // "ZCLSTST2"
  words[1] = 31 | (static_cast<std::uint64_t>(getpid()) << 32);
  words[2] = zctls::process_start_time(getpid());
  words[8 + static_cast<std::size_t>(zctls::Counter::sends)] = 5;
  const std::string path = dir + "/" + zctls::stats_file_name(getpid(), words[2]);
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  const auto bytes = static_cast<ssize_t>(words.size() * sizeof words[0]);
  if (fd < 0 || write(fd, words.data(), static_cast<std::size_t>(bytes)) != bytes) return 1;
  close(fd);
  return run_raw(files);
}

}  // namespace

int main(int argc, char** argv) {
  // As servers do: a write to a connection the peer (or zctls's abort
  // policy) closed should fail with EPIPE, not kill the process.
  signal(SIGPIPE, SIG_IGN);
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s raw|openssl|threads N|reuse|errors FILE...\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  std::vector<std::string> files(argv + 2, argv + argc);
  if (mode == "raw") return run_raw(files);
  if (mode == "diag-record") return run_diag_record(files[0]);
  if (mode == "raw64") {
    g_sendfile64 = true;
    return run_raw(files);
  }
  if (mode == "fork") return run_fork(files);
  if (mode == "nofile") return run_nofile(std::stoi(files[0]));
  if (mode == "planted-v2" && files.size() >= 2)
    return run_planted_v2(files[0], {files.begin() + 1, files.end()});
  if (mode == "exec") return run_exec(files);
  if (mode == "modify" && files.size() == 2) return run_modify(std::stoi(files[0]), files[1]);
  if (mode == "truncate") return run_truncate(files[0]);
  if (mode == "deploy") return run_deploy(files[0]);
  if (mode == "settle" && files.size() == 2) return run_settle(std::stod(files[0]), files[1]);
  if (mode == "quarantine" && files.size() == 2)
    return run_quarantine(std::stod(files[0]), files[1]);
  if (mode == "abort") return run_abort(files[0]);
  if (mode == "inflight") return run_inflight(files[0], false);
  if (mode == "inflight-acked") return run_inflight(files[0], true);
  if (mode == "inherited" && files.size() >= 3) {
    const int client = std::stoi(files[0]), server = std::stoi(files[1]);
    files.erase(files.begin(), files.begin() + 2);
    return run_inherited(client, server, files);
  }
  if (mode == "plain" && files.size() == 2) return run_plain(std::stoi(files[0]), files[1]);
  if (mode == "openssl") return openssl_send(files);
  if (mode == "threads" && files.size() >= 2) {
    const int n = std::stoi(files[0]);
    files.erase(files.begin());
    return run_threads(n, files);
  }
  if (mode == "reuse") return run_reuse(files[0]);
  if (mode == "appflag") return run_appflag(files);
  if (mode == "errors") return run_errors(files[0]);
  if (mode == "repeat" && (files.size() == 2 || files.size() == 3))
    return run_repeat(std::stod(files[0]), files[1], files.size() == 3 ? files[2] : "");
  if (mode == "hold" && files.size() >= 2) {
    const double seconds = std::stod(files[0]);
    files.erase(files.begin());
    return run_raw(files, "", seconds);
  }
  if (mode == "offsets" && files.size() >= 2) {
    const std::string path = files[0];
    files.erase(files.begin());
    return run_offsets(path, files);
  }
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
