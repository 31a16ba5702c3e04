/* An engine from "another build" for ShimE2E.AnotherBuildsEngineIsRefused:
 * its attach answers every hook library with a table of another ABI, as
 * an engine installed by an upgrade after a server started would. */
#include <stddef.h>

struct other_ops {
  unsigned abi;
  void* calls[16];
};

static const struct other_ops kOther = {0x7fffffffu, {NULL}};

__attribute__((visibility("default"))) const struct other_ops* zctls_engine_attach(
    const void* hook_side) {
  (void)hook_side;
  return &kOther;
}
