#include "decision_cache.h"

#include <sys/mman.h>

#include <cstdint>
#include <new>

namespace zctls {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;
constexpr auto kAcquire = std::memory_order_acquire;
constexpr auto kRelease = std::memory_order_release;

template <typename T>
std::atomic_ref<T> at(T& field) noexcept {
  return std::atomic_ref<T>(field);
}

// splitmix64's finalizer: consecutive inode numbers spread over all sets.
std::uint64_t mix(std::uint64_t x) noexcept {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

std::uint64_t hash(const FileKey& k) noexcept { return mix(k.ino ^ mix(k.dev)); }

// Each file may live in one of two sets (two-choice hashing): a set that is
// full sends new files to their other set, so few files are ever evicted
// while the table is half full.
std::size_t first_set(std::uint64_t h, std::size_t sets) noexcept { return h % sets; }
std::size_t second_set(std::uint64_t h, std::size_t sets) noexcept { return mix(h) % sets; }

std::int64_t ctime_ns(const FileKey& k) noexcept {
  return k.ctime_sec * 1'000'000'000 + k.ctime_nsec;
}

}  // namespace

DecisionCache::Table* DecisionCache::make_table(std::size_t entries, Table* older) noexcept {
  void* memory = mmap(nullptr, entries * sizeof(Entry), PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (memory == MAP_FAILED) return nullptr;
  Table* table = new (std::nothrow) Table;
  if (table == nullptr) {
    munmap(memory, entries * sizeof(Entry));
    return nullptr;
  }
  table->sets = entries / kWays;
  table->entries = static_cast<Entry*>(memory);  // zeroed: every entry unused
  table->older = older;
  return table;
}

void DecisionCache::free_table(Table* t) noexcept {
  munmap(t->entries, t->sets * kWays * sizeof(Entry));
  delete t;
}

DecisionCache::~DecisionCache() {
  Table* t = table_.load(kRelaxed);
  while (t != nullptr) {
    Table* older = t->older;
    free_table(t);
    t = older;
  }
}

std::size_t DecisionCache::capacity() const noexcept {
  const Table* t = table_.load(std::memory_order_acquire);
  return t == nullptr ? 0 : t->sets * kWays;
}

std::uint32_t DecisionCache::name_hash(const char* path, std::size_t length) noexcept {
  std::uint32_t h = 2166136261U;
  for (std::size_t i = 0; i < length; ++i) {
    h ^= static_cast<unsigned char>(path[i]);
    h *= 16777619U;
  }
  return h;
}

std::optional<DecisionCache::Found> DecisionCache::find(const FileKey& key,
                                                        std::uint32_t generation) const noexcept {
  const Table* t = table_.load(std::memory_order_acquire);
  if (t == nullptr) return std::nullopt;
  const std::uint64_t h = hash(key);
  const std::int64_t ctime = ctime_ns(key);
  for (const std::size_t set : {first_set(h, t->sets), second_set(h, t->sets)}) {
    for (std::size_t way = 0; way < kWays; ++way) {
      Entry& e = t->entries[set * kWays + way];
      const std::uint32_t before = at(e.seq).load(std::memory_order_acquire);
      if (before == 0 || (before & 1U)) continue;
      // Acquire loads of the fields, not a fence: a field a writer has
      // already changed carries its "odd seq" with it, so the seq read
      // after them cannot still be `before`.  On x86 these are the same
      // plain loads as relaxed ones; on arm64 six ldar instead of six ldr
      // and a dmb.  ThreadSanitizer can check this form (it cannot model
      // fences, and GCC refuses them under -fsanitize=thread).
      const bool same = at(e.ino).load(kAcquire) == key.ino &&
                        at(e.dev).load(kAcquire) == static_cast<std::uint32_t>(key.dev) &&
                        at(e.ctime_ns).load(kAcquire) == ctime &&
                        at(e.generation).load(kAcquire) == generation;
      const Found found{Decision{at(e.zerocopy).load(kAcquire) != 0, at(e.rule).load(kAcquire)},
                        at(e.name).load(kAcquire), at(e.checked_s).load(kAcquire), &e, before};
      if (same && at(e.seq).load(kRelaxed) == before) return found;
    }
  }
  return std::nullopt;
}

void DecisionCache::touch(const Found& found, std::uint32_t now_s) const noexcept {
  auto* e = static_cast<Entry*>(found.entry);
  std::uint32_t seq = found.seq;
  if (e == nullptr || !at(e->seq).compare_exchange_strong(seq, seq + 1, std::memory_order_acquire))
    return;  // written since: the next hit checks again
  at(e->checked_s).store(now_s, kRelease);
  at(e->seq).store(seq + 2, std::memory_order_release);
}

void DecisionCache::store(const FileKey& key, std::uint32_t generation, Decision decision,
                          std::uint32_t name, std::uint32_t now_s) noexcept {
  if (decision.rule > INT16_MAX || key.dev > UINT32_MAX) return;
  Table* t = table_.load(std::memory_order_acquire);
  if (t == nullptr) {
    Table* fresh = make_table(kFirstEntries, nullptr);
    if (fresh == nullptr) return;
    if (table_.compare_exchange_strong(t, fresh, std::memory_order_acq_rel)) {
      t = fresh;
    } else {  // another thread made it first
      free_table(fresh);
    }
  }
  const std::uint64_t h = hash(key);
  // An entry of an older config or an unused one, in the first set, then
  // in the second; else one chosen by the key's hash (no shared
  // replacement state to contend on).
  Entry* victim = nullptr;
  bool fills = false;  // an unused entry: the table holds one more file
  // The file's own entry first (decided again after its path changed):
  // two entries for one key would leave find() the older one.
  const std::int64_t ctime = ctime_ns(key);
  for (const std::size_t set : {first_set(h, t->sets), second_set(h, t->sets)}) {
    for (std::size_t way = 0; way < kWays && victim == nullptr; ++way) {
      Entry& e = t->entries[set * kWays + way];
      const std::uint32_t seq = at(e.seq).load(kRelaxed);
      if (seq != 0 && (seq & 1U) == 0 && at(e.ino).load(kRelaxed) == key.ino &&
          at(e.dev).load(kRelaxed) == static_cast<std::uint32_t>(key.dev) &&
          at(e.ctime_ns).load(kRelaxed) == ctime)
        victim = &e;
    }
  }
  for (const std::size_t set : {first_set(h, t->sets), second_set(h, t->sets)}) {
    for (std::size_t way = 0; way < kWays && victim == nullptr; ++way) {
      Entry& e = t->entries[set * kWays + way];
      const std::uint32_t seq = at(e.seq).load(kRelaxed);
      // Not one being written (odd): in a fork child an entry another
      // thread was writing at the fork stays odd for good, and choosing it
      // would keep its files out of the cache.
      if ((seq & 1U) != 0) continue;
      if (seq == 0 || at(e.generation).load(kRelaxed) != generation) {
        victim = &e;
        fills = seq == 0;
      }
    }
  }
  if (victim == nullptr) {
    const std::size_t set = (h >> 40) & 1U ? second_set(h, t->sets) : first_set(h, t->sets);
    victim = &t->entries[set * kWays + (h >> 32) % kWays];
  }
  std::uint32_t seq = at(victim->seq).load(kRelaxed);
  if ((seq & 1U) ||
      !at(victim->seq).compare_exchange_strong(seq, seq + 1, std::memory_order_acquire))
    return;  // another thread is writing this entry: skip, it is only a cache
  // Release stores: a reader that sees any new field also sees the odd seq
  // (the pair of find()'s acquire loads).
  at(victim->generation).store(generation, kRelease);
  at(victim->dev).store(static_cast<std::uint32_t>(key.dev), kRelease);
  at(victim->ino).store(key.ino, kRelease);
  at(victim->ctime_ns).store(ctime_ns(key), kRelease);
  at(victim->rule).store(static_cast<std::int16_t>(decision.rule), kRelease);
  at(victim->zerocopy).store(decision.zerocopy ? 1 : 0, kRelease);
  at(victim->name).store(name, kRelease);
  at(victim->checked_s).store(now_s, kRelease);
  at(victim->seq).store(seq + 2, std::memory_order_release);
  // Keep the table at most half full, so that few sets overflow.
  if (fills && t->filled.fetch_add(1, kRelaxed) + 1 == t->sets * kWays / 2) grow(t);
}

void DecisionCache::grow(Table* full) noexcept {
  const std::size_t entries = full->sets * kWays * 2;
  if (entries > kMaxEntries) return;
  Table* bigger = make_table(entries, full);
  if (bigger == nullptr) return;
  Table* expected = full;
  if (!table_.compare_exchange_strong(expected, bigger, std::memory_order_acq_rel)) {
    free_table(bigger);
    return;
  }
  // The old table stays mapped for threads still reading it, but gives its
  // memory back: its pages read as zeros from now on, which a reader takes
  // for unused entries (seq 0) or, mid-read, for a changed seq: a miss.  A
  // writer still filling an entry there may leave it half zeroed, but then
  // with generation 0, which no loaded config has (they count from 1).
  madvise(full->entries, full->sets * kWays * sizeof(Entry), MADV_DONTNEED);
}

}  // namespace zctls
