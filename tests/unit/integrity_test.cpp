// The integrity guard's pure parts, and its use by the engine, with a
// scripted kernel whose clocks and files the tests move by hand.
#include "integrity.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace {

using zctls::FileSnapshot;

constexpr std::int64_t kSec = 1'000'000'000;

FileSnapshot snap(std::int64_t size, std::int64_t mtime, std::int64_t ctime,
                  std::uint64_t ino = 7) {
  return {1, ino, size, mtime, ctime};
}

// describe_changes into a string, through a buffer of `size` bytes.
std::string describe(unsigned fields, std::size_t size = 64) {
  std::string buf(size, '?');
  zctls::describe_changes(fields, buf.data(), buf.size());
  return buf.substr(0, buf.find('\0'));
}

TEST(Snapshot, FromStatKeepsNanoseconds) {
  struct stat st {};
  st.st_dev = 3;
  st.st_ino = 4;
  st.st_size = 5;
  st.st_mtim = {10, 123};
  st.st_ctim = {11, 456};
  const FileSnapshot s = FileSnapshot::of(st);
  EXPECT_EQ(s.mtime_ns, 10 * kSec + 123);
  EXPECT_EQ(s.ctime_ns, 11 * kSec + 456);
  EXPECT_EQ(s.changed_ns(), 11 * kSec + 456);
}

TEST(Snapshot, ChangedFields) {
  const FileSnapshot a = snap(100, 5, 6);
  EXPECT_EQ(zctls::changed_fields(a, a), 0U);
  EXPECT_EQ(describe(zctls::changed_fields(a, a)), "nothing");
  // An in-place write: mtime and ctime move, a nanosecond is enough.
  EXPECT_EQ(describe(zctls::changed_fields(a, snap(100, 6, 7))), "mtime,ctime");
  // Truncation.
  EXPECT_EQ(describe(zctls::changed_fields(a, snap(10, 6, 7))), "size,mtime,ctime");
  // chmod: ctime only.
  EXPECT_EQ(describe(zctls::changed_fields(a, snap(100, 5, 9))), "ctime");
  // Another inode.
  EXPECT_EQ(describe(zctls::changed_fields(a, snap(100, 5, 6, 8))), "inode");
}

TEST(Snapshot, UnlinkIsNotAContentChangeButChmodIs) {
  FileSnapshot a = snap(100, 5, 6);
  a.nlink = 1;
  FileSnapshot unlinked = snap(100, 5, 9);  // rename over the path: nlink 1 -> 0
  unlinked.nlink = 0;
  const unsigned f = zctls::changed_fields(a, unlinked);
  EXPECT_EQ(describe(f), "ctime,links");
  // A short buffer gets whole names only, NUL-terminated, never overrun.
  EXPECT_EQ(describe(f, 9), "ctime");
  EXPECT_EQ(describe(f, 1), "");
  EXPECT_FALSE(zctls::content_may_have_changed(f));
  FileSnapshot chmodded = snap(100, 5, 9);  // or rsync --inplace --times
  chmodded.nlink = 1;
  EXPECT_TRUE(zctls::content_may_have_changed(zctls::changed_fields(a, chmodded)));
  FileSnapshot rewritten = snap(100, 7, 9);  // written, then unlinked
  rewritten.nlink = 0;
  EXPECT_TRUE(zctls::content_may_have_changed(zctls::changed_fields(a, rewritten)));
  EXPECT_FALSE(zctls::content_may_have_changed(0));
}

TEST(Settle, RecentChangesAreWithinTheWindow) {
  const FileSnapshot s = snap(1, 100 * kSec, 100 * kSec);
  EXPECT_TRUE(zctls::within_settle(s, 101 * kSec, 2 * kSec));
  EXPECT_FALSE(zctls::within_settle(s, 102 * kSec, 2 * kSec));
  EXPECT_TRUE(zctls::within_settle(s, 99 * kSec, 2 * kSec)) << "a future timestamp is recent";
  EXPECT_FALSE(zctls::within_settle(s, 101 * kSec, 0)) << "settle = 0 turns it off";
}

TEST(QuarantineClock, HoldsUntilStableThenReleases) {
  zctls::Quarantine q;
  const FileSnapshot s = snap(1, 5, 6);
  EXPECT_FALSE(q.holds(s, 0, 10 * kSec));
  q.add(s, 100 * kSec);
  EXPECT_EQ(q.size(), 1);
  EXPECT_TRUE(q.holds(s, 105 * kSec, 10 * kSec));
  // Changed again at 105 s: the clock restarts.
  const FileSnapshot again = snap(1, 7, 8);
  EXPECT_TRUE(q.holds(again, 105 * kSec, 10 * kSec));
  EXPECT_TRUE(q.holds(again, 114 * kSec, 10 * kSec));
  EXPECT_FALSE(q.holds(again, 115 * kSec, 10 * kSec)) << "stable for 10 s: released";
  EXPECT_EQ(q.size(), 0);
  EXPECT_FALSE(q.holds(again, 116 * kSec, 10 * kSec));
}

TEST(QuarantineClock, OtherInodesAreFreeAndCapacityIsBounded) {
  zctls::Quarantine q;
  q.add(snap(1, 5, 6, 1), 0);
  EXPECT_FALSE(q.holds(snap(1, 5, 6, 2), 1, kSec));
  for (std::uint64_t ino = 100; ino < 100 + 2 * zctls::Quarantine::kSlots; ++ino)
    q.add(snap(1, 5, 6, ino), static_cast<std::int64_t>(ino));
  EXPECT_EQ(q.size(), zctls::Quarantine::kSlots);
  // The newest are kept.
  EXPECT_TRUE(q.holds(snap(1, 5, 6, 99 + 2 * zctls::Quarantine::kSlots), 1000, kSec));
}

}  // namespace
