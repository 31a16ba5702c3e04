// Decisions per file, so that a file's path is resolved (readlink) and
// matched once, not on every send.
//
// Keyed by device, inode and ctime: a rename, chmod, write or an inode
// number reused by a new file all change ctime, so a stale path can never
// be served from the cache.  Fixed size (kSlots entries, direct-mapped,
// ~200 KiB allocated on first use): a collision evicts, nothing grows.
// Lock-free: each slot is a seqlock; a reader that races a writer just
// misses, and a writer that finds a slot busy skips caching.
#pragma once

#include <atomic>
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
  static constexpr std::size_t kSlots = 4096;

  DecisionCache() = default;
  ~DecisionCache();
  DecisionCache(const DecisionCache&) = delete;
  DecisionCache& operator=(const DecisionCache&) = delete;

  // `generation` identifies the config the decision was made with.
  std::optional<Decision> find(const FileKey& key, std::uint32_t generation) const noexcept;
  void store(const FileKey& key, std::uint32_t generation, Decision decision) noexcept;

 private:
  struct Slot {
    std::atomic<std::uint32_t> seq{0};  // odd while being written
    std::atomic<std::uint32_t> generation{0};
    std::atomic<std::uint64_t> dev{0}, ino{0};
    std::atomic<std::int64_t> ctime_sec{0}, ctime_nsec{0};
    std::atomic<std::int32_t> rule{0};
    std::atomic<std::uint8_t> zerocopy{0}, used{0};
  };
  Slot* slot_for(const FileKey& key, bool create) const noexcept;
  mutable std::atomic<Slot*> slots_{nullptr};
};

}  // namespace zctls
