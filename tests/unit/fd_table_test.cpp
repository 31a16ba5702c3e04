// The fd table's packed entries (every field round-trips, the close epoch
// survives a set and moves on a forget) and the TX key's version as the
// engine reads it from an application's TLS_TX crypto_info.
#include "fd_table.h"

#include <gtest/gtest.h>
#include <linux/tls.h>

#include <cstring>

#include "kernel/ktls.h"

namespace {

namespace k = zctls::kernel;
using zctls::FdState;
using zctls::FdTable;
using zctls::SocketKind;

TEST(FdTable, EveryFieldRoundTrips) {
  FdState s;
  s.kind = SocketKind::ktls_tx;
  s.file_sent = true;
  s.flag_on = true;
  s.app_managed = true;
  s.app_counted = true;
  s.tx_mode_known = true;
  s.software_tx = true;
  for (const auto v : {k::KeyVersion::unknown, k::KeyVersion::tls12, k::KeyVersion::tls13}) {
    s.tx_version = v;
    const FdState back = FdState::unpack(s.pack());
    EXPECT_EQ(back.kind, s.kind);
    EXPECT_TRUE(back.file_sent && back.flag_on && back.app_managed && back.app_counted &&
                back.tx_mode_known && back.software_tx);
    EXPECT_EQ(back.tx_version, v);
    EXPECT_EQ(back.epoch, 0U) << "pack() never carries the epoch";
  }
}

TEST(FdTable, ASetKeepsTheEpochAndAForgetMovesItAndClearsTheRest) {
  FdTable fds;
  fds.set(5, FdState{SocketKind::not_ktls});
  fds.forget(5);
  fds.forget(5);
  FdState s;
  s.kind = SocketKind::ktls_tx;
  s.tx_version = k::KeyVersion::tls13;
  s.epoch = 12345;  // ignored: the table keeps its own
  ASSERT_TRUE(fds.set(5, s));
  EXPECT_EQ(fds.get(5).epoch, 2U);
  EXPECT_EQ(fds.get(5).tx_version, k::KeyVersion::tls13);
  fds.forget(5);
  const FdState after = fds.get(5);
  EXPECT_EQ(after.epoch, 3U);
  EXPECT_EQ(after.kind, SocketKind::unknown);
  EXPECT_EQ(after.tx_version, k::KeyVersion::unknown) << "a new socket on the number starts afresh";
  fds.forget_if(5, 2);  // another epoch: left alone
  EXPECT_EQ(fds.get(5).epoch, 3U);
  fds.forget_if(5, 3);
  EXPECT_EQ(fds.get(5).epoch, 4U);
}

TEST(KeyVersion, FromTheApplicationsCryptoInfo) {
  tls12_crypto_info_aes_gcm_128 info{};
  info.info.version = TLS_1_3_VERSION;
  info.info.cipher_type = TLS_CIPHER_AES_GCM_128;
  EXPECT_EQ(k::key_version(&info, sizeof info), k::KeyVersion::tls13);
  info.info.version = TLS_1_2_VERSION;
  EXPECT_EQ(k::key_version(&info, sizeof info), k::KeyVersion::tls12);
  // Only the header is needed; less than it says nothing.
  EXPECT_EQ(k::key_version(&info, sizeof info.info), k::KeyVersion::tls12);
  EXPECT_EQ(k::key_version(&info, sizeof info.info - 1), k::KeyVersion::unknown);
  EXPECT_EQ(k::key_version(nullptr, sizeof info), k::KeyVersion::unknown);
}

}  // namespace
