// sock_diag parsing and `zctls status` output, from the kernel's own replies.
//
// tests/unit/data/sock_diag_tls_<kernel>.hex are real NETLINK_SOCK_DIAG
// dumps recorded on the bench kernels (`zctls_test_sender diag-record`):
// two loopback kTLS connections, TLS 1.3 AES-GCM-128 with the zerocopy flag
// set on its software TX socket, and TLS 1.2 AES-GCM-256 without.  No
// machine here has a TLS-offload NIC, so the hw and hw_record replies are
// those recordings with the ULP attribute re-encoded as the kernel's
// tls_get_info() encodes it for a device-offloaded socket; the encoder is
// first checked to reproduce every recorded ULP attribute byte for byte.
#include <gtest/gtest.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/tls.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../../cli/status.h"
#include "tls_sockets.h"
#include "stats_dir.h"

namespace zctls::kernel {
namespace {

using Bytes = std::vector<std::uint8_t>;

std::vector<Bytes> recorded(const std::string& kernel) {
  std::ifstream in(std::string(ZCTLS_UNIT_DATA_DIR) + "/sock_diag_tls_" + kernel + ".hex");
  std::vector<Bytes> datagrams;
  for (std::string line; std::getline(in, line);) {
    Bytes d;
    for (std::size_t i = 0; i + 1 < line.size(); i += 2)
      d.push_back(static_cast<std::uint8_t>(std::stoul(line.substr(i, 2), nullptr, 16)));
    datagrams.push_back(std::move(d));
  }
  return datagrams;
}

struct Parsed {
  std::vector<TlsSocket> sockets;
  int error = -1;
  bool done = false;  // a datagram said NLMSG_DONE or NLMSG_ERROR
};

Parsed parse_all(const std::vector<Bytes>& datagrams) {
  Parsed p;
  for (const Bytes& d : datagrams) {
    if (!parse_diag_datagram(d.data(), d.size(), p.sockets, &p.error)) {
      p.done = true;
      break;
    }
  }
  return p;
}

// --- a netlink encoder that follows tls_get_info() and inet_sk_diag_fill() ---

void put_attr(Bytes& out, std::uint16_t type, const void* payload, std::size_t len) {
  const std::uint16_t header_len = static_cast<std::uint16_t>(RTA_LENGTH(len));
  const std::size_t at = out.size();
  out.resize(at + RTA_SPACE(len), 0);
  std::memcpy(out.data() + at, &header_len, 2);
  std::memcpy(out.data() + at + 2, &type, 2);
  if (len > 0) std::memcpy(out.data() + at + RTA_LENGTH(0), payload, len);
}

void put_u16(Bytes& out, std::uint16_t type, std::uint16_t value) {
  put_attr(out, type, &value, sizeof value);
}

std::uint16_t conf_value(TlsConf c) {
  switch (c) {
    case TlsConf::base:
      return TLS_CONF_BASE;
    case TlsConf::sw:
      return TLS_CONF_SW;
    case TlsConf::hw:
      return TLS_CONF_HW;
    case TlsConf::hw_record:
      return TLS_CONF_HW_RECORD;
    case TlsConf::unknown:
      break;
  }
  return 0;
}

// INET_DIAG_ULP_INFO { INET_ULP_INFO_NAME "tls", INET_ULP_INFO_TLS {
// VERSION, CIPHER, TXCONF, RXCONF, [ZC_RO_TX: only when tx is hw] } },
// nested without NLA_F_NESTED (nla_nest_start_noflag).
Bytes ulp_attr(std::uint16_t version, std::uint16_t cipher, TlsConf tx, TlsConf rx, bool zc) {
  Bytes tls;
  put_u16(tls, TLS_INFO_VERSION, version);
  put_u16(tls, TLS_INFO_CIPHER, cipher);
  put_u16(tls, TLS_INFO_TXCONF, conf_value(tx));
  put_u16(tls, TLS_INFO_RXCONF, conf_value(rx));
  if (zc && tx == TlsConf::hw) put_attr(tls, TLS_INFO_ZC_RO_TX, nullptr, 0);
  Bytes ulp;
  put_attr(ulp, INET_ULP_INFO_NAME, "tls", 4);
  put_attr(ulp, INET_ULP_INFO_TLS, tls.data(), tls.size());
  Bytes out;
  put_attr(out, INET_DIAG_ULP_INFO, ulp.data(), ulp.size());
  return out;
}

// The messages of one datagram, and each message's ULP attribute span.
struct Message {
  std::size_t offset, length;          // of the whole nlmsg
  std::size_t ulp_offset, ulp_length;  // of INET_DIAG_ULP_INFO inside it (0 = none)
};

std::vector<Message> messages(const Bytes& d) {
  std::vector<Message> out;
  std::size_t off = 0;
  while (off + sizeof(nlmsghdr) <= d.size()) {
    nlmsghdr h;
    std::memcpy(&h, d.data() + off, sizeof h);
    if (h.nlmsg_len < sizeof h || off + h.nlmsg_len > d.size()) break;
    Message m{off, h.nlmsg_len, 0, 0};
    if (h.nlmsg_type == SOCK_DIAG_BY_FAMILY) {
      std::size_t a = off + NLMSG_LENGTH(sizeof(inet_diag_msg));
      while (a + sizeof(rtattr) <= off + h.nlmsg_len) {
        rtattr r;
        std::memcpy(&r, d.data() + a, sizeof r);
        if (r.rta_len < sizeof r) break;
        if (r.rta_type == INET_DIAG_ULP_INFO) m.ulp_offset = a, m.ulp_length = r.rta_len;
        a += RTA_ALIGN(r.rta_len);
      }
    }
    out.push_back(m);
    off += NLMSG_ALIGN(h.nlmsg_len);
  }
  return out;
}

// One recorded message with its ULP attribute replaced by `ulp`.
Bytes with_ulp(const Bytes& d, const Message& m, const Bytes& ulp) {
  Bytes out(d.begin() + static_cast<long>(m.offset), d.begin() + static_cast<long>(m.ulp_offset));
  out.insert(out.end(), ulp.begin(), ulp.end());
  const std::size_t after = m.ulp_offset + RTA_ALIGN(m.ulp_length);
  out.insert(out.end(), d.begin() + static_cast<long>(after),
             d.begin() + static_cast<long>(m.offset + m.length));
  const std::uint32_t len = static_cast<std::uint32_t>(out.size());
  std::memcpy(out.data(), &len, sizeof len);
  return out;
}

class RecordedDiag : public ::testing::TestWithParam<const char*> {};

TEST_P(RecordedDiag, ParsesEveryKtlsSocketOfTheRealReply) {
  const auto datagrams = recorded(GetParam());
  ASSERT_EQ(datagrams.size(), 3U) << "IPv4 dump, its NLMSG_DONE, the IPv6 dump's NLMSG_DONE";
  const Parsed p = parse_all(datagrams);
  EXPECT_TRUE(p.done);
  EXPECT_EQ(p.error, 0);
  ASSERT_EQ(p.sockets.size(), 4U);
  int tx13 = 0, rx13 = 0, tx12 = 0, rx12 = 0;
  for (const TlsSocket& s : p.sockets) {
    EXPECT_EQ(s.local.rfind("127.0.0.1:", 0), 0U) << s.local;
    EXPECT_EQ(s.peer.rfind("127.0.0.1:", 0), 0U) << s.peer;
    EXPECT_NE(s.inode, 0U);
    EXPECT_EQ(s.uid, 0U);
    // Software kTLS: the kernel never reports the flag, even where it is set.
    EXPECT_FALSE(s.zerocopy);
    const bool tx = s.tx == TlsConf::sw && s.rx == TlsConf::base;
    const bool rx = s.tx == TlsConf::base && s.rx == TlsConf::sw;
    EXPECT_TRUE(tx || rx) << to_string(s.tx) << "/" << to_string(s.rx);
    if (s.version == TLS_1_3_VERSION && s.cipher == TLS_CIPHER_AES_GCM_128) (tx ? tx13 : rx13)++;
    if (s.version == TLS_1_2_VERSION && s.cipher == TLS_CIPHER_AES_GCM_256) (tx ? tx12 : rx12)++;
  }
  EXPECT_EQ(tx13 + rx13 + tx12 + rx12, 4);
  EXPECT_EQ(tx13 * rx13 * tx12 * rx12, 1);
}

TEST_P(RecordedDiag, EncoderReproducesTheKernelsUlpAttribute) {
  const auto datagrams = recorded(GetParam());
  ASSERT_FALSE(datagrams.empty());
  const Bytes& d = datagrams[0];
  Parsed p = parse_all({d});
  const auto msgs = messages(d);
  ASSERT_EQ(msgs.size(), p.sockets.size());
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    const TlsSocket& s = p.sockets[i];
    const Bytes built = ulp_attr(s.version, s.cipher, s.tx, s.rx, false);
    const Bytes real(d.begin() + static_cast<long>(msgs[i].ulp_offset),
                     d.begin() + static_cast<long>(msgs[i].ulp_offset + msgs[i].ulp_length));
    EXPECT_EQ(built, real) << "message " << i;
  }
}

struct OffloadCase {
  TlsConf tx;
  bool flag;
  ZerocopyState state;
  const char* text;  // in `zctls status`
  const char* json;  // its "zerocopy" value
};

TEST_P(RecordedDiag, DeviceOffloadRepliesGiveTheZerocopyState) {
  const auto datagrams = recorded(GetParam());
  ASSERT_FALSE(datagrams.empty());
  const Bytes& d = datagrams[0];
  const Parsed real = parse_all({d});
  const auto msgs = messages(d);
  ASSERT_FALSE(msgs.empty());
  const TlsSocket& base = real.sockets[0];
  const OffloadCase cases[] = {
      {TlsConf::hw, true, ZerocopyState::effective, "effective", "effective"},
      {TlsConf::hw, false, ZerocopyState::off, "off", "off"},
      // hw_record (e.g. Chelsio inline TLS) never carries the flag attribute:
      // tls_get_info() reports it for TLS_HW only; status then reads the
      // flag through the owner (below).
      {TlsConf::hw_record, true, ZerocopyState::off, "off", "off"},
  };
  for (const OffloadCase& c : cases) {
    SCOPED_TRACE(std::string(to_string(c.tx)) + (c.flag ? " flag set" : " flag clear"));
    const Bytes msg =
        with_ulp(d, msgs[0], ulp_attr(base.version, base.cipher, c.tx, TlsConf::base, c.flag));
    std::vector<TlsSocket> got;
    int error = -1;
    EXPECT_TRUE(parse_diag_datagram(msg.data(), msg.size(), got, &error));
    ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(got[0].tx, c.tx);
    EXPECT_EQ(got[0].zerocopy, c.flag && c.tx == TlsConf::hw);
    EXPECT_EQ(got[0].local, base.local);
    EXPECT_EQ(got[0].inode, base.inode);
    EXPECT_EQ(zerocopy_state(got[0].zerocopy, got[0].tx), c.state);

    cli::StatusSocket s;
    s.socket = got[0];
    s.owners = {{4242, "nginx", 7}};
    const std::string text = cli::format_status({s}, {});
    EXPECT_NE(text.find("nginx[4242]"), std::string::npos) << text;
    EXPECT_NE(text.find(std::string(to_string(c.tx)) + "/base"), std::string::npos) << text;
    EXPECT_NE(text.find(std::string(" ") + c.text + "\n"), std::string::npos) << text;
    const std::string json = cli::format_status_json({s}, {});
    EXPECT_NE(json.find(std::string("\"txconf\": \"") + to_string(c.tx) + "\""), std::string::npos)
        << json;
    EXPECT_NE(json.find(std::string("\"zerocopy\": \"") + c.json + "\""), std::string::npos)
        << json;
  }
}

TEST_P(RecordedDiag, EveryTruncationIsSafeAndNeverInventsSockets) {
  const auto datagrams = recorded(GetParam());
  ASSERT_FALSE(datagrams.empty());
  const Bytes& d = datagrams[0];
  for (std::size_t len = 0; len <= d.size(); ++len) {
    Bytes cut(d.begin(), d.begin() + static_cast<long>(len));  // exact size: ASan sees overreads
    std::vector<TlsSocket> got;
    int error = -1;
    parse_diag_datagram(cut.data(), cut.size(), got, &error);
    ASSERT_LE(got.size(), 4U) << len;
    for (const TlsSocket& s : got) EXPECT_EQ(s.local.rfind("127.0.0.1:", 0), 0U);
  }
}

INSTANTIATE_TEST_SUITE_P(BenchKernels, RecordedDiag, ::testing::Values("6.1", "6.12"),
                         [](const ::testing::TestParamInfo<const char*>& kernel) {
                           std::string name = std::string("linux_") + kernel.param;
                           for (char& c : name)
                             if (c == '.') c = '_';
                           return name;
                         });

TEST(SockDiag, ErrorReplyReportsItsErrno) {
  struct {
    nlmsghdr header;
    nlmsgerr error;
  } reply{};
  reply.header.nlmsg_len = sizeof reply;
  reply.header.nlmsg_type = NLMSG_ERROR;
  reply.error.error = -EPERM;
  std::vector<TlsSocket> got;
  int error = 0;
  EXPECT_FALSE(parse_diag_datagram(reinterpret_cast<const std::uint8_t*>(&reply), sizeof reply, got,
                                   &error));
  EXPECT_EQ(error, EPERM);
  EXPECT_TRUE(got.empty());
}

TEST(SockDiag, OtherUlpsAreNotKtls) {
  const auto datagrams = recorded("6.1");
  ASSERT_FALSE(datagrams.empty());
  const Bytes& d = datagrams[0];
  const auto msgs = messages(d);
  ASSERT_FALSE(msgs.empty());
  Bytes ulp;
  put_attr(ulp, INET_ULP_INFO_NAME, "mptcp", 6);
  Bytes attr;
  put_attr(attr, INET_DIAG_ULP_INFO, ulp.data(), ulp.size());
  const Bytes msg = with_ulp(d, msgs[0], attr);
  std::vector<TlsSocket> got;
  int error = -1;
  EXPECT_TRUE(parse_diag_datagram(msg.data(), msg.size(), got, &error));
  EXPECT_TRUE(got.empty());
}

TEST(SockDiag, NamesOfVersionsAndCiphers) {
  EXPECT_EQ(tls_version_name(TLS_1_2_VERSION), "TLS 1.2");
  EXPECT_EQ(tls_version_name(TLS_1_3_VERSION), "TLS 1.3");
  EXPECT_EQ(tls_version_name(0x0302), "0x0302");
  EXPECT_EQ(tls_cipher_name(TLS_CIPHER_CHACHA20_POLY1305), "chacha20-poly1305");
  EXPECT_EQ(tls_cipher_name(TLS_CIPHER_AES_CCM_128), "aes-ccm-128");
  EXPECT_EQ(tls_cipher_name(99), "cipher 99");
}

TEST(StatusOutput, FlagReadThroughTheOwnerHasNoEffectOnHwRecord) {
  TlsSocket t;
  t.tx = TlsConf::hw_record;
  t.rx = TlsConf::hw_record;
  t.zerocopy = true;  // as read_flag_through_owner() would set it
  EXPECT_EQ(zerocopy_state(true, TlsConf::hw_record), ZerocopyState::no_effect);
  const std::string text = cli::format_status({{t, {{1, "srv", 3}}, ""}}, {});
  EXPECT_NE(text.find("opted in, no effect (hw_record)\n"), std::string::npos) << text;
}

TEST(StatusOutput, SoftwareSocketsShowTheFlagReadThroughTheOwnerOrWhyNot) {
  TlsSocket t;
  t.local = "10.0.0.1:443";
  t.peer = "[2001:db8::7]:51000";
  t.version = TLS_1_3_VERSION;
  t.cipher = TLS_CIPHER_AES_GCM_256;
  t.tx = TlsConf::sw;
  t.rx = TlsConf::sw;
  cli::StatusSocket on{t, {{10, "nginx", 12}, {11, "nginx", 12}}, ""};
  on.socket.zerocopy = true;
  cli::StatusSocket unknown{t, {}, "no owner found"};
  ProcessStats p;
  p.pid = 10;
  p.comm = "nginx";
  p.alive = true;
  p.values[static_cast<std::size_t>(Counter::sends)] = 5;
  p.values[static_cast<std::size_t>(Counter::zerocopy_sends)] = 3;
  p.values[static_cast<std::size_t>(Counter::ktls_tx_sockets)] = 4;
  p.values[static_cast<std::size_t>(Counter::ktls_tx_file_sockets)] = 3;
  ProcessStats gone = p;
  gone.pid = 9;
  gone.alive = false;

  const std::string text = cli::format_status({on, unknown}, {p, gone});
  EXPECT_EQ(text.rfind("kTLS sockets: 2\n", 0), 0U) << text;
  EXPECT_NE(text.find("nginx[10],nginx[11]"), std::string::npos) << text;
  EXPECT_NE(text.find("[2001:db8::7]:51000"), std::string::npos) << text;
  EXPECT_NE(text.find("opted in, no effect (sw)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("unknown (no owner found)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("processes running zctls: 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("nginx[10]: 4 kTLS TX sockets (1 sent no file), 5 sends, 3 zerocopy"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("nginx[9]"), std::string::npos) << "exited processes are not listed";
  EXPECT_EQ(text.find("flag set by the application"), std::string::npos) << text;
  EXPECT_EQ(text.find("software kTLS"), std::string::npos) << text;
  ProcessStats soft = p;  // TLS 1.3 connections: software whatever the NIC
  soft.values[static_cast<std::size_t>(Counter::software_tx_sockets)] = 3;
  soft.values[static_cast<std::size_t>(Counter::software_tls13_sockets)] = 2;
  EXPECT_NE(cli::format_status({on}, {soft}).find(
                "    software kTLS (zctls leaves alone): 3 sockets, 2 of them TLS 1.3 (device "
                "offload takes TLS 1.2 only, Linux <= 7.3)\n"),
            std::string::npos)
      << cli::format_status({on}, {soft});
  EXPECT_NE(cli::format_status_json({on}, {soft})
                .find("\"software_tx_sockets\": 3, \"software_tls13_sockets\": 2"),
            std::string::npos);
  ProcessStats older = p;  // a library from before the socket counters
  older.counters = 31;
  EXPECT_NE(cli::format_status({on}, {older}).find("nginx[10]: 5 sends, 3 zerocopy"),
            std::string::npos);
  EXPECT_NE(cli::format_status_json({on}, {older})
                .find("\"ktls_tx_sockets\": null, \"ktls_tx_sockets_without_files\": null"),
            std::string::npos);
  ProcessStats app = p;
  app.values[static_cast<std::size_t>(Counter::app_flag_sockets)] = 2;
  app.values[static_cast<std::size_t>(Counter::app_flag_sends)] = 4;
  app.values[static_cast<std::size_t>(Counter::app_zerocopy_sends)] = 3;
  EXPECT_NE(
      cli::format_status({on}, {app})
          .find("flag set by the application (KTLSTxZerocopySendfile?): 2 sockets, 4 sends, 3 of "
                "them zerocopy as it set them\n"),
      std::string::npos);

  const std::string json = cli::format_status_json({on, unknown}, {p, gone});
  EXPECT_NE(json.find("\"zerocopy_flag\": true, \"zerocopy\": \"no_effect\""), std::string::npos)
      << json;
  EXPECT_NE(json.find("\"zerocopy_flag\": null, \"zerocopy\": \"unknown\""), std::string::npos)
      << json;
  EXPECT_NE(json.find("\"zctls_processes\": [{\"pid\": 10, \"comm\": \"nginx\", "
                      "\"ktls_tx_sockets\": 4, \"ktls_tx_sockets_without_files\": 1, \"sends\": 5, "
                      "\"zerocopy_sends\": 3, \"software_tx_sockets\": 0, \"software_tls13_sockets\": 0, "
                      "\"app_flag_sockets\": 0, \"app_flag_sends\": 0, "
                      "\"app_zerocopy_sends\": 0}]"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"ktls_processes_without_zctls\": [], "
                      "\"ktls_processes_without_engine\": []"),
            std::string::npos)
      << json;
  EXPECT_EQ(text.find("without zctls"), std::string::npos) << text;

  // issue 18 #7: an nginx binary upgrade that dropped LD_PRELOAD leaves
  // kTLS sockets in processes that do not map the shim: say so.
  const std::vector<cli::SocketOwner> lost = {{21, "nginx", 5}};
  const std::string lost_text = cli::format_status({on}, {p}, lost);
  EXPECT_NE(lost_text.find("kTLS processes without zctls: 1 (no libzctls.so mapped"),
            std::string::npos)
      << lost_text;
  EXPECT_NE(lost_text.find("  nginx[21]\n"), std::string::npos) << lost_text;
  EXPECT_NE(cli::format_status_json({on}, {p}, lost)
                .find("\"ktls_processes_without_zctls\": [{\"pid\": 21, \"comm\": \"nginx\"}], "
                      "\"ktls_processes_without_engine\": []"),
            std::string::npos);
  EXPECT_EQ(lost_text.find("hooks but no engine"), std::string::npos) << lost_text;

  // The hooks without their engine (its dlopen failed): said apart.
  const std::vector<cli::SocketOwner> half = {{21, "nginx", 5}, {22, "nginx", 6, true}};
  const std::string half_text = cli::format_status({on}, {p}, half);
  EXPECT_NE(half_text.find("kTLS processes without zctls: 1 (no libzctls.so mapped"),
            std::string::npos)
      << half_text;
  EXPECT_NE(half_text.find("kTLS processes with zctls's hooks but no engine: 1 "
                           "(libzctls-engine.so not mapped"),
            std::string::npos)
      << half_text;
  EXPECT_NE(half_text.find("engine: 1 (libzctls-engine.so not mapped: its load failed, said on "
                           "its stderr if that is a log; or it has not yet set a TX key or sent "
                           "on a kTLS TX socket: RX only, or inherited)\n  nginx[22]\n"),
            std::string::npos)
      << half_text;
  EXPECT_NE(cli::format_status_json({on}, {p}, half)
                .find("\"ktls_processes_without_zctls\": [{\"pid\": 21, \"comm\": \"nginx\"}], "
                      "\"ktls_processes_without_engine\": [{\"pid\": 22, \"comm\": \"nginx\"}]"),
            std::string::npos);
}

// The owners' /proc/PID/maps decide: this test program maps libzctls.so
// (never its engine: no kTLS on the host) only when
// integration/unit-tests-under-preload runs it.
TEST(Status, OwnersWithoutTheShimAreFoundByTheirMaps) {
  std::ifstream maps("/proc/self/maps");
  const std::string mine{std::istreambuf_iterator<char>(maps), {}};
  const bool preloaded = mine.find("/libzctls.so") != std::string::npos;
  const bool engine = mine.find("/libzctls-engine.so") != std::string::npos;
  cli::StatusSocket s;
  s.owners = {{static_cast<int>(getpid()), "self", 3},
              {static_cast<int>(getpid()), "self", 4},
              {999999999, "gone", 3}};
  const auto lost = cli::owners_without_zctls({s});
  ASSERT_EQ(lost.size(), engine ? 0U : 1U) << "each process once; a vanished one is skipped";
  if (!engine) {
    EXPECT_EQ(lost[0].pid, static_cast<int>(getpid()));
    EXPECT_EQ(lost[0].hooks_only, preloaded);
  }
}

}  // namespace
}  // namespace zctls::kernel
