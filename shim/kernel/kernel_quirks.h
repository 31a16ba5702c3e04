// Known kernel bugs that change what zctls may safely do, and how a running
// kernel is recognised.  Pure classification (unit-tested with recorded
// uname strings) plus one reader of the live identity.
//
// The one bug known today: zerocopy sendfile through TLS device offload
// sent wrong bytes when a single page straddled two TLS records, which
// happens when a send starts at an offset that is not page-aligned
// (reported on netdev in March 2023, "TLS zerocopy sendfile offset causes
// data corruption", 5.19 and 6.2 with ConnectX-6 Dx).  tls_push_data() did
// not advance its offset into the page after appending a zerocopy fragment,
// so every record cut from that page repeated the page's first bytes.
//
//   introduced  c1318b39c7d3 "tls: Add opt-in zerocopy mode of sendfile()"  5.19
//   fixed       e539a105f947 "net: tls: fix device-offloaded sendpage
//               straddling records"                            mainline 6.3
//   backports   3f232565a9c0 in 6.1.20, 0e950e35e0ab in 6.2.7
//               (stable review of 15 March 2023; 5.19 and 6.0 had reached
//               end of life and never got it)
//
// Only the device-offload path (net/tls/tls_device.c) had the bug; software
// kTLS ignores TLS_TX_ZEROCOPY_RO, so guarding there costs nothing.
#pragma once

#include <cstddef>
#include <string>

namespace zctls::kernel {

// What identifies the running kernel, as read from the system.
struct KernelIdentity {
  char release[65] = "";  // uname -r: "6.1.0-56-amd64"
  char version[65] = "";  // uname -v: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (...)"
  // /proc/version_signature (Ubuntu only): "Ubuntu 5.19.0-46.47-generic 5.19.17"
  char signature[128] = "";
  std::size_t page_size = 4096;
};

// uname(2), /proc/version_signature and the page size.  Never fails: what
// cannot be read stays empty.
KernelIdentity read_kernel_identity() noexcept;

// The upstream version a kernel is built from.  Distribution kernels often
// hide the stable patch level in `uname -r` (Debian: "6.1.0-56-amd64" is
// 6.1.192); it is looked for, in order, in Ubuntu's version_signature, in
// "Debian X.Y.Z" inside `uname -v`, and in the release string itself.
struct UpstreamVersion {
  int major = 0, minor = 0, patch = 0;
  const char* source = "none";  // "version_signature", "uname -v (Debian)", "uname -r", "none"
  bool known() const noexcept { return major > 0; }
};
UpstreamVersion upstream_version(const KernelIdentity& identity) noexcept;

enum class QuirkStatus {
  fixed,     // the kernel carries the fix, or predates the bug
  affected,  // a version known to have the bug
  unknown,   // cannot tell: treated as affected
};

struct QuirkVerdict {
  QuirkStatus status = QuirkStatus::unknown;
  UpstreamVersion version;
  std::string reason;  // one sentence for logs and `zctls probe`
};

// Does the unaligned-offset zerocopy corruption apply to this kernel?
// Kernels older than 5.19 have no TLS_TX_ZEROCOPY_RO upstream; one that
// accepts the flag anyway carries a vendor backport (enterprise
// distributions backport networking features to older series) whose fix
// level the version cannot show: "unknown".
QuirkVerdict unaligned_zerocopy_bug(const KernelIdentity& identity);

// The newest kernel whose device-offload TX path was read (net/tls of
// Debian's 6.1, 6.12 and 7.3) and run (the bench's emulated offload NIC);
// the macro for the texts that say it.
#define ZCTLS_NEWEST_KNOWN_KERNEL "7.3"
inline constexpr int kNewestKnownMajor = 7, kNewestKnownMinor = 3;

// Whether a TLS 1.3 TX key can only make a software kTLS socket here.
// tls_set_device_offload (net/tls/tls_device.c) refuses every key but TLS
// 1.2 with EOPNOTSUPP, and do_tls_setsockopt_conf then falls back to
// software without a word: so on every kernel from device offload's
// arrival (4.18) up to kNewestKnown*, whatever NIC the route leaves by.
// True there; false for a newer kernel or one whose version is unknown,
// which might offload TLS 1.3 and has to be asked.
bool device_offload_is_tls12_only(const KernelIdentity& identity) noexcept;

}  // namespace zctls::kernel
