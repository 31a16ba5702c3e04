// [kernel] offload = "auto" (the default) on the bench's software kTLS: the
// shim learns each socket's TX mode once and then costs nothing per send.
// Witnesses: strace of the program (no TLS_TX_ZEROCOPY_RO set, syscall
// counts with and without the shim for N and 2N sends) and the program's
// own raw getsockopt of the flag after each send.
#include <cstdio>
#include <map>

#include "e2e_support.h"

namespace {

using zctls_e2e::Outcome;
using zctls_e2e::ShimE2E;

class OffloadE2E : public ShimE2E {
 protected:
  // The sender sending `files` on one kTLS connection, under strace: calls
  // per syscall name, of every syscall the shim makes on a send (and the
  // socket and ethtool calls of learning a mode), not counting the
  // once-a-second look at the config file for a reload: that one depends
  // on the clock, not on the sends.  (The receiver's reads are left out:
  // how many there are depends on timing.)
  std::map<std::string, int> syscall_counts(const std::string& env, const std::string& files,
                                            bool preload) {
    const std::string trace = dir_ + "/counted";
    const std::string cmd =
        "strace -f -qq -o " + trace +
        " -e trace=fstat,newfstatat,statx,setsockopt,getsockopt,ioctl,lseek,readlink,"
        "process_vm_readv,sync_file_range,getsockname,getpeername,socket,sendto,sendmsg env " +
        (preload ? "LD_PRELOAD=" ZCTLS_SHIM_PATH " " : "") + env + " " + ZCTLS_SENDER_PATH +
        " raw " + files + " > /dev/null 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::map<std::string, int> calls;
    for (const std::string& line : zctls_e2e::lines_of(zctls_e2e::slurp(trace))) {
      if (line.find("resumed>") != std::string::npos || line.find(config()) != std::string::npos)
        continue;
      const std::size_t paren = line.find('(');
      if (paren == std::string::npos) continue;
      const std::size_t start = line.rfind(' ', paren);
      ++calls[line.substr(start == std::string::npos ? 0 : start + 1, paren - start - 1)];
    }
    return calls;
  }
  std::string times(int n, const std::string& file) {
    std::string out;
    for (int i = 0; i < n; ++i) out += file + " ";
    return out;
  }
};

TEST_F(OffloadE2E, SoftwareKtlsUnderAutoGetsNoFlagAndBytesAreIntact) {
  const Outcome r = run("ZCTLS_OFFLOAD=auto ZCTLS_CONFIG=" + config(),
                        "raw " + static_file() + " " + private_file() + " " + static_file());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "a.bin flag=0\nb.bin flag=0\na.bin flag=0\nbytes ok\n") << r.err;
  EXPECT_TRUE(r.flag_sets().empty()) << r.strace;
  // The mode came from the kernel: one sock_diag round trip, and the
  // interfaces' ethtool features.
  EXPECT_EQ(r.err, "");
}

TEST_F(OffloadE2E, SoftwareKtlsUnderAutoCostsNoSyscallPerSend) {
  const std::string env = "ZCTLS_OFFLOAD=auto ZCTLS_CONFIG=" + config();
  const std::string few = times(10, static_file()) + times(10, private_file());
  const std::string many = few + few;
  const auto base_few = syscall_counts(env, few, false),
             base_many = syscall_counts(env, many, false);
  const auto shim_few = syscall_counts(env, few, true), shim_many = syscall_counts(env, many, true);
  ASSERT_GT(base_few.count("getsockopt"), 0U) << "the sender reads the flag after each send";
  // Per send: what 20 more sends cost with the shim, less what they cost
  // without it.  Every syscall name, so that nothing new hides.
  std::map<std::string, int> names;
  for (const auto* m : {&base_few, &base_many, &shim_few, &shim_many})
    for (const auto& [name, n] : *m) names[name] = 0;
  const auto at = [](const std::map<std::string, int>& m, const std::string& name) {
    const auto it = m.find(name);
    return it == m.end() ? 0 : it->second;
  };
  for (const auto& [name, unused] : names) {
    const int extra =
        (at(shim_many, name) - at(shim_few, name)) - (at(base_many, name) - at(base_few, name));
    EXPECT_EQ(extra, 0) << name << ": extra calls for 20 more sends on a software kTLS socket";
  }
  // And the same program under offload = "assume" pays the flag's work:
  // the check is not blind.
  const std::string assume = "ZCTLS_OFFLOAD=assume ZCTLS_CONFIG=" + config();
  const auto assume_few = syscall_counts(assume, few, true);
  const auto assume_many = syscall_counts(assume, many, true);
  EXPECT_GE(at(assume_many, "fstat") - at(assume_few, "fstat"), 20)
      << "offload = \"assume\": at least one fstat per send";
}

}  // namespace
