// zctls_test_field2: the second round of inputs with which deployments
// broke zctls, one scenario each, for field2_e2e_test.cpp.  Like the other
// kTLS test programs it knows nothing about zctls: it prints what the
// kernel and its peers say.
//
//   stderr-full DIR N   fd 2 is a pipe of one page that is already full
//                       (its read end open, nobody reading); N files
//                       DIR/fI.bin are each sent in two sendfile chunks
//                       with one byte written in place between them.
//                       Prints "sent N", and whether fd 2's file status
//                       flags are what they were.  A send that waits on
//                       the pipe is killed by a 60 s alarm.
//   vfork HOW FILE      the application's flag is on (ZCTLS_TEST_APP_FLAG=1);
//                       FILE is sent, then a vfork child does HOW to the
//                       kTLS socket and goes: close (then _exit), dup2
//                       (/dev/null over it, then _exit) or close_range
//                       (3..~0, then exec /bin/true, as CPython's
//                       subprocess does); FILE is sent again.  Prints the
//                       flag after each send.
//   small-stack KIB WHAT FILE...
//                       a thread with a KIB KiB stack sends each FILE on a
//                       kTLS connection (WHAT = send: keyed by the main
//                       thread; first: keyed by the small thread too, the
//                       process's first kTLS socket), then closes the
//                       socket.  Prints "done" and the most of that stack
//                       the thread used.
//   coroutine KIB FILE...
//                       the same inside a makecontext coroutine on a KIB
//                       KiB stack (keyed by the main thread), each FILE
//                       sent twice (a new file's decision, then a warm
//                       send) and the socket closed there.
//   chdir FILE          chdir("/") first (as servers do before their first
//                       kTLS socket), then FILE is sent: prints its flag
//   emfile FILE         the TX key is installed while no fd is free
//                       (RLIMIT_NOFILE at the fds in use); then fds are
//                       free again, and after 1.1 s FILE is sent: prints
//                       its flag
//   rename STATIC UPLOADS
//                       STATIC/v1/app.js is sent, STATIC/v1 is renamed to
//                       UPLOADS/v1 (the file's inode and ctime stay), and
//                       after 1.5 s UPLOADS/v1/app.js is sent: prints the
//                       flag after each
//   bind-late dir|file STATIC MIRROR
//                       in a mount namespace of its own: STATIC/a.bin is
//                       sent; then STATIC (dir) or STATIC/a.bin (file) is
//                       bind-mounted at MIRROR (a directory, or a file
//                       MIRROR/a.bin); after 1.5 s MIRROR/a.bin and then
//                       STATIC/a.bin are sent: prints the flag after each
//   chroot ROOT         in a mount namespace of its own, with proc mounted at
//                       ROOT/proc: the connection is keyed (the engine and
//                       config loaded), then the process chroots into ROOT
//                       (a plain directory, not a mount point) and sends
//                       /static/a.bin and /private/b.bin: prints each flag
//   seccomp LIST STATIC NEW PRIVATE
//                       STATIC is sent (the process's one-time work done);
//                       then the main thread puts itself under a seccomp
//                       filter that kills the process at any syscall not
//                       in LIST (comma-separated names), as a hardened
//                       server does once it is set up; then NEW (a file
//                       not decided yet), PRIVATE, and after 1.1 s STATIC
//                       again are sent and the socket closed: prints each
//                       flag, then "closed".  Killed (SIGSYS) otherwise.
//
// Exit status 0 only if all went as the kernel says it should.
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdint>
#include <memory>

#include "ktls_app.h"

using namespace zctls_ktls_app;

namespace {

constexpr unsigned char kPaint = 0xa5;

// The most of [stack, stack + size) something wrote: the stack grows down
// from its top, and painted bytes below the deepest frame are untouched.
std::size_t stack_used(const unsigned char* stack, std::size_t size) {
  std::size_t untouched = 0;
  while (untouched < size && stack[untouched] == kPaint) ++untouched;
  return size - untouched;
}

int run_stderr_full(const std::string& dir, int files) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0 || fcntl(p[1], F_SETPIPE_SZ, 4096) < 0) return 1;
  // Fill it, then give it to fd 2 as a blocking pipe.
  fcntl(p[1], F_SETFL, O_NONBLOCK);
  const std::string page(512, 'x');
  while (write(p[1], page.data(), page.size()) > 0) {
  }
  fcntl(p[1], F_SETFL, 0);
  if (dup2(p[1], 2) != 2) return 1;
  const int flags_before = fcntl(2, F_GETFL);
  alarm(60);
  const k::LoopbackPair pair;
  if (!make_ktls(pair)) return 1;
  Drain drain(pair.server());
  int sent = 0;
  for (int i = 0; i < files; ++i) {
    const std::string path = dir + "/f" + std::to_string(i) + ".bin";
    {
      std::ofstream out(path, std::ios::binary);
      out << std::string(200000, static_cast<char>('a' + i % 26));
    }
    const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    off_t off = 0;
    bool ok = sendfile(pair.client(), fd, &off, 100000) > 0;
    ok = ok && pwrite(fd, "!", 1, 150000) == 1;
    while (ok && off < 200000) ok = sendfile(pair.client(), fd, &off, 200000 - off) > 0;
    close(fd);
    if (ok) ++sent;
  }
  shutdown(pair.client(), SHUT_WR);
  drain.finish();
  say("sent " + std::to_string(sent));
  say(std::string("fd 2 flags unchanged: ") + (fcntl(2, F_GETFL) == flags_before ? "yes" : "no"));
  return sent == files ? 0 : 1;
}

