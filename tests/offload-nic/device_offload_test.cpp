// The kernel's TLS device-offload TX path, without zctls, on the emulated
// NIC (zctlsnic.c): what a TLS 1.2 key over it becomes, what
// TLS_TX_ZEROCOPY_RO changes there, and the hazard zctls exists for.  Run
// in the NIC's server namespace (`tests/offload-nic/nic srv`); the peer's
// socket is made in the client namespace and decrypts in software.
// Witnesses are the kernel's own (sock_diag, /proc/net/tls_stat of each
// namespace, the receiver's recv) and the device's counters (ethtool -S).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/tls.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "kernel_test_support.h"
#include "offload_nic.h"
#include "kernel/ktls.h"
#include "kernel/tls_diag.h"
#include "kernel/tx_offload.h"

namespace k = zctls::kernel;
namespace nic = zctls_nic;
using namespace zctls_kernel_test;  // NOLINT(google-build-using-namespace)

namespace {

constexpr std::size_t kFileSize = 1 << 20;  // 64 records

long client_tls_stat(const char* name) {
  long value = -1;
  nic::in_netns(nic::kClientNetns, [&] { value = tls_stat(name); });
  return value;
}

k::KeyMaterial test_key() {
  k::KeyMaterial km;
  for (unsigned i = 0; i < sizeof km.key; ++i) km.key[i] = static_cast<std::uint8_t>(0x30 + i);
  for (unsigned i = 0; i < sizeof km.iv; ++i) km.iv[i] = static_cast<std::uint8_t>(i * 3);
  km.salt[0] = 0x11;
  return km;
}

class DeviceOffload : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(access(nic::kServerNetns, F_OK), 0)
        << "run in the emulated NIC's server namespace: tests/offload-nic/nic up, then nic srv";
    ASSERT_EQ(pair_.error(), 0) << "connection over the NIC: " << err_name(pair_.error());
    nic::set_loss(0);
  }
  void TearDown() override {
    nic::set_loss(0);
    // (EthtoolTurnsTheOffloadOffForNewKeys turns it off: never leave it so.)
    std::system("ethtool -K zcn0 tls-hw-tx-offload on > /dev/null 2>&1");
  }

  // The ULP and keys: TX on the sender (over the NIC), RX on the peer.
  void key(k::TlsVersion version) {
    ASSERT_EQ(k::attach_tls_ulp(tx()), 0);
    ASSERT_EQ(k::install_key(tx(), k::Direction::tx, version, k::Cipher::aes_gcm_128, test_key()),
              0);
    ASSERT_EQ(k::attach_tls_ulp(rx()), 0);
    ASSERT_EQ(k::install_key(rx(), k::Direction::rx, version, k::Cipher::aes_gcm_128, test_key()),
              0);
  }
  void set_flag(bool on) { ASSERT_EQ(k::set_tx_zerocopy(tx(), on), 0); }
  k::TlsConf tx_conf() {
    k::TlsSocket s;
    EXPECT_EQ(k::query_tls_socket(tx(), &s), 0);
    return s.tx;
  }
  int tx() const { return pair_.client(); }
  int rx() const { return pair_.server(); }

  // Sends `data` from a file, then reads it at the peer.
  void round_trip(const std::vector<unsigned char>& data) {
    const int file = temp_file_with(data);
    ASSERT_GE(file, 0);
    Reader reader(rx(), data.size());
    ASSERT_EQ(sendfile_all(tx(), file, data.size()), static_cast<ssize_t>(data.size()))
        << strerror(errno);
    const auto& got = reader.finish();
    close(file);
    ASSERT_EQ(reader.error(), 0) << err_name(reader.error());
    EXPECT_TRUE(got == data) << "the peer got other bytes (" << got.size() << " of "
                             << data.size() << ")";
  }

  // The hazard: one frame lost and its retransmissions held while the
  // file is written in place, then released.  Returns what the peer got;
  // *rx_error its recv's errno (0: all bytes, or EOF).
  std::vector<unsigned char> change_in_flight(const std::vector<unsigned char>& data,
                                              int* rx_error) {
    const int file = temp_file_with(data);
    EXPECT_GE(file, 0);
    // Room for the whole file in the send queue: sendfile returns while
    // the lost frame holds everything after it unacknowledged.
    const int big = 8 << 20;
    setsockopt(tx(), SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    const long long dropped = nic::counter("tx_tls_loss_dropped");
    const long long held = nic::counter("tx_tls_loss_held");
    EXPECT_TRUE(nic::set_loss(3)) << "the loss control: " << strerror(errno);
    Reader reader(rx(), data.size());
    EXPECT_EQ(sendfile_all(tx(), file, data.size()), static_cast<ssize_t>(data.size()))
        << strerror(errno);
    for (int i = 0; i < 500 && nic::counter("tx_tls_loss_dropped") == dropped; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(nic::counter("tx_tls_loss_dropped"), dropped + 1) << "no frame was lost";
    // In place: the same inode and pages, other bytes.
    const std::vector<unsigned char> other = pattern(data.size(), 99);
    EXPECT_EQ(pwrite(file, other.data(), other.size(), 0), static_cast<ssize_t>(other.size()));
    // TCP retransmits the lost frame (the NIC holds it) before the release.
    for (int i = 0; i < 500 && nic::counter("tx_tls_loss_held") == held; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_GT(nic::counter("tx_tls_loss_held"), held) << "no retransmission was held";
    nic::set_loss(0);
    std::vector<unsigned char> got = reader.finish();
    *rx_error = reader.error();
    close(file);
    return got;
  }

  nic::NicPair pair_;
};

TEST_F(DeviceOffload, ATls12KeyOverTheNicIsADeviceKey) {
  const long device_before = tls_stat("TlsTxDevice"), added = nic::counter("tx_tls_ctx");
  key(k::TlsVersion::tls12);
  EXPECT_EQ(tx_conf(), k::TlsConf::hw);
  EXPECT_EQ(tls_stat("TlsTxDevice"), device_before + 1);
  EXPECT_GE(tls_stat("TlsCurrTxDevice"), 1);
  EXPECT_EQ(nic::counter("tx_tls_ctx"), added + 1) << "tls_dev_add";
  const long long encrypted = nic::counter("tx_tls_encrypted_bytes");
  round_trip(pattern(kFileSize, 1));
  EXPECT_GE(nic::counter("tx_tls_encrypted_bytes") - encrypted, static_cast<long long>(kFileSize))
      << "the NIC made the records";
  // And the interface says it can (what zctls probe and offload = "auto"
  // look for).
  bool offered = false;
  for (const auto& n : k::tls_offload_nics())
    if (n.name == nic::kServerDevice) offered = n.available && n.active;
  EXPECT_TRUE(offered);
}

TEST_F(DeviceOffload, ATls13KeyOverTheNicStaysSoftware) {
  // tls_set_device_offload refuses anything but TLS 1.2 (EOPNOTSUPP) and
  // do_tls_setsockopt_conf falls back to software, silently: 6.1 to 7.3.
  const long sw_before = tls_stat("TlsTxSw"), added = nic::counter("tx_tls_ctx");
  key(k::TlsVersion::tls13);
  EXPECT_EQ(tx_conf(), k::TlsConf::sw);
  EXPECT_EQ(tls_stat("TlsTxSw"), sw_before + 1);
  EXPECT_EQ(nic::counter("tx_tls_ctx"), added);
  const long long encrypted = nic::counter("tx_tls_encrypted_bytes");
  round_trip(pattern(kFileSize / 4, 2));
  EXPECT_EQ(nic::counter("tx_tls_encrypted_bytes"), encrypted);
}

TEST_F(DeviceOffload, TheKernelReportsTheFlagOnlyOnADeviceSocket) {
  key(k::TlsVersion::tls12);
  k::TlsSocket s;
  ASSERT_EQ(k::query_tls_socket(tx(), &s), 0);
  EXPECT_FALSE(s.zerocopy);
  set_flag(true);
  ASSERT_EQ(k::query_tls_socket(tx(), &s), 0);
  EXPECT_TRUE(s.zerocopy) << "TLS_INFO_ZC_RO_TX";
  EXPECT_EQ(k::zerocopy_state(s.zerocopy, s.tx), k::ZerocopyState::effective);
}

TEST_F(DeviceOffload, WithTheFlagOnTheNicReadsTheFilesPages) {
  key(k::TlsVersion::tls12);
  set_flag(true);
  const long long cached = nic::counter("tx_tls_pagecache_bytes");
  const long long other = nic::counter("tx_tls_private_bytes");
  round_trip(pattern(kFileSize, 3));
  EXPECT_GE(nic::counter("tx_tls_pagecache_bytes") - cached, static_cast<long long>(kFileSize));
  // Only the records' headers and tags (29 bytes a record) were copies.
  EXPECT_LT(nic::counter("tx_tls_private_bytes") - other, static_cast<long long>(kFileSize / 100));
}

TEST_F(DeviceOffload, WithTheFlagOffTheNicReadsCopies) {
  key(k::TlsVersion::tls12);
  const long long cached = nic::counter("tx_tls_pagecache_bytes");
  const long long other = nic::counter("tx_tls_private_bytes");
  round_trip(pattern(kFileSize, 4));
  EXPECT_EQ(nic::counter("tx_tls_pagecache_bytes"), cached);
  EXPECT_GE(nic::counter("tx_tls_private_bytes") - other, static_cast<long long>(kFileSize));
}

TEST_F(DeviceOffload, AFileChangedInFlightBreaksTheRecordWithTheFlagOn) {
  key(k::TlsVersion::tls12);
  set_flag(true);
  const long failed = client_tls_stat("TlsDecryptError");
  const std::vector<unsigned char> data = pattern(kFileSize / 4, 5);
  int err = 0;
  const auto got = change_in_flight(data, &err);
  EXPECT_EQ(err, EBADMSG) << "the peer's kTLS read: " << err_name(err) << " after " << got.size()
                          << " bytes";
  EXPECT_EQ(client_tls_stat("TlsDecryptError"), failed + 1);
  EXPECT_LT(got.size(), data.size());
}

TEST_F(DeviceOffload, AFileChangedInFlightIsHarmlessWithTheFlagOff) {
  key(k::TlsVersion::tls12);
  const long failed = client_tls_stat("TlsDecryptError");
  const std::vector<unsigned char> data = pattern(kFileSize / 4, 6);
  int err = 0;
  const auto got = change_in_flight(data, &err);
  EXPECT_EQ(err, 0) << err_name(err);
  EXPECT_TRUE(got == data) << "the retransmission carries the bytes sent, not the file's new ones";
  EXPECT_EQ(client_tls_stat("TlsDecryptError"), failed);
}

TEST_F(DeviceOffload, EthtoolTurnsTheOffloadOffForNewKeys) {
  ASSERT_EQ(std::system("ethtool -K zcn0 tls-hw-tx-offload off"), 0);
  key(k::TlsVersion::tls12);
  const k::TlsConf conf = tx_conf();
  bool available = false, active = true;
  for (const auto& n : k::tls_offload_nics())
    if (n.name == nic::kServerDevice) available = n.available, active = n.active;
  ASSERT_EQ(std::system("ethtool -K zcn0 tls-hw-tx-offload on"), 0);
  EXPECT_EQ(conf, k::TlsConf::sw);
  // Off, but one that can: what offload = "auto" must still count as "may".
  EXPECT_TRUE(available);
  EXPECT_FALSE(active);
}

}  // namespace
