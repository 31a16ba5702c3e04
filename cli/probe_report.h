// Turns a KtlsCapabilities into what `zctls probe` prints and returns.
// Pure: no syscalls, so the wording and the verdict are unit-tested.
#pragma once

#include <string>
#include <vector>

#include "openssl_ktls.h"
#include "kernel/kernel_config.h"
#include "kernel/ktls_probe.h"
#include "kernel/nic_offload.h"

namespace zctls::cli {

// Exit statuses of `zctls probe`, from best to worst.
enum ProbeVerdict : int {
  kZerocopyUsable = 0,       // kTLS works and TLS_TX_ZEROCOPY_RO is accepted
  kKtlsWithoutZerocopy = 1,  // kTLS works, the flag does not (kernel < 5.19)
  kNoKtls = 2,               // the tls ULP cannot be attached
};

struct OpenSslInfo {
  std::string version;  // OpenSSL_version(OPENSSL_VERSION) of the libcrypto in use
  bool ktls = false;    // built with kTLS support (OPENSSL_NO_KTLS undefined)
  // Loopback handshakes (openssl_ktls.h); empty when not tried because the
  // kernel has no kTLS to offer.
  std::vector<OpenSslHandshake> handshakes;
};
OpenSslInfo openssl_info();

// Everything `zctls probe` reports.
struct HostReport {
  kernel::KtlsCapabilities caps;
  std::vector<kernel::NicOffload> nics;
  kernel::KernelTlsConfig kernel_config;  // which NIC drivers have TLS offload built
  bool tls13_software = false;  // kernel::device_offload_is_tls12_only for this kernel
  OpenSslInfo openssl;
};

ProbeVerdict verdict(const kernel::KtlsCapabilities& caps) noexcept;

// One verdict line, then indented details.
std::string format_probe(const HostReport& host);
// The same as one JSON object (for scripts and configuration management).
std::string format_probe_json(const HostReport& host);

}  // namespace zctls::cli
