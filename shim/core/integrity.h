// The integrity guard's pure parts: file snapshots and what changed between
// two of them, the settle window, and the quarantine of changed inodes.
// Times are passed in (nanoseconds), so the clocks are the caller's.
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "fork_safe.h"

namespace zctls {

struct FileSnapshot {
  std::uint64_t dev = 0, ino = 0;
  std::int64_t size = 0;
  std::int64_t mtime_ns = 0, ctime_ns = 0;  // nanoseconds since the epoch
  std::uint64_t nlink = 0;

  static FileSnapshot of(const struct stat& st) noexcept;
  // The latest modification of contents or metadata.
  std::int64_t changed_ns() const noexcept { return mtime_ns > ctime_ns ? mtime_ns : ctime_ns; }
};

// Which fields differ, as a bit set.
enum ChangedField : unsigned {
  kChangedInode = 1U << 0,  // device or inode number: another file
  kChangedSize = 1U << 1,
  kChangedMtime = 1U << 2,
  kChangedCtime = 1U << 3,
  kChangedLinks = 1U << 4,  // link count: unlink, rename over, link
};
unsigned changed_fields(const FileSnapshot& before, const FileSnapshot& after) noexcept;
// Whether a difference can mean different bytes.  Everything counts (even
// ctime alone: `rsync --inplace --times` rewrites a file and restores its
// mtime) except a ctime change that came with a link-count change: that is
// an unlink or a rename over the path — a deploy — not a write.
bool content_may_have_changed(unsigned fields) noexcept;
// "size,mtime,ctime" into `buf` (NUL-terminated, truncated to `size`), for
// log lines; "nothing" for no field.  No allocation: integrity events are
// reported from inside close(), which must be async-signal-safe.
void describe_changes(unsigned fields, char* buf, std::size_t size) noexcept;

// True if the file changed less than `settle_ns` before `now_ns`: it may
// still be being written, so it is sent by copy for now.  A change dated in
// the future (clock steps, another host's timestamps) also counts as recent.
bool within_settle(const FileSnapshot& s, std::int64_t now_ns, std::int64_t settle_ns) noexcept;

// Inodes that changed under a zerocopy send, kept out of zerocopy until they
// have been stable (no new ctime) for `stable_ns`.  Fixed capacity
// (kSlots); when full, the oldest entry is replaced.  Thread-safe with a
// SpinLock that is only taken when at least one inode is quarantined.
class Quarantine {
 public:
  static constexpr int kSlots = 256;

  void add(const FileSnapshot& s, std::int64_t now_ns) noexcept;
  // Whether `s`'s inode is still quarantined at `now_ns`.  A new ctime
  // restarts its clock; an entry stable for `stable_ns` is released.
  bool holds(const FileSnapshot& s, std::int64_t now_ns, std::int64_t stable_ns) noexcept;
  int size() const noexcept { return active_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    std::uint64_t dev = 0, ino = 0;
    std::int64_t ctime_ns = 0;
    std::int64_t stable_since_ns = 0;
    bool used = false;
  };
  Entry entries_[kSlots];
  std::atomic<int> active_{0};
  SpinLock lock_;
};

}  // namespace zctls
