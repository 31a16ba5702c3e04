// The calling thread's stack, for debug logs of integrity events: which
// code path sent the file.  libunwind is dlopened at the first backtrace,
// not linked: linking would map it and liblzma into every process the
// library is preloaded into, for a feature most never use.
#pragma once

#include <cstddef>

namespace zctls::runtime {

// "f1 <- f2 <- ..." into `buf` (NUL-terminated), the shim's own frames
// left out; "(no backtrace: why)" without libunwind.  Not async-signal-safe
// (the first call dlopens).
void backtrace(char* buf, std::size_t size) noexcept;

}  // namespace zctls::runtime
