#include "kernel/kernel_config.h"

#include <fstream>
#include <iterator>
#include <sstream>

namespace zctls::kernel {

const TlsOffloadDriver kTlsOffloadDrivers[4] = {
    // drivers/net/ethernet/mellanox/mlx5/core/en_accel/ktls*.c
    {"mlx5", "NVIDIA/Mellanox ConnectX-6 Dx and later", "CONFIG_MLX5_EN_TLS", ""},
    // drivers/net/ethernet/netronome/nfp/crypto/tls.c, built with TLS_DEVICE
    {"nfp", "Netronome Agilio", "CONFIG_NFP", "CONFIG_TLS_DEVICE"},
    // drivers/net/ethernet/chelsio/inline_crypto/ch_ktls/
    {"ch_ktls", "Chelsio T6", "CONFIG_CHELSIO_TLS_DEVICE", ""},
    // drivers/net/ethernet/fungible/funeth/funeth_ktls.c, built with TLS_DEVICE
    {"funeth", "Fungible", "CONFIG_FUN_ETH", "CONFIG_TLS_DEVICE"},
};

namespace {

// The value of `symbol` in a .config: 'y', 'm', or 'n' for "is not set"
// and absent.
char value_of(const std::string& text, const std::string& symbol) {
  const std::string key = symbol + "=";
  for (std::size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + 1)) {
    if (at != 0 && text[at - 1] != '\n') continue;
    const char v = at + key.size() < text.size() ? text[at + key.size()] : 'n';
    return v == 'y' || v == 'm' ? v : 'n';
  }
  return 'n';
}

// Built in as a whole: the weaker of the two ('m' if either is a module).
char both(char a, char b) { return a == 'n' || b == 'n' ? 'n' : a == 'm' || b == 'm' ? 'm' : 'y'; }

}  // namespace

KernelTlsConfig parse_kernel_tls_config(const std::string& text) {
  KernelTlsConfig config;
  config.tls = value_of(text, "CONFIG_TLS");
  config.tls_device = value_of(text, "CONFIG_TLS_DEVICE");
  for (const TlsOffloadDriver& d : kTlsOffloadDrivers) {
    DriverBuild b;
    b.driver = &d;
    b.value = value_of(text, d.symbol);
    if (b.value == 'n') b.unset = d.symbol;
    if (d.also[0] != '\0') {
      const char also = value_of(text, d.also);
      if (b.value != 'n' && also == 'n') b.unset = d.also;
      b.value = both(b.value, also);
    }
    config.drivers.push_back(b);
  }
  return config;
}

KernelTlsConfig read_kernel_tls_config(const std::string& release) {
  const std::string candidates[] = {"/boot/config-" + release,
                                    "/usr/lib/modules/" + release + "/config",
                                    "/lib/modules/" + release + "/build/.config"};
  for (const std::string& path : candidates) {
    std::ifstream in(path);
    if (!in) continue;
    std::ostringstream text;
    text << in.rdbuf();
    KernelTlsConfig config = parse_kernel_tls_config(text.str());
    config.path = path;
    config.tried.assign(std::begin(candidates), std::end(candidates));
    return config;
  }
  KernelTlsConfig none;
  none.tried.assign(std::begin(candidates), std::end(candidates));
  return none;
}

}  // namespace zctls::kernel
