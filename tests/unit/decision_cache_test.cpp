// The decision cache: exact keys only, per config generation, and a size
// that follows the working set up to its bound.
#include "decision_cache.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace {

using zctls::Decision;
using zctls::DecisionCache;
using zctls::FileKey;

FileKey key(std::uint64_t ino, std::int64_t ctime_nsec = 0) {
  return {2049, ino, 1700, ctime_nsec};
}

TEST(DecisionCache, FindsOnlyTheExactKeyOfTheSameGeneration) {
  DecisionCache cache;
  EXPECT_EQ(cache.capacity(), 0U) << "nothing allocated before the first store";
  EXPECT_FALSE(cache.find(key(7), 1));
  cache.store(key(7), 1, Decision{true, 3}, 0xabcd, 40);
  const auto hit = cache.find(key(7), 1);
  ASSERT_TRUE(hit);
  EXPECT_TRUE(hit->decision.zerocopy);
  EXPECT_EQ(hit->decision.rule, 3);
  EXPECT_EQ(hit->name, 0xabcdU);
  EXPECT_EQ(hit->checked_s, 40U);
  EXPECT_FALSE(cache.find(key(7), 2)) << "a reloaded config decides again";
  EXPECT_FALSE(cache.find(key(7, 1), 1)) << "a new ctime (write, rename, chmod) decides again";
  EXPECT_FALSE(cache.find(key(8), 1));
  EXPECT_FALSE(cache.find(FileKey{2050, 7, 1700, 0}, 1)) << "same inode, other device";
}

TEST(DecisionCache, GrowsWithTheWorkingSetUpToItsBound) {
  DecisionCache cache;
  constexpr std::uint64_t kFiles = 20000;
  // Pass over the files until a pass finds them all (the table grows when
  // it has evicted as many entries as it holds).
  int passes = 0;
  std::uint64_t misses = kFiles;
  while (misses > kFiles / 100 && passes < 50) {
    misses = 0;
    for (std::uint64_t ino = 1; ino <= kFiles; ++ino) {
      if (!cache.find(key(ino), 1)) {
        ++misses;
        cache.store(key(ino), 1, Decision{ino % 2 == 0, static_cast<int>(ino % 5)}, 0, 0);
      }
    }
    ++passes;
  }
  // A few files share a set with four others and evict each other.
  EXPECT_LE(misses, kFiles / 100) << "after " << passes << " passes";
  EXPECT_GE(cache.capacity(), kFiles);
  EXPECT_LE(cache.capacity(), 4 * kFiles) << "grew no further than the working set needs";
  for (std::uint64_t ino = 1; ino <= kFiles; ino += 997) {
    const auto hit = cache.find(key(ino), 1);
    if (hit) {
      EXPECT_EQ(hit->decision.zerocopy, ino % 2 == 0);
      EXPECT_EQ(hit->decision.rule, static_cast<int>(ino % 5));
    }
  }
  // Far more files than the bound: it stops growing.
  for (int pass = 0; pass < 3; ++pass)
    for (std::uint64_t ino = 1; ino <= 2 * DecisionCache::kMaxEntries; ++ino)
      cache.store(key(ino + 1'000'000), 1, Decision{}, 0, 0);
  EXPECT_EQ(cache.capacity(), DecisionCache::kMaxEntries);
}

// The time its path was last checked moves with touch(), unless the entry
// was written since it was found.
TEST(DecisionCache, TouchMovesTheCheckTimeOfAnUnchangedEntryOnly) {
  DecisionCache cache;
  cache.store(key(7), 1, Decision{true, 3}, 5, 10);
  const auto first = cache.find(key(7), 1);
  ASSERT_TRUE(first);
  cache.touch(*first, 12);
  EXPECT_EQ(cache.find(key(7), 1)->checked_s, 12U);
  cache.store(key(7), 1, Decision{false, 1}, 6, 13);  // rewritten meanwhile
  cache.touch(*first, 99);
  const auto now = cache.find(key(7), 1);
  EXPECT_EQ(now->checked_s, 13U);
  EXPECT_EQ(now->name, 6U);
}

TEST(DecisionCache, RulesBeyondWhatAnEntryHoldsAreNotCached) {
  DecisionCache cache;
  cache.store(key(1), 1, Decision{true, 40000}, 0, 0);
  EXPECT_FALSE(cache.find(key(1), 1));
}

}  // namespace
