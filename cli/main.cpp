// zctls: the command-line companion of libzctls.so.
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "explain.h"
#include "probe_report.h"
#include "rule_lint.h"
#include "stats_format.h"
#include "status.h"
#include "zctls/config.h"
#include "kernel/ktls_probe.h"
#include "zctls/rule_paths.h"
#include "stats_dir.h"
#include "zctls/stats.h"
#include "zctls/version.h"

namespace {

constexpr int kExitUsage = 64;  // EX_USAGE
constexpr const char* kDefaultConfig = "/etc/zctls.toml";

void usage(std::FILE* to) {
  std::fputs(
      "usage: zctls COMMAND [ARGS]\n"
      "\n"
      "commands:\n"
      "  run [--config F] [--library L] -- CMD [ARGS]\n"
      "               run CMD with libzctls.so preloaded (prepended to LD_PRELOAD);\n"
      "               --config sets ZCTLS_CONFIG for it\n"
      "  check [F]    validate a config (default: $ZCTLS_CONFIG or /etc/zctls.toml);\n"
      "               exit 1 on errors, printed as file:line:col: message\n"
      "  explain [--config F] PATH...\n"
      "               the rule that decides each path, and the decision\n"
      "  probe [--json]\n"
      "               what this host can do; exit 0 = zerocopy flag usable,\n"
      "               1 = kTLS without the flag, 2 = no kTLS\n"
      "  status [--config F] [--dir D] [--json]\n"
      "               every kTLS socket on the host (sock_diag) and the processes\n"
      "               running zctls\n"
      "  stats [--config F] [--dir D] [--json | --prometheus | --textfile T] [--prune]\n"
      "               counters of the processes using zctls, alive and exited;\n"
      "               --textfile writes T/zctls.prom for node_exporter (atomic rename)\n"
      "  --version    print the version\n"
      "  --help       this text\n",
      to);
}

int bad_usage(const std::string& why) {
  std::fprintf(stderr, "zctls: %s\n", why.c_str());
  usage(stderr);
  return kExitUsage;
}

std::string default_config_path() {
  const char* env = std::getenv("ZCTLS_CONFIG");
  return env != nullptr && *env != '\0' ? env : kDefaultConfig;
}

bool exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

std::string absolute(const std::string& path) {
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved) != nullptr) return resolved;
  if (!path.empty() && path[0] == '/') return path;
  char cwd[PATH_MAX];
  return getcwd(cwd, sizeof cwd) != nullptr ? std::string(cwd) + "/" + path : path;
}

// libzctls.so: the installed one, else the one next to this build's zctls.
std::string find_library() {
  if (exists(ZCTLS_INSTALLED_LIBRARY)) return ZCTLS_INSTALLED_LIBRARY;
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    std::string dir(self);
    dir.erase(dir.rfind('/'));
    const std::string built = dir + "/../shim/libzctls.so";
    if (exists(built)) return absolute(built);
  }
  return "";
}

int run_command(int argc, char** argv) {
  std::string config, library;
  int i = 2;
  for (; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--") {
      ++i;
      break;
    }
    if ((a == "--config" || a == "--library") && i + 1 < argc) {
      (a == "--config" ? config : library) = argv[++i];
    } else {
      return bad_usage("run: unexpected '" + std::string(a) + "' (the command goes after --)");
    }
  }
  if (i >= argc) return bad_usage("run: no command after --");
  if (library.empty()) library = find_library();
  if (library.empty() || !exists(library)) {
    std::fprintf(stderr, "zctls: run: cannot find libzctls.so (tried %s); use --library\n",
                 ZCTLS_INSTALLED_LIBRARY);
    return 69;  // EX_UNAVAILABLE
  }
  library = absolute(library);
  if (!config.empty()) {
    if (!exists(config)) {
      std::fprintf(stderr, "zctls: run: %s: no such file\n", config.c_str());
      return 66;  // EX_NOINPUT
    }
    setenv("ZCTLS_CONFIG", absolute(config).c_str(), 1);
  }
  // Prepend, keep what was there (ld.so takes ':' or ' ' separated lists).
  std::string preload = library;
  if (const char* old = std::getenv("LD_PRELOAD"); old != nullptr && *old != '\0') {
    if (std::string_view(old).find(library) == std::string_view::npos) {
      preload += ":";
      preload += old;
    } else {
      preload = old;  // already there: do not load it twice
    }
  }
  setenv("LD_PRELOAD", preload.c_str(), 1);
  execvp(argv[i], argv + i);
  std::fprintf(stderr, "zctls: run: %s: %s\n", argv[i], std::strerror(errno));
  return errno == ENOENT ? 127 : 126;
}