int run_vfork(const std::string& how, const std::string& file) {
  const k::LoopbackPair pair;
  if (!make_ktls(pair)) return 1;
  const std::string bytes = slurp(file);
  Receiver receiver(pair.server(), bytes + bytes);
  send_file(pair.client(), file);
  say("before flag=" + std::to_string(raw_flag(pair.client())));
  const int sock = pair.client();
  const int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  const pid_t pid = vfork();
  if (pid == 0) {
    if (how == "close") {
      close(sock);
      _exit(0);
    }
    if (how == "dup2") {
      dup2(devnull, sock);
      _exit(0);
    }
    close_range(3, ~0U, 0);
    execl("/bin/true", "true", static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  close(devnull);
  send_file(pair.client(), file);
  say("after flag=" + std::to_string(raw_flag(pair.client())));
  const bool same = receiver.compare();
  say(same ? "bytes ok" : "BYTES DIFFER");
  return same && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

struct StackJob {
  std::vector<std::string> files;
  int sends_each = 1;
  bool key_here = false;
  const k::LoopbackPair* pair = nullptr;  // keyed by the caller unless key_here
  bool ok = false;
};

void do_job(StackJob& job) {
  std::unique_ptr<k::LoopbackPair> own;
  const k::LoopbackPair* pair = job.pair;
  if (job.key_here) {
    own = std::make_unique<k::LoopbackPair>();
    if (!make_ktls(*own)) return;
    pair = own.get();
  }
  bool ok = true;
  for (const std::string& f : job.files)
    for (int i = 0; i < job.sends_each; ++i) ok = send_file(pair->client(), f) && ok;
  // The close the shim sees (the pair's destructor closes too: EBADF).
  ok = close(pair->client()) == 0 && ok;
  job.ok = ok;
}

int run_small_stack(std::size_t kib, const std::string& what, std::vector<std::string> files) {
  const k::LoopbackPair pair;
  const bool first = what == "first";
  if (!first && !make_ktls(pair)) return 1;
  std::unique_ptr<Drain> drain;
  if (!first) drain = std::make_unique<Drain>(pair.server());
  StackJob job{std::move(files), 1, first, &pair};
  const std::size_t size = kib * 1024;
  auto* stack = static_cast<unsigned char*>(aligned_alloc(4096, size));
  std::memset(stack, kPaint, size);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstack(&attr, stack, size);
  pthread_t t;
  if (pthread_create(
          &t, &attr,
          [](void* j) -> void* {
            do_job(*static_cast<StackJob*>(j));
            return nullptr;
          },
          &job) != 0)
    return 1;
  pthread_join(t, nullptr);
  if (drain) drain->finish();
  say(job.ok ? "done" : "FAILED");
  say("stack used " + std::to_string(stack_used(stack, size)));
  return job.ok ? 0 : 1;
}

ucontext_t g_main_ctx, g_coro_ctx;
StackJob* g_coro_job = nullptr;

void coroutine_body() { do_job(*g_coro_job); }

int run_coroutine(std::size_t kib, std::vector<std::string> files) {
  const k::LoopbackPair pair;
  if (!make_ktls(pair)) return 1;
  Drain drain(pair.server());
  StackJob job{std::move(files), 2, false, &pair};
  g_coro_job = &job;
  const std::size_t size = kib * 1024;
  auto* stack = static_cast<unsigned char*>(aligned_alloc(4096, size));
  std::memset(stack, kPaint, size);
  getcontext(&g_coro_ctx);
  g_coro_ctx.uc_stack.ss_sp = stack;
  g_coro_ctx.uc_stack.ss_size = size;
  g_coro_ctx.uc_link = &g_main_ctx;
  makecontext(&g_coro_ctx, coroutine_body, 0);
  if (swapcontext(&g_main_ctx, &g_coro_ctx) != 0) return 1;
  drain.finish();
  say(job.ok ? "done" : "FAILED");
  say("stack used " + std::to_string(stack_used(stack, size)));
  return job.ok ? 0 : 1;
}

int run_chdir(const std::string& file) {
  if (chdir("/") != 0) return 1;
  const k::LoopbackPair pair;
  if (!make_ktls(pair)) return 1;
  Receiver receiver(pair.server(), slurp(file));
  send_file(pair.client(), file);
  say("flag=" + std::to_string(raw_flag(pair.client())));
  const bool same = receiver.compare();
  say(same ? "bytes ok" : "BYTES DIFFER");
  return same ? 0 : 1;
}

int run_emfile(const std::string& file) {
  const std::string bytes = slurp(file);
  const k::LoopbackPair pair;
  rlimit saved{};
  getrlimit(RLIMIT_NOFILE, &saved);
  const int next = dup(0);  // the lowest free number: every fd below it is in use
  close(next);
  rlimit none = saved;
  none.rlim_cur = static_cast<rlim_t>(next);
  if (setrlimit(RLIMIT_NOFILE, &none) != 0) return 1;
  const bool keyed = make_ktls(pair);
  const bool was_short = dup(0) < 0 && errno == EMFILE;
  setrlimit(RLIMIT_NOFILE, &saved);
  if (!keyed) return 1;
  say(std::string("no fd was free at the key: ") + (was_short ? "yes" : "no"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  Receiver receiver(pair.server(), bytes);
  send_file(pair.client(), file);
  say("flag=" + std::to_string(raw_flag(pair.client())));
  const bool same = receiver.compare();
  say(same ? "bytes ok" : "BYTES DIFFER");
  return same ? 0 : 1;
}

// Sends each of `files` on one connection, with `between(i)` before the
// i-th: prints "NAME flag=N" after each, then whether the bytes matched.
template <typename Between>
int send_each(const std::vector<std::string>& files, Between between) {
  const k::LoopbackPair pair;
  if (!make_ktls(pair)) return 1;
  Drain drain(pair.server());
  std::size_t expected = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (!between(i)) return 1;
    expected += slurp(files[i]).size();
    if (!send_file(pair.client(), files[i])) return 1;
    say(base(files[i]) + " flag=" + std::to_string(raw_flag(pair.client())));
  }
  shutdown(pair.client(), SHUT_WR);
  const std::string got = drain.finish();
  const bool all = got.find("recv=" + std::to_string(expected) + " ") != std::string::npos;
  say(all ? "bytes ok" : "BYTES: " + got);
  return 0;
}

void later() { std::this_thread::sleep_for(std::chrono::milliseconds(1500)); }

int run_rename(const std::string& statics, const std::string& uploads) {
  if (mkdir((statics + "/v1").c_str(), 0755) != 0) return 1;
  {
    std::ofstream out(statics + "/v1/app.js", std::ios::binary);
    out << std::string(60000, 'j');
  }
  return send_each({statics + "/v1/app.js", uploads + "/v1/app.js"}, [&](std::size_t i) {
    if (i == 0) return true;
    if (rename((statics + "/v1").c_str(), (uploads + "/v1").c_str()) != 0) return false;
    later();
    return true;
  });
}

int run_bind_late(const std::string& how, const std::string& statics, const std::string& mirror) {
  if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    return 1;
  const std::string file = statics + "/a.bin", alias = mirror + "/a.bin";
  if (how == "file") {
    std::ofstream touch(alias);
  }
  return send_each({file, alias, file}, [&](std::size_t i) {
    if (i != 1) return true;
    const std::string from = how == "file" ? file : statics;
    const std::string to = how == "file" ? alias : mirror;
    if (mount(from.c_str(), to.c_str(), nullptr, MS_BIND, nullptr) != 0) return false;
    later();
    return true;
  });
}

int run_chroot(const std::string& root) {
  if (unshare(CLONE_NEWNS) != 0 ||
      mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      mkdir((root + "/proc").c_str(), 0755) != 0 ||
      mount("proc", (root + "/proc").c_str(), "proc", 0, nullptr) != 0)
    return 1;
  const k::LoopbackPair pair;
  if (!make_ktls(pair)) return 1;
  Drain drain(pair.server());
  if (chroot(root.c_str()) != 0 || chdir("/") != 0) return 1;
  for (const std::string f : {"/static/a.bin", "/private/b.bin"}) {
    if (!send_file(pair.client(), f)) return 1;
    say(base(f) + " flag=" + std::to_string(raw_flag(pair.client())));
  }
  shutdown(pair.client(), SHUT_WR);
  drain.finish();
  return 0;
}

// The syscalls a LIST may name (x86-64 and aarch64 numbers by name).
struct NamedSyscall {
  const char* name;
  long nr;
};
#define ZCTLS_SYSCALL(n) \
  { #n, SYS_##n }
constexpr NamedSyscall kSyscalls[] = {
    ZCTLS_SYSCALL(read),          ZCTLS_SYSCALL(write),
    ZCTLS_SYSCALL(openat),        ZCTLS_SYSCALL(close),
    ZCTLS_SYSCALL(newfstatat),    ZCTLS_SYSCALL(sendfile),
    ZCTLS_SYSCALL(getsockopt),    ZCTLS_SYSCALL(setsockopt),
    ZCTLS_SYSCALL(futex),         ZCTLS_SYSCALL(clock_nanosleep),
    ZCTLS_SYSCALL(exit_group),    ZCTLS_SYSCALL(exit),
    ZCTLS_SYSCALL(mmap),          ZCTLS_SYSCALL(munmap),
    ZCTLS_SYSCALL(madvise),       ZCTLS_SYSCALL(brk),
    ZCTLS_SYSCALL(mprotect),      ZCTLS_SYSCALL(rt_sigprocmask),
    ZCTLS_SYSCALL(shutdown),      ZCTLS_SYSCALL(readlinkat),
#ifdef SYS_readlink  // (not on aarch64)
    ZCTLS_SYSCALL(readlink),
#endif
    ZCTLS_SYSCALL(statx),         ZCTLS_SYSCALL(getpid),
    ZCTLS_SYSCALL(clock_gettime), ZCTLS_SYSCALL(lseek),
    ZCTLS_SYSCALL(ioctl),         ZCTLS_SYSCALL(gettid),
    ZCTLS_SYSCALL(fstat),         ZCTLS_SYSCALL(rt_sigreturn),
    ZCTLS_SYSCALL(sched_yield),
};
#undef ZCTLS_SYSCALL

// Installs a filter on this thread: every syscall in `list` allowed, any
// other kills the process (SECCOMP_RET_KILL_PROCESS).
bool allow_only(const std::string& list) {
  std::vector<sock_filter> prog = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
  };
  std::size_t start = 0;
  std::vector<long> allowed;
  while (start <= list.size()) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    const std::string name = list.substr(start, comma - start);
    start = comma + 1;
    if (name.empty()) continue;
    bool known = false;
    for (const NamedSyscall& s : kSyscalls)
      if (name == s.name) {
        allowed.push_back(s.nr);
        known = true;
      }
    if (!known) {
      say("unknown syscall in the list: " + name);
      return false;
    }
  }
  for (const long nr : allowed) {
    prog.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<__u32>(nr), 0, 1));
    prog.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  }
  prog.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
  const sock_fprog fprog{static_cast<unsigned short>(prog.size()), prog.data()};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) == 0;
}

