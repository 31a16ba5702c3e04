// Fd numbers known to be plain (not kTLS: a TCP socket without the tls ULP,
// a pipe, a file) learnt before this process has an engine, so that a
// process that sends files but never over kTLS (nginx's plain-HTTP port,
// any program with the library preloaded system-wide) builds no engine,
// allocates nothing in zctls, and still makes no syscall per send after
// the first on each fd.
//
// One bit per fd number in static storage (128 KiB of BSS for 1 Mi fds):
// no allocation, no lock.  A plain zero-initialised object (the members are
// reached through std::atomic_ref), so that front.cpp can place it in a
// .bss section of its own.  A page of it costs memory only once a bit in it
// is set; the closing hooks read a bit before clearing it, so a process
// that never sets one only ever maps the zero page.  Safe in close() and
// dup2() (atomics only).
#pragma once

#include <atomic>
#include <cstdint>

namespace zctls::hooks {

class PlainFds {
 public:
  static constexpr int kMaxFds = 1 << 20;

  bool test(int fd) const noexcept {
    if (fd < 0 || fd >= kMaxFds) return false;
    return (word(fd).load(std::memory_order_acquire) & bit(fd)) != 0;
  }
  void set(int fd) noexcept {
    if (fd < 0 || fd >= kMaxFds) return;
    word(fd).fetch_or(bit(fd), std::memory_order_acq_rel);
    std::atomic_ref<int> end_ref(end_);
    int end = end_ref.load(std::memory_order_relaxed);
    while (fd >= end && !end_ref.compare_exchange_weak(end, fd + 1, std::memory_order_relaxed)) {
    }
  }
  // The number now names something else (closed, dup2'd over, a new fd,
  // a socket given the tls ULP).
  void clear(int fd) noexcept {
    if (test(fd)) word(fd).fetch_and(~bit(fd), std::memory_order_acq_rel);
  }
  // close_range, closefrom: a word at a time, up to the highest fd set.
  void clear_range(unsigned first, unsigned last) noexcept {
    const auto end =
        static_cast<unsigned>(std::atomic_ref<int>(end_).load(std::memory_order_relaxed));
    if (end == 0 || first >= end) return;
    const unsigned stop = last < end - 1 ? last : end - 1;  // inclusive
    for (unsigned w = first >> 6; w <= stop >> 6; ++w) {
      const unsigned lo = w == first >> 6 ? first & 63 : 0;
      const unsigned hi = w == stop >> 6 ? stop & 63 : 63;
      const std::uint64_t mask =
          (hi == 63 ? ~std::uint64_t{0} : (std::uint64_t{1} << (hi + 1)) - 1) &
          ~((std::uint64_t{1} << lo) - 1);
      std::atomic_ref<std::uint64_t> word_ref(words_[w]);
      if ((word_ref.load(std::memory_order_acquire) & mask) != 0)
        word_ref.fetch_and(~mask, std::memory_order_acq_rel);
    }
  }

 private:
  std::atomic_ref<std::uint64_t> word(int fd) const noexcept {
    return std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t&>(words_[fd >> 6]));
  }
  static std::uint64_t bit(int fd) noexcept { return std::uint64_t{1} << (fd & 63); }

  // Zero in static storage: no page of it touched until a bit is set.
  alignas(64) std::uint64_t words_[kMaxFds / 64];
  // One past the highest fd ever set: bounds clear_range.
  int end_;
};

}  // namespace zctls::hooks
