// zctls_test_secure_probe FILE: linked against libzctls.so (so that the
// shim is loaded even where LD_PRELOAD is not: a setuid program), it sends
// FILE with sendfile over a kTLS loopback connection and prints whether the
// process runs in secure-execution mode, which library answered sendfile,
// and TLS_TX_ZEROCOPY_RO as a raw getsockopt reads it after the send.
// Used by tests/integration/secure-exec, on a kTLS kernel.
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/tls.h>
#include <sys/auxv.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "kernel/ktls.h"
#include "kernel/loopback.h"

namespace k = zctls::kernel;

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  Dl_info info{};
  dladdr(reinterpret_cast<void*>(&sendfile), &info);
  const char* name = info.dli_fname != nullptr ? std::strrchr(info.dli_fname, '/') : nullptr;
  std::printf("AT_SECURE=%lu sendfile-from=%s\n", getauxval(AT_SECURE),
              name != nullptr ? name + 1 : "?");
  const k::LoopbackPair pair;
  k::KeyMaterial key{};
  if (pair.error() != 0 || k::attach_tls_ulp(pair.client()) != 0 ||
      k::install_key(pair.client(), k::Direction::tx, k::TlsVersion::tls13, k::Cipher::aes_gcm_128,
                     key) != 0) {
    std::printf("no kTLS\n");
    return 1;
  }
  const int fd = open(argv[1], O_RDONLY);
  struct stat st {};
  if (fd < 0 || fstat(fd, &st) != 0) return 1;
  // The peer never reads: the file must fit in the socket buffers.
  const ssize_t n = sendfile(pair.client(), fd, nullptr, static_cast<std::size_t>(st.st_size));
  unsigned flag = 99;
  socklen_t len = sizeof flag;
  getsockopt(pair.client(), SOL_TLS, TLS_TX_ZEROCOPY_RO, &flag, &len);
  std::printf("sent %zd flag=%u\n", n, flag);
  return n == st.st_size ? 0 : 1;
}
