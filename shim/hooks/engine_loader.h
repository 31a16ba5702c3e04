// Finding, loading and attaching libzctls-engine.so.ABI (engine_abi.h), for
// the hooks (front.cpp).  No C++ runtime: dlopen, a state word, one
// message.
#pragma once

#include "engine_abi.h"

namespace zctls::hooks {

// What the hooks give the engine; front.cpp fills `env` at load.
zctls_hook_side& hook_side() noexcept;

// At load (the constructor): where this library was loaded from.
void remember_lib_path() noexcept;

// True if another copy of libzctls.so (another build, another directory)
// comes before this one in the process's symbol search order: its hooks
// are the ones the application calls, and this copy's are its "real"
// calls.  Says once, on fd 2 if that is a log, that this copy stands
// aside.  At load (the constructor).
bool another_copy_first() noexcept;

// The engine's calls if it is attached, else nullptr: one acquire load.
const zctls_engine_ops* attached_engine() noexcept;

// The engine, loading and attaching it if this is the first call (other
// threads meanwhile wait, at most a few seconds); nullptr if it cannot be
// had.  A missing engine, one from another build (its ABI) or one that
// does not export the entry point fails for good; a lack of fds or memory
// is tried again a second later.  Each kind is said once on stderr, when
// that is a log.  Keeps errno; not cancellable while it loads.
const zctls_engine_ops* load_engine() noexcept;

// True once loading failed for good: the hooks stop looking for kTLS.
bool engine_failed() noexcept;

// The atfork child handler's part: a load another thread of the parent
// had under way counts as failed (that thread is not in the child).
// Returns the engine if it is attached, for its own fork handling.
const zctls_engine_ops* engine_after_fork_in_child() noexcept;

}  // namespace zctls::hooks
