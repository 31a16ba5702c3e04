#include "status.h"

#include <dirent.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

#include "tls_sockets.h"
#include "json.h"
#include "kernel/kernel_quirks.h"
#include "kernel/ktls.h"
#include "stats_dir.h"

namespace zctls::cli {
namespace {

const char* state_key(kernel::ZerocopyState s) {
  switch (s) {
    case kernel::ZerocopyState::effective:
      return "effective";
    case kernel::ZerocopyState::no_effect:
      return "no_effect";
    case kernel::ZerocopyState::off:
      return "off";
  }
  return "?";
}

std::string state_text(kernel::ZerocopyState s, kernel::TlsConf tx) {
  if (s == kernel::ZerocopyState::no_effect)
    return std::string("opted in, no effect (") + kernel::to_string(tx) + ")";
  return state_key(s);
}

std::string owners_text(const std::vector<SocketOwner>& owners) {
  if (owners.empty()) return "?";
  std::string out;
  for (const SocketOwner& o : owners)
    out += (out.empty() ? "" : ",") + o.comm + "[" + std::to_string(o.pid) + "]";
  return out;
}

// socket inode -> the processes that hold it, from /proc/*/fd (needs root
// to see other users' processes).
std::map<std::uint64_t, std::vector<SocketOwner>> socket_owners() {
  std::map<std::uint64_t, std::vector<SocketOwner>> owners;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return owners;
  while (const dirent* p = readdir(proc)) {
    const int pid = std::atoi(p->d_name);
    if (pid <= 0) continue;
    const std::string base = std::string("/proc/") + p->d_name;
    char comm[64] = "";
    if (std::FILE* f = std::fopen((base + "/comm").c_str(), "re")) {
      if (std::fgets(comm, sizeof comm, f) != nullptr) comm[std::strcspn(comm, "\n")] = '\0';
      std::fclose(f);
    }
    DIR* fds = opendir((base + "/fd").c_str());
    if (fds == nullptr) continue;
    while (const dirent* fd = readdir(fds)) {
      char link[64];
      const ssize_t n = readlink((base + "/fd/" + fd->d_name).c_str(), link, sizeof link - 1);
      if (n <= 0) continue;
      link[n] = '\0';
      unsigned long long inode = 0;
      if (std::sscanf(link, "socket:[%llu]", &inode) != 1) continue;
      auto& list = owners[inode];
      if (list.empty() || list.back().pid != pid)
        list.push_back({pid, comm, std::atoi(fd->d_name)});
    }
    closedir(fds);
  }
  closedir(proc);
  return owners;
}

// The flag of a software kTLS socket, read through a duplicate of its
// owner's fd (needs ptrace rights over the owner: root, or the same user
// with ptrace_scope 0).
std::string read_flag_through_owner(StatusSocket& s) {
  if (s.owners.empty()) return "no owner found";
  const SocketOwner& owner = s.owners.front();
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, owner.pid, 0));
  if (pidfd < 0) return std::string("pidfd_open: ") + strerrorname_np(errno);
  const int fd = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, owner.fd, 0));
  const int err = errno;
  close(pidfd);
  if (fd < 0) return std::string("pidfd_getfd: ") + strerrorname_np(err);
  const kernel::FlagState flag = kernel::get_tx_zerocopy(fd);
  close(fd);
  if (flag.error != 0) return std::string("getsockopt: ") + strerrorname_np(flag.error);
  s.socket.zerocopy = flag.on;
  return "";
}

}  // namespace

std::vector<SocketOwner> owners_without_zctls(const std::vector<StatusSocket>& sockets) {
  std::vector<SocketOwner> out;
  std::map<int, bool> seen;
  for (const StatusSocket& s : sockets) {
    for (const SocketOwner& o : s.owners) {
      if (!seen.emplace(o.pid, true).second) continue;
      std::FILE* f = std::fopen(("/proc/" + std::to_string(o.pid) + "/maps").c_str(), "re");
      if (f == nullptr) continue;  // gone, or not ours to read
      bool hooks = false, engine = false;
      char line[4096];
      while (!engine && std::fgets(line, sizeof line, f) != nullptr) {
        hooks = hooks || std::strstr(line, "/libzctls.so") != nullptr;
        engine = std::strstr(line, "/libzctls-engine.so") != nullptr;
      }
      std::fclose(f);
      if (engine) continue;
      out.push_back(o);
      out.back().hooks_only = hooks;
    }
  }
  return out;
}

