// Every kTLS socket on the host, for zctls status: a sock_diag dump of TCP
// over IPv4 and IPv6 (kernel/tls_diag.h parses the replies), and the names
// status prints for versions and ciphers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernel/tls_diag.h"

namespace zctls::kernel {

std::string tls_version_name(std::uint16_t version);  // "TLS 1.3", else "0x0305"
std::string tls_cipher_name(std::uint16_t cipher);    // "aes-gcm-128", else "cipher N"

// Dumps TCP over IPv4 and IPv6.  Returns an errno value (0 = ok).  A
// recorder, if given, sees every reply datagram as received: how the unit
// tests' fixtures were recorded on the bench kernels.
using DiagRecorder = std::function<void(const std::uint8_t* data, std::size_t size)>;
int list_tls_sockets(std::vector<TlsSocket>& out, const DiagRecorder& recorder = {});

}  // namespace zctls::kernel
