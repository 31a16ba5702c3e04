#include "integrity.h"

#include <cstdio>

namespace zctls {
namespace {
constexpr std::int64_t kNsPerSec = 1000000000;
std::int64_t ns(const timespec& t) { return t.tv_sec * kNsPerSec + t.tv_nsec; }
}  // namespace

FileSnapshot FileSnapshot::of(const struct stat& st) noexcept {
  return {static_cast<std::uint64_t>(st.st_dev),
          static_cast<std::uint64_t>(st.st_ino),
          static_cast<std::int64_t>(st.st_size),
          ns(st.st_mtim),
          ns(st.st_ctim),
          static_cast<std::uint64_t>(st.st_nlink)};
}

unsigned changed_fields(const FileSnapshot& a, const FileSnapshot& b) noexcept {
  unsigned f = 0;
  if (a.dev != b.dev || a.ino != b.ino) f |= kChangedInode;
  if (a.size != b.size) f |= kChangedSize;
  if (a.mtime_ns != b.mtime_ns) f |= kChangedMtime;
  if (a.ctime_ns != b.ctime_ns) f |= kChangedCtime;
  if (a.nlink != b.nlink) f |= kChangedLinks;
  return f;
}

bool content_may_have_changed(unsigned fields) noexcept {
  const unsigned link_change = kChangedCtime | kChangedLinks;
  if ((fields & kChangedLinks) != 0 && (fields & ~link_change) == 0) return false;
  return fields != 0;
}

void describe_changes(unsigned fields, char* buf, std::size_t size) noexcept {
  if (size == 0) return;
  std::size_t used = 0;
  buf[0] = '\0';
  const struct {
    unsigned bit;
    const char* name;
  } names[] = {{kChangedInode, "inode"},
               {kChangedSize, "size"},
               {kChangedMtime, "mtime"},
               {kChangedCtime, "ctime"},
               {kChangedLinks, "links"}};
  for (const auto& n : names) {
    if ((fields & n.bit) == 0) continue;
    const int w = std::snprintf(buf + used, size - used, "%s%s", used == 0 ? "" : ",", n.name);
    if (w < 0 || static_cast<std::size_t>(w) >= size - used) {  // whole names only
      buf[used] = '\0';
      return;
    }
    used += static_cast<std::size_t>(w);
  }
  if (used == 0) std::snprintf(buf, size, "nothing");
}

bool within_settle(const FileSnapshot& s, std::int64_t now_ns, std::int64_t settle_ns) noexcept {
  if (settle_ns <= 0) return false;
  return now_ns - s.changed_ns() < settle_ns;
}

void Quarantine::add(const FileSnapshot& s, std::int64_t now_ns) noexcept {
  const SpinGuard guard(lock_);
  Entry* slot = nullptr;
  Entry* oldest = &entries_[0];
  for (Entry& e : entries_) {
    if (e.used && e.dev == s.dev && e.ino == s.ino) {
      slot = &e;
      break;
    }
    if (slot == nullptr && !e.used) slot = &e;
    if (e.stable_since_ns < oldest->stable_since_ns) oldest = &e;
  }
  if (slot == nullptr) slot = oldest;  // full: the one stable longest goes
  if (!slot->used) active_.fetch_add(1, std::memory_order_relaxed);
  *slot = {s.dev, s.ino, s.ctime_ns, now_ns, true};
}

bool Quarantine::holds(const FileSnapshot& s, std::int64_t now_ns,
                       std::int64_t stable_ns) noexcept {
  if (active_.load(std::memory_order_relaxed) == 0) return false;  // the usual case: no lock
  bool held = false;
  const SpinGuard guard(lock_);
  for (Entry& e : entries_) {
    if (!e.used || e.dev != s.dev || e.ino != s.ino) continue;
    if (e.ctime_ns != s.ctime_ns) {  // changed again: the clock restarts
      e.ctime_ns = s.ctime_ns;
      e.stable_since_ns = now_ns;
    }
    if (now_ns - e.stable_since_ns >= stable_ns) {
      e.used = false;
      active_.fetch_sub(1, std::memory_order_relaxed);
    } else {
      held = true;
    }
    break;
  }
  return held;
}

}  // namespace zctls
