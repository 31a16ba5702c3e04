// How the shim tells software kTLS from device offload ([kernel] offload =
// "auto"): the interfaces' ethtool answers, and a socket's TXCONF.  (The
// kernel's own answers for a software socket: ktls/KtlsPair.
// TheKernelSaysTheTxPathIsSoftware; the hw and hw_record replies' parse:
// tls_diag_test.cpp.)
#include "kernel/tx_offload.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace zctls::kernel {
namespace {

NicOffload nic(const char* name, bool available, bool active, int error = 0) {
  NicOffload n;
  n.name = name;
  n.available = available;
  n.active = active;
  n.error = error;
  return n;
}

TEST(HostMayOffload, OnlyAnInterfaceThatOffersTheFeatureOrCannotSay) {
  EXPECT_FALSE(host_may_offload({nic("lo", false, false), nic("eth0", false, false)}));
  // Offered but off: a socket keyed while it was on keeps the device.
  EXPECT_TRUE(host_may_offload({nic("lo", false, false), nic("ens1f0np0", true, false)}));
  EXPECT_TRUE(host_may_offload({nic("ens1f0np0", true, true)}));
  // Gone since listed, no ethtool, or a kernel without the feature's name.
  EXPECT_FALSE(
      host_may_offload({nic("lo", false, false), nic("veth1", false, false, ENODEV),
                        nic("tun0", false, false, EOPNOTSUPP), nic("eth0", false, false, ENOENT)}));
  // Anything else: in doubt, it may.
  EXPECT_TRUE(host_may_offload({nic("lo", false, false), nic("eth0", false, false, EPERM)}));
  // No list (EMFILE, no /sys), or not one interface answered (a /sys of
  // another network namespace: every name ENODEV here): in doubt.
  EXPECT_TRUE(host_may_offload({}));
  EXPECT_TRUE(host_may_offload({nic("", false, false, EMFILE)}));
  EXPECT_TRUE(host_may_offload({nic("lo", false, false), nic("", false, false, ENOENT)}));
  EXPECT_TRUE(
      host_may_offload({nic("eth0", false, false, ENODEV), nic("eth1", false, false, ENODEV)}));
}

TEST(OffloadOf, TxconfSwIsSoftwareHwIsTheDevicesTheRestUnknown) {
  TlsSocket s;
  for (const auto& [conf, mode] :
       {std::pair{TlsConf::sw, TxOffload::software}, std::pair{TlsConf::hw, TxOffload::device},
        std::pair{TlsConf::hw_record, TxOffload::device},
        std::pair{TlsConf::base, TxOffload::unknown},
        std::pair{TlsConf::unknown, TxOffload::unknown}}) {
    s.tx = conf;
    EXPECT_EQ(offload_of(s), mode) << to_string(conf);
  }
  EXPECT_STREQ(to_string(TxOffload::software), "software");
  EXPECT_STREQ(to_string(TxOffload::device), "device");
}

}  // namespace
}  // namespace zctls::kernel