int run_seccomp(const std::string& list, const std::string& statics, const std::string& fresh,
                const std::string& priv) {
  const k::LoopbackPair pair;
  if (!make_ktls(pair)) return 1;
  Drain drain(pair.server());
  if (!send_file(pair.client(), statics)) return 1;
  say(base(statics) + " flag=" + std::to_string(raw_flag(pair.client())));
  if (!allow_only(list)) return 1;
  for (const std::string& f : {fresh, priv, statics}) {
    if (f == statics) std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    if (!send_file(pair.client(), f)) return 1;
    say(base(f) + " flag=" + std::to_string(raw_flag(pair.client())));
  }
  const bool closed = close(pair.client()) == 0;
  say(closed ? "closed" : "close failed");
  drain.finish();
  return closed ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 3 && a[0] == "stderr-full") return run_stderr_full(a[1], std::stoi(a[2]));
  if (a.size() == 3 && a[0] == "vfork") return run_vfork(a[1], a[2]);
  if (a.size() >= 4 && a[0] == "small-stack")
    return run_small_stack(std::stoul(a[1]), a[2], {a.begin() + 3, a.end()});
  if (a.size() >= 3 && a[0] == "coroutine")
    return run_coroutine(std::stoul(a[1]), {a.begin() + 2, a.end()});
  if (a.size() == 2 && a[0] == "chdir") return run_chdir(a[1]);
  if (a.size() == 2 && a[0] == "emfile") return run_emfile(a[1]);
  if (a.size() == 3 && a[0] == "rename") return run_rename(a[1], a[2]);
  if (a.size() == 4 && a[0] == "bind-late") return run_bind_late(a[1], a[2], a[3]);
  if (a.size() == 2 && a[0] == "chroot") return run_chroot(a[1]);
  if (a.size() == 5 && a[0] == "seccomp") return run_seccomp(a[1], a[2], a[3], a[4]);
  std::fprintf(
      stderr,
      "usage: %s stderr-full|vfork|small-stack|coroutine|chdir|emfile|rename|bind-late|seccomp "
      "...\n",
      argv[0]);
  return 2;
}
