#include "kernel/loopback.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace zctls::kernel {

LoopbackPair::LoopbackPair() noexcept {
  const int saved = errno;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listener, 1) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      (client_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
      connect(client_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      (server_ = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC)) < 0) {
    error_ = errno;
  }
  if (listener >= 0) close(listener);
  errno = saved;
}

LoopbackPair::~LoopbackPair() {
  if (client_ >= 0) close(client_);
  if (server_ >= 0) close(server_);
}

}  // namespace zctls::kernel
