#include "probe_report.h"

#include <openssl/crypto.h>
#include <openssl/opensslconf.h>

#include <cstdio>
#include <cstring>
#include <string_view>

#include "json.h"

namespace zctls::cli {
namespace {

// "ENOENT": the symbolic name is what an operator greps kernel sources for.
std::string errno_name(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : "errno " + std::to_string(err);
}

// "ENOENT (No such file or directory)"; strerrordesc_np avoids the locale
// machinery of strerror.
std::string errno_text(int err) {
  const char* desc = strerrordesc_np(err);
  return desc != nullptr ? errno_name(err) + " (" + desc + ")" : errno_name(err);
}

void row(std::string& out, std::string_view label, std::string_view value) {
  out += "  ";
  out += label;
  out.append(label.size() < 16 ? 16 - label.size() : 1, ' ');
  out += value;
  out += '\n';
}

std::string cipher_line(const kernel::KtlsCapabilities& caps, kernel::TlsVersion version) {
  std::string line;
  for (const kernel::CipherSupport& c : caps.ciphers) {
    if (c.version != version) continue;
    if (!line.empty()) line += ", ";
    line += kernel::to_string(c.cipher);
    if (c.tx_error == 0 && c.rx_error == 0) {
      line += " tx+rx";
    } else if (c.tx_error == 0) {
      line += " tx only";
    } else if (c.rx_error == 0) {
      line += " rx only";
    } else {
      line += " no (" + errno_name(c.tx_error) + ")";
    }
  }
  return std::string(kernel::to_string(version)) + ": " + line;
}

// "TLSv1.3 TLS_AES_256_GCM_SHA384: kTLS TX on" -- what nginx would get with
// `ssl_conf_command Options KTLS` for a client that negotiates the same.
std::string handshake_line(const OpenSslHandshake& h) {
  if (h.cipher.empty()) return h.protocol + ": no handshake (" + h.error + ")";
  const std::string head = h.protocol + " " + h.cipher + ": ";
  if (h.ktls_tx && h.data_ok) return head + "kTLS TX on";
  if (h.ktls_tx) return head + "kTLS TX on, but " + h.error;
  return head + "user space (" + h.error + ")";
}

std::string symbol_state(const char* symbol, char value) {
  return std::string(symbol) + (value == 'n' ? " is not set" : value == 'm' ? "=m" : "=y");
}

// Which NIC drivers this kernel was built with TLS TX offload for, and
// what TLS 1.3 gets: the facts that decide whether zctls does anything.
void format_kernel_config(std::string& out, const HostReport& host) {
  const kernel::KernelTlsConfig& kc = host.kernel_config;
  if (kc.path.empty()) {
    std::string tried;
    for (const std::string& t : kc.tried) tried += (tried.empty() ? "" : ", ") + t;
    row(out, "kernel config", "not readable (tried " + tried +
                                  "): which NIC drivers have TLS offload is not known");
  } else if (kc.tls_device == 'n') {
    row(out, "kernel config",
        kc.path + ": CONFIG_TLS_DEVICE is not set: no NIC can offload kTLS with this kernel");
  } else {
    row(out, "kernel config", kc.path + ": " + symbol_state("CONFIG_TLS_DEVICE", kc.tls_device));
    std::string built, missing;
    for (const kernel::DriverBuild& b : kc.drivers) {
      const kernel::TlsOffloadDriver& d = *b.driver;
      std::string also = d.also[0] != '\0' ? std::string(" with ") + d.also : std::string();
      if (b.value != 'n')
        built += (built.empty() ? "" : ", ") + std::string(d.driver) + " (" + d.nics + ", " +
                 d.symbol + also + ")";
      else
        missing += (missing.empty() ? "" : ", ") + std::string(d.driver) + " (" + d.nics + ": " +
                   b.unset + " not set)";
    }
    row(out, "NIC TLS drivers", "built: " + (built.empty() ? std::string("none") : built));
    if (!missing.empty()) row(out, "", "not built: " + missing);
  }
  row(out, "TLS 1.3",
      host.tls13_software
          ? "software kTLS on any NIC: device offload takes TLS 1.2 keys only (Linux up to "
            ZCTLS_NEWEST_KNOWN_KERNEL "); only TLS 1.2 connections can go zerocopy"
          : "this kernel is newer than the newest zctls knows (" ZCTLS_NEWEST_KNOWN_KERNEL
            "), or not recognised: whether it offloads TLS 1.3 is asked per socket");
}

}  // namespace

ProbeVerdict verdict(const kernel::KtlsCapabilities& caps) noexcept {
  if (!caps.ktls_usable()) return kNoKtls;
  return caps.zerocopy_usable() ? kZerocopyUsable : kKtlsWithoutZerocopy;
}

OpenSslInfo openssl_info() {
  OpenSslInfo info;
  info.version = OpenSSL_version(OPENSSL_VERSION);
#ifndef OPENSSL_NO_KTLS
  info.ktls = true;
#endif
  return info;
}

std::string format_probe(const HostReport& host) {
  const kernel::KtlsCapabilities& caps = host.caps;
  std::string out;
  const std::string& rel = caps.kernel_release;
  switch (verdict(caps)) {
    case kZerocopyUsable:
      out +=
          "zerocopy kTLS sendfile: available on " + rel +
          " (TLS_TX_ZEROCOPY_RO is accepted; it saves a copy only on a NIC with TLS TX offload)\n";
      break;
    case kKtlsWithoutZerocopy:
      out += "zerocopy kTLS sendfile: unavailable on " + rel +
             ": kTLS works but TLS_TX_ZEROCOPY_RO is not accepted (needs Linux 5.19+); zctls "
             "passes through\n";
      break;
    case kNoKtls:
      out += "zerocopy kTLS sendfile: unavailable on " + rel +
             ": this kernel has no kTLS (CONFIG_TLS off or the tls module missing); zctls passes "
             "through\n";
      break;
  }
  row(out, "kernel", rel);
  std::string nics;
  for (const kernel::NicOffload& nic : host.nics) {
    if (!nic.available) continue;
    nics += (nics.empty() ? "" : ", ") + nic.name + (nic.active ? " (on)" : " (off)");
  }
  row(out, "TLS offload NICs",
      nics.empty() ? std::string("none (zerocopy would save nothing here; tls-hw-tx-offload)")
                   : nics);
  format_kernel_config(out, host);
  row(out, "OpenSSL",
      host.openssl.version + (host.openssl.ktls ? ", built with kTLS" : ", built without kTLS"));
  if (host.openssl.handshakes.empty()) {
    row(out, "OpenSSL kTLS", "not tried: the kernel has no kTLS to offer");
  }
  for (std::size_t i = 0; i < host.openssl.handshakes.size(); ++i) {
    row(out, i == 0 ? "OpenSSL kTLS" : "", handshake_line(host.openssl.handshakes[i]));
  }
  if (caps.socket_error != 0) {
    row(out, "loopback TCP", "cannot connect: " + errno_text(caps.socket_error));
    return out;
  }
  row(out, "tls ULP",
      caps.ulp_error == 0 ? std::string("attaches")
                          : "TCP_ULP \"tls\" fails: " + errno_text(caps.ulp_error));
  if (caps.ulp_error != 0) return out;
  row(out, "keys", cipher_line(caps, kernel::TlsVersion::tls12));
  row(out, "", cipher_line(caps, kernel::TlsVersion::tls13));
  if (caps.zerocopy_error != 0) {
    row(out, "zerocopy flag", "TLS_TX_ZEROCOPY_RO fails: " + errno_text(caps.zerocopy_error));
  } else {
    row(out, "zerocopy flag",
        caps.zerocopy_reads_back ? "TLS_TX_ZEROCOPY_RO set 1/0 and read back"
                                 : "TLS_TX_ZEROCOPY_RO accepted but does not read back");
  }
  if (caps.zerocopy_error == 0) {
    const kernel::QuirkVerdict& bug = caps.unaligned_bug;
    row(out, "kernel bug",
        std::string(bug.status == kernel::QuirkStatus::fixed      ? "not affected: "
                    : bug.status == kernel::QuirkStatus::affected ? "affected: "
                                                                  : "unknown: ") +
            bug.reason);
    if (bug.status != kernel::QuirkStatus::fixed)
      row(out, "",
          "zctls sends zerocopy only from page-aligned file offsets ([integrity] kernel_quirks)");
  }
  row(out, "rx no-pad",
      caps.rx_no_pad_error == 0
          ? std::string("TLS_RX_EXPECT_NO_PAD accepted")
          : "TLS_RX_EXPECT_NO_PAD fails: " + errno_text(caps.rx_no_pad_error));
  return out;
}

namespace {

std::string errno_json(int err) { return err == 0 ? "null" : json_quote(errno_name(err)); }

std::string_view status_name(kernel::QuirkStatus s) {
  switch (s) {
    case kernel::QuirkStatus::fixed:
      return "not_affected";
    case kernel::QuirkStatus::affected:
      return "affected";
    case kernel::QuirkStatus::unknown:
      return "unknown";
  }
  return "unknown";
}

}  // namespace

std::string format_probe_json(const HostReport& host) {
  const kernel::KtlsCapabilities& caps = host.caps;
  static constexpr std::string_view kVerdicts[] = {"zerocopy_usable", "ktls_without_zerocopy",
                                                   "no_ktls"};
  std::string out = "{";
  out += "\"verdict\": " + json_quote(kVerdicts[verdict(caps)]);
  out += ", \"kernel\": " + json_quote(caps.kernel_release);
  out += ", \"tls_ulp\": {\"attaches\": " +
         std::string(caps.socket_error == 0 && caps.ulp_error == 0 ? "true" : "false") +
         ", \"error\": " + errno_json(caps.socket_error != 0 ? caps.socket_error : caps.ulp_error) +
         "}";
  out += ", \"ciphers\": [";
  for (std::size_t i = 0; i < caps.ciphers.size(); ++i) {
    const kernel::CipherSupport& c = caps.ciphers[i];
    out += std::string(i > 0 ? ", " : "") +
           "{\"version\": " + json_quote(kernel::to_string(c.version)) +
           ", \"cipher\": " + json_quote(kernel::to_string(c.cipher)) +
           ", \"tx_error\": " + errno_json(c.tx_error) +
           ", \"rx_error\": " + errno_json(c.rx_error) + "}";
  }
  const bool probed = caps.socket_error == 0 && caps.ulp_error == 0;
  out += "], \"zerocopy_flag\": {\"supported\": " +
         std::string(caps.zerocopy_usable() ? "true" : "false") +
         ", \"error\": " + (probed ? errno_json(caps.zerocopy_error) : "null") + "}";
  out += ", \"kernel_bug\": {\"unaligned_zerocopy\": " +
         json_quote(status_name(caps.unaligned_bug.status)) +
         ", \"reason\": " + json_quote(caps.unaligned_bug.reason) + "}";
  out += ", \"nics\": [";
  for (std::size_t i = 0; i < host.nics.size(); ++i) {
    const kernel::NicOffload& n = host.nics[i];
    out += std::string(i > 0 ? ", " : "") + "{\"name\": " + json_quote(n.name) +
           ", \"tls_hw_tx_offload\": " + (n.available ? "true" : "false") +
           ", \"active\": " + (n.active ? "true" : "false") +
           ", \"error\": " + errno_json(n.error) + "}";
  }
  const kernel::KernelTlsConfig& kc = host.kernel_config;
  out += "], \"kernel_config\": {\"path\": " + (kc.path.empty() ? "null" : json_quote(kc.path));
  if (!kc.path.empty()) {
    out += ", \"tls_device\": " + json_quote(std::string(1, kc.tls_device)) + ", \"drivers\": [";
    for (std::size_t i = 0; i < kc.drivers.size(); ++i)
      out += std::string(i > 0 ? ", " : "") +
             "{\"driver\": " + json_quote(kc.drivers[i].driver->driver) +
             ", \"symbol\": " + json_quote(kc.drivers[i].driver->symbol) +
             ", \"value\": " + json_quote(std::string(1, kc.drivers[i].value)) + "}";
    out += "]";
  }
  out += std::string("}, \"tls13_software_on_any_nic\": ") + (host.tls13_software ? "true" : "false");
  out += ", \"openssl\": {\"version\": " + json_quote(host.openssl.version) +
         ", \"ktls\": " + (host.openssl.ktls ? "true" : "false") + ", \"handshakes\": [";
  for (std::size_t i = 0; i < host.openssl.handshakes.size(); ++i) {
    const OpenSslHandshake& h = host.openssl.handshakes[i];
    out += std::string(i > 0 ? ", " : "") + "{\"protocol\": " + json_quote(h.protocol) +
           ", \"cipher\": " + (h.cipher.empty() ? "null" : json_quote(h.cipher)) +
           ", \"ktls_tx\": " + (h.ktls_tx ? "true" : "false") +
           ", \"data_ok\": " + (h.data_ok ? "true" : "false") +
           ", \"error\": " + (h.error.empty() ? "null" : json_quote(h.error)) + "}";
  }
  out += "]}";
  return out + "}\n";
}

}  // namespace zctls::cli
