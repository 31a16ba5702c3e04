// The clocks zctls reads: the kernel's, whoever else is preloaded.
//
// File timestamps come from the kernel (fstat(2) is a raw syscall in the
// shim), so the settle window must compare them with the kernel's clock.
// A clock_gettime() call from inside libzctls.so binds through the global
// scope, where a time-faking preload (libfaketime: LD_PRELOAD="libzctls.so
// libfaketime.so.1" FAKETIME=+5s) answers instead: a file written 10 ms
// before its send would look 5 s old and go zerocopy.  The
// shim's runtime therefore hands core the C library's own clock_gettime
// (real_calls.h: real::clock_gettime), which reads the vDSO; unit tests
// and the CLI keep the default, ::clock_gettime.  Every duration the shim
// measures (settle, quarantine, reload checks, the log's rate limit, the
// textfile interval) uses these, so all its times share one source.
#pragma once

#include <time.h>

#include <cstdint>

namespace zctls {

using ClockGettime = int (*)(clockid_t, timespec*);
// Called once, at load time, before any hook runs.
void use_clock(ClockGettime fn) noexcept;
// Nanoseconds on `clock` (CLOCK_REALTIME_COARSE for file times,
// CLOCK_MONOTONIC_COARSE for durations: both read from the vDSO without a
// syscall, a few ms of resolution).  0 if the clock cannot be read.
std::int64_t clock_ns(clockid_t clock) noexcept;

}  // namespace zctls
