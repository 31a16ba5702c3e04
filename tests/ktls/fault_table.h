// The fault-injection table: every call the shim wraps (and every call the
// shim makes on its own behind a send) made to fail with each plausible
// errno, and sendfile made to return short counts.  fault_table.cpp runs the
// rows; fault_table_test.cpp runs it with and without the shim and checks
// the expectations written here.
#pragma once

#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace zctls_fault_table {

// What the row's application does around the fault.
enum class Action {
  // The application's own calls, the fault on that call.
  sendfile_offset,     // sendfile(sock, static file, &off, n)
  sendfile_position,   // sendfile(sock, static file, NULL, n): file position
  sendfile64_offset,   // sendfile64(...), as nginx calls it
  ssl_sendfile,        // SSL_sendfile: failures only (needs no SSL object)
  setsockopt_sndbuf,   // setsockopt(SOL_SOCKET, SO_SNDBUF)
  setsockopt_tls_key,  // setsockopt(SOL_TLS, TLS_TX, key): kTLS never starts
  setsockopt_flag,     // the application's own TLS_TX_ZEROCOPY_RO = 1
  close_socket,        // close(sock) after a zerocopy send
  dup2_over,           // dup2(plain, sock) after a zerocopy send
  dup3_over,           // dup3(plain, sock, O_CLOEXEC) after a zerocopy send
  close_range_socket,  // close_range(sock, sock, 0) after a zerocopy send
  // Calls the shim makes itself while the application sends: the
  // application's sendfile must not notice them failing.
  shim_flag_on,   // TLS_TX_ZEROCOPY_RO = 1 before a static-file send
  shim_flag_off,  // TLS_TX_ZEROCOPY_RO = 0 before a private-file send
  shim_tcp_info,  // TCP_INFO: are the earlier zerocopy bytes acknowledged
  shim_classify,  // TCP_ULP: what is this socket (one it never saw)
};

// The call a row's fault is armed on (libzctls_test_faults.so): the
// function and, for setsockopt/getsockopt, the level and option (-1: any).
struct Target {
  const char* call;
  int level = -1;
  int optname = -1;
};

// Everything the table knows about an action, in one place.
struct ActionInfo {
  Action action;
  const char* name;    // the rows' name prefix
  Target target;       // where the fault is armed
  bool sends_first;    // a zerocopy send on the socket before the faulted step
  bool shim_internal;  // the faulted call is one the shim makes, not the application
};

inline const std::vector<ActionInfo>& actions() {
  static const std::vector<ActionInfo> all = {
      {Action::sendfile_offset, "sendfile", {"sendfile"}, false, false},
      {Action::sendfile_position, "sendfile-pos", {"sendfile"}, false, false},
      {Action::sendfile64_offset, "sendfile64", {"sendfile64"}, false, false},
      {Action::ssl_sendfile, "SSL_sendfile", {"SSL_sendfile"}, false, false},
      {Action::setsockopt_sndbuf,
       "setsockopt-sndbuf",
       {"setsockopt", SOL_SOCKET, SO_SNDBUF},
       false,
       false},
      {Action::setsockopt_tls_key,
       "setsockopt-tls-key",
       {"setsockopt", SOL_TLS, TLS_TX},
       false,
       false},
      {Action::setsockopt_flag,
       "setsockopt-flag",
       {"setsockopt", SOL_TLS, TLS_TX_ZEROCOPY_RO},
       false,
       false},
      {Action::close_socket, "close", {"close"}, true, false},
      {Action::dup2_over, "dup2", {"dup2"}, true, false},
      {Action::dup3_over, "dup3", {"dup3"}, true, false},
      {Action::close_range_socket, "close_range", {"close_range"}, true, false},
      {Action::shim_flag_on,
       "shim-flag-on",
       {"setsockopt", SOL_TLS, TLS_TX_ZEROCOPY_RO},
       false,
       true},
      {Action::shim_flag_off,
       "shim-flag-off",
       {"setsockopt", SOL_TLS, TLS_TX_ZEROCOPY_RO},
       true,
       true},
      {Action::shim_tcp_info, "shim-tcp-info", {"getsockopt", IPPROTO_TCP, TCP_INFO}, true, true},
      {Action::shim_classify, "shim-classify", {"getsockopt", SOL_TCP, TCP_ULP}, false, true},
  };
  return all;
}

struct Row {
  std::string name;
  const ActionInfo* what;
  int err = 0;           // the injected errno, or 0 for a short count
  long short_count = 0;  // bytes the real sendfile is allowed to move
};

inline const std::vector<int>& plausible_errnos() {
  static const std::vector<int> errs = {EINTR, EAGAIN,   EBADF,  EINVAL, ENOPROTOOPT,
                                        EPIPE, ENOTCONN, ENOMEM, EFAULT};
  return errs;
}

// Every action with every errno, then the short counts: none, one byte,
// one byte short of a page, one byte more than a TLS record, one byte
// short of the whole request (kSendCount).
inline constexpr long kSendCount = 20000;

inline std::vector<Row> rows() {
  std::vector<Row> out;
  for (const ActionInfo& a : actions())
    for (const int e : plausible_errnos())
      out.push_back({std::string(a.name) + "/" + strerrorname_np(e), &a, e, 0});
  for (const ActionInfo& a : actions()) {
    if (a.target.call != std::string("sendfile") && a.target.call != std::string("sendfile64"))
      continue;
    for (const long n : {0L, 1L, 4095L, 16385L, kSendCount - 1})
      out.push_back({std::string(a.name) + "/short-" + std::to_string(n), &a, 0, n});
  }
  return out;
}

}  // namespace zctls_fault_table
