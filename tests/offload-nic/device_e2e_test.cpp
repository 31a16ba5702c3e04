// zctls on the device path: the emulated TLS-offload NIC (zctlsnic.c) under
// the default keys ([kernel] offload = "auto", app_flag = "govern"), the
// test programs in its server namespace and their peers in the client's.
// Witnesses besides the programs' own getsockopt: strace of the program,
// the NIC's counters (which pages the payload came from), zctls status and
// probe, and what the peer received.
#include <map>

#include "e2e_support.h"
#include "offload_nic.h"

#ifndef ZCTLS_OFFLOAD_NIC
#error "ZCTLS_OFFLOAD_NIC must name tests/offload-nic/nic"
#endif

namespace {

using zctls_e2e::count;
using zctls_e2e::spit;
using zctls_e2e::Outcome;
using zctls_e2e::ShimE2E;

class DeviceE2E : public ShimE2E {
 protected:
  void SetUp() override {
    ShimE2E::SetUp();
    // The default keys: zctls learns that the socket is offloaded.
    ASSERT_EQ(unsetenv("ZCTLS_OFFLOAD"), 0);
    if (std::system(ZCTLS_OFFLOAD_NIC " require > /dev/null") != 0)
      GTEST_SKIP() << "the emulated offload NIC is not up (tests/offload-nic/nic up)";
    prefix_ = ZCTLS_OFFLOAD_NIC " srv ";
    std::system(ZCTLS_OFFLOAD_NIC " loss 0");
  }
  // The tree readable by a program that drops to nobody after its keys.
  void open_tree() { ASSERT_EQ(chmod(dir_.c_str(), 0755), 0); }
  // The program over the NIC, TLS 1.2 unless told otherwise.
  std::string env(const std::string& more = "") const {
    return "ZCTLS_TEST_NIC=1 ZCTLS_TEST_TLS=1.2 ZCTLS_CONFIG=" + config() + " " + more;
  }
  // One of the NIC's ethtool -S counters (zcn0, the senders' end), asked
  // from its namespace.
  static long long nic(const std::string& name) {
    long long v = -1;
    zctls_nic::in_netns(zctls_nic::kServerNetns, [&] { v = zctls_nic::counter(name); });
    return v;
  }
  std::string sh(const std::string& cmd) {
    const std::string out = dir_ + "/sh.out";
    std::system(("(" + cmd + ") > " + out + " 2>&1").c_str());
    return zctls_e2e::slurp(out);
  }
  // zctls_test_hazard FILE NEXT under the shim (or not): a frame of FILE
  // held while FILE is rewritten in place, NEXT sent meanwhile.
  Outcome hazard(const std::string& file, const std::string& next, const std::string& more = "",
                 bool preload = true) {
    return run("ZCTLS_CONFIG=" + config() + " " + more, file + " " + next, preload,
               ZCTLS_HAZARD_PATH);
  }
  void use_config(const std::string& integrity) {
    spit(config(), "[[rule]]\npath = \"" + dir_ + "/static/**\"\nzerocopy = true\n[integrity]\n" +
                       integrity);
  }
};

// A TLS 1.2 socket over the NIC gets device offload; zctls learns it (no
// software count), sets the flag by the rules, and the NIC shows where
// the bytes came from: the files' pages for the zerocopy rule's file,
// copies for the other.
TEST_F(DeviceE2E, ATls12SocketIsOffloadedAndTheFlagFollowsTheRules) {
  const long long pages = nic("tx_tls_pagecache_bytes"), copies = nic("tx_tls_private_bytes"),
                  keys = nic("tx_tls_ctx");
  const Outcome r = run(env(), "raw " + static_file() + " " + private_file() + " " + static_file());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "a.bin flag=1\nb.bin flag=0\na.bin flag=1\nbytes ok\n") << r.err;
  EXPECT_EQ(r.flag_sets(), (std::vector<int>{1, 0, 1})) << r.strace;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(nic("tx_tls_ctx") - keys, 1) << "one device key";
  // a.bin twice from its pages; b.bin copied (plus the records' headers
  // and tags, 29 bytes each).
  EXPECT_GE(nic("tx_tls_pagecache_bytes") - pages, 2 * 300000);
  EXPECT_LT(nic("tx_tls_pagecache_bytes") - pages, 2 * 300000 + 4096) << "only a.bin's pages";
  EXPECT_GE(nic("tx_tls_private_bytes") - copies, 100001);
  EXPECT_LT(nic("tx_tls_private_bytes") - copies, 100001 + 4096);
}

