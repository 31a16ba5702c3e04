#include "kernel/tls_diag.h"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace zctls::kernel {
namespace {

std::string endpoint(int family, const __be32* addr, __be16 port) {
  char host[INET6_ADDRSTRLEN] = "?";
  inet_ntop(family, addr, host, sizeof host);
  char out[INET6_ADDRSTRLEN + 10];
  std::snprintf(out, sizeof out, family == AF_INET6 ? "[%s]:%u" : "%s:%u", host,
                static_cast<unsigned>(ntohs(port)));
  return out;
}

std::uint16_t u16(const rtattr* a) {
  std::uint16_t v = 0;
  if (RTA_PAYLOAD(a) >= sizeof v) std::memcpy(&v, RTA_DATA(a), sizeof v);
  return v;
}

TlsConf conf(std::uint16_t v) {
  switch (v) {
    case TLS_CONF_BASE:
      return TlsConf::base;
    case TLS_CONF_SW:
      return TlsConf::sw;
    case TLS_CONF_HW:
      return TlsConf::hw;
    case TLS_CONF_HW_RECORD:
      return TlsConf::hw_record;
    default:
      return TlsConf::unknown;
  }
}

// INET_DIAG_ULP_INFO: { INET_ULP_INFO_NAME "tls", INET_ULP_INFO_TLS { TLS_INFO_* } }.
bool parse_ulp(const rtattr* ulp, TlsSocket& s) {
  bool is_tls = false;
  const rtattr* tls = nullptr;
  int len = static_cast<int>(RTA_PAYLOAD(ulp));
  for (const rtattr* a = static_cast<const rtattr*>(RTA_DATA(ulp)); RTA_OK(a, len);
       a = RTA_NEXT(a, len)) {
    if (a->rta_type == INET_ULP_INFO_NAME)
      is_tls = std::strncmp(static_cast<const char*>(RTA_DATA(a)), "tls", RTA_PAYLOAD(a)) == 0;
    if ((a->rta_type & NLA_TYPE_MASK) == INET_ULP_INFO_TLS) tls = a;
  }
  if (!is_tls) return false;
  if (tls == nullptr) return true;
  len = static_cast<int>(RTA_PAYLOAD(tls));
  for (const rtattr* a = static_cast<const rtattr*>(RTA_DATA(tls)); RTA_OK(a, len);
       a = RTA_NEXT(a, len)) {
    switch (a->rta_type & NLA_TYPE_MASK) {
      case TLS_INFO_VERSION:
        s.version = u16(a);
        break;
      case TLS_INFO_CIPHER:
        s.cipher = u16(a);
        break;
      case TLS_INFO_TXCONF:
        s.tx = conf(u16(a));
        break;
      case TLS_INFO_RXCONF:
        s.rx = conf(u16(a));
        break;
      case TLS_INFO_ZC_RO_TX:
        s.zerocopy = true;  // a flag attribute: present = set
        break;
      default:
        break;
    }
  }
  return true;
}

}  // namespace

const char* to_string(TlsConf c) noexcept {
  switch (c) {
    case TlsConf::base:
      return "base";
    case TlsConf::sw:
      return "sw";
    case TlsConf::hw:
      return "hw";
    case TlsConf::hw_record:
      return "hw_record";
    case TlsConf::unknown:
      break;
  }
  return "?";
}

bool parse_diag_datagram(const std::uint8_t* data, std::size_t size, std::vector<TlsSocket>& out,
                         int* error) {
  *error = 0;
  int left = static_cast<int>(size);
  // NLMSG_OK compares the u32 nlmsg_len with the int `left` (after checking
  // both are at least a header long); `left` must stay signed, since
  // NLMSG_NEXT can step it below zero on a short final message.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
  for (auto* h = reinterpret_cast<const nlmsghdr*>(data); NLMSG_OK(h, left);
       h = NLMSG_NEXT(h, left)) {
#pragma GCC diagnostic pop
    if (h->nlmsg_type == NLMSG_DONE) return false;
    if (h->nlmsg_type == NLMSG_ERROR) {
      const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
      *error = e->error < 0 ? -e->error : EPROTO;
      return false;
    }
    if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg)))
      continue;
    const auto* msg = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
    int attr_len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof *msg));
    TlsSocket s;
    bool tls = false;
    for (auto* a = reinterpret_cast<const rtattr*>(msg + 1); RTA_OK(a, attr_len);
         a = RTA_NEXT(a, attr_len)) {
      if ((a->rta_type & NLA_TYPE_MASK) == INET_DIAG_ULP_INFO) tls = parse_ulp(a, s);
    }
    if (!tls) continue;
    const int family = msg->idiag_family;
    s.local = endpoint(family, msg->id.idiag_src, msg->id.idiag_sport);
    s.peer = endpoint(family, msg->id.idiag_dst, msg->id.idiag_dport);
    s.inode = msg->idiag_inode;
    s.uid = msg->idiag_uid;
    out.push_back(std::move(s));
  }
  return true;
}

int tcp_ulp_diag(int family, const inet_diag_sockid* id, std::span<std::uint8_t> buffer,
                 const DiagDatagram& on_datagram) {
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
  } req{};
  req.header.nlmsg_len = sizeof req;
  req.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.header.nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | (id ? 0 : NLM_F_DUMP));
  req.request.sdiag_family = static_cast<std::uint8_t>(family);
  req.request.sdiag_protocol = IPPROTO_TCP;
  req.request.idiag_states = ~0U;
  // ULP info comes with INET_DIAG_INFO (tcp_diag_get_aux).
  req.request.idiag_ext = 1 << (INET_DIAG_INFO - 1);
  if (id != nullptr) req.request.id = *id;
  const int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return errno;
  int err = 0;
  if (send(nl, &req, sizeof req, 0) != static_cast<ssize_t>(sizeof req)) {
    err = errno;
  } else {
    for (;;) {
      const ssize_t n = recv(nl, buffer.data(), buffer.size(), 0);
      if (n < 0) {
        err = errno;
        break;
      }
      if (!on_datagram(buffer.data(), static_cast<std::size_t>(n))) break;
    }
  }
  close(nl);
  return err;
}

}  // namespace zctls::kernel
