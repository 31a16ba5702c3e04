// [kernel] offload = "auto" (the default) on the bench's software kTLS: the
// shim learns each socket's TX mode once and then costs nothing per send.
// Witnesses: strace of the program (no TLS_TX_ZEROCOPY_RO set, syscall
// counts with and without the shim for N and 2N sends) and the program's
// own raw getsockopt of the flag after each send.
#include <map>

#include "e2e_support.h"

namespace {

using zctls_e2e::Outcome;
using zctls_e2e::ShimE2E;

using OffloadE2E = ShimE2E;

// TLS 1.2 keys, so that the mode is learnt from the interfaces (none here
// offers tls-hw-tx-offload), and TLS 1.3 keys, from the key alone.
TEST_F(OffloadE2E, SoftwareKtlsUnderAutoGetsNoFlagAndBytesAreIntact) {
  for (const char* tls : {"1.2", "1.3"}) {
    SCOPED_TRACE(tls);
    const Outcome r = run("ZCTLS_OFFLOAD=auto ZCTLS_TEST_TLS=" + std::string(tls) +
                              " ZCTLS_CONFIG=" + config(),
                          "raw " + static_file() + " " + private_file() + " " + static_file());
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(r.out, "a.bin flag=0\nb.bin flag=0\na.bin flag=0\nbytes ok\n") << r.err;
    EXPECT_TRUE(r.flag_sets().empty()) << r.strace;
    EXPECT_EQ(r.err, "");
  }
}

// TLS 1.2: the interfaces' answer (TLS 1.3's, the key's, is DeviceE2E's).
TEST_F(OffloadE2E, SoftwareKtlsUnderAutoCostsNoSyscallPerSend) {
  const std::string env = "ZCTLS_OFFLOAD=auto ZCTLS_TEST_TLS=1.2 ZCTLS_CONFIG=" + config();
  const std::string few = times(10, static_file()) + times(10, private_file());
  const std::string many = few + few;
  const auto base_few = syscall_counts(env, few, false),
             base_many = syscall_counts(env, many, false);
  const auto shim_few = syscall_counts(env, few, true), shim_many = syscall_counts(env, many, true);
  ASSERT_GT(base_few.count("getsockopt"), 0U) << "the sender reads the flag after each send";
  // Per send: what 20 more sends cost with the shim, less what they cost
  // without it.  Every syscall name, so that nothing new hides.
  for (const auto& [name, extra] : extra_calls(base_few, base_many, shim_few, shim_many))
    EXPECT_EQ(extra, 0) << name << ": extra calls for 20 more sends on a software kTLS socket";
  const auto at = [](const std::map<std::string, int>& m, const std::string& name) {
    const auto it = m.find(name);
    return it == m.end() ? 0 : it->second;
  };
  // And the same program under offload = "assume" pays the flag's work:
  // the check is not blind.
  const std::string assume = "ZCTLS_OFFLOAD=assume ZCTLS_TEST_TLS=1.2 ZCTLS_CONFIG=" + config();
  const auto assume_few = syscall_counts(assume, few, true);
  const auto assume_many = syscall_counts(assume, many, true);
  // (newfstatat(fd, "", AT_EMPTY_PATH): what the program's own fstat
  // makes too, so counted beyond the program's.)
  EXPECT_GE(at(assume_many, "newfstatat") - at(assume_few, "newfstatat") -
                (at(base_many, "newfstatat") - at(base_few, "newfstatat")),
            20)
      << "offload = \"assume\": at least one fstat per send";
}

}  // namespace
