// The plain-fd bits the hooks keep before a process has an engine
// (shim/hooks/plain_fds.h).
#include "../../shim/hooks/plain_fds.h"

#include <gtest/gtest.h>

#include <memory>

namespace {

using zctls::hooks::PlainFds;

TEST(PlainFds, SetTestClearPerNumber) {
  auto fds = std::make_unique<PlainFds>();
  EXPECT_FALSE(fds->test(5));
  fds->set(5);
  fds->set(64);
  EXPECT_TRUE(fds->test(5));
  EXPECT_TRUE(fds->test(64));
  EXPECT_FALSE(fds->test(4));
  EXPECT_FALSE(fds->test(63));
  fds->clear(5);
  EXPECT_FALSE(fds->test(5));
  EXPECT_TRUE(fds->test(64));
  fds->clear(5);  // twice: nothing
  EXPECT_FALSE(fds->test(5));
}

TEST(PlainFds, OutOfRangeNumbersAreNeverPlain) {
  auto fds = std::make_unique<PlainFds>();
  for (const int fd : {-1, PlainFds::kMaxFds, PlainFds::kMaxFds + 7}) {
    fds->set(fd);
    EXPECT_FALSE(fds->test(fd)) << fd;
    fds->clear(fd);
  }
  fds->set(PlainFds::kMaxFds - 1);
  EXPECT_TRUE(fds->test(PlainFds::kMaxFds - 1));
}

TEST(PlainFds, ClearRangeAsCloseRangeAndClosefrom) {
  auto fds = std::make_unique<PlainFds>();
  for (const int fd : {3, 10, 11, 200}) fds->set(fd);
  fds->clear_range(10, 11);
  EXPECT_TRUE(fds->test(3));
  EXPECT_FALSE(fds->test(10));
  EXPECT_FALSE(fds->test(11));
  EXPECT_TRUE(fds->test(200));
  fds->clear_range(4, ~0U);  // closefrom(4)
  EXPECT_TRUE(fds->test(3));
  EXPECT_FALSE(fds->test(200));
  fds->clear_range(0, ~0U);
  EXPECT_FALSE(fds->test(3));
}

TEST(PlainFds, ClearRangeKeepsWhatIsOutsideItInEveryWord) {
  auto fds = std::make_unique<PlainFds>();
  for (int fd = 0; fd < 300; ++fd) fds->set(fd);
  fds->clear_range(63, 129);  // the last bit of word 0, all of word 1, two bits of word 2
  for (int fd = 0; fd < 300; ++fd) EXPECT_EQ(fds->test(fd), fd < 63 || fd > 129) << fd;
  fds->clear_range(299, 299);
  EXPECT_FALSE(fds->test(299));
  EXPECT_TRUE(fds->test(298));
  fds->clear_range(1000, 2000);  // past the highest fd set: nothing
  EXPECT_TRUE(fds->test(298));
}

}  // namespace
