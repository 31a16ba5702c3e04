// `zctls stats`'s table and JSON (the Prometheus text: stats_dir.cpp).
#include "stats_format.h"

#include <cstdio>

#include "json.h"
#include "kernel/kernel_quirks.h"
#include "stats_dir.h"

namespace zctls::cli {
namespace {

std::string state_of(const ProcessStats& p) {
  return p.retired ? "retired" : p.alive ? "alive" : "exited";
}

}  // namespace

std::string stats_json(const std::vector<ProcessStats>& all) {
  const auto counters_json = [](const std::array<std::uint64_t, kCounterCount>& values) {
    std::string out = "{";
    for (int i = 0; i < kCounterCount; ++i) {
      if (i > 0) out += ", ";
      out += "\"" + std::string(name_of(static_cast<Counter>(i)).key) +
             "\": " + std::to_string(values[static_cast<std::size_t>(i)]);
    }
    return out + "}";
  };
  std::string out = "{\"processes\": [";
  for (std::size_t i = 0; i < all.size(); ++i) {
    const ProcessStats& p = all[i];
    out += std::string(i > 0 ? ", " : "") + "{\"pid\": " + std::to_string(p.pid) +
           ", \"comm\": " + json_quote(p.comm) + ", \"state\": \"" + state_of(p) +
           "\", \"counters\": " + counters_json(p.values) + "}";
  }
  return out + "], \"totals\": " + counters_json(totals(all)) + "}\n";
}

std::string stats_table(const std::vector<ProcessStats>& all) {
  std::string out;
  char line[256];
  // APP-FLAG: sends on sockets whose flag the application set itself
  // (app_flag_sends; OpenSSL's KTLSTxZerocopySendfile).  SOFTWARE: of the
  // copies, sends on software kTLS sockets, which zctls leaves alone
  // (copy_software_ktls; [kernel] offload = "auto").
  std::snprintf(line, sizeof line, "%-8s %-16s %-8s %12s %12s %12s %12s %8s %9s\n", "PID",
                "PROGRAM", "STATE", "SENDS", "ZEROCOPY", "COPY", "SOFTWARE", "EVENTS", "APP-FLAG");
  out += line;
  const auto row = [&](const std::string& pid, const std::string& comm, const std::string& state,
                       const std::array<std::uint64_t, kCounterCount>& v) {
    const auto get = [&](Counter c) { return v[static_cast<std::size_t>(c)]; };
    std::uint64_t copies = 0;
    for (int i = 0; i < kCounterCount; ++i)
      if (is_copy_reason(static_cast<Counter>(i))) copies += v[static_cast<std::size_t>(i)];
    std::snprintf(line, sizeof line, "%-8s %-16s %-8s %12llu %12llu %12llu %12llu %8llu %9llu\n",
                  pid.c_str(), comm.c_str(), state.c_str(),
                  static_cast<unsigned long long>(get(Counter::sends)),
                  static_cast<unsigned long long>(get(Counter::zerocopy_sends)),
                  static_cast<unsigned long long>(copies),
                  static_cast<unsigned long long>(get(Counter::copy_software_ktls)),
                  static_cast<unsigned long long>(get(Counter::integrity_events)),
                  static_cast<unsigned long long>(get(Counter::app_flag_sends)));
    out += line;
  };
  for (const ProcessStats& p : all)
    row(p.retired ? "-" : std::to_string(p.pid), p.retired ? "(pruned)" : p.comm, state_of(p),
        p.values);
  const auto sum = totals(all);
  row("total", "", "", sum);
  const auto total = [&](Counter c) { return sum[static_cast<std::size_t>(c)]; };
  if (total(Counter::sends) > 0 && total(Counter::sends) == total(Counter::copy_software_ktls))
    out +=
        "\nEvery kTLS send was on a software kTLS socket: no interface here offloads TLS\n"
        "TX, so TLS_TX_ZEROCOPY_RO would have no effect and zctls leaves those sends\n"
        "alone ([kernel] offload = \"auto\"; zctls probe lists the interfaces).\n";
  if (total(Counter::ktls_tx_sockets) > 0) {
    std::snprintf(line, sizeof line,
                  "\nkTLS TX sockets: %llu, of which %llu never sent a file by sendfile: what\n"
                  "they sent went by SSL_write (proxied or generated responses, lighttpd's\n"
                  "small files), where zctls has nothing to decide.\n",
                  static_cast<unsigned long long>(total(Counter::ktls_tx_sockets)),
                  static_cast<unsigned long long>(sockets_without_files(sum)));
    out += line;
  }
  if (total(Counter::software_tls13_sockets) > 0) {
    std::snprintf(line, sizeof line,
                  "\nSoftware kTLS TX sockets: %llu, of which %llu had TLS 1.3 keys: device\n"
                  "offload takes TLS 1.2 keys only (every Linux up to " ZCTLS_NEWEST_KNOWN_KERNEL
                  "), so those connections\n"
                  "are software kTLS whatever the NIC, and zctls leaves them alone.\n",
                  static_cast<unsigned long long>(total(Counter::software_tx_sockets)),
                  static_cast<unsigned long long>(total(Counter::software_tls13_sockets)));
    out += line;
  }
  out += "\n";
  for (int i = 0; i < kCounterCount; ++i) {
    std::snprintf(line, sizeof line, "  %-28s %llu\n",
                  std::string(name_of(static_cast<Counter>(i)).key).c_str(),
                  static_cast<unsigned long long>(sum[static_cast<std::size_t>(i)]));
    out += line;
  }
  return out;
}

}  // namespace zctls::cli
