// Exit 0 if this host's kernel can attach the tls ULP, else 1.  The bench
// (tests/vm/session) uses it to run kTLS tests natively when it can.
#include "kernel/ktls.h"
#include "kernel/loopback.h"

int main() {
  const zctls::kernel::LoopbackPair pair;
  return pair.error() == 0 && zctls::kernel::attach_tls_ulp(pair.client()) == 0 ? 0 : 1;
}
