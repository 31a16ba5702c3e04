// The functions the hooks stand in front of: the next definition in the
// lookup order (RTLD_NEXT), resolved lazily, once per function, with no
// lock (a race resolves twice to the same pointer).  If a symbol cannot be
// resolved, or resolves back to the shim, the raw syscall stands in, so a
// hook can always do what the application asked for.
//
// Declared once, in hooked_calls.def.  Defined in the hook library
// (real_calls.cpp); inside the engine, the
// three it calls (setsockopt, getsockopt, close) forward to the hook
// library's (shim/runtime/real_forward.cpp), as does libc_clock_gettime.
#pragma once

#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

namespace zctls::real {

// One per line of hooked_calls.def: noexcept where glibc's declaration is
// __THROW; the others are cancellation points.  fcntl's variadic argument
// is passed as the pointer-sized value it always is.
#define ZCTLS_EXC_NOTHROW noexcept
#define ZCTLS_EXC_CANCELS
#define ZCTLS_HOOKED(EXC, ret, name, params, args, fallback) ret name params ZCTLS_EXC_##EXC;
#define ZCTLS_HOOKED_FCNTL(name) int name(int fd, int cmd, void* arg);
#include "hooked_calls.def"
#undef ZCTLS_HOOKED_FCNTL
#undef ZCTLS_HOOKED
#undef ZCTLS_EXC_CANCELS
#undef ZCTLS_EXC_NOTHROW

// The C library's own clock_gettime, looked up in libc.so.6 itself rather
// than in the global scope (where a time-faking preload would answer), or
// nullptr.  Called once, when the engine attaches (clock.h).
using ClockGettimeFn = int (*)(clockid_t, timespec*);
ClockGettimeFn libc_clock_gettime() noexcept;

}  // namespace zctls::real
