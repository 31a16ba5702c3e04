// The running kernel's build configuration, as far as TLS device offload
// goes: a NIC offloads kTLS only if its driver was built with it, and
// distribution kernels leave some out (Debian's 6.1, 6.12 and 7.3 build
// Netronome's, not Mellanox's: CONFIG_MLX5_EN_TLS is off).  For
// `zctls probe`.
#pragma once

#include <string>
#include <vector>

namespace zctls::kernel {

// A driver that registers tlsdev_ops with NETIF_F_HW_TLS_TX upstream (read
// in Linux 6.1, 6.12 and 7.3: drivers/net/ethernet/...), and the config
// symbols that build that part of it.
struct TlsOffloadDriver {
  const char* driver;  // "mlx5"
  const char* nics;    // "NVIDIA/Mellanox ConnectX-6 Dx and later"
  const char* symbol;  // "CONFIG_MLX5_EN_TLS"
  // Also needed (empty: nothing): nfp and funeth build their TLS part
  // with CONFIG_TLS_DEVICE on.
  const char* also;
};
extern const TlsOffloadDriver kTlsOffloadDrivers[4];

struct DriverBuild {
  const TlsOffloadDriver* driver = nullptr;
  char value = 'n';  // 'y', 'm' or 'n' (unset), for its symbol and `also` together
  const char* unset = "";  // 'n': the symbol that is not set
};

struct KernelTlsConfig {
  std::string path;             // the file read; empty: none was readable
  std::vector<std::string> tried;  // where it was looked for
  char tls = 'n', tls_device = 'n';  // CONFIG_TLS, CONFIG_TLS_DEVICE
  std::vector<DriverBuild> drivers;  // one per kTlsOffloadDrivers entry
};

// Parses a kernel .config text (pure; unit-tested).
KernelTlsConfig parse_kernel_tls_config(const std::string& text);

// Reads the config of kernel `release` (uname -r) from the first readable
// of /boot/config-R (Debian up to 6.x, most distributions),
// /usr/lib/modules/R/config (Debian's 7.x packages) and
// /lib/modules/R/build/.config.  A gzipped /proc/config.gz is not read.
KernelTlsConfig read_kernel_tls_config(const std::string& release);

}  // namespace zctls::kernel
