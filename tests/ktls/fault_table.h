// The fault-injection table: every call the shim wraps (and every call the
// shim makes on its own behind a send) made to fail with each plausible
// errno, and sendfile made to return short counts.  fault_table.cpp runs the
// rows; fault_table_test.cpp runs it with and without the shim and checks
// the expectations written here.
#pragma once

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

struct Row {
  std::string name;
  Action action;
  int err = 0;           // the injected errno, or 0 for a short count
  long short_count = 0;  // bytes the real sendfile is allowed to move
};

inline bool is_shim_internal(Action a) {
  return a == Action::shim_flag_on || a == Action::shim_flag_off || a == Action::shim_tcp_info ||
         a == Action::shim_classify;
}

inline const char* action_name(Action a) {
  switch (a) {
    case Action::sendfile_offset:
      return "sendfile";
    case Action::sendfile_position:
      return "sendfile-pos";
    case Action::sendfile64_offset:
      return "sendfile64";
    case Action::ssl_sendfile:
      return "SSL_sendfile";
    case Action::setsockopt_sndbuf:
      return "setsockopt-sndbuf";
    case Action::setsockopt_tls_key:
      return "setsockopt-tls-key";
    case Action::setsockopt_flag:
      return "setsockopt-flag";
    case Action::close_socket:
      return "close";
    case Action::dup2_over:
      return "dup2";
    case Action::dup3_over:
      return "dup3";
    case Action::close_range_socket:
      return "close_range";
    case Action::shim_flag_on:
      return "shim-flag-on";
    case Action::shim_flag_off:
      return "shim-flag-off";
    case Action::shim_tcp_info:
      return "shim-tcp-info";
    case Action::shim_classify:
      return "shim-classify";
  }
  return "?";
}

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
  const Action all[] = {
      Action::sendfile_offset, Action::sendfile_position,  Action::sendfile64_offset,
      Action::ssl_sendfile,    Action::setsockopt_sndbuf,  Action::setsockopt_tls_key,
      Action::setsockopt_flag, Action::close_socket,       Action::dup2_over,
      Action::dup3_over,       Action::close_range_socket, Action::shim_flag_on,
      Action::shim_flag_off,   Action::shim_tcp_info,      Action::shim_classify,
  };
  std::vector<Row> out;
  for (const Action a : all)
    for (const int e : plausible_errnos())
      out.push_back({std::string(action_name(a)) + "/" + strerrorname_np(e), a, e, 0});
  const Action sends[] = {Action::sendfile_offset, Action::sendfile_position,
                          Action::sendfile64_offset};
  for (const Action a : sends)
    for (const long n : {0L, 1L, 4095L, 16385L, kSendCount - 1})
      out.push_back({std::string(action_name(a)) + "/short-" + std::to_string(n), a, 0, n});
  return out;
}

}  // namespace zctls_fault_table
