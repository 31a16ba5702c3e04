#include "fork_safe.h"

#include <sched.h>

namespace zctls {
namespace {

// Zero-initialised: constant, no constructor runs at load time.
std::atomic<std::uint32_t> g_generation{0};

constexpr std::uint32_t kHeld = 1;
constexpr int kSpinsBeforeYield = 64;

std::uint32_t stamp() noexcept {
  return (g_generation.load(std::memory_order_relaxed) << 1) | kHeld;
}

}  // namespace

std::uint32_t fork_generation() noexcept { return g_generation.load(std::memory_order_relaxed); }

void note_fork_in_child() noexcept { g_generation.fetch_add(1, std::memory_order_relaxed); }

bool SpinLock::try_lock() noexcept {
  const std::uint32_t mine = stamp();
  std::uint32_t seen = word_.load(std::memory_order_relaxed);
  // Free, or held by a thread of a process this one was forked from.
  if (seen != 0 && seen == mine) return false;
  return word_.compare_exchange_strong(seen, mine, std::memory_order_acquire,
                                       std::memory_order_relaxed);
}

void SpinLock::lock() noexcept {
  for (int spins = 0; !try_lock(); ++spins) {
    if (spins >= kSpinsBeforeYield) sched_yield();
  }
}

}  // namespace zctls
