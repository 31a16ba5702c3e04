#include "decision_cache.h"

#include <new>

namespace zctls {
namespace {
constexpr auto kRelaxed = std::memory_order_relaxed;

std::size_t hash(const FileKey& k) noexcept {
  std::uint64_t h = k.ino * 0x9E3779B97F4A7C15ULL ^ k.dev * 0xC2B2AE3D27D4EB4FULL;
  h ^= h >> 29;
  return static_cast<std::size_t>(h) & (DecisionCache::kSlots - 1);
}
}  // namespace

DecisionCache::~DecisionCache() { delete[] slots_.load(kRelaxed); }

DecisionCache::Slot* DecisionCache::slot_for(const FileKey& key, bool create) const noexcept {
  Slot* slots = slots_.load(std::memory_order_acquire);
  if (slots == nullptr) {
    if (!create) return nullptr;
    Slot* fresh = new (std::nothrow) Slot[kSlots];
    if (fresh == nullptr) return nullptr;
    if (slots_.compare_exchange_strong(slots, fresh, std::memory_order_acq_rel)) {
      slots = fresh;
    } else {
      delete[] fresh;
    }
  }
  return &slots[hash(key)];
}

std::optional<Decision> DecisionCache::find(const FileKey& key,
                                            std::uint32_t generation) const noexcept {
  const Slot* s = slot_for(key, false);
  if (s == nullptr) return std::nullopt;
  const std::uint32_t before = s->seq.load(std::memory_order_acquire);
  if (before & 1U) return std::nullopt;
  const bool same = s->used.load(kRelaxed) != 0 && s->generation.load(kRelaxed) == generation &&
                    s->dev.load(kRelaxed) == key.dev && s->ino.load(kRelaxed) == key.ino &&
                    s->ctime_sec.load(kRelaxed) == key.ctime_sec &&
                    s->ctime_nsec.load(kRelaxed) == key.ctime_nsec;
  const Decision d{s->zerocopy.load(kRelaxed) != 0, s->rule.load(kRelaxed)};
  std::atomic_thread_fence(std::memory_order_acquire);
  if (!same || s->seq.load(kRelaxed) != before) return std::nullopt;
  return d;
}

void DecisionCache::store(const FileKey& key, std::uint32_t generation,
                          Decision decision) noexcept {
  Slot* s = slot_for(key, true);
  if (s == nullptr) return;
  std::uint32_t seq = s->seq.load(kRelaxed);
  if ((seq & 1U) || !s->seq.compare_exchange_strong(seq, seq + 1, std::memory_order_acquire))
    return;  // another thread is writing this slot: skip, it is only a cache
  std::atomic_thread_fence(std::memory_order_release);
  s->generation.store(generation, kRelaxed);
  s->dev.store(key.dev, kRelaxed);
  s->ino.store(key.ino, kRelaxed);
  s->ctime_sec.store(key.ctime_sec, kRelaxed);
  s->ctime_nsec.store(key.ctime_nsec, kRelaxed);
  s->rule.store(decision.rule, kRelaxed);
  s->zerocopy.store(decision.zerocopy ? 1 : 0, kRelaxed);
  s->used.store(1, kRelaxed);
  s->seq.store(seq + 2, std::memory_order_release);
}

}  // namespace zctls