// The same for a process without CAP_NET_ADMIN (nginx's workers): on 6.1
// and 6.12 sock_diag tells it nothing, so the socket is taken as offloaded
// (it is); on 7.3 the kernel says so.
TEST_F(DeviceE2E, AnUnprivilegedProcessIsGovernedToo) {
  open_tree();
  const Outcome r = run(env("ZCTLS_TEST_DROP_TO=65534"),
                        "raw " + static_file() + " " + private_file() + " " + static_file());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "a.bin flag=1\nb.bin flag=0\na.bin flag=1\nbytes ok\n") << r.err;
  EXPECT_EQ(r.flag_sets(), (std::vector<int>{1, 0, 1})) << r.strace;
}

// A TLS 1.3 socket over the same NIC is software (device offload takes TLS
// 1.2 keys only, up to 7.3): zctls knows it from the key, and a send costs
// no syscall at all, privileged or not.
TEST_F(DeviceE2E, ATls13SocketIsSoftwareAndCostsNothingPerSend) {
  open_tree();
  const long long encrypted = nic("tx_tls_encrypted_bytes");
  const std::string few = times(5, static_file()) + times(5, private_file());
  // Unprivileged, as nginx's workers: where 6.1 and 6.12 answer sock_diag
  // with nothing, so that asking would not even tell (root takes the same
  // path: the key decides before any query).
  {
    const std::string tls13 =
        "ZCTLS_TEST_NIC=1 ZCTLS_TEST_DROP_TO=65534 ZCTLS_CONFIG=" + config();
    const auto base_few = syscall_counts(tls13, few, false),
               base_many = syscall_counts(tls13, few + few, false);
    const auto shim_few = syscall_counts(tls13, few, true),
               shim_many = syscall_counts(tls13, few + few, true);
    for (const auto& [name, extra] : extra_calls(base_few, base_many, shim_few, shim_many))
      EXPECT_EQ(extra, 0) << name << ": extra calls for 10 more sends on a TLS 1.3 socket";
    // The connection's own cost: nothing to learn the mode either (no
    // ethtool ioctl, no sock_diag socket).
    for (const char* call : {"ioctl", "socket", "sendmsg", "getsockname"})
      EXPECT_EQ(shim_few.count(call) != 0 ? shim_few.at(call) : 0,
                base_few.count(call) != 0 ? base_few.at(call) : 0)
          << call;
  }
  const Outcome r = run("ZCTLS_TEST_NIC=1 ZCTLS_CONFIG=" + config(), "raw " + static_file());
  EXPECT_EQ(r.out, "a.bin flag=0\nbytes ok\n") << r.err;
  EXPECT_TRUE(r.flag_sets().empty()) << r.strace;
  EXPECT_EQ(nic("tx_tls_encrypted_bytes"), encrypted) << "TLS 1.3 never reached the NIC's crypto";
}

