#include "clock.h"

#include <atomic>

namespace zctls {
namespace {
std::atomic<ClockGettime> g_clock{nullptr};  // nullptr: ::clock_gettime
}  // namespace

void use_clock(ClockGettime fn) noexcept { g_clock.store(fn, std::memory_order_release); }

std::int64_t clock_ns(clockid_t clock) noexcept {
  timespec t{};
  const ClockGettime fn = g_clock.load(std::memory_order_acquire);
  if ((fn != nullptr ? fn(clock, &t) : ::clock_gettime(clock, &t)) != 0) return 0;
  return t.tv_sec * 1'000'000'000LL + t.tv_nsec;
}

}  // namespace zctls
