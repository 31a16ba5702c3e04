// zctls_bench_sendfile: a sendfile load for the benchmarks (bench/run).  It
// knows nothing about zctls; bench/run runs it with and without libzctls.so
// preloaded, under strace -c or plain, and compares.
//
//   zctls_bench_sendfile plain|ktls [--chunk B] [--file-size B] [--files N]
//                        [--sends N] [--threads T] [--open-per-send|--open-per-file]
//                        [--idle-sockets N] [--dir D] [--nic [--tls13]] [--flag 0|1]
//
// Each thread has its own loopback connection (plain TCP, or kTLS TX with a
// key set directly: no handshake, the peer just drains the ciphertext).  The
// peers are drained by a forked process, so that `strace` without -f sees
// only the sending process.  The thread sends --sends calls of --chunk bytes,
// walking round-robin over --files files of --file-size bytes (created in
// --dir, default $TMPDIR) and through each file chunk by chunk.  Files stay
// open all along, or each call opens and closes its file (--open-per-send),
// or each file is opened before its first chunk and closed after its last
// (--open-per-file: nginx, one response at a time, without open_file_cache).
// --idle-sockets N keeps N more open connections (kTLS in ktls mode) that
// each made one send: the per-fd state of a busy server.  --nic: the
// connections cross the bench's emulated TLS-offload NIC (run the program
// in its server namespace: tests/offload-nic/nic srv), with TLS 1.2 keys,
// which it offloads (--tls13: TLS 1.3 keys, which no NIC offloads).
// --flag 0|1: the program sets TLS_TX_ZEROCOPY_RO itself after each key.
//
// Prints one line of key=value: sends, bytes, cpu_us (user+system of the
// sending process), wall_us, rss_kb (VmRSS at the end), rss_anon_kb (its
// anonymous part), rss_before_kb (after setup, before the first send), pid
// (the sender's, for callgrind's files).
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "offload_nic.h"
#include "kernel/ktls.h"
#include "kernel/loopback.h"

namespace {

namespace k = zctls::kernel;

struct Options {
  bool ktls = false;
  long chunk = 65536;
  long file_size = -1;  // default: chunk
  long files = 1;
  long sends = 10000;
  int threads = 1;
  bool open_per_send = false;
  bool open_per_file = false;
  long idle_sockets = 0;
  std::string dir;
  bool nic = false;
  bool tls13 = false;
  int flag = -1;  // -1: leave the flag alone
};

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "zctls_bench_sendfile: %s: %s\n", what, std::strerror(errno));
  std::exit(2);
}

// A line of /proc/self/status in KiB: "VmRSS:" (all resident pages) or
// "RssAnon:" (anonymous ones: the heap, bss and relocated data, not the
// libraries' text).
long status_kb(const char* field = "VmRSS:") {
  std::ifstream status("/proc/self/status");
  std::string line;
  const std::size_t len = std::strlen(field);
  while (std::getline(status, line))
    if (line.compare(0, len, field) == 0) return std::atol(line.c_str() + len);
  return -1;
}
long rss_kb() { return status_kb(); }

bool make_ktls(const Options& o, int fd) {
  k::KeyMaterial key;
  for (std::size_t i = 0; i < sizeof key.key; ++i) key.key[i] = static_cast<std::uint8_t>(i);
  // Over the NIC TLS 1.2 unless told otherwise: device offload takes TLS
  // 1.2 keys only.
  const k::TlsVersion version =
      o.nic && !o.tls13 ? k::TlsVersion::tls12 : k::TlsVersion::tls13;
  if (k::attach_tls_ulp(fd) != 0 ||
      k::install_key(fd, k::Direction::tx, version, k::Cipher::aes_gcm_128, key) != 0)
    return false;
  const unsigned int on = o.flag == 1 ? 1U : 0U;
  return o.flag < 0 || setsockopt(fd, k::kSolTls, k::kTlsTxZerocopyRo, &on, sizeof on) == 0;
}

// A connection whose far end is handed to the drain process.
struct Connection {
  int sender = -1;
  int peer = -1;
};

template <typename Pair>
Connection connect_pair(const Options& o) {
  // The pairs close their fds on destruction: keep duplicates.
  const Pair pair;
  if (pair.error() != 0) {
    errno = pair.error();
    die(o.nic ? "connection over the offload NIC (run in its server namespace)"
              : "loopback connection");
  }
  Connection c{dup(pair.client()), dup(pair.server())};
  if (c.sender < 0 || c.peer < 0) die("dup");
  if (o.ktls && !make_ktls(o, c.sender)) die("kTLS setup (is the tls module loaded?)");
  return c;
}

