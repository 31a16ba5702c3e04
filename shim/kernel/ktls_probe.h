// What this host's kernel can do with kTLS, found by trying it on loopback
// sockets (the only way: no sysctl or file tells whether the tls ULP can be
// attached or which options a given kernel accepts).
#pragma once

#include <string>
#include <vector>

#include "kernel/kernel_quirks.h"
#include "kernel/ktls.h"

namespace zctls::kernel {

struct CipherSupport {
  TlsVersion version;
  Cipher cipher;
  int tx_error;  // errno value of setsockopt(TLS_TX), 0 = accepted
  int rx_error;  // errno value of setsockopt(TLS_RX), 0 = accepted
};

struct KtlsCapabilities {
  std::string kernel_release;  // uname -r
  int socket_error = 0;        // could not make a loopback TCP pair at all
  int ulp_error = 0;           // setsockopt(TCP_ULP, "tls")
  std::vector<CipherSupport> ciphers;
  int zerocopy_error = 0;            // first failing set/get of TLS_TX_ZEROCOPY_RO
  bool zerocopy_reads_back = false;  // set 1 read 1, then set 0 read 0
  int rx_no_pad_error = 0;           // setsockopt(TLS_RX_EXPECT_NO_PAD, 1), TLS 1.3 RX
  QuirkVerdict unaligned_bug;        // the known zerocopy corruption (kernel_quirks.h)

  bool ktls_usable() const noexcept;      // ULP attaches and some TX key installs
  bool zerocopy_usable() const noexcept;  // ... and the flag is accepted and kept
};

KtlsCapabilities probe_ktls();

}  // namespace zctls::kernel