std::string format_status(const std::vector<StatusSocket>& sockets,
                          const std::vector<ProcessStats>& shim_processes,
                          const std::vector<SocketOwner>& without_zctls) {
  std::string out = "kTLS sockets: " + std::to_string(sockets.size()) + "\n";
  char line[512];
  if (!sockets.empty()) {
    std::snprintf(line, sizeof line, "  %-24s %-24s %-24s %-8s %-18s %-9s %s\n", "PROCESS", "LOCAL",
                  "PEER", "VERSION", "CIPHER", "TX/RX", "ZEROCOPY");
    out += line;
  }
  for (const StatusSocket& s : sockets) {
    const kernel::TlsSocket& t = s.socket;
    const std::string conf = std::string(kernel::to_string(t.tx)) + "/" + kernel::to_string(t.rx);
    std::snprintf(line, sizeof line, "  %-24s %-24s %-24s %-8s %-18s %-9s %s\n",
                  owners_text(s.owners).c_str(), t.local.c_str(), t.peer.c_str(),
                  kernel::tls_version_name(t.version).c_str(),
                  kernel::tls_cipher_name(t.cipher).c_str(), conf.c_str(),
                  (s.flag_error.empty() ? state_text(kernel::zerocopy_state(t.zerocopy, t.tx), t.tx)
                                        : "unknown (" + s.flag_error + ")")
                      .c_str());
    out += line;
  }
  std::size_t alive = 0;
  for (const ProcessStats& p : shim_processes) alive += p.alive ? 1 : 0;
  out += "processes running zctls: " + std::to_string(alive) + "\n";
  for (const ProcessStats& p : shim_processes) {
    if (!p.alive) continue;
    const auto get = [&](Counter c) {
      return static_cast<unsigned long long>(p.values[static_cast<std::size_t>(c)]);
    };
    out += "  " + p.comm + "[" + std::to_string(p.pid) + "]: ";
    if (p.counts_sockets()) {
      std::snprintf(line, sizeof line, "%llu kTLS TX sockets (%llu sent no file), ",
                    get(Counter::ktls_tx_sockets),
                    static_cast<unsigned long long>(sockets_without_files(p.values)));
      out += line;
    }
    std::snprintf(line, sizeof line,
                  "%llu sends, %llu zerocopy, %llu integrity events, config loads %llu (errors "
                  "%llu)\n",
                  get(Counter::sends), get(Counter::zerocopy_sends), get(Counter::integrity_events),
                  get(Counter::config_loads), get(Counter::config_errors));
    out += line;
    if (get(Counter::software_tx_sockets) > 0) {
      std::snprintf(line, sizeof line, "    software kTLS (zctls leaves alone): %llu sockets",
                    get(Counter::software_tx_sockets));
      out += line;
      if (p.counts_tls13() && get(Counter::software_tls13_sockets) > 0) {
        std::snprintf(line, sizeof line,
                      ", %llu of them TLS 1.3 (device offload takes TLS 1.2 only, Linux <= "
                      ZCTLS_NEWEST_KNOWN_KERNEL ")",
                      get(Counter::software_tls13_sockets));
        out += line;
      }
      out += "\n";
    }
    if (get(Counter::app_flag_sockets) > 0) {
      std::snprintf(line, sizeof line,
                    "    flag set by the application (KTLSTxZerocopySendfile?): %llu sockets, "
                    "%llu sends, %llu of them zerocopy as it set them\n",
                    get(Counter::app_flag_sockets), get(Counter::app_flag_sends),
                    get(Counter::app_zerocopy_sends));
      out += line;
    }
  }
  std::size_t hooks_only = 0;
  for (const SocketOwner& o : without_zctls) hooks_only += o.hooks_only ? 1 : 0;
  if (without_zctls.size() > hooks_only) {
    out += "kTLS processes without zctls: " + std::to_string(without_zctls.size() - hooks_only) +
           " (no libzctls.so mapped: started without it, or an nginx binary upgrade without "
           "`env LD_PRELOAD;`)\n";
    for (const SocketOwner& o : without_zctls)
      if (!o.hooks_only) out += "  " + o.comm + "[" + std::to_string(o.pid) + "]\n";
  }
  if (hooks_only > 0) {
    out += "kTLS processes with zctls's hooks but no engine: " + std::to_string(hooks_only) +
           " (libzctls-engine.so not mapped: its load failed, said on its stderr if that is a "
           "log; or it has not yet set a TX key or sent on a kTLS TX socket: RX only, or "
           "inherited)\n";
    for (const SocketOwner& o : without_zctls)
      if (o.hooks_only) out += "  " + o.comm + "[" + std::to_string(o.pid) + "]\n";
  }
  return out;
}

