// The boundary between the two halves of zctls:
//
//   libzctls.so         the hooks.  Preloaded into every process; plain
//                       C++ with no C++ runtime (no libstdc++, no
//                       exceptions, no RTTI), so that a process that never
//                       uses kTLS pays only for mapping a small library.
//   libzctls-engine.so.ABI  everything else (config, rules, integrity, stats,
//                       logging, libstdc++ linked in).  dlopen'd from the
//                       directory libzctls.so was loaded from, by the first
//                       hook that meets a kTLS TX socket (a key installed by
//                       setsockopt, or a send on a socket that has one).
//
// Both are built from one tree and shipped together.  The engine's file
// name carries ZCTLS_ENGINE_ABI (libzctls-engine.so.1): hooks never load,
// and so never run the constructors of, an engine of another ABI (a server
// started before a package upgrade that changed it finds no file, and
// passes through with one message); `abi` in both tables checks it again.  `abi` is the first
// member of both structs in every version, so that any two builds can read each other's.  Plain C
// types only: nothing here needs a C++ runtime.
#pragma once

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

// Bumped whenever a struct below changes shape or meaning.
#define ZCTLS_ENGINE_ABI 1u  // never 0
// The engine's one export: dlsym(handle, ZCTLS_ENGINE_ENTRY).
#define ZCTLS_ENGINE_ENTRY "zctls_engine_attach"
// Bytes the hooks reserve on the stack for the engine's per-send ticket
// (zctls::SendTicket; the engine checks that it fits).
#define ZCTLS_TICKET_BYTES 256u
// before_close's "no epoch": after_close then forgets the fd outright.
#define ZCTLS_NO_EPOCH 0xffffffffu

#ifdef __cplusplus
extern "C" {
#endif

// The variables the engine reads, as the hooks captured them when the
// library was loaded (nginx replaces its workers' environment later; the
// strings are copies).  nullptr: unset, or ignored (secure execution).
enum zctls_env_index {
  ZCTLS_ENV_CONFIG,          // ZCTLS_CONFIG
  ZCTLS_ENV_RULES,           // ZCTLS_RULES
  ZCTLS_ENV_LOG_LEVEL,       // ZCTLS_LOG_LEVEL
  ZCTLS_ENV_APP_FLAG,        // ZCTLS_APP_FLAG
  ZCTLS_ENV_OFFLOAD,         // ZCTLS_OFFLOAD
  ZCTLS_ENV_JOURNAL_STREAM,  // JOURNAL_STREAM (systemd: stderr is the journal)
  ZCTLS_ENV_COUNT
};

// What the hooks give the engine: the real (next) functions the engine
// must call instead of the hooked names, and the captured environment.
struct zctls_hook_side {
  unsigned abi;           // ZCTLS_ENGINE_ABI
  unsigned ticket_bytes;  // ZCTLS_TICKET_BYTES: the engine checks its ticket fits
  int (*real_setsockopt)(int fd, int level, int optname, const void* value, socklen_t length);
  int (*real_getsockopt)(int fd, int level, int optname, void* value, socklen_t* length);
  int (*real_close)(int fd);
  const char* env[ZCTLS_ENV_COUNT];
};

// What the engine gives the hooks: the runtime calls (shim/runtime/runtime.cpp
// defines each as op_NAME and documents it).  Every one is noexcept, keeps
// errno, and is safe to call from any thread once attach has returned.
// Declared once, here: X(return type, name, parameters), in table order
// (tests/unit/engine_abi_test.cpp pins the layout).
#define ZCTLS_ENGINE_OPS(X)                                                                \
  X(int, known_plain, (int fd))                                                            \
  /* Fills `ticket` (ZCTLS_TICKET_BYTES); nonzero if after_send must be called. */        \
  X(int, before_send, (void* ticket, int out_fd, int in_fd, const off_t* offset))          \
  X(void, after_send, (const void* ticket, ssize_t result, const off_t* offset))           \
  X(void, after_setsockopt,                                                                \
    (int fd, int level, int optname, const void* value, socklen_t length))                 \
  X(uint32_t, before_close, (int fd)) /* the fd's close epoch, or ZCTLS_NO_EPOCH */        \
  X(void, after_close, (int fd, uint32_t epoch))                                           \
  X(void, after_close_range, (unsigned first, unsigned last))                              \
  X(void, after_dup, (int newfd))                                                          \
  X(void, forget, (int fd)) /* a new object on this number */                              \
  X(void, before_other_send, (int fd))                                                     \
  X(void, child_after_fork, (void)) /* the atfork child handler's part */

#define ZCTLS_ENGINE_OP_MEMBER(ret, name, params) ret(*name) params;
struct zctls_engine_ops {
  unsigned abi;  // ZCTLS_ENGINE_ABI
  ZCTLS_ENGINE_OPS(ZCTLS_ENGINE_OP_MEMBER)
};
#undef ZCTLS_ENGINE_OP_MEMBER

// Returns the engine's calls, or nullptr when memory ran out (the hooks
// pass through and try again later).  When the hooks' `abi` is not the
// engine's (or their ticket is too small for it), the engine does nothing
// and returns a table whose `abi` is 0, never an ABI: the hooks refuse it.  Called once per
// process, or again after a nullptr.
typedef const struct zctls_engine_ops* (*zctls_engine_attach_fn)(const struct zctls_hook_side*);
#ifdef __cplusplus
}
#endif
