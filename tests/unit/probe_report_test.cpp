// `zctls probe` wording and exit status for each kind of kernel, from
// recorded capability sets (no kernel needed).
#include "probe_report.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>

#include "kernel/loopback.h"

namespace k = zctls::kernel;
using zctls::cli::verdict;

namespace {

std::string format_probe(const k::KtlsCapabilities& caps) {
  zctls::cli::HostReport host;
  host.caps = caps;
  host.openssl = {"OpenSSL 3.0.17 1 Jul 2025", true, {}};
  return zctls::cli::format_probe(host);
}

k::KtlsCapabilities kernel_6_1() {
  k::KtlsCapabilities caps;
  caps.kernel_release = "6.1.0-56-amd64";
  for (const auto v : k::kAllVersions)
    for (const auto c : k::kAllCiphers) caps.ciphers.push_back({v, c, 0, 0});
  caps.zerocopy_reads_back = true;
  caps.unaligned_bug.status = k::QuirkStatus::fixed;
  caps.unaligned_bug.reason = "6.1.192 (from uname -v (Debian)) carries the fix";
  return caps;
}

TEST(ProbeReport, ZerocopyKernel) {
  const auto caps = kernel_6_1();
  EXPECT_EQ(verdict(caps), zctls::cli::kZerocopyUsable);
  const std::string out = format_probe(caps);
  EXPECT_EQ(out.rfind("zerocopy kTLS sendfile: available on 6.1.0-56-amd64", 0), 0U) << out;
  EXPECT_NE(out.find("TLS 1.3: aes-gcm-128 tx+rx"), std::string::npos) << out;
  EXPECT_NE(out.find("TLS_TX_ZEROCOPY_RO set 1/0 and read back"), std::string::npos) << out;
  EXPECT_NE(out.find("kernel bug      not affected: 6.1.192 (from uname -v (Debian)) carries"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("page-aligned"), std::string::npos) << out;
}

TEST(ProbeReport, KernelWithTheZerocopyBug) {
  auto caps = kernel_6_1();
  caps.unaligned_bug.status = k::QuirkStatus::affected;
  caps.unaligned_bug.reason = "6.1.19 (from uname -r) has the bug (fixed in 6.1.20)";
  const std::string out = format_probe(caps);
  EXPECT_EQ(verdict(caps), zctls::cli::kZerocopyUsable) << "guarded, still usable";
  EXPECT_NE(out.find("kernel bug      affected: 6.1.19 (from uname -r) has the bug"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("only from page-aligned file offsets"), std::string::npos) << out;
}

TEST(ProbeReport, KernelWithoutTlsModule) {
  k::KtlsCapabilities caps;
  caps.kernel_release = "6.18.44";
  caps.ulp_error = ENOENT;
  EXPECT_EQ(verdict(caps), zctls::cli::kNoKtls);
  const std::string out = format_probe(caps);
  EXPECT_NE(out.find("has no kTLS"), std::string::npos) << out;
  EXPECT_NE(out.find("TCP_ULP \"tls\" fails: ENOENT"), std::string::npos) << out;
  EXPECT_EQ(out.find("keys"), std::string::npos) << "no key rows without the ULP: " << out;
}

TEST(ProbeReport, KernelOlderThan519) {
  auto caps = kernel_6_1();
  caps.kernel_release = "5.15.0";
  caps.zerocopy_error = ENOPROTOOPT;
  caps.zerocopy_reads_back = false;
  EXPECT_EQ(verdict(caps), zctls::cli::kKtlsWithoutZerocopy);
  EXPECT_NE(format_probe(caps).find("TLS_TX_ZEROCOPY_RO fails: ENOPROTOOPT"), std::string::npos);
}

TEST(ProbeReport, FlagAcceptedButNotKept) {
  auto caps = kernel_6_1();
  caps.zerocopy_reads_back = false;
  EXPECT_EQ(verdict(caps), zctls::cli::kKtlsWithoutZerocopy);
  EXPECT_NE(format_probe(caps).find("does not read back"), std::string::npos);
}

TEST(ProbeReport, UlpWithoutAnyTxCipherIsNoKtls) {
  auto caps = kernel_6_1();
  for (auto& c : caps.ciphers) c.tx_error = ENOENT;  // crypto modules missing
  EXPECT_EQ(verdict(caps), zctls::cli::kNoKtls);
  EXPECT_NE(format_probe(caps).find("aes-gcm-128 rx only"), std::string::npos);
}

TEST(ProbeReport, NoLoopback) {
  k::KtlsCapabilities caps;
  caps.kernel_release = "x";
  caps.socket_error = EACCES;
  EXPECT_EQ(verdict(caps), zctls::cli::kNoKtls);
  EXPECT_NE(format_probe(caps).find("loopback TCP    cannot connect: EACCES"), std::string::npos)
      << format_probe(caps);
}

}  // namespace

TEST(ProbeReport, OffloadNicsAndOpenSsl) {
  zctls::cli::HostReport host;
  host.caps = kernel_6_1();
  host.nics = {{"eth0", true, true, 0}, {"lo", false, false, 0}, {"eth1", true, false, 0}};
  host.openssl = {"OpenSSL 3.0.17 1 Jul 2025", true, {}};
  const std::string out = zctls::cli::format_probe(host);
  EXPECT_NE(out.find("TLS offload NICs eth0 (on), eth1 (off)\n"), std::string::npos) << out;
  EXPECT_NE(out.find("OpenSSL         OpenSSL 3.0.17 1 Jul 2025, built with kTLS"),
            std::string::npos)
      << out;
  host.nics = {{"lo", false, false, 0}};
  EXPECT_NE(zctls::cli::format_probe(host).find("TLS offload NICs none"), std::string::npos);
}

TEST(ProbeReport, Json) {
  zctls::cli::HostReport host;
  host.caps = kernel_6_1();
  host.nics = {{"lo", false, false, 0}, {"eth9", false, false, EOPNOTSUPP}};
  host.openssl = {"OpenSSL \"3\"", false, {}};
  const std::string json = zctls::cli::format_probe_json(host);
  EXPECT_EQ(json.rfind("{\"verdict\": \"zerocopy_usable\", \"kernel\": \"6.1.0-56-amd64\"", 0), 0U)
      << json;
  EXPECT_NE(json.find("\"kernel_bug\": {\"unaligned_zerocopy\": \"not_affected\""),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("{\"name\": \"eth9\", \"tls_hw_tx_offload\": false, \"active\": false, "
                      "\"error\": \"EOPNOTSUPP\"}"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"openssl\": {\"version\": \"OpenSSL \\\"3\\\"\", \"ktls\": false, "
                      "\"handshakes\": []}"),
            std::string::npos)
      << json;
}

// The loopback handshakes' rows: on, kept in user space, and failed; and
// the row that says why none ran.
TEST(ProbeReport, OpenSslHandshakes) {
  zctls::cli::HostReport host;
  host.caps = kernel_6_1();
  host.openssl = {"OpenSSL 3.0.17 1 Jul 2025", true, {}};
  EXPECT_NE(zctls::cli::format_probe(host).find(
                "  OpenSSL kTLS    not tried: the kernel has no kTLS to offer\n"),
            std::string::npos);
  host.openssl.handshakes = {{"TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384", true, true, ""},
                             {"TLSv1.3", "TLS_AES_128_CCM_SHA256", false, true,
                              "libssl did not enable kTLS for this cipher"},
                             {"TLSv1.3", "", false, false, "server handshake failed"}};
  const std::string out = zctls::cli::format_probe(host);
  EXPECT_NE(out.find("  OpenSSL kTLS    TLSv1.2 ECDHE-ECDSA-AES256-GCM-SHA384: kTLS TX on\n"
                     "                  TLSv1.3 TLS_AES_128_CCM_SHA256: user space (libssl did "
                     "not enable kTLS for this cipher)\n"
                     "                  TLSv1.3: no handshake (server handshake failed)\n"),
            std::string::npos)
      << out;
  const std::string json = zctls::cli::format_probe_json(host);
  EXPECT_NE(json.find("\"handshakes\": [{\"protocol\": \"TLSv1.2\", \"cipher\": "
                      "\"ECDHE-ECDSA-AES256-GCM-SHA384\", \"ktls_tx\": true, \"data_ok\": true, "
                      "\"error\": null}, "),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("{\"protocol\": \"TLSv1.3\", \"cipher\": null, \"ktls_tx\": false, "
                      "\"data_ok\": false, \"error\": \"server handshake failed\"}]}"),
            std::string::npos)
      << json;
}

// The real handshakes with this host's libssl: both protocol versions
// complete and carry a record intact, and libssl turns kTLS TX on exactly
// when the kernel lets a socket take the tls ULP (asked here directly).
TEST(OpenSslKtls, HandshakesCompleteAndKtlsFollowsTheKernel) {
  const k::LoopbackPair pair;
  ASSERT_EQ(pair.error(), 0);
  const bool kernel_has_tls =
      setsockopt(pair.client(), IPPROTO_TCP, TCP_ULP, "tls", sizeof "tls") == 0;
  const auto handshakes = zctls::cli::openssl_ktls_handshakes();
  ASSERT_EQ(handshakes.size(), 2U);
  EXPECT_EQ(handshakes[0].protocol, "TLSv1.2");
  EXPECT_EQ(handshakes[1].protocol, "TLSv1.3");
  for (const auto& h : handshakes) {
    EXPECT_FALSE(h.cipher.empty()) << h.protocol << ": " << h.error;
    EXPECT_TRUE(h.data_ok) << h.protocol << ": " << h.error;
    EXPECT_EQ(h.ktls_tx, kernel_has_tls) << h.protocol << " " << h.cipher << ": " << h.error;
    EXPECT_EQ(h.error.empty(), kernel_has_tls) << h.error;
  }
}

namespace {

// Which NIC drivers a kernel was built with TLS offload for, from a
// .config as Debian's 6.1 ships it (the lines that matter).
TEST(ProbeReport, NicDriversWithTlsOffloadFromTheKernelConfig) {
  const std::string debian =
      "CONFIG_TLS=m\nCONFIG_TLS_DEVICE=y\n# CONFIG_TLS_TOE is not set\nCONFIG_NFP=m\n"
      "# CONFIG_MLX5_EN_TLS is not set\n# CONFIG_CHELSIO_TLS_DEVICE is not set\n"
      "# CONFIG_FUN_ETH is not set\nCONFIG_MLX5_CORE_EN=y\n";
  zctls::cli::HostReport host;
  host.caps = kernel_6_1();
  host.kernel_config = k::parse_kernel_tls_config(debian);
  host.kernel_config.path = "/boot/config-6.1.0-56-amd64";
  host.tls13_software = true;
  ASSERT_EQ(host.kernel_config.drivers.size(), 4U);
  EXPECT_EQ(host.kernel_config.tls_device, 'y');
  EXPECT_EQ(host.kernel_config.drivers[0].value, 'n') << "mlx5: its TLS part is off";
  EXPECT_EQ(host.kernel_config.drivers[1].value, 'm') << "nfp: a module, with TLS_DEVICE";
  const std::string out = zctls::cli::format_probe(host);
  EXPECT_NE(out.find("  NIC TLS drivers built: nfp (Netronome Agilio, CONFIG_NFP with "
                     "CONFIG_TLS_DEVICE)\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("mlx5 (NVIDIA/Mellanox ConnectX-6 Dx and later: CONFIG_MLX5_EN_TLS not set)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("funeth (Fungible: CONFIG_FUN_ETH not set)"), std::string::npos) << out;
  EXPECT_NE(out.find("  TLS 1.3         software kTLS on any NIC"), std::string::npos) << out;
  // Without TLS_DEVICE no driver can: nfp's TLS part is not built either.
  host.kernel_config = k::parse_kernel_tls_config("CONFIG_TLS=m\nCONFIG_NFP=m\n");
  host.kernel_config.path = "/boot/config-x";
  EXPECT_EQ(host.kernel_config.drivers[1].value, 'n');
  EXPECT_NE(zctls::cli::format_probe(host).find("CONFIG_TLS_DEVICE is not set: no NIC can"),
            std::string::npos);
  host.kernel_config = k::KernelTlsConfig{};
  host.kernel_config.tried = {"/boot/config-x"};
  EXPECT_NE(zctls::cli::format_probe(host).find("kernel config   not readable (tried "
                                                "/boot/config-x)"),
            std::string::npos);
}

}  // namespace
