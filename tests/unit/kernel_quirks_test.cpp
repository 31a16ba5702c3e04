// The kernel-bug table: how the upstream version is found behind
// distribution release strings, and which versions have the
// unaligned-offset zerocopy corruption.  The first two identities are
// recorded from the bench's guests; the others are written in the formats
// those distributions and upstream use, at the versions around the fix.
#include "kernel/kernel_quirks.h"

#include <gtest/gtest.h>

#include <cstdio>

namespace {

namespace k = zctls::kernel;

k::KernelIdentity identity(const char* release, const char* version, const char* signature = "") {
  k::KernelIdentity id;
  std::snprintf(id.release, sizeof id.release, "%s", release);
  std::snprintf(id.version, sizeof id.version, "%s", version);
  std::snprintf(id.signature, sizeof id.signature, "%s", signature);
  return id;
}

struct Case {
  const char* what;
  k::KernelIdentity id;
  int major, minor, patch;
  const char* source;
  k::QuirkStatus status;
};

TEST(KernelQuirks, RecordedIdentities) {
  using S = k::QuirkStatus;
  const Case cases[] = {
      // Recorded: uname -r / -v in the bench's guests (tests/vm).
      {"Debian 12 kernel",
       identity("6.1.0-56-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)"), 6, 1,
       192, "uname -v (Debian)", S::fixed},
      {"Debian 12 6.12",
       identity("6.12.117+deb12-amd64",
                "#1 SMP PREEMPT_DYNAMIC Debian 6.12.117-1~deb12u1 (2026-11-14)"),
       6, 12, 117, "uname -v (Debian)", S::fixed},
      // Debian's ABI name hides the patch level: before and after 6.1.20.
      {"Debian 6.1.20",
       identity("6.1.0-7-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.20-2 (2023-04-08)"), 6, 1, 20,
       "uname -v (Debian)", S::fixed},
      {"Debian 6.1.15",
       identity("6.1.0-5-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.15-1 (2023-03-05)"), 6, 1, 15,
       "uname -v (Debian)", S::affected},
      {"Debian backports 6.5",
       identity("6.5.0-0.deb12.4-amd64",
                "#1 SMP PREEMPT_DYNAMIC Debian 6.5.10-1~bpo12+1 (2023-11-23)"),
       6, 5, 10, "uname -v (Debian)", S::fixed},
      // Ubuntu hides the patch level in the release; version_signature has it.
      {"Ubuntu 22.10",
       identity("5.19.0-46-generic", "#47-Ubuntu SMP PREEMPT_DYNAMIC Fri Jun 16 13:30:11 UTC 2023",
                "Ubuntu 5.19.0-46.47-generic 5.19.17\n"),
       5, 19, 17, "version_signature", S::affected},
      {"Ubuntu 23.04",
       identity("6.2.0-39-generic", "#40-Ubuntu SMP PREEMPT_DYNAMIC Tue Nov 14 14:18:00 UTC 2023",
                "Ubuntu 6.2.0-39.40-generic 6.2.16\n"),
       6, 2, 16, "version_signature", S::fixed},
      // Upstream stable releases around the fix.
      {"6.1.19", identity("6.1.19", "#1 SMP"), 6, 1, 19, "uname -r", S::affected},
      {"6.1.20", identity("6.1.20", "#1 SMP"), 6, 1, 20, "uname -r", S::fixed},
      {"6.2.6", identity("6.2.6-arch1-1", "#1 SMP PREEMPT_DYNAMIC"), 6, 2, 6, "uname -r",
       S::affected},
      {"6.2.7", identity("6.2.7-arch1-1", "#1 SMP PREEMPT_DYNAMIC"), 6, 2, 7, "uname -r", S::fixed},
      {"6.0 never fixed", identity("6.0.19", "#1 SMP"), 6, 0, 19, "uname -r", S::affected},
      {"5.19 never fixed", identity("5.19.17", "#1 SMP"), 5, 19, 17, "uname -r", S::affected},
      {"6.3-rc1", identity("6.3.0-rc1", "#1 SMP"), 6, 3, 0, "uname -r", S::fixed},
      {"6.18", identity("6.18.0", "#1 SMP PREEMPT_DYNAMIC"), 6, 18, 0, "uname -r", S::fixed},
      // An ABI-style release without the upstream patch level: 6.1.0 < 6.1.20.
      {"vendor 6.1 without patch level", identity("6.1.0-1012-vendor", "#1 SMP"), 6, 1, 0,
       "uname -r", S::affected},
      // Older series: no flag upstream, so a kernel accepting it is a backport.
      {"RHEL-style 5.14", identity("5.14.0-362.8.1.el9_3.x86_64", "#1 SMP PREEMPT_DYNAMIC"), 5, 14,
       0, "uname -r", S::unknown},
      {"garbage", identity("linux", "?"), 0, 0, 0, "none", S::unknown},
      {"empty", identity("", ""), 0, 0, 0, "none", S::unknown},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const k::QuirkVerdict verdict = k::unaligned_zerocopy_bug(c.id);
    EXPECT_EQ(verdict.version.major, c.major);
    EXPECT_EQ(verdict.version.minor, c.minor);
    EXPECT_EQ(verdict.version.patch, c.patch);
    EXPECT_STREQ(verdict.version.source, c.source);
    EXPECT_EQ(verdict.status, c.status) << verdict.reason;
    EXPECT_FALSE(verdict.reason.empty());
  }
}

TEST(KernelQuirks, ReasonNamesTheVersionAndTheFix) {
  const auto verdict = k::unaligned_zerocopy_bug(identity("6.1.19", ""));
  EXPECT_EQ(verdict.reason, "6.1.19 (from uname -r) has the bug (fixed in 6.1.20)");
}

TEST(KernelQuirks, ReadsTheRunningKernel) {
  const k::KernelIdentity id = k::read_kernel_identity();
  EXPECT_NE(id.release[0], '\0');
  EXPECT_GE(id.page_size, 4096U);
  EXPECT_TRUE(k::upstream_version(id).known()) << id.release;
}

// Device offload takes TLS 1.2 keys only on every kernel read (6.1, 6.12,
// 7.3): a TLS 1.3 key is software there without asking; a newer kernel,
// or one not recognised, is asked.
TEST(KernelQuirks, Tls13IsSoftwareUpToTheNewestKernelRead) {
  EXPECT_TRUE(k::device_offload_is_tls12_only(
      identity("6.1.0-57-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)")));
  EXPECT_TRUE(k::device_offload_is_tls12_only(
      identity("7.3.4+deb13-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 7.3.4-1~bpo13+1")));
  EXPECT_TRUE(k::device_offload_is_tls12_only(identity("5.15.0-91-generic", "#101-Ubuntu SMP",
                                                        "Ubuntu 5.15.0-91.101-generic 5.15.131")));
  EXPECT_FALSE(k::device_offload_is_tls12_only(identity("7.4.0", "#1 SMP")));
  EXPECT_FALSE(k::device_offload_is_tls12_only(identity("8.0.1-arch1-1", "#1 SMP")));
  EXPECT_FALSE(k::device_offload_is_tls12_only(identity("", "")));
}

}  // namespace
