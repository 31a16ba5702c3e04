#include "backtrace.h"

#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <libunwind.h>

#include <cstdio>
#include <cstring>

#include "fork_safe.h"

namespace zctls::runtime {
namespace {

// The symbol names are libunwind.h's macros spelled out (_ULx86_64_step, ...).
#define ZCTLS_SYMBOL_NAME(macro) ZCTLS_STRINGIFY(macro)
#define ZCTLS_STRINGIFY(name) #name

struct Unwinder {
  const char* error = nullptr;  // why the functions below are missing, or nullptr
  int (*getcontext)(unw_context_t*) = nullptr;
  int (*init_local)(unw_cursor_t*, unw_context_t*) = nullptr;
  int (*step)(unw_cursor_t*) = nullptr;
  int (*get_reg)(unw_cursor_t*, unw_regnum_t, unw_word_t*) = nullptr;
  int (*get_proc_name)(unw_cursor_t*, char*, std::size_t, unw_word_t*) = nullptr;
};

template <typename Fn>
bool bind_symbol(void* lib, const char* name, Fn*& fn) noexcept {
  fn = reinterpret_cast<Fn*>(dlsym(lib, name));
  return fn != nullptr;
}

Unwinder g_unwinder;  // filled once, under g_loaded's lock
BuiltOnce<const Unwinder> g_loaded;

const Unwinder& unwinder() noexcept {
  return *g_loaded.get_or_build([]() noexcept -> const Unwinder* {
    Unwinder& u = g_unwinder;
    void* lib = dlopen(ZCTLS_LIBUNWIND_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      u.error = "cannot load " ZCTLS_LIBUNWIND_SONAME;
    } else if (!bind_symbol(lib, ZCTLS_SYMBOL_NAME(unw_tdep_getcontext), u.getcontext) ||
               !bind_symbol(lib, ZCTLS_SYMBOL_NAME(unw_init_local), u.init_local) ||
               !bind_symbol(lib, ZCTLS_SYMBOL_NAME(unw_step), u.step) ||
               !bind_symbol(lib, ZCTLS_SYMBOL_NAME(unw_get_reg), u.get_reg) ||
               !bind_symbol(lib, ZCTLS_SYMBOL_NAME(unw_get_proc_name), u.get_proc_name)) {
      u.error = ZCTLS_LIBUNWIND_SONAME " lacks a libunwind function";
    }
    return &u;
  });
}

}  // namespace

void backtrace(char* buf, std::size_t size) noexcept {
  // Local unwinding: the frames above the hook, named by unw_get_proc_name.
  // Stripped binaries only have dynamic symbols, which would misname a
  // frame far from its symbol: those are shown as "module+0xOFFSET"
  // instead, to symbolize offline (addr2line -e module).
  unw_context_t context;
  unw_cursor_t cursor;
  std::size_t used = 0;
  buf[0] = '\0';
  const Unwinder& unw = unwinder();
  if (unw.error != nullptr) {
    std::snprintf(buf, size, "(no backtrace: %s)", unw.error);
    return;
  }
  if (unw.getcontext(&context) != 0 || unw.init_local(&cursor, &context) != 0) return;
  for (int frame = 0; frame < 40 && unw.step(&cursor) > 0 && used + 8 < size; ++frame) {
    char name[160];
    unw_word_t offset = 0;
    unw_word_t ip = 0;
    unw.get_reg(&cursor, UNW_REG_IP, &ip);
    const bool named = unw.get_proc_name(&cursor, name, sizeof name, &offset) == 0;
    if (named && std::strncmp(name, "_ZN5zctls", 9) == 0) continue;  // the shim itself
    if (!named || offset > 0x1000) {
      Dl_info info{};
      if (dladdr(reinterpret_cast<void*>(ip), &info) != 0 && info.dli_fname != nullptr) {
        const char* slash = std::strrchr(info.dli_fname, '/');
        std::snprintf(
            name, sizeof name, "%s+0x%lx", slash != nullptr ? slash + 1 : info.dli_fname,
            static_cast<unsigned long>(ip - reinterpret_cast<unw_word_t>(info.dli_fbase)));
      } else {
        std::snprintf(name, sizeof name, "0x%lx", static_cast<unsigned long>(ip));
      }
    }
    const int n = std::snprintf(buf + used, size - used, "%s%s", used == 0 ? "" : " <- ", name);
    if (n < 0) break;
    used += static_cast<std::size_t>(n);
  }
}

}  // namespace zctls::runtime
