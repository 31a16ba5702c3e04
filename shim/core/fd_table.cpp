#include "fd_table.h"

#include <cstdlib>

namespace zctls {

namespace {
constexpr std::uint32_t kKindMask = 0x3;
constexpr std::uint32_t kFileSent = 1U << 2;
constexpr std::uint32_t kFlagOn = 1U << 3;
constexpr std::uint32_t kAppManaged = 1U << 4;
constexpr std::uint32_t kAppCounted = 1U << 5;
constexpr std::uint32_t kTxModeKnown = 1U << 6;
constexpr std::uint32_t kSoftwareTx = 1U << 7;
constexpr int kTxVersionShift = 8;
constexpr std::uint32_t kTxVersionMask = 0x3U << kTxVersionShift;
constexpr int kEpochShift = 10;
static_assert(static_cast<std::uint32_t>(SocketKind::ulp_only) <= kKindMask, "kinds fit the mask");
constexpr std::uint32_t kStateMask = (1U << kEpochShift) - 1;

// Back to unknown, one more close.
void bump(std::atomic<std::uint32_t>& word) noexcept {
  std::uint32_t old = word.load(std::memory_order_relaxed);
  while (!word.compare_exchange_weak(old, ((old >> kEpochShift) + 1) << kEpochShift,
                                     std::memory_order_acq_rel)) {
  }
}
constexpr int kChunkSize = 1 << FdTable::kChunkBits;
}  // namespace

std::uint32_t FdState::pack() const noexcept {
  return static_cast<std::uint32_t>(kind) | (file_sent ? kFileSent : 0U) |
         (flag_on ? kFlagOn : 0U) | (app_managed ? kAppManaged : 0U) |
         (app_counted ? kAppCounted : 0U) | (tx_mode_known ? kTxModeKnown : 0U) |
         (software_tx ? kSoftwareTx : 0U) |
         (static_cast<std::uint32_t>(tx_version) << kTxVersionShift & kTxVersionMask);
}

FdState FdState::unpack(std::uint32_t word) noexcept {
  FdState s;
  s.kind = static_cast<SocketKind>(word & kKindMask);
  s.file_sent = (word & kFileSent) != 0;
  s.flag_on = (word & kFlagOn) != 0;
  s.app_managed = (word & kAppManaged) != 0;
  s.app_counted = (word & kAppCounted) != 0;
  s.tx_mode_known = (word & kTxModeKnown) != 0;
  s.software_tx = (word & kSoftwareTx) != 0;
  s.tx_version = static_cast<kernel::KeyVersion>((word & kTxVersionMask) >> kTxVersionShift);
  s.epoch = word >> kEpochShift;
  return s;
}

FdTable::~FdTable() {
  for (auto& c : chunks_) std::free(c.load(std::memory_order_relaxed));
}

std::atomic<std::uint32_t>* FdTable::slot(int fd, bool create) const noexcept {
  if (fd < 0 || fd >= kMaxFds) return nullptr;
  std::atomic<Chunk*>& dir = chunks_[fd >> kChunkBits];
  Chunk* chunk = dir.load(std::memory_order_acquire);
  if (chunk == nullptr) {
    if (!create) return nullptr;
    // calloc: zero is "unknown", and atomics of integers are plain words.
    auto* fresh = static_cast<Chunk*>(std::calloc(kChunkSize, sizeof(Chunk)));
    if (fresh == nullptr) return nullptr;
    if (dir.compare_exchange_strong(chunk, fresh, std::memory_order_acq_rel)) {
      chunk = fresh;
    } else {
      std::free(fresh);  // another thread won; `chunk` holds its chunk
    }
  }
  return &chunk[fd & (kChunkSize - 1)];
}

FdState FdTable::get(int fd) const noexcept {
  const auto* s = slot(fd, false);
  return s == nullptr ? FdState{} : FdState::unpack(s->load(std::memory_order_acquire));
}

bool FdTable::set(int fd, FdState state) noexcept {
  auto* s = slot(fd, true);
  if (s == nullptr) return false;
  std::uint32_t old = s->load(std::memory_order_relaxed);
  while (!s->compare_exchange_weak(old, (old & ~kStateMask) | state.pack(),
                                   std::memory_order_acq_rel)) {
  }
  return true;
}

std::uint32_t FdTable::pin_epoch(int fd) noexcept {
  const auto* s = slot(fd, true);
  return s == nullptr ? 0 : s->load(std::memory_order_acquire) >> kEpochShift;
}

bool FdTable::mark_file_sent(int fd) noexcept {
  auto* s = slot(fd, false);
  return s != nullptr && (s->fetch_or(kFileSent, std::memory_order_acq_rel) & kFileSent) == 0;
}

void FdTable::forget(int fd) noexcept {
  if (auto* s = slot(fd, false)) bump(*s);
}

void FdTable::forget_if(int fd, std::uint32_t epoch) noexcept {
  auto* s = slot(fd, false);
  if (s == nullptr) return;
  std::uint32_t old = s->load(std::memory_order_relaxed);
  while ((old >> kEpochShift) == (epoch & (~0U >> kEpochShift)) &&
         !s->compare_exchange_weak(old, ((old >> kEpochShift) + 1) << kEpochShift,
                                   std::memory_order_acq_rel)) {
  }
}

// Calls visit(entry) for each allocated entry of [first, last] (whole
// chunks never allocated are skipped: close_range(3, ~0U) costs nothing
// there) until it returns true; whether one did.
template <typename Visit>
bool FdTable::walk(unsigned first, unsigned last, Visit visit) const noexcept {
  if (first >= static_cast<unsigned>(kMaxFds)) return false;
  if (last >= static_cast<unsigned>(kMaxFds)) last = kMaxFds - 1;
  for (unsigned fd = first; fd <= last;) {
    const int chunk_index = static_cast<int>(fd >> kChunkBits);
    Chunk* chunk = chunks_[chunk_index].load(std::memory_order_acquire);
    const unsigned chunk_end = (static_cast<unsigned>(chunk_index) + 1) << kChunkBits;
    const unsigned stop = last < chunk_end - 1 ? last : chunk_end - 1;
    if (chunk != nullptr)
      for (unsigned f = fd; f <= stop; ++f)
        if (visit(chunk[f & (kChunkSize - 1)])) return true;
    if (stop == last) break;
    fd = stop + 1;
  }
  return false;
}

void FdTable::forget_range(unsigned first, unsigned last) noexcept {
  walk(first, last, [](Chunk& entry) {
    bump(entry);
    return false;
  });
}

bool FdTable::any_tls_in(unsigned first, unsigned last) const noexcept {
  return walk(first, last, [](const Chunk& entry) {
    const SocketKind kind = FdState::unpack(entry.load(std::memory_order_relaxed)).kind;
    return kind == SocketKind::ktls_tx || kind == SocketKind::ulp_only;
  });
}

}  // namespace zctls