int check_command(int argc, char** argv) {
  if (argc > 3) return bad_usage("check takes one config file");
  const std::string path = argc == 3 ? argv[2] : default_config_path();
  const zctls::ConfigResult result = zctls::load_config_file(path);
  const std::string report = zctls::cli::format_check(path, result);
  std::fputs(report.c_str(), result.config ? stdout : stderr);
  // Valid, but with rules that never decide anything: warnings, exit 0.
  if (result.config) {
    for (const std::string& w : zctls::cli::lint_rules(*result.config))
      std::fprintf(stderr, "%s\n", w.c_str());
    for (const std::string& w : zctls::rules_through_symlinks(*result.config, "warning: "))
      std::fprintf(stderr, "%s\n", w.c_str());
    if (const std::string& dir = result.config->stats.textfile_dir; !dir.empty())
      std::fprintf(stderr,
                   "%s: warning: [stats] textfile_dir is ignored: servers no longer write the "
                   "textfile; run `zctls stats --textfile %s` from a timer "
                   "(examples/systemd/zctls-textfile.timer)\n",
                   path.c_str(), dir.c_str());
  }
  return result.config ? 0 : 1;
}

int explain_command(int argc, char** argv) {
  std::string config_path = default_config_path();
  std::vector<std::string> paths;
  for (int i = 2; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else {
      paths.emplace_back(argv[i]);
    }
  }
  if (paths.empty()) return bad_usage("explain: no PATH");
  zctls::ConfigResult result = zctls::load_config_file(config_path);
  if (!result.config) {
    std::fputs(zctls::cli::format_check(config_path, result).c_str(), stderr);
    return 1;
  }
  if (const char* rules = std::getenv("ZCTLS_RULES")) {
    std::vector<zctls::ConfigError> errors;
    if (!zctls::apply_rules_env(rules, *result.config, errors)) {
      for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
      return 1;
    }
  }
  // The shim matches the path the kernel reports for the open file: the
  // canonical one, symlinks resolved; and it looks at the file's other
  // names (hard links, other mounts), as far as it can see them.
  for (const std::string& p : paths) {
    const std::string path = absolute(p);
    std::fputs(zctls::cli::explain_file(*result.config, path, zctls::cli::file_names(path)).c_str(),
               stdout);
  }
  return 0;
}

// The directory the shim keeps counters in: --dir, else the config's
// [stats] dir, else the default.
std::string stats_dir(const std::string& dir, std::string config_path) {
  if (!dir.empty()) return dir;
  if (config_path.empty()) config_path = default_config_path();
  const zctls::ConfigResult r = zctls::load_config_file(config_path);
  return r.config ? r.config->stats.dir : zctls::StatsConfig{}.dir;
}