// zctls status shows the socket as the kernel has it: hw, zerocopy
// effective; zctls probe lists the NIC.
TEST_F(DeviceE2E, StatusShowsZerocopyEffectiveAndProbeListsTheNic) {
  const std::string held = dir_ + "/held.out";
  const std::string out = sh(
      prefix_ + "env LD_PRELOAD=" ZCTLS_SHIM_PATH " " + env() + " " ZCTLS_SENDER_PATH " hold 30 " +
      static_file() + " > " + held + " & pid=$!; for i in $(seq 300); do grep -q holding " + held +
      " && break; sleep 0.1; done; " + prefix_ + ZCTLS_CLI_PATH " status | grep \"zctls_test_send\\[$pid\\]\"; "
      "kill $pid; wait");
  EXPECT_NE(out.find("hw/base"), std::string::npos) << out;
  EXPECT_NE(out.find("TLS 1.2"), std::string::npos) << out;
  EXPECT_NE(out.find(" effective"), std::string::npos) << out;
  const std::string probe = sh(prefix_ + ZCTLS_CLI_PATH " probe");
  EXPECT_NE(probe.find("  TLS offload NICs zcn0 (on)\n"), std::string::npos) << probe;
}

// The hazard without zctls: the application's flag on (as OpenSSL's
// KTLSTxZerocopySendfile sets it), the file rewritten while a frame of it
// awaits retransmission: the peer's record fails authentication.
TEST_F(DeviceE2E, WithoutZctlsAFileChangedInFlightBreaksThePeersRecord) {
  const Outcome r = hazard(static_file(), private_file(), "ZCTLS_TEST_APP_FLAG=1", false);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("a.bin flag=1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(", end=EBADMSG\n"), std::string::npos) << r.out;
}

// With zctls a copy-rule file never goes zerocopy, even where the
// application turned the flag on (app_flag = "govern", the default): the
// retransmission carries the bytes sent.  Under "respect" it breaks.
TEST_F(DeviceE2E, ACopyRuleFileChangedInFlightArrivesIntact) {
  use_config("settle = 0\n");
  for (const char* app : {"", "ZCTLS_TEST_APP_FLAG=1"}) {
    SCOPED_TRACE(*app != '\0' ? "the application's flag on" : "zctls's own socket");
    const Outcome r = hazard(private_file(), static_file(), app);
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("b.bin flag=0\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(", end=complete\npeer: bytes ok\n"), std::string::npos) << r.out;
    EXPECT_EQ(count(r.err, "integrity"), 0) << r.err;
  }
  const Outcome r = hazard(private_file(), static_file(), "ZCTLS_TEST_APP_FLAG=1 ZCTLS_APP_FLAG=respect");
  EXPECT_NE(r.out.find("b.bin flag=1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(", end=EBADMSG\n"), std::string::npos) << "respect: " << r.out;
}

// A zerocopy-rule file changed while its bytes are unacknowledged: zctls
// sees it at the socket's next send and reports and quarantines it (the
// next connection copies the file), but cannot take back the bytes in
// flight: the peer's record fails all the same (measured on 6.1, 6.12 and
// 7.3).
TEST_F(DeviceE2E, AZerocopyFileChangedInFlightIsReportedAndQuarantined) {
  use_config("settle = 0\n");
  const Outcome r = hazard(static_file(), private_file());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("a.bin flag=1\n"), std::string::npos) << r.out;
  EXPECT_EQ(count(r.err, "changed after a zerocopy send returned, before its bytes were "
                         "acknowledged"),
            1)
      << r.err;
  EXPECT_NE(r.err.find("action: quarantine"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find(", end=EBADMSG\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("again flag=0\nagain: bytes ok\n"), std::string::npos) << r.out;
}

// on_change = "abort": the same, and zctls shuts the connection down at
// that send, so the response stops there; the bytes already queued (the
// changed frame among them) still go out, and the peer's record fails.
TEST_F(DeviceE2E, WithAbortTheConnectionIsShutDownAndThePeerStillFails) {
  use_config("settle = 0\non_change = \"abort\"\n");
  const Outcome r = hazard(static_file(), private_file());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("action: abort"), std::string::npos) << r.err;
  // The next send is refused (EPIPE) or cut at the record kTLS had open.
  EXPECT_EQ(r.out.find("b.bin rc=100001 "), std::string::npos) << "not shut down: " << r.out;
  EXPECT_NE(r.out.find("b.bin rc="), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(", end=EBADMSG\n"), std::string::npos) << r.out;
}

}  // namespace
