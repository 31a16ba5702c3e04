// zctls: the command-line companion of libzctls.so.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string_view>

#include "probe_report.h"
#include "zctls/ktls_probe.h"
#include "zctls/version.h"

namespace {

constexpr int kExitUsage = 64;  // EX_USAGE

void usage(std::FILE* to) {
  std::fputs(
      "usage: zctls COMMAND\n"
      "\n"
      "commands:\n"
      "  probe        report what this host's kernel can do with kTLS and zerocopy;\n"
      "               exit 0 = zerocopy flag usable, 1 = kTLS without the flag,\n"
      "               2 = no kTLS\n"
      "  --version    print the version\n"
      "  --help       this text\n",
      to);
}

int run_probe() {
  const zctls::kernel::KtlsCapabilities caps = zctls::kernel::probe_ktls();
  std::fputs(zctls::cli::format_probe(caps).c_str(), stdout);
  return zctls::cli::verdict(caps);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 2) {
      usage(stderr);
      return kExitUsage;
    }
    const std::string_view cmd = argv[1];
    if (cmd == "--version") {
      std::printf("zctls %s\n", zctls::kVersion);
      return 0;
    }
    if (cmd == "--help" || cmd == "-h") {
      usage(stdout);
      return 0;
    }
    if (cmd == "probe" && argc == 2) return run_probe();
    std::fprintf(stderr, "zctls: unknown command or arguments: %s\n", argv[1]);
    usage(stderr);
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zctls: %s\n", e.what());
    return 70;  // EX_SOFTWARE
  }
}
