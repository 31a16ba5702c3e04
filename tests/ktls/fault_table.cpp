// zctls_test_fault_table: runs every row of fault_table.h against a fresh
// loopback connection (kTLS, or plain TCP) with libzctls_test_faults.so
// preloaded, and prints what the application saw.  It knows nothing about
// zctls; fault_table_test.cpp runs it with and without the shim.
//
//   zctls_test_fault_table ktls|plain STATIC PRIVATE
//
// One line per row:
//   <name> app: <what the application saw> | fired=F flag=X flag_then=Y
// Everything between "app:" and "|" must be identical with and without the
// shim: return values, errno (a sentinel errno must survive a success),
// offsets, file positions, a follow-up send, and the bytes the peer read.
// After "|": whether the fault fired, and the raw flag after the faulted
// step and after the follow-up send (getsockopt by this program).
#include "fault_table.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>

#include "ktls_app.h"

using namespace zctls_ktls_app;
using namespace zctls_fault_table;

namespace {

using ArmFn = void (*)(const char*, int, int, int, long);
using DisarmFn = void (*)();
using FiredFn = int (*)();

ArmFn g_arm;
DisarmFn g_disarm;
FiredFn g_fired;

// errno before each call: a success must leave it alone.
constexpr int kSentinel = EDOM;

std::string errno_name(int e) { return e == 0 ? "0" : strerrorname_np(e); }

// sendfile of kSendCount bytes from `from`; "rc=N errno=E off=O".
std::string send_at(int sock, int file, off_t from) {
  off_t off = from;
  errno = kSentinel;
  const ssize_t rc = sendfile(sock, file, &off, kSendCount);
  const int e = errno;
  return "rc=" + std::to_string(rc) + " errno=" + errno_name(e) + " off=" + std::to_string(off);
}

std::string run_row(const Row& row, bool ktls, int static_fd, int private_fd) {
  const k::LoopbackPair pair;
  if (pair.error() != 0) return "no loopback pair: " + errno_name(pair.error());
  int sock = pair.client();
  if (ktls && row.what->action == Action::setsockopt_tls_key) {
    k::attach_tls_ulp(sock);  // the key is the faulted step; the peer reads plaintext
  } else if (ktls && !make_ktls(pair)) {
    return "kTLS setup failed";
  }
  Drain drain(pair.server());

  int spare = -1;  // a second fd: the plain socket dup2'd over, or the dup
  std::string prep;
  if (row.what->sends_first) prep = "prep " + send_at(sock, static_fd, 0) + " ; ";
  if (row.what->action == Action::dup2_over || row.what->action == Action::dup3_over)
    spare = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (row.what->action == Action::shim_classify) {
    spare = dup(sock);  // dup(2) is not wrapped: the shim never saw this number
    sock = spare;
  }

  const Target& t = row.what->target;
  g_arm(t.call, t.level, t.optname, row.err, row.short_count);
  long rc = 0;
  off_t off = 4096;
  off64_t off64 = 4096;
  lseek(static_fd, 4096, SEEK_SET);
  errno = kSentinel;
  switch (row.what->action) {
    case Action::sendfile_offset:
      rc = sendfile(sock, static_fd, &off, kSendCount);
      break;
    case Action::sendfile_position:
      rc = sendfile(sock, static_fd, nullptr, kSendCount);
      break;
    case Action::sendfile64_offset:
      rc = sendfile64(sock, static_fd, &off64, kSendCount);
      off = static_cast<off_t>(off64);
      break;
    case Action::ssl_sendfile:
      // Never reaches libssl: the fault fires first (see the injector).
      rc = SSL_sendfile(nullptr, static_fd, 4096, kSendCount, 0);
      break;
    case Action::setsockopt_sndbuf: {
      const int size = 1 << 20;
      rc = setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
      break;
    }
    case Action::setsockopt_tls_key: {
      const int err = k::install_key(sock, k::Direction::tx, k::TlsVersion::tls13,
                                     k::Cipher::aes_gcm_128, key());
      rc = err == 0 ? 0 : -1;
      errno = err == 0 ? errno : err;
      break;
    }
    case Action::setsockopt_flag: {
      const unsigned int one = 1;
      rc = setsockopt(sock, SOL_TLS, TLS_TX_ZEROCOPY_RO, &one, sizeof one);
      break;
    }
    case Action::close_socket:
      rc = close(sock);
      break;
    case Action::dup2_over:
      rc = dup2(spare, sock);
      break;
    case Action::dup3_over:
      rc = dup3(spare, sock, O_CLOEXEC);
      break;
    case Action::close_range_socket:
      rc = close_range(static_cast<unsigned>(sock), static_cast<unsigned>(sock), 0);
      break;
    case Action::shim_flag_on:
    case Action::shim_classify:
      off = 0;
      rc = sendfile(sock, static_fd, &off, kSendCount);
      break;
    case Action::shim_flag_off:
    case Action::shim_tcp_info:
      off = 0;
      rc = sendfile(sock, private_fd, &off, kSendCount);
      break;
  }
  const int err = errno;
  const off_t pos = lseek(static_fd, 0, SEEK_CUR);
  const int fired = g_fired();
  g_disarm();
  const int flag = raw_flag(sock);

  // The same socket carries on: the application sends a file the rules
  // send by copy (the static one after its own flag call failed).
  const std::string then =
      send_at(sock, row.what->action == Action::setsockopt_flag ? static_fd : private_fd, 0);
  const int flag_then = raw_flag(sock);

  shutdown(sock, SHUT_WR);
  const std::string received = drain.finish();
  if (spare >= 0) close(spare);
  return prep + "call rc=" + std::to_string(rc) + " errno=" + errno_name(err) +
         " off=" + std::to_string(off) + " pos=" + std::to_string(pos) + " ; then " + then + " ; " +
         received + " | fired=" + std::to_string(fired) + " flag=" + std::to_string(flag) +
         " flag_then=" + std::to_string(flag_then);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 || (std::string(argv[1]) != "ktls" && std::string(argv[1]) != "plain")) {
    std::fprintf(stderr, "usage: %s ktls|plain STATIC PRIVATE\n", argv[0]);
    return 2;
  }
  g_arm = reinterpret_cast<ArmFn>(dlsym(RTLD_DEFAULT, "zctls_fault_arm"));
  g_disarm = reinterpret_cast<DisarmFn>(dlsym(RTLD_DEFAULT, "zctls_fault_disarm"));
  g_fired = reinterpret_cast<FiredFn>(dlsym(RTLD_DEFAULT, "zctls_fault_fired"));
  if (g_arm == nullptr || g_disarm == nullptr || g_fired == nullptr) {
    std::fprintf(stderr, "libzctls_test_faults.so is not preloaded\n");
    return 2;
  }
  const bool ktls = std::string(argv[1]) == "ktls";
  const int static_fd = open(argv[2], O_RDONLY | O_CLOEXEC);
  const int private_fd = open(argv[3], O_RDONLY | O_CLOEXEC);
  if (static_fd < 0 || private_fd < 0) {
    std::perror("open");
    return 2;
  }
  for (const Row& row : rows())
    say(row.name + " app: " + run_row(row, ktls, static_fd, private_fd));
  return 0;
}
