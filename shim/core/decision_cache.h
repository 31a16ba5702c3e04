// Decisions per file, so that a file's path is resolved (readlink) and
// matched once, not on every send.
//
// Keyed by device, inode and ctime: a rename of the file itself, chmod,
// write or an inode number reused by a new file all change ctime.  A
// rename of a directory above it, or a new mount over it, changes no
// ctime: each entry also holds a hash of the path it was decided for and
// when that was last checked, and the engine reads the fd's path again at
// a hit more than a second old (engine_names.cpp).  Lock-free: each entry
// is a seqlock; a reader that races a writer just misses, and a writer
// that finds an entry busy skips caching.
//
// Size follows the working set: 4-way sets of 40-byte entries, two
// candidate sets per file, starting with 4096 entries (160 KiB of address
// space, touched as used) and doubling, up to kMaxEntries (10 MiB), each
// time half of a table's entries are in use.  Files whose two sets are both
// full evict each other (by the key's hash); that is rare below half full.
// A grown table starts empty (its misses refill it) and the old one is
// kept, since other threads may still be reading it: all tables together
// take less than twice the largest.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "zctls/config.h"

namespace zctls {

struct FileKey {
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  std::int64_t ctime_sec = 0;
  std::int64_t ctime_nsec = 0;
};

class DecisionCache {
 public:
  static constexpr std::size_t kWays = 4;
  static constexpr std::size_t kFirstEntries = 4096;
  static constexpr std::size_t kMaxEntries = 262144;  // 10 MiB

  DecisionCache() = default;
  ~DecisionCache();
  DecisionCache(const DecisionCache&) = delete;
  DecisionCache& operator=(const DecisionCache&) = delete;

  // A decision found, with the hash of the path it was made for and when
  // that path was last found to be the fd's (seconds, the caller's clock);
  // `entry` and `seq` let touch() update that time.
  struct Found {
    Decision decision;
    std::uint32_t name = 0;
    std::uint32_t checked_s = 0;
    void* entry = nullptr;
    std::uint32_t seq = 0;
  };

  // `generation` identifies the config the decision was made with.
  std::optional<Found> find(const FileKey& key, std::uint32_t generation) const noexcept;
  // `name`: name_hash() of the path decided for; `now_s`: when (seconds).
  void store(const FileKey& key, std::uint32_t generation, Decision decision, std::uint32_t name,
             std::uint32_t now_s) noexcept;
  // The path of `found` was checked again at `now_s` and is the same.  Does
  // nothing if the entry changed since find().
  void touch(const Found& found, std::uint32_t now_s) const noexcept;
  // FNV-1a of a path (32 bits).
  static std::uint32_t name_hash(const char* path, std::size_t length) noexcept;
  // Entries of the table in use (0 before the first store): for tests and
  // the benchmarks.
  std::size_t capacity() const noexcept;

 private:
  // Plain integers in zeroed anonymous memory (pages are touched only when
  // an entry is written), always accessed through std::atomic_ref.
  struct Entry {
    std::uint32_t seq;  // odd while being written; 0 = never used
    std::uint32_t generation;
    std::uint64_t ino;
    std::int64_t ctime_ns;
    std::uint32_t dev;  // the kernel's device numbers are 32 bits (new_encode_dev)
    std::int16_t rule;  // rules beyond 32767 are not cached
    std::uint16_t zerocopy;
    std::uint32_t name;       // name_hash() of the path decided for
    std::uint32_t checked_s;  // when that path was last the fd's
  };
  struct Table {
    std::size_t sets = 0;
    Entry* entries = nullptr;            // sets * kWays, mmap'd
    std::atomic<std::size_t> filled{0};  // entries ever used
    Table* older = nullptr;              // kept for readers; freed with the cache
  };
  static Table* make_table(std::size_t entries, Table* older) noexcept;
  static void free_table(Table* t) noexcept;
  void grow(Table* full) noexcept;
  mutable std::atomic<Table*> table_{nullptr};
};

}  // namespace zctls
