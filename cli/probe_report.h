// Turns a KtlsCapabilities into what `zctls probe` prints and returns.
// Pure: no syscalls, so the wording and the verdict are unit-tested.
#pragma once

#include <string>

#include "zctls/ktls_probe.h"

namespace zctls::cli {

// Exit statuses of `zctls probe`, from best to worst.
enum ProbeVerdict : int {
  kZerocopyUsable = 0,       // kTLS works and TLS_TX_ZEROCOPY_RO is accepted
  kKtlsWithoutZerocopy = 1,  // kTLS works, the flag does not (kernel < 5.19)
  kNoKtls = 2,               // the tls ULP cannot be attached
};

ProbeVerdict verdict(const kernel::KtlsCapabilities& caps) noexcept;

// One verdict line, then indented details.
std::string format_probe(const kernel::KtlsCapabilities& caps);

}  // namespace zctls::cli
