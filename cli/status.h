// `zctls status`: every kTLS socket on the host with its process, and the
// processes running zctls with their counters.
#pragma once

#include <string>
#include <vector>

#include "stats_dir.h"
#include "zctls/stats.h"
#include "kernel/tls_diag.h"

namespace zctls::cli {

struct SocketOwner {
  int pid = 0;
  std::string comm;
  int fd = -1;  // one of its fds for the socket
  // owners_without_zctls: it maps libzctls.so (the hooks) but not
  // libzctls-engine.so, which the hooks load at a process's first kTLS TX
  // socket; false: it maps neither.
  bool hooks_only = false;
};

struct StatusSocket {
  kernel::TlsSocket socket;
  std::vector<SocketOwner> owners;  // processes holding an fd of it
  // sock_diag reports TLS_TX_ZEROCOPY_RO only for device offload (hw); on a
  // sw or hw_record TX socket the flag is read from an owner's fd with
  // pidfd_getfd + getsockopt.  Empty = read; else why it could not be.
  std::string flag_error;
};

// Pure formatting (unit-tested with recorded sock_diag replies).
// `without_zctls`: processes holding kTLS sockets that do not map the
// engine: no libzctls.so at all (an nginx whose binary upgrade dropped
// LD_PRELOAD), or the hooks alone (the engine failed to load, or the
// process has not keyed or sent on a kTLS socket yet: an inherited one).
std::string format_status(const std::vector<StatusSocket>& sockets,
                          const std::vector<ProcessStats>& shim_processes,
                          const std::vector<SocketOwner>& without_zctls = {});
std::string format_status_json(const std::vector<StatusSocket>& sockets,
                               const std::vector<ProcessStats>& shim_processes,
                               const std::vector<SocketOwner>& without_zctls = {});

// Owners of `sockets` whose /proc/PID/maps has no libzctls-engine.so, each
// once (hooks_only: libzctls.so is there).
std::vector<SocketOwner> owners_without_zctls(const std::vector<StatusSocket>& sockets);

// Gathers and prints; returns the exit status.
int run_status(bool json, const std::string& stats_dir);

}  // namespace zctls::cli
