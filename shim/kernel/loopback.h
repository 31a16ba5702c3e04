// A connected TCP pair over 127.0.0.1: what the kTLS probe and the tests
// attach the tls ULP to.  Closing is the owner's job (RAII).
#pragma once

namespace zctls::kernel {

class LoopbackPair {
 public:
  LoopbackPair() noexcept;  // check error() before use
  ~LoopbackPair();
  LoopbackPair(const LoopbackPair&) = delete;
  LoopbackPair& operator=(const LoopbackPair&) = delete;

  int error() const noexcept { return error_; }  // errno value, 0 = connected
  int client() const noexcept { return client_; }
  int server() const noexcept { return server_; }

 private:
  int client_ = -1;
  int server_ = -1;
  int error_ = 0;
};

}  // namespace zctls::kernel
