// The kernel's kTLS, as zctls depends on it: runs on a real kTLS kernel
// (natively or on the VM bench, see tests/vm).  On a kernel without the tls
// module these tests fail, which tests/vm/check-without-tls verifies.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/tls.h>  // raw uapi values: an independent check of zctls::kernel
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kernel_test_support.h"
#include "kernel/ktls.h"
#include "kernel/loopback.h"
#include "kernel/tx_offload.h"

namespace k = zctls::kernel;
using namespace zctls_kernel_test;  // NOLINT(google-build-using-namespace)

namespace {

constexpr std::size_t kFileSize = 1 << 20;  // 64 records of 16 KiB
constexpr std::size_t kMaxRecordPayload = 16384;

k::KeyMaterial test_key() {
  k::KeyMaterial km;
  for (unsigned i = 0; i < sizeof km.key; ++i) km.key[i] = static_cast<std::uint8_t>(0xA0 + i);
  for (unsigned i = 0; i < sizeof km.iv; ++i) km.iv[i] = static_cast<std::uint8_t>(i);
  km.salt[0] = 0x5A;
  return km;
}

// A loopback pair with the tls ULP on both ends; TX key on the client.
class KtlsPair : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(pair_.error(), 0) << "loopback pair: " << err_name(pair_.error());
    int err = k::attach_tls_ulp(tx());
    ASSERT_EQ(err, 0) << "TCP_ULP \"tls\" on the sender failed: " << err_name(err)
                      << " (no kTLS in this kernel?)";
    err = k::install_key(tx(), k::Direction::tx, k::TlsVersion::tls13, k::Cipher::aes_gcm_128,
                         test_key());
    ASSERT_EQ(err, 0) << "TLS_TX failed: " << err_name(err);
  }
  void install_rx() {
    int err = k::attach_tls_ulp(rx());
    ASSERT_EQ(err, 0) << "TCP_ULP \"tls\" on the receiver failed: " << err_name(err);
    err = k::install_key(rx(), k::Direction::rx, k::TlsVersion::tls13, k::Cipher::aes_gcm_128,
                         test_key());
    ASSERT_EQ(err, 0) << "TLS_RX failed: " << err_name(err);
  }
  int tx() const { return pair_.client(); }
  int rx() const { return pair_.server(); }

  // Reads the flag with a raw getsockopt, independent of zctls::kernel.
  unsigned int raw_flag() const {
    unsigned int v = 99;
    socklen_t len = sizeof v;
    EXPECT_EQ(getsockopt(tx(), SOL_TLS, TLS_TX_ZEROCOPY_RO, &v, &len), 0) << strerror(errno);
    EXPECT_EQ(len, sizeof v);
    return v;
  }

  void expect_sendfile_roundtrip() {
    const std::vector<unsigned char> data = pattern(kFileSize);
    const int file = temp_file_with(data);
    ASSERT_GE(file, 0) << strerror(errno);
    Reader reader(rx(), data.size());
    const ssize_t sent = sendfile_all(tx(), file, data.size());
    const int send_err = errno;
    const std::vector<unsigned char>& got = reader.finish();
    close(file);
    ASSERT_EQ(sent, static_cast<ssize_t>(data.size())) << "sendfile: " << strerror(send_err);
    ASSERT_EQ(reader.error(), 0) << "recv: " << strerror(reader.error());
    ASSERT_EQ(got.size(), data.size());
    EXPECT_TRUE(got == data) << "decrypted bytes differ from the file";
  }

  k::LoopbackPair pair_;
};

TEST_F(KtlsPair, SendfileArrivesDecryptedAndByteIdentical) {
  install_rx();
  const long tx_sw_before = tls_stat("TlsTxSw");
  expect_sendfile_roundtrip();
  // The kernel counts software TX key installs; ours happened in SetUp, so
  // it is at least 1 and did not go down.
  EXPECT_GE(tls_stat("TlsTxSw"), 1);
  EXPECT_GE(tls_stat("TlsTxSw"), tx_sw_before);
}

TEST_F(KtlsPair, WireCarriesTlsRecordsNotPlaintext) {
  // No RX key: the receiver sees what the sender's kernel put on the wire.
  const std::vector<unsigned char> data = pattern(3 * kMaxRecordPayload);
  const int file = temp_file_with(data);
  ASSERT_GE(file, 0);
  // Each record: 5-byte header + payload + 1 content type + 16-byte tag.
  const std::size_t wire = data.size() + 3 * (5 + 1 + 16);
  Reader reader(rx(), wire);
  ASSERT_EQ(sendfile_all(tx(), file, data.size()), static_cast<ssize_t>(data.size()));
  const std::vector<unsigned char>& got = reader.finish();
  close(file);
  ASSERT_EQ(got.size(), wire);
  std::size_t pos = 0;
  int records = 0;
  while (pos + 5 <= got.size()) {
    // TLS 1.3 outer header: application_data, legacy version 1.2.
    ASSERT_EQ(got[pos], 0x17) << "record " << records;
    ASSERT_EQ(got[pos + 1], 0x03);
    ASSERT_EQ(got[pos + 2], 0x03);
    const std::size_t len = (std::size_t{got[pos + 3]} << 8) | got[pos + 4];
    ASSERT_EQ(len, kMaxRecordPayload + 1 + 16);
    EXPECT_NE(0, std::memcmp(&got[pos + 5], &data[records * kMaxRecordPayload], 64))
        << "record " << records << " carries plaintext";
    pos += 5 + len;
    ++records;
  }
  EXPECT_EQ(records, 3);
}

