#include "kernel/nic_offload.h"

#include <dirent.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

namespace zctls::kernel {
namespace {

constexpr const char* kFeature = "tls-hw-tx-offload";

int ethtool(int sock, const std::string& name, void* data) {
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name.c_str());
  ifr.ifr_data = static_cast<char*>(data);
  return ioctl(sock, SIOCETHTOOL, &ifr) == 0 ? 0 : errno;
}

// The bit of kFeature in the netdev feature set, or an errno value < 0.
int feature_bit(int sock, const std::string& name) {
  // ethtool_sset_info ends in a flexible array: one u32 per set asked for.
  alignas(ethtool_sset_info)
      std::uint8_t sset_buf[sizeof(ethtool_sset_info) + sizeof(std::uint32_t)]{};
  auto* sset = reinterpret_cast<ethtool_sset_info*>(sset_buf);
  sset->cmd = ETHTOOL_GSSET_INFO;
  sset->sset_mask = 1ULL << ETH_SS_FEATURES;
  if (const int err = ethtool(sock, name, sset); err != 0) return -err;
  const std::uint32_t count = sset->sset_mask != 0 ? sset->data[0] : 0;
  const std::size_t bytes = sizeof(ethtool_gstrings) + count * ETH_GSTRING_LEN;
  auto buf = std::make_unique<std::uint8_t[]>(bytes);
  std::memset(buf.get(), 0, bytes);
  auto* strings = reinterpret_cast<ethtool_gstrings*>(buf.get());
  strings->cmd = ETHTOOL_GSTRINGS;
  strings->string_set = ETH_SS_FEATURES;
  strings->len = count;
  if (const int err = ethtool(sock, name, strings); err != 0) return -err;
  for (std::uint32_t i = 0; i < strings->len; ++i) {
    const char* s = reinterpret_cast<const char*>(strings->data) + i * ETH_GSTRING_LEN;
    if (strncmp(s, kFeature, ETH_GSTRING_LEN) == 0) return static_cast<int>(i);
  }
  return -ENOENT;
}

NicOffload query(int sock, const std::string& name) {
  NicOffload nic;
  nic.name = name;
  const int bit = feature_bit(sock, name);
  if (bit < 0) {
    nic.error = -bit;
    return nic;
  }
  const std::uint32_t blocks = static_cast<std::uint32_t>(bit) / 32 + 1;
  const std::size_t bytes = sizeof(ethtool_gfeatures) + blocks * sizeof(ethtool_get_features_block);
  auto buf = std::make_unique<std::uint8_t[]>(bytes);
  std::memset(buf.get(), 0, bytes);
  auto* features = reinterpret_cast<ethtool_gfeatures*>(buf.get());
  features->cmd = ETHTOOL_GFEATURES;
  features->size = blocks;
  if (const int err = ethtool(sock, name, features); err != 0) {
    nic.error = err;
    return nic;
  }
  const ethtool_get_features_block& block = features->features[bit / 32];
  const std::uint32_t mask = 1U << (bit % 32);
  nic.available = ((block.available | block.active) & mask) != 0;
  nic.active = (block.active & mask) != 0;
  return nic;
}

}  // namespace

std::vector<NicOffload> tls_offload_nics() {
  std::vector<NicOffload> nics;
  // A list that cannot be made is one entry with no name and the errno.
  const auto failed = [&nics] {
    NicOffload unlisted;
    unlisted.error = errno != 0 ? errno : EIO;
    nics.push_back(unlisted);
  };
  const int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) {
    failed();
    return nics;
  }
  if (DIR* dir = opendir("/sys/class/net")) {
    while (const dirent* entry = readdir(dir))
      if (entry->d_name[0] != '.') nics.push_back(query(sock, entry->d_name));
    closedir(dir);
  } else {
    failed();
  }
  close(sock);
  std::sort(nics.begin(), nics.end(),
            [](const NicOffload& a, const NicOffload& b) { return a.name < b.name; });
  return nics;
}

}  // namespace zctls::kernel