Connection connect_pair(const Options& o) {
  return o.nic ? connect_pair<zctls_nic::NicPair>(o) : connect_pair<k::LoopbackPair>(o);
}

// Reads every peer until EOF; runs in its own process.  One epoll loop, so
// that 10 000 idle connections cost no threads.
[[noreturn]] void drain(const std::vector<int>& peers) {
  const int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  for (int fd : peers) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
  }
  static char buf[1 << 16];
  std::size_t open_peers = peers.size();
  epoll_event events[64];
  while (open_peers > 0) {
    const int n = epoll_wait(ep, events, 64, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("epoll_wait");
    for (int i = 0; i < n; ++i) {
      const ssize_t got = read(events[i].data.fd, buf, sizeof buf);
      if (got <= 0 && !(got < 0 && errno == EINTR)) {
        epoll_ctl(ep, EPOLL_CTL_DEL, events[i].data.fd, nullptr);
        close(events[i].data.fd);
        --open_peers;
      }
    }
  }
  _exit(0);
}

std::vector<std::string> make_files(const Options& o) {
  std::vector<std::string> paths;
  std::vector<char> data(static_cast<std::size_t>(o.file_size), 'z');
  for (long i = 0; i < o.files; ++i) {
    std::string path = o.dir + "/f" + std::to_string(i);
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("create a file");
    if (write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size())) die("write");
    close(fd);
    paths.push_back(std::move(path));
  }
  return paths;
}

struct Result {
  long sends = 0;
  long long bytes = 0;
};

Result send_loop(const Options& o, int sock, const std::vector<std::string>& paths, long sends) {
  Result r;
  std::vector<int> fds;
  const bool keep_open = !o.open_per_send && !o.open_per_file;
  if (keep_open)
    for (const auto& p : paths) {
      const int fd = open(p.c_str(), O_RDONLY);
      if (fd < 0) die("open a file");
      fds.push_back(fd);
    }
  std::size_t file = 0;
  off_t offset = 0;
  int fd = -1;
  for (long i = 0; i < sends; ++i) {
    if (keep_open)
      fd = fds[file];
    else if (fd < 0)
      fd = open(paths[file].c_str(), O_RDONLY);
    if (fd < 0) die("open a file");
    const long want = std::min(o.chunk, o.file_size - static_cast<long>(offset));
    const ssize_t n = sendfile(sock, fd, &offset, static_cast<std::size_t>(want));
    if (n < 0) die("sendfile");
    r.bytes += n;
    ++r.sends;
    const bool file_done = offset >= o.file_size;
    if (!keep_open && (o.open_per_send || file_done)) {
      close(fd);
      fd = -1;
    }
    if (file_done) {
      offset = 0;
      file = (file + 1) % paths.size();
    }
  }
  if (!keep_open && fd >= 0) close(fd);
  for (int kept : fds) close(kept);
  return r;
}

// With two CPUs or more, the sender runs on CPU 0 and the drain process on
// CPU 1: left to the scheduler, the two sometimes share a CPU and a run's
// throughput varies by 3x, which would drown the shim's cost.
void pin_to_cpu(int cpu) {
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set);
}

long cpu_us() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000L + ru.ru_utime.tv_usec +
         ru.ru_stime.tv_usec;
}

