// zctls::kernel reports failures as values and never changes errno: the
// hooks rely on that to stay invisible.  These cases need no kTLS kernel.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "kernel/ktls.h"
#include "kernel/loopback.h"

namespace k = zctls::kernel;

namespace {

TEST(KernelErrno, BadFdIsReportedAndErrnoKept) {
  errno = 4321;
  EXPECT_EQ(k::attach_tls_ulp(-1), EBADF);
  EXPECT_EQ(k::set_tx_zerocopy(-1, true), EBADF);
  EXPECT_EQ(k::get_tx_zerocopy(-1).error, EBADF);
  EXPECT_EQ(k::install_key(-1, k::Direction::tx, k::TlsVersion::tls13, k::Cipher::aes_gcm_128, {}),
            EBADF);
  EXPECT_EQ(errno, 4321);
}

TEST(KernelErrno, NotASocket) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  errno = 0;
  EXPECT_EQ(k::attach_tls_ulp(p[0]), ENOTSOCK);
  EXPECT_EQ(k::get_tx_zerocopy(p[0]).error, ENOTSOCK);
  EXPECT_FALSE(k::get_tx_zerocopy(p[0]).on);
  EXPECT_EQ(errno, 0);
  close(p[0]);
  close(p[1]);
}

TEST(KernelErrno, UlpNeedsAConnectedSocket) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  // ENOTCONN where the kernel has kTLS, ENOENT where it has none: either
  // way an error value, never success.
  const int err = k::attach_tls_ulp(fd);
  EXPECT_TRUE(err == ENOTCONN || err == ENOENT) << err;
  close(fd);
}

TEST(KernelErrno, LoopbackPairConnects) {
  const k::LoopbackPair pair;
  ASSERT_EQ(pair.error(), 0);
  ASSERT_GE(pair.client(), 0);
  ASSERT_GE(pair.server(), 0);
  char c = 'x';
  ASSERT_EQ(write(pair.client(), &c, 1), 1);
  char got = 0;
  ASSERT_EQ(read(pair.server(), &got, 1), 1);
  EXPECT_EQ(got, 'x');
}

}  // namespace
