// The engine's per-file decision: by the rules, for every name the file
// has that zctls can know (the opened path, its link count, its names
// under other mounts), cached per inode and decision generation.
#include <cerrno>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "engine.h"
#include "log.h"

namespace zctls {
namespace {

// readlink of /proc/self/fd/N appends this to files that have been unlinked.
constexpr std::string_view kDeletedSuffix = " (deleted)";
constexpr std::size_t kMaxPath = 4096;  // PATH_MAX, as /proc/self/fd/N links give it
// How long a cached decision is served without reading the fd's path again
// (the window in which a renamed directory or a new mount goes unseen).
constexpr std::uint32_t kNameCheckSeconds = 1;

FileKey key_of(const struct stat& st) {
  return {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
          st.st_ctim.tv_sec, st.st_ctim.tv_nsec};
}

}  // namespace

Decision Engine::rules_decide(int in_fd, const struct stat& st, const Config& config,
                              std::uint32_t generation) noexcept {
  const FileKey key = key_of(st);
  const bool linked = st.st_nlink > 1;
  // by_path: the name the server opened decides, so the decision is per
  // name, not per inode: never cached.
  const bool cacheable = !linked || config.integrity.hard_links == HardLinks::copy;
  const auto now_s = static_cast<std::uint32_t>(kernel_.monotonic_ns() / 1'000'000'000);
  if (cacheable) {
    // A directory above the file renamed, or a mount made over it, moves
    // none of its times: a decision more than a second old is served only
    // once the fd's path is found to be the one it was made for.
    if (const auto cached = decisions_.find(key, generation);
        cached &&
        (now_s - cached->checked_s < kNameCheckSeconds || same_names(in_fd, *cached, now_s))) {
      counters().add(Counter::decision_cache_hits);
      return cached->decision;
    }
  }
  counters().add(Counter::decision_cache_misses);
  Decision decision;
  char why[160] = "";
  // A copy for want of fds or memory is not a property of the file: it is
  // decided again at the file's next send, not served from the cache.
  bool passing = false;
  std::uint32_t name = 0;
  try {
    decision = decide_by_names(in_fd, st, config, why, sizeof why, &passing, &name);
  } catch (...) {
    decision = Decision{false, Decision::kNamesUnknown};  // out of memory listing names
    passing = true;
  }
  if (cacheable && !passing) decisions_.store(key, generation, decision, name, now_s);
  return decision;
}

bool Engine::same_names(int in_fd, const DecisionCache::Found& cached,
                        std::uint32_t now_s) noexcept {
  // A mount made or gone since the table was read retires every decision.
  if (kernel_.refresh_mounts(false)) {
    decision_generation_.fetch_add(1, std::memory_order_acq_rel);
    return false;
  }
  try {
    std::string path(kMaxPath, '\0');
    const ssize_t len = kernel_.fd_path(in_fd, path.data(), path.size());
    if (len <= 0 ||
        DecisionCache::name_hash(path.data(), static_cast<std::size_t>(len)) != cached.name)
      return false;
  } catch (...) {
    return false;
  }
  decisions_.touch(cached, now_s);
  return true;
}

Decision Engine::decide_by_names(int in_fd, const struct stat& st, const Config& config, char* why,
                                 std::size_t why_size, bool* passing, std::uint32_t* name) {
  // On the heap, not the sending thread's stack (which may be a 16 KiB
  // coroutine's); the decision allocates anyway.
  std::string path(kMaxPath, '\0');
  errno = 0;  // (a truncated path sets none)
  const ssize_t len = kernel_.fd_path(in_fd, path.data(), path.size());
  if (len <= 0) {
    *passing = errno == ENOMEM;
    return Decision{false, Decision::kNamesUnknown};
  }
  const std::string_view p(path.data(), static_cast<std::size_t>(len));
  *name = DecisionCache::name_hash(p.data(), p.size());
  Decision decision;
  // An unlinked file can still change through other open fds and has no
  // path a rule could name; a file with other hard links has names zctls
  // cannot list (a copy rule's among them, maybe).
  if (st.st_nlink == 0 || p.ends_with(kDeletedSuffix)) {
    decision.rule = Decision::kUnlinked;
    std::snprintf(why, why_size, "unlinked");
  } else if (st.st_nlink > 1 && config.integrity.hard_links == HardLinks::copy) {
    decision.rule = Decision::kHardLinks;
    std::snprintf(why, why_size, "%ju hard links", static_cast<std::uintmax_t>(st.st_nlink));
  } else {
    decision = config.decide(p);
    std::snprintf(why, why_size, "%s",
                  decision.rule >= 0
                      ? config.rules[static_cast<std::size_t>(decision.rule)].origin.c_str()
                      : "default");
    // Every other name the file has here (bind mounts, the filesystem
    // mounted twice) must allow it too: the first that says copy decides.
    if (decision.zerocopy)
      decision = decide_other_names(in_fd, p, config, decision, why, why_size, passing);
  }
  if (log_enabled(LogLevel::debug))
    log(LogLevel::debug, "%.*s: %s (%s)", static_cast<int>(p.size()), p.data(),
        decision.zerocopy ? "zerocopy" : "copy", why);
  return decision;
}

Decision Engine::decide_other_names(int in_fd, std::string_view path, const Config& config,
                                    Decision decision, char* why, std::size_t why_size,
                                    bool* passing) {
  // Mounts come and go: the table is read again at a file being decided,
  // at most once a second, and at once for a mount it does not have yet.
  // A changed table retires every decision made with the old one.
  if (kernel_.refresh_mounts(false)) decision_generation_.fetch_add(1, std::memory_order_acq_rel);
  std::vector<std::string> names;
  NameLookup found = kernel_.other_names(in_fd, path, &names);
  if (found == NameLookup::unknown_mount || found == NameLookup::unreadable) {
    if (kernel_.refresh_mounts(true)) decision_generation_.fetch_add(1, std::memory_order_acq_rel);
    names.clear();
    found = kernel_.other_names(in_fd, path, &names);
  }
  // A table (read within the last second, above) that shows no mount of
  // the file's filesystem: the process's root hides them all (a chroot
  // into a plain directory), and a name this process cannot open is not
  // one it serves: the opened name decides.  Not read again at once for
  // this: in a chroot that would be a read per new file.  (A filesystem
  // mounted within that second, and bind-mounted elsewhere too, has its
  // files decided by the opened name until the next read.)
  if (found == NameLookup::outside_root) {
    names.clear();
    found = NameLookup::known;
  }
  if (found != NameLookup::known) {
    *passing = found == NameLookup::unreadable;
    std::snprintf(why, why_size, "its other names cannot be known%s",
                  *passing ? " now (no fds or memory to read the mount table)" : "");
    return Decision{false, Decision::kNamesUnknown};
  }
  for (const std::string& name : names) {
    const Decision other = config.decide(name);
    if (other.zerocopy) continue;
    std::snprintf(why, why_size, "also %s: %s", name.c_str(),
                  other.rule >= 0
                      ? config.rules[static_cast<std::size_t>(other.rule)].origin.c_str()
                      : "default");
    return other;
  }
  return decision;
}

}  // namespace zctls
