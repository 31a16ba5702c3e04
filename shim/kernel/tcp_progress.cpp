// How far a TCP connection has got: bytes written into it and bytes the
// peer acknowledged, from TCP_INFO.  Its own file: the kernel's struct
// tcp_info (<linux/tcp.h>, with tcpi_bytes_acked/sent/retrans and
// tcpi_notsent_bytes) cannot share a unit with glibc's <netinet/tcp.h>.
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>

#include "kernel/ktls.h"

namespace zctls::kernel {

bool tcp_progress(int fd, const SockoptCalls& calls, TcpProgress* out) noexcept {
  const int saved = errno;
  tcp_info info{};
  socklen_t len = sizeof info;
  const bool ok = calls.get(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 &&
                  len >= offsetof(tcp_info, tcpi_bytes_retrans) + sizeof info.tcpi_bytes_retrans;
  errno = saved;
  if (!ok) return false;  // kernel older than 4.19, or not TCP
  // Written = everything transmitted once, plus what is queued but not yet
  // transmitted.  (tcpi_bytes_sent counts retransmissions again.)
  out->written = info.tcpi_bytes_sent - info.tcpi_bytes_retrans + info.tcpi_notsent_bytes;
  out->acked = info.tcpi_bytes_acked;
  out->retransmitted = info.tcpi_bytes_retrans;
  return true;
}

}  // namespace zctls::kernel
