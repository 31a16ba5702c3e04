// [kernel] offload: a software kTLS socket costs nothing per send; device
// offload (or doubt, or offload = "assume") gets zctls's work.
#include <gtest/gtest.h>

#include "engine_fixture.h"

namespace {

using namespace engine_test;

Config parsed(const char* text) {
  auto result = zctls::parse_config(text, "offload.toml");
  EXPECT_TRUE(result.config) << (result.errors.empty() ? "" : result.errors[0].to_string());
  return result.config ? *result.config : Config{};
}

TEST_F(EngineTest, SoftwareKtlsSocketCostsNoSyscallPerSend) {
  kernel_.sockets[7] = k::TxKind::ktls_tx;
  kernel_.offload[7] = k::TxOffload::software;
  sent(7, 10);  // classification: the ULP/TX query and the mode, once
  EXPECT_EQ(kernel_.offload_queries, 1);
  const int before = kernel_.calls();
  for (int i = 0; i < 100; ++i) {
    sent(7, 10);  // a zerocopy rule's file
    sent(7, 11);  // and a copy rule's
  }
  EXPECT_EQ(kernel_.calls(), before) << "no fstat, no setsockopt, no getsockopt";
  EXPECT_EQ(kernel_.progress_calls, 0) << "no TCP_INFO";
  EXPECT_EQ(kernel_.name_lookups, 0);
  EXPECT_TRUE(kernel_.written_back.empty());
  EXPECT_EQ(kernel_.offload_queries, 1) << "the mode is learnt once per socket";
  EXPECT_TRUE(kernel_.sets.empty()) << "the flag has no effect there: never set";
  EXPECT_EQ(engine_.count(Counter::sends), 201U);
  EXPECT_EQ(engine_.count(Counter::copy_software_ktls), 201U);
  EXPECT_EQ(engine_.count(Counter::zerocopy_sends), 0U);
  EXPECT_EQ(engine_.count(Counter::software_tx_sockets), 1U);
  EXPECT_EQ(engine_.count(Counter::ktls_tx_sockets), 1U);
  EXPECT_EQ(engine_.count(Counter::ktls_tx_file_sockets), 1U) << "a software socket sends files";
}

TEST_F(EngineTest, DeviceOffloadAndDoubtGetTheRules) {
  for (const k::TxOffload mode : {k::TxOffload::device, k::TxOffload::unknown}) {
    const int fd = mode == k::TxOffload::device ? 7 : 8;
    kernel_.sockets[fd] = k::TxKind::ktls_tx;
    kernel_.offload[fd] = mode;
    sent(fd, 10);
    ASSERT_EQ(kernel_.sets.size(), fd == 7 ? 1U : 2U) << k::to_string(mode);
    EXPECT_EQ(kernel_.sets.back(), std::make_pair(fd, true)) << k::to_string(mode);
  }
  EXPECT_EQ(engine_.count(Counter::software_tx_sockets), 0U);
  EXPECT_EQ(engine_.count(Counter::zerocopy_sends), 2U);
}

TEST_F(EngineTest, AssumeNeverAsksTheMode) {
  config_ = parsed(R"(
[kernel]
offload = "assume"
[[rule]]
path = "/www/**"
zerocopy = true
)");
  kernel_.sockets[7] = k::TxKind::ktls_tx;
  kernel_.offload[7] = k::TxOffload::software;
  sent(7, 10);
  EXPECT_EQ(kernel_.offload_queries, 0);
  ASSERT_EQ(kernel_.sets.size(), 1U);
  EXPECT_EQ(kernel_.sets[0], std::make_pair(7, true)) << "treated as offloaded";
  EXPECT_EQ(engine_.count(Counter::software_tx_sockets), 0U);
}

// OpenSSL's KTLSTxZerocopySendfile on software kTLS: the flag does nothing
// there, so the sends are software copies, still counted as the
// application's, and there is nothing to say about it.
TEST_F(EngineTest, AnApplicationsFlagOnSoftwareKtlsIsCountedAndLeftAlone) {
  app_tls_tx(7);
  app_sets_flag(7, true);
  kernel_.offload[7] = k::TxOffload::software;
  sent(7, 10);
  sent(7, 11);
  EXPECT_TRUE(kernel_.sets.empty());
  EXPECT_EQ(kernel_.stats, 0);
  EXPECT_EQ(engine_.count(Counter::copy_software_ktls), 2U);
  EXPECT_EQ(engine_.count(Counter::app_flag_sockets), 1U);
  EXPECT_EQ(engine_.count(Counter::app_flag_sends), 2U);
  EXPECT_EQ(engine_.count(Counter::zerocopy_sends), 0U);
  EXPECT_EQ(engine_.count(Counter::app_zerocopy_sends), 0U);
}

// A socket keeps the mode it was first given; a reload to "assume" applies
// to the sockets learnt after it.
TEST_F(EngineTest, AReloadedOffloadAppliesToNewSockets) {
  kernel_.sockets[7] = k::TxKind::ktls_tx;
  kernel_.sockets[8] = k::TxKind::ktls_tx;
  kernel_.offload[7] = kernel_.offload[8] = k::TxOffload::software;
  sent(7, 10);
  config_.kernel.offload = zctls::Offload::assume;  // as a reload would publish it
  sent(7, 10);
  sent(8, 10);
  EXPECT_EQ(kernel_.offload_queries, 1);
  ASSERT_EQ(kernel_.sets.size(), 1U);
  EXPECT_EQ(kernel_.sets[0], std::make_pair(8, true));
  EXPECT_EQ(engine_.count(Counter::copy_software_ktls), 2U);
}

TEST_F(EngineTest, ANewSocketOnTheNumberIsAskedAgain) {
  kernel_.sockets[7] = k::TxKind::ktls_tx;
  kernel_.offload[7] = k::TxOffload::software;
  sent(7, 10);
  engine_.before_close(7);
  engine_.after_close(7);
  kernel_.offload[7] = k::TxOffload::device;
  app_tls_tx(7);  // a fresh kTLS socket through the hook, on the same number
  sent(7, 10);
  EXPECT_EQ(kernel_.offload_queries, 2);
  ASSERT_EQ(kernel_.sets.size(), 1U);
  EXPECT_TRUE(kernel_.sets[0].second);
}

TEST_F(EngineTest, WithoutAConfigTheModeIsNotAsked) {
  g_config = nullptr;
  kernel_.sockets[7] = k::TxKind::ktls_tx;
  sent(7, 10);
  EXPECT_EQ(kernel_.offload_queries, 0) << "nothing to decide, nothing to ask";
  EXPECT_EQ(engine_.count(Counter::copy_no_config), 1U);
}

TEST_F(EngineTest, ASpliceIntoASoftwareSocketLeavesItsFlag) {
  kernel_.sockets[7] = k::TxKind::ktls_tx;
  kernel_.offload[7] = k::TxOffload::software;
  kernel_.flags[7] = true;  // inherited on: it does nothing on software kTLS
  sent(7, 10);
  engine_.before_other_send(7);
  EXPECT_TRUE(kernel_.sets.empty());
}

TEST(OffloadConfig, ParsesAndRejects) {
  EXPECT_EQ(parsed("").kernel.offload, zctls::Offload::automatic);
  EXPECT_EQ(parsed("[kernel]\noffload = \"auto\"\n").kernel.offload, zctls::Offload::automatic);
  EXPECT_EQ(parsed("[kernel]\noffload = \"assume\"\n").kernel.offload, zctls::Offload::assume);
  auto bad = zctls::parse_config("[kernel]\noffload = \"always\"\n", "k.toml");
  ASSERT_FALSE(bad.config);
  EXPECT_EQ(bad.errors[0].to_string(),
            "k.toml:2:11: 'kernel.offload' must be auto or assume, not 'always'");
  bad = zctls::parse_config("[kernel]\nofload = \"auto\"\n", "k.toml");
  ASSERT_FALSE(bad.config);
  EXPECT_EQ(bad.errors[0].to_string(), "k.toml:2:1: unknown key 'ofload' in [kernel]");
  bad = zctls::parse_config("kernel = \"auto\"\n", "k.toml");
  ASSERT_FALSE(bad.config);
  EXPECT_EQ(bad.errors[0].to_string(), "k.toml:1:10: 'kernel' must be a table: write [kernel]");
  EXPECT_EQ(zctls::parse_offload("assume"), zctls::Offload::assume);
  EXPECT_FALSE(zctls::parse_offload("Assume"));
}

// A TLS 1.3 key is software on every kernel up to 7.3 (device offload
// takes TLS 1.2 keys only): decided from the key the application passed,
// with no interface, tls_stat or sock_diag query at all.
TEST_F(EngineTest, ATls13KeyIsSoftwareWithoutAsking) {
  app_tls_tx(7, k::TlsVersion::tls13);
  kernel_.offload[7] = k::TxOffload::device;  // what asking would have said: never asked
  sent(7, 10);
  EXPECT_EQ(kernel_.offload_queries, 0);
  EXPECT_EQ(kernel_.calls(), 0) << "not even the classification's getsockopt";
  EXPECT_TRUE(kernel_.sets.empty());
  EXPECT_EQ(engine_.count(Counter::software_tx_sockets), 1U);
  EXPECT_EQ(engine_.count(Counter::software_tls13_sockets), 1U);
  EXPECT_EQ(engine_.count(Counter::copy_software_ktls), 1U);
}

TEST_F(EngineTest, ATls13KeyInstalledOutOfSightIsReadBackOnce) {
  kernel_.sockets[8] = k::TxKind::ktls_tx;
  kernel_.versions[8] = k::KeyVersion::tls13;
  sent(8, 10);
  sent(8, 11);
  EXPECT_EQ(kernel_.queries, 1) << "the classification's TLS_TX read gives the version";
  EXPECT_EQ(kernel_.offload_queries, 0);
  EXPECT_EQ(engine_.count(Counter::software_tls13_sockets), 1U);
}

TEST_F(EngineTest, ATls12KeyIsAskedAbout) {
  app_tls_tx(7, k::TlsVersion::tls12);
  sent(7, 10);
  EXPECT_EQ(kernel_.offload_queries, 1);
  ASSERT_EQ(kernel_.sets.size(), 1U) << "device offload (the fake's answer): the rules";
  EXPECT_EQ(engine_.count(Counter::software_tls13_sockets), 0U);
}

TEST_F(EngineTest, ANewerKernelIsAskedAboutTls13) {
  std::snprintf(kernel_.identity.release, sizeof kernel_.identity.release, "7.4.0-1-amd64");
  std::snprintf(kernel_.identity.version, sizeof kernel_.identity.version,
                "#1 SMP PREEMPT_DYNAMIC Debian 7.4.1-1");
  app_tls_tx(7, k::TlsVersion::tls13);
  kernel_.offload[7] = k::TxOffload::device;
  sent(7, 10);
  EXPECT_EQ(kernel_.offload_queries, 1) << "7.4 might offload TLS 1.3: asked";
  EXPECT_EQ(kernel_.sets.size(), 1U);
  EXPECT_EQ(engine_.count(Counter::software_tls13_sockets), 0U);
}

}  // namespace