bool parse(int argc, char** argv, Options& o) {
  if (argc < 2) return false;
  const std::string mode = argv[1];
  if (mode != "plain" && mode != "ktls") return false;
  o.ktls = mode == "ktls";
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> long {
      if (i + 1 >= argc) return -1;
      return std::atol(argv[++i]);
    };
    if (a == "--chunk")
      o.chunk = value();
    else if (a == "--file-size")
      o.file_size = value();
    else if (a == "--files")
      o.files = value();
    else if (a == "--sends")
      o.sends = value();
    else if (a == "--threads")
      o.threads = static_cast<int>(value());
    else if (a == "--idle-sockets")
      o.idle_sockets = value();
    else if (a == "--open-per-send")
      o.open_per_send = true;
    else if (a == "--open-per-file")
      o.open_per_file = true;
    else if (a == "--nic")
      o.nic = true;
    else if (a == "--tls13")
      o.tls13 = true;
    else if (a == "--flag")
      o.flag = static_cast<int>(value());
    else if (a == "--dir" && i + 1 < argc)
      o.dir = argv[++i];
    else
      return false;
  }
  if (o.file_size < 0) o.file_size = o.chunk;
  return o.chunk > 0 && o.file_size > 0 && o.files > 0 && o.sends > 0 && o.threads > 0 &&
         o.idle_sockets >= 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) {
    std::fprintf(stderr,
                 "usage: zctls_bench_sendfile plain|ktls [--chunk B] [--file-size B] [--files N]\n"
                 "       [--sends N] [--threads T] [--open-per-send|--open-per-file]\n"
                 "       [--idle-sockets N] [--dir D] [--nic [--tls13]] [--flag 0|1]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  // --idle-sockets needs two fds per connection until the fork.
  // (Root may raise the hard limit too.)
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0) {
    const rlim_t want = static_cast<rlim_t>(2 * o.idle_sockets + 1024);
    rlimit raised{std::max(files.rlim_cur, want), std::max(files.rlim_max, want)};
    if (setrlimit(RLIMIT_NOFILE, &raised) != 0) {
      files.rlim_cur = files.rlim_max;
      setrlimit(RLIMIT_NOFILE, &files);
    }
  }
  std::string made_dir;
  if (o.dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") + "/zctls-bench-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) die("mkdtemp");
    o.dir = made_dir = pattern;
  }
  const std::vector<std::string> paths = make_files(o);

  std::vector<Connection> active, idle;
  std::vector<int> peers;
  for (int t = 0; t < o.threads; ++t) active.push_back(connect_pair(o));
  for (long i = 0; i < o.idle_sockets; ++i) idle.push_back(connect_pair(o));
  for (const auto& c : active) peers.push_back(c.peer);
  for (const auto& c : idle) peers.push_back(c.peer);
  sigset_t child_exit;
  sigemptyset(&child_exit);
  sigaddset(&child_exit, SIGCHLD);
  sigprocmask(SIG_BLOCK, &child_exit, nullptr);  // for sigtimedwait below
  const pid_t drainer = fork();
  if (drainer < 0) die("fork");
  if (drainer == 0) {
    pin_to_cpu(1);
    for (const auto& c : active) close(c.sender);
    for (const auto& c : idle) close(c.sender);
    drain(peers);
  }
  for (int fd : peers) close(fd);
  pin_to_cpu(0);

  // One send on each idle socket: the shim learns each of them.
  {
    Options one = o;
    one.open_per_send = false;
    for (const auto& c : idle) send_loop(one, c.sender, {paths[0]}, 1);
  }
  const long rss_before = rss_kb();
  const long cpu_start = cpu_us();
  const auto wall_start = std::chrono::steady_clock::now();
  std::vector<Result> results(static_cast<std::size_t>(o.threads));
  std::vector<std::thread> senders;
  const auto run_share = [&](int t) {
    const long share = o.sends / o.threads + (t < o.sends % o.threads ? 1 : 0);
    results[static_cast<std::size_t>(t)] =
        send_loop(o, active[static_cast<std::size_t>(t)].sender, paths, share);
  };
  // One thread sends from the main thread, so that strace without -f (which
  // would also follow the drain process) sees every send.
  if (o.threads == 1) run_share(0);
  for (int t = 0; o.threads > 1 && t < o.threads; ++t) senders.emplace_back(run_share, t);
  for (auto& t : senders) t.join();
  const auto wall_us = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::steady_clock::now() - wall_start)
                           .count();
  const long cpu = cpu_us() - cpu_start;
  const long rss = rss_kb();
  const long anon = status_kb("RssAnon:");

  Result total;
  for (const auto& r : results) {
    total.sends += r.sends;
    total.bytes += r.bytes;
  }
  for (const auto& c : active) close(c.sender);
  for (const auto& c : idle) close(c.sender);
  // The drain process exits when every peer has read EOF.  In a CI run of
  // the 10 000-socket case some 2 700 peers (of the run without the shim)
  // never saw the FIN of their closed kTLS sender and stayed ESTABLISHED,
  // and this wait never returned.  The measurement is over by now: wait
  // 10 s for its SIGCHLD (blocked since the fork, so pending if it came
  // already: the same two syscalls every run, for strace's counts), then
  // kill it.
  const timespec bound{10, 0};
  int waited = 0;
  while ((waited = sigtimedwait(&child_exit, nullptr, &bound)) < 0 && errno == EINTR) {
  }
  if (waited < 0) {
    std::fprintf(stderr,
                 "the drain process still had peers open 10 s after the last close; "
                 "killed it\n");
    kill(drainer, SIGKILL);
  }
  int status = 0;
  waitpid(drainer, &status, 0);
  if (!made_dir.empty()) {
    for (const auto& p : paths) unlink(p.c_str());
    rmdir(made_dir.c_str());
  }
  std::printf(
      "sends=%ld bytes=%lld cpu_us=%ld wall_us=%lld rss_kb=%ld rss_anon_kb=%ld rss_before_kb=%ld "
      "pid=%d\n",
      total.sends, total.bytes, cpu, static_cast<long long>(wall_us), rss, anon, rss_before,
      static_cast<int>(getpid()));
  return 0;
}
