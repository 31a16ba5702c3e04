#include "kernel/kernel_quirks.h"

#include <sys/auxv.h>
#include <sys/utsname.h>

#include <cstdio>
#include <cstring>

namespace zctls::kernel {
namespace {

// Reads "X.Y" or "X.Y.Z" at the start of `text`; false if it is not there.
bool parse_dotted(const char* text, UpstreamVersion& out) noexcept {
  int parts[3] = {0, 0, 0};
  int count = 0;
  const char* p = text;
  while (count < 3) {
    if (*p < '0' || *p > '9') break;
    long value = 0;
    while (*p >= '0' && *p <= '9' && value < 100000) value = value * 10 + (*p++ - '0');
    parts[count++] = static_cast<int>(value);
    if (*p != '.') break;
    ++p;
  }
  if (count < 2) return false;
  out.major = parts[0];
  out.minor = parts[1];
  out.patch = parts[2];
  return true;
}

// The last space-separated word of `text`.
const char* last_word(const char* text) noexcept {
  const char* end = text + std::strlen(text);
  while (end > text && (end[-1] == ' ' || end[-1] == '\n')) --end;
  const char* start = end;
  while (start > text && start[-1] != ' ') --start;
  return start;
}

bool older(const UpstreamVersion& v, int major, int minor, int patch) noexcept {
  if (v.major != major) return v.major < major;
  if (v.minor != minor) return v.minor < minor;
  return v.patch < patch;
}

std::string describe(const UpstreamVersion& v) {
  char text[96];
  std::snprintf(text, sizeof text, "%d.%d.%d (from %s)", v.major, v.minor, v.patch, v.source);
  return text;
}

}  // namespace

KernelIdentity read_kernel_identity() noexcept {
  KernelIdentity identity;
  utsname uts{};
  if (uname(&uts) == 0) {
    std::snprintf(identity.release, sizeof identity.release, "%s", uts.release);
    std::snprintf(identity.version, sizeof identity.version, "%s", uts.version);
  }
  // stdio, not open/close: inside the preload library a call to close()
  // would go through the shim's own hook.
  if (std::FILE* file = std::fopen("/proc/version_signature", "re")) {
    if (std::fgets(identity.signature, sizeof identity.signature, file) == nullptr)
      identity.signature[0] = '\0';
    std::fclose(file);
  }
  const unsigned long page = getauxval(AT_PAGESZ);
  if (page != 0) identity.page_size = page;
  return identity;
}

UpstreamVersion upstream_version(const KernelIdentity& identity) noexcept {
  UpstreamVersion v;
  // Ubuntu: "Ubuntu 5.19.0-46.47-generic 5.19.17" - the last word.
  if (identity.signature[0] != '\0' && parse_dotted(last_word(identity.signature), v)) {
    v.source = "version_signature";
    return v;
  }
  // Debian: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)".
  if (const char* debian = std::strstr(identity.version, "Debian ")) {
    if (parse_dotted(debian + 7, v)) {
      v.source = "uname -v (Debian)";
      return v;
    }
  }
  if (parse_dotted(identity.release, v)) {
    v.source = "uname -r";
    return v;
  }
  return UpstreamVersion{};
}

QuirkVerdict unaligned_zerocopy_bug(const KernelIdentity& identity) {
  QuirkVerdict verdict;
  verdict.version = upstream_version(identity);
  const UpstreamVersion& v = verdict.version;
  if (!v.known()) {
    verdict.status = QuirkStatus::unknown;
    verdict.reason = std::string("kernel version not recognised (uname -r '") + identity.release +
                     "'): treated as affected";
    return verdict;
  }
  const std::string version = describe(v);
  if (older(v, 5, 19, 0)) {
    verdict.status = QuirkStatus::unknown;
    verdict.reason = version +
                     " predates TLS_TX_ZEROCOPY_RO; if it accepts the flag, a vendor backport "
                     "of unknown fix level: treated as affected";
  } else if (older(v, 6, 1, 0)) {
    verdict.status = QuirkStatus::affected;
    verdict.reason = version + " has the bug (5.19 and 6.0 never got the fix)";
  } else if (v.major == 6 && v.minor == 1 && v.patch < 20) {
    verdict.status = QuirkStatus::affected;
    verdict.reason = version + " has the bug (fixed in 6.1.20)";
  } else if (v.major == 6 && v.minor == 2 && v.patch < 7) {
    verdict.status = QuirkStatus::affected;
    verdict.reason = version + " has the bug (fixed in 6.2.7)";
  } else {
    verdict.status = QuirkStatus::fixed;
    verdict.reason = version + " carries the fix (6.1.20+, 6.2.7+, 6.3+)";
  }
  return verdict;
}

bool device_offload_is_tls12_only(const KernelIdentity& identity) noexcept {
  const UpstreamVersion v = upstream_version(identity);
  return v.known() && older(v, kNewestKnownMajor, kNewestKnownMinor + 1, 0);
}

}  // namespace zctls::kernel