std::string format_status_json(const std::vector<StatusSocket>& sockets,
                               const std::vector<ProcessStats>& shim_processes,
                               const std::vector<SocketOwner>& without_zctls) {
  std::string out = "{\"sockets\": [";
  for (std::size_t i = 0; i < sockets.size(); ++i) {
    const kernel::TlsSocket& t = sockets[i].socket;
    out += std::string(i > 0 ? ", " : "") + "{\"processes\": [";
    for (std::size_t j = 0; j < sockets[i].owners.size(); ++j)
      out += std::string(j > 0 ? ", " : "") +
             "{\"pid\": " + std::to_string(sockets[i].owners[j].pid) +
             ", \"comm\": " + json_quote(sockets[i].owners[j].comm) + "}";
    out += "], \"local\": " + json_quote(t.local) + ", \"peer\": " + json_quote(t.peer) +
           ", \"inode\": " + std::to_string(t.inode) +
           ", \"version\": " + json_quote(kernel::tls_version_name(t.version)) +
           ", \"cipher\": " + json_quote(kernel::tls_cipher_name(t.cipher)) +
           ", \"txconf\": " + json_quote(kernel::to_string(t.tx)) +
           ", \"rxconf\": " + json_quote(kernel::to_string(t.rx)) + ", \"zerocopy_flag\": " +
           (sockets[i].flag_error.empty() ? (t.zerocopy ? "true" : "false") : "null") +
           ", \"zerocopy\": " +
           json_quote(sockets[i].flag_error.empty()
                          ? state_key(kernel::zerocopy_state(t.zerocopy, t.tx))
                          : "unknown") +
           "}";
  }
  out += "], \"zctls_processes\": [";
  bool first = true;
  for (const ProcessStats& p : shim_processes) {
    if (!p.alive) continue;
    out += std::string(first ? "" : ", ") + "{\"pid\": " + std::to_string(p.pid) +
           ", \"comm\": " + json_quote(p.comm) + ", \"ktls_tx_sockets\": " +
           (p.counts_sockets()
                ? std::to_string(p.values[static_cast<std::size_t>(Counter::ktls_tx_sockets)])
                : "null") +
           ", \"ktls_tx_sockets_without_files\": " +
           (p.counts_sockets() ? std::to_string(sockets_without_files(p.values)) : "null") +
           ", \"sends\": " + std::to_string(p.values[static_cast<std::size_t>(Counter::sends)]) +
           ", \"zerocopy_sends\": " +
           std::to_string(p.values[static_cast<std::size_t>(Counter::zerocopy_sends)]) +
           ", \"software_tx_sockets\": " +
           std::to_string(p.values[static_cast<std::size_t>(Counter::software_tx_sockets)]) +
           ", \"software_tls13_sockets\": " +
           (p.counts_tls13()
                ? std::to_string(p.values[static_cast<std::size_t>(Counter::software_tls13_sockets)])
                : "null") +
           ", \"app_flag_sockets\": " +
           std::to_string(p.values[static_cast<std::size_t>(Counter::app_flag_sockets)]) +
           ", \"app_flag_sends\": " +
           std::to_string(p.values[static_cast<std::size_t>(Counter::app_flag_sends)]) +
           ", \"app_zerocopy_sends\": " +
           std::to_string(p.values[static_cast<std::size_t>(Counter::app_zerocopy_sends)]) + "}";
    first = false;
  }
  // Two lists: no libzctls.so at all, and the hooks without their engine.
  for (const bool hooks_only : {false, true}) {
    out += hooks_only ? "], \"ktls_processes_without_engine\": ["
                      : "], \"ktls_processes_without_zctls\": [";
    bool first_owner = true;
    for (const SocketOwner& o : without_zctls) {
      if (o.hooks_only != hooks_only) continue;
      out += std::string(first_owner ? "" : ", ") + "{\"pid\": " + std::to_string(o.pid) +
             ", \"comm\": " + json_quote(o.comm) + "}";
      first_owner = false;
    }
  }
  return out + "]}\n";
}

int run_status(bool json, const std::string& stats_dir) {
  std::vector<kernel::TlsSocket> found;
  if (const int err = kernel::list_tls_sockets(found); err != 0) {
    std::fprintf(stderr, "zctls: status: sock_diag dump failed: %s\n", std::strerror(err));
    return 1;
  }
  const auto owners = socket_owners();
  std::vector<StatusSocket> sockets;
  for (kernel::TlsSocket& t : found) {
    StatusSocket s;
    if (auto it = owners.find(t.inode); it != owners.end()) s.owners = it->second;
    s.socket = std::move(t);
    // The kernel reports the flag only for hw; elsewhere ask the socket.
    if ((s.socket.tx == kernel::TlsConf::sw || s.socket.tx == kernel::TlsConf::hw_record) &&
        !s.socket.zerocopy)
      s.flag_error = read_flag_through_owner(s);
    sockets.push_back(std::move(s));
  }
  const auto shim = read_stats_dir(stats_dir);
  const auto lost = owners_without_zctls(sockets);
  const std::string out =
      json ? format_status_json(sockets, shim, lost) : format_status(sockets, shim, lost);
  std::fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace zctls::cli
