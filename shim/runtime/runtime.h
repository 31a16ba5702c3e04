// The engine library's process-wide state: the Engine instance and what
// the hook library handed over when it loaded this one (engine_abi.h).
#pragma once

#include "engine.h"
#include "engine_abi.h"

namespace zctls::runtime {

// The process's engine, built when the hooks attach; nullptr if memory
// ran out then (attach then refuses, and the hooks pass through).
Engine* engine() noexcept;
// The hook library's side, as given to zctls_engine_attach.
const zctls_hook_side& hook_side() noexcept;

}  // namespace zctls::runtime
