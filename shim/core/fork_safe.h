// The shim's only lock type, and the only way it builds something once:
// both are safe across fork().
//
// fork() copies the whole address space but only the calling thread.  A
// lock another thread held at that moment would stay held in the child for
// ever, and an object another thread was building would never be finished
// (about 1 % of children forked beside a sending thread spun for ever in
// close() before this).  So every SpinLock stamps its held state with the
// process's fork generation, which the atfork child handler bumps
// (note_fork_in_child): in a fork child, a lock stamped in an older
// generation was held by a thread the child does not have, and is taken
// over.  The shim never forks while holding a SpinLock, so a lock held by
// the forking thread itself cannot exist.  Most are held for a few loads
// and stores; the config load and the mount-table read hold theirs across
// file I/O, and a child that takes one of those over redoes that work from
// a fresh start (config_source.cpp; the mount table's retired list is a
// plain array that a fork can only leak from).
//
// Every lock of the shim is one of these (ARCHITECTURE.md, "Locks", lists
// them); tests/integration/fork-safety checks that the library contains no
// other kind (no mutex, no function-local static built at run time).
//
// A fork made without the atfork handlers (a raw clone(2)) does not bump
// the generation; such a child must not call the hooks while another
// thread of its parent was inside the shim.  vfork()/posix_spawn() children
// share the parent's memory and threads, so their locks are real.
#pragma once

#include <atomic>
#include <cstdint>

namespace zctls {

// This process's fork generation: 0 in the process the library was loaded
// into, one more in each fork child.
std::uint32_t fork_generation() noexcept;
// The atfork child handler's first step: every SpinLock held at the fork
// is free from now on.  Async-signal-safe (one atomic add).
void note_fork_in_child() noexcept;

// A test-and-set lock for short sections (a few loads and stores, no
// syscall, no allocation).  Waiters spin, then yield the CPU.  Zero means
// free, so a SpinLock in zeroed memory is ready to use.
class SpinLock {
 public:
  void lock() noexcept;
  bool try_lock() noexcept;
  void unlock() noexcept { word_.store(0, std::memory_order_release); }

 private:
  // 0 = free; else (fork generation << 1) | 1.
  std::atomic<std::uint32_t> word_{0};
};

// Holds a SpinLock for its own lifetime.
class SpinGuard {
 public:
  explicit SpinGuard(SpinLock& lock) noexcept : lock_(lock) { lock_.lock(); }
  ~SpinGuard() { lock_.unlock(); }
  SpinGuard(const SpinGuard&) = delete;
  SpinGuard& operator=(const SpinGuard&) = delete;

 private:
  SpinLock& lock_;
};

// A pointer to an object built by the first caller that needs it, never
// destroyed (other threads may still use it while exit() runs).  The build
// runs under a SpinLock: a child forked while another thread was building
// builds again (the half-built one leaks).  get() is one acquire load.
template <typename T>
class BuiltOnce {
 public:
  T* get() const noexcept { return ptr_.load(std::memory_order_acquire); }
  // `build` returns a T* (or nullptr, and is then asked again next time).
  template <typename Build>
  T* get_or_build(Build build) noexcept {
    if (T* p = get()) return p;
    const SpinGuard guard(lock_);
    T* p = ptr_.load(std::memory_order_relaxed);
    if (p == nullptr) {
      p = build();
      ptr_.store(p, std::memory_order_release);
    }
    return p;
  }

 private:
  std::atomic<T*> ptr_{nullptr};
  SpinLock lock_;
};

}  // namespace zctls