TEST_F(KtlsPair, ZerocopyFlagSetsAndReadsBack) {
  EXPECT_EQ(raw_flag(), 0U) << "the flag must default to off";
  ASSERT_EQ(k::set_tx_zerocopy(tx(), true), 0);
  EXPECT_EQ(raw_flag(), 1U);
  ASSERT_EQ(k::set_tx_zerocopy(tx(), false), 0);
  EXPECT_EQ(raw_flag(), 0U);
  // zctls::kernel's reader agrees with the raw one.
  const k::FlagState state = k::get_tx_zerocopy(tx());
  EXPECT_EQ(state.error, 0);
  EXPECT_FALSE(state.on);
}

TEST_F(KtlsPair, ZerocopyFlagRejectsWrongSizeAndValue) {
  // do_tls_setsockopt_tx_zc: exactly sizeof(unsigned int), value 0 or 1.
  const unsigned char one = 1;
  EXPECT_NE(setsockopt(tx(), SOL_TLS, TLS_TX_ZEROCOPY_RO, &one, sizeof one), 0);
  EXPECT_EQ(errno, EINVAL);
  const unsigned int two = 2;
  EXPECT_NE(setsockopt(tx(), SOL_TLS, TLS_TX_ZEROCOPY_RO, &two, sizeof two), 0);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(raw_flag(), 0U);
}

TEST_F(KtlsPair, SendfileWithZerocopyFlagOnIsByteIdentical) {
  // Software kTLS never reads the flag (net/tls/tls_sw.c); the data must be
  // the same either way.
  install_rx();
  ASSERT_EQ(k::set_tx_zerocopy(tx(), true), 0);
  expect_sendfile_roundtrip();
  EXPECT_EQ(raw_flag(), 1U);
}

// The running kernel's major.minor from uname -r ("7.3.4+deb13-amd64").
std::pair<int, int> kernel_series() {
  std::ifstream f("/proc/sys/kernel/osrelease");
  int major = 0, minor = 0;
  char dot = 0;
  f >> major >> dot >> minor;
  return {major, minor};
}

// TLS 1.3 TX rekey (a second TLS_TX on a TLS 1.3 socket) arrived in 6.14
// (net/tls/tls_main.c do_tls_setsockopt_conf, "tls: implement rekey for
// TLS1.3"); before, a second key is EBUSY.  Either way the kernel leaves
// TLS_TX_ZEROCOPY_RO as it was, which is what zctls's fd table assumes
// (Engine::after_app_setsockopt keeps flag_on across a TX key).  Device
// offload is TLS 1.2 only up to 7.3, so no offloaded socket is rekeyed.
TEST_F(KtlsPair, Tls13TxRekeyLeavesTheZerocopyFlagAsItWas) {
  ASSERT_EQ(k::set_tx_zerocopy(tx(), true), 0);
  const long ok_before = tls_stat("TlsTxRekeyOk");
  const int err = k::install_key(tx(), k::Direction::tx, k::TlsVersion::tls13,
                                 k::Cipher::aes_gcm_128, test_key());
  if (kernel_series() >= std::make_pair(6, 14)) {
    EXPECT_EQ(err, 0) << "rekey: " << err_name(err);
    EXPECT_EQ(tls_stat("TlsTxRekeyOk"), ok_before + 1);
  } else {
    EXPECT_EQ(err, EBUSY) << err_name(err);
    EXPECT_EQ(tls_stat("TlsTxRekeyOk"), -1) << "no rekey counters before 6.14";
  }
  EXPECT_EQ(raw_flag(), 1U);
}

