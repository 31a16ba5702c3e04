// The engine's KernelPort in a real process: the kernel asked through the
// real (next) libc functions and raw syscalls, never through the shim's own
// hooks.
#pragma once

#include "engine.h"

namespace zctls::runtime {

// The one instance; lives as long as the process.
KernelPort& libc_kernel() noexcept;

}  // namespace zctls::runtime
