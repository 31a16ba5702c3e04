// Which network interfaces can do TLS TX offload (the ethtool feature
// "tls-hw-tx-offload"): only there does TLS_TX_ZEROCOPY_RO save a copy.
#pragma once

#include <string>
#include <vector>

namespace zctls::kernel {

struct NicOffload {
  std::string name;
  bool available = false;  // the driver offers the feature
  bool active = false;     // and it is on
  int error = 0;           // errno of the ethtool query, 0 = answered
};

// Every interface in /sys/class/net, asked with the ethtool ioctls
// (ETHTOOL_GSTRINGS for the feature's bit, ETHTOOL_GFEATURES for its state).
// If the list itself cannot be made (no socket: EMFILE; no /sys), one
// entry with an empty name and that errno.
std::vector<NicOffload> tls_offload_nics();

}  // namespace zctls::kernel