// [kernel] offload = "auto" rests on this: the kernel says which TX path a
// socket took (TLS_INFO_TXCONF in sock_diag's ULP info, tls_get_info), and
// on this bench, which has no NIC with tls-hw-tx-offload, it is software;
// /proc/net/tls_stat counts it in TlsCurrTxSw, not TlsCurrTxDevice.  A
// plain TCP socket has no ULP info (ENODATA).  A caller without
// CAP_NET_ADMIN (nginx's workers) gets none for a kTLS socket on 6.1 and
// 6.12 (ENODATA: tx_offload then stops asking), and all of it on 7.3.
TEST_F(KtlsPair, TheKernelSaysTheTxPathIsSoftware) {
  k::TlsSocket socket;
  ASSERT_EQ(k::query_tls_socket(tx(), &socket), 0);
  EXPECT_EQ(socket.tx, k::TlsConf::sw);
  EXPECT_EQ(socket.version, 0x0304);
  EXPECT_EQ(k::offload_of(socket), k::TxOffload::software);
  EXPECT_FALSE(k::host_may_offload(k::tls_offload_nics()));
  EXPECT_EQ(k::tx_offload(tx(), 1), k::TxOffload::software);
  EXPECT_GE(tls_stat("TlsCurrTxSw"), 1);
  EXPECT_EQ(tls_stat("TlsCurrTxDevice"), 0);
  k::LoopbackPair plain;
  ASSERT_EQ(plain.error(), 0);
  EXPECT_EQ(k::query_tls_socket(plain.client(), &socket), ENODATA);
  // Unprivileged (nginx's workers): the socket is found, its ULP info is
  // not given.  A child that drops to nobody asks about the same socket.
  ASSERT_EQ(getuid(), 0U) << "the bench runs its tests as root";
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  // Exit status: the errno, or 200 + the TXCONF it got.
  const int kSoftware = 200 + static_cast<int>(k::TlsConf::sw);
  if (child == 0) {
    k::TlsSocket s;
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(99);
    const int err = k::query_tls_socket(tx(), &s);
    _exit(err != 0 ? err : 200 + static_cast<int>(s.tx));
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  const int got = WEXITSTATUS(status);
  if (kernel_series() >= std::make_pair(7, 0)) {
    EXPECT_EQ(got, kSoftware) << "exit " << got;
  } else {
    EXPECT_EQ(got, ENODATA) << "exit " << got;
  }
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  EXPECT_EQ(k::query_tls_socket(p[1], &socket), ENOTSOCK);
  close(p[0]);
  close(p[1]);
}

TEST(KernelKtlsPlainTcp, SolTlsOptionsFail) {
  // Without the tls ULP, SOL_TLS reaches the IP layer, which knows no such
  // level: setsockopt says ENOPROTOOPT, but getsockopt says EOPNOTSUPP
  // (net/ipv4/ip_sockglue.c: ip_setsockopt vs do_ip_getsockopt; measured on
  // 6.1 and 6.12).  The shim must treat both as "not a kTLS socket".
  k::LoopbackPair pair;
  ASSERT_EQ(pair.error(), 0);
  const unsigned int one = 1;
  errno = 0;
  EXPECT_EQ(setsockopt(pair.client(), SOL_TLS, TLS_TX_ZEROCOPY_RO, &one, sizeof one), -1);
  EXPECT_EQ(errno, ENOPROTOOPT) << strerrorname_np(errno);
  unsigned int v = 0;
  socklen_t len = sizeof v;
  errno = 0;
  EXPECT_EQ(getsockopt(pair.client(), SOL_TLS, TLS_TX_ZEROCOPY_RO, &v, &len), -1);
  EXPECT_EQ(errno, EOPNOTSUPP) << strerrorname_np(errno);
  // zctls::kernel reports the same values without leaking them into errno.
  errno = 1234;
  EXPECT_EQ(k::set_tx_zerocopy(pair.client(), true), ENOPROTOOPT);
  EXPECT_EQ(k::get_tx_zerocopy(pair.client()).error, EOPNOTSUPP);
  EXPECT_EQ(errno, 1234);
}

TEST(KernelKtlsQuery, TellsPlainUlpOnlyAndTxSocketsApart) {
  // zctls::kernel::query_tx is how the shim classifies fds it did not see
  // being set up; each answer rests on a kernel reply checked here.
  k::LoopbackPair pair;
  ASSERT_EQ(pair.error(), 0);
  const k::SockoptCalls& libc = k::libc_sockopt_calls();
  EXPECT_EQ(k::query_tx(pair.client(), libc), k::TxKind::not_ktls);
  ASSERT_EQ(k::attach_tls_ulp(pair.client()), 0);
  // TCP_ULP reads back as "tls"; TLS_TX without a key is EBUSY.
  char ulp[16] = {};
  socklen_t len = sizeof ulp;
  ASSERT_EQ(getsockopt(pair.client(), SOL_TCP, TCP_ULP, ulp, &len), 0);
  EXPECT_STREQ(ulp, "tls");
  EXPECT_EQ(k::query_tx(pair.client(), libc), k::TxKind::ulp_without_tx);
  ASSERT_EQ(k::install_key(pair.client(), k::Direction::tx, k::TlsVersion::tls13,
                           k::Cipher::aes_gcm_128, test_key()),
            0);
  EXPECT_EQ(k::query_tx(pair.client(), libc), k::TxKind::ktls_tx);
  // RX only is not TX.
  ASSERT_EQ(k::attach_tls_ulp(pair.server()), 0);
  ASSERT_EQ(k::install_key(pair.server(), k::Direction::rx, k::TlsVersion::tls13,
                           k::Cipher::aes_gcm_128, test_key()),
            0);
  EXPECT_EQ(k::query_tx(pair.server(), libc), k::TxKind::ulp_without_tx);
  // Not TCP at all.
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  EXPECT_EQ(k::query_tx(p[1], libc), k::TxKind::not_ktls);
  close(p[0]);
  close(p[1]);
  int u[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, u), 0);
  EXPECT_EQ(k::query_tx(u[0], libc), k::TxKind::not_ktls);
  close(u[0]);
  close(u[1]);
}

}  // namespace