int stats_command(int argc, char** argv) {
  std::string dir, config_path, textfile_dir;
  bool json = false, prometheus = false, prune = false;
  for (int i = 2; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--json") {
      json = true;
    } else if (a == "--prometheus") {
      prometheus = true;
    } else if (a == "--prune") {
      prune = true;
    } else if ((a == "--dir" || a == "--config") && i + 1 < argc) {
      (a == "--dir" ? dir : config_path) = argv[++i];
    } else if (a == "--textfile" && i + 1 < argc) {
      textfile_dir = argv[++i];
      if (textfile_dir.empty()) return bad_usage("stats: --textfile needs a directory");
    } else {
      return bad_usage("stats: unexpected '" + std::string(a) + "'");
    }
  }
  if (int(json) + int(prometheus) + int(!textfile_dir.empty()) > 1)
    return bad_usage("stats: one of --json, --prometheus and --textfile");
  dir = stats_dir(dir, config_path);
  if (prune) {
    std::string error;
    const int folded = zctls::prune_stats_dir(dir, &error);
    if (folded < 0) {
      std::fprintf(stderr, "zctls: stats --prune: %s\n", error.c_str());
      return 1;
    }
    // Silent when there was nothing to fold: a timer runs this every 15 s.
    if (folded > 0)
      std::fprintf(stderr, "zctls: folded %d exited process%s into the retired totals\n", folded,
                   folded == 1 ? "" : "es");
  }
  bool consistent = false;
  const auto all = zctls::read_stats_dir(dir, &consistent);
  if (!consistent) {
    std::fprintf(stderr, "zctls: stats: %s kept changing under concurrent prunes; try again\n",
                 dir.c_str());
    return 1;
  }
  if (!textfile_dir.empty()) {
    // Servers never write the textfile (no file I/O in their sendfile):
    // this, run from a timer, is what keeps it current.
    const int err = zctls::write_textfile(textfile_dir, zctls::prometheus_text(all));
    if (err != 0) {
      std::fprintf(stderr, "zctls: stats --textfile: cannot write %s/zctls.prom: %s\n",
                   textfile_dir.c_str(), std::strerror(err));
      return 1;
    }
    return 0;
  }
  const std::string out = json         ? zctls::cli::stats_json(all)
                          : prometheus ? zctls::prometheus_text(all)
                                       : zctls::cli::stats_table(all);
  std::fputs(out.c_str(), stdout);
  return 0;
}

int probe_command(int argc, char** argv) {
  const bool json = argc == 3 && std::string_view(argv[2]) == "--json";
  if (argc > 3 || (argc == 3 && !json)) return bad_usage("probe takes only --json");
  zctls::cli::HostReport host;
  host.caps = zctls::kernel::probe_ktls();
  host.nics = zctls::kernel::tls_offload_nics();
  host.kernel_config = zctls::kernel::read_kernel_tls_config(host.caps.kernel_release);
  host.tls13_software =
      zctls::kernel::device_offload_is_tls12_only(zctls::kernel::read_kernel_identity());
  host.openssl = zctls::cli::openssl_info();
  if (host.caps.ktls_usable()) host.openssl.handshakes = zctls::cli::openssl_ktls_handshakes();
  const std::string out =
      json ? zctls::cli::format_probe_json(host) : zctls::cli::format_probe(host);
  std::fputs(out.c_str(), stdout);
  return zctls::cli::verdict(host.caps);
}

int status_command(int argc, char** argv) {
  std::string dir, config_path;
  bool json = false;
  for (int i = 2; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--json") {
      json = true;
    } else if ((a == "--dir" || a == "--config") && i + 1 < argc) {
      (a == "--dir" ? dir : config_path) = argv[++i];
    } else {
      return bad_usage("status: unexpected '" + std::string(a) + "'");
    }
  }
  return zctls::cli::run_status(json, stats_dir(dir, config_path));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 2) return bad_usage("no command");
    const std::string_view cmd = argv[1];
    if (cmd == "--version") {
      std::printf("zctls %s\n", zctls::kVersion);
      return 0;
    }
    if (cmd == "--help" || cmd == "-h") {
      usage(stdout);
      return 0;
    }
    if (cmd == "run") return run_command(argc, argv);
    if (cmd == "check") return check_command(argc, argv);
    if (cmd == "explain") return explain_command(argc, argv);
    if (cmd == "stats") return stats_command(argc, argv);
    if (cmd == "probe") return probe_command(argc, argv);
    if (cmd == "status") return status_command(argc, argv);
    return bad_usage("unknown command: " + std::string(cmd));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zctls: %s\n", e.what());
    return 70;  // EX_SOFTWARE
  }
}
