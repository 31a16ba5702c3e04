#include "explain.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel/mounts.h"

namespace zctls::cli {

std::string format_check(const std::string& source, const ConfigResult& result) {
  if (!result.config) {
    std::string out;
    for (const ConfigError& e : result.errors) out += e.to_string() + "\n";
    return out;
  }
  const Config& c = *result.config;
  return source + ": ok: " + std::to_string(c.rules.size()) + " rule" +
         (c.rules.size() == 1 ? "" : "s") + ", default " +
         (c.default_zerocopy ? "zerocopy" : "copy") + ", on_change " +
         std::string(to_string(c.integrity.on_change)) + ", kernel_quirks " +
         std::string(to_string(c.integrity.kernel_quirks)) + ", offload " +
         std::string(to_string(c.kernel.offload)) + "\n";
}

namespace {

std::string by_what(const Config& config, const Decision& d) {
  if (d.rule < 0) return "by default (no rule matches)";
  const Rule& rule = config.rules[static_cast<std::size_t>(d.rule)];
  return "by rule " + std::to_string(d.rule + 1) + " (" + rule.origin + ", path \"" +
         rule.glob.pattern() + "\")";
}

}  // namespace

std::string explain_path(const Config& config, const std::string& path) {
  const Decision d = config.decide(path);
  return path + ": " + (d.zerocopy ? "zerocopy " : "copy ") + by_what(config, d) + "\n";
}

FileNames file_names(const std::string& path) {
  FileNames names;
  const int fd = open(path.c_str(), O_PATH | O_CLOEXEC);
  struct stat st {};
  if (fd < 0 || fstat(fd, &st) != 0) {
    if (fd >= 0) close(fd);
    return names;
  }
  names.exists = true;
  names.links = st.st_nlink;
  std::uint64_t id = 0;
  std::string text;
  if (kernel::mount_id_of(fd, &id) && kernel::read_mountinfo(&text))
    names.other_names = kernel::other_names(kernel::parse_mountinfo(text), id, path)
                            .value_or(std::vector<std::string>{});
  close(fd);
  return names;
}

std::string explain_file(const Config& config, const std::string& path, const FileNames& names) {
  const Decision d = config.decide(path);
  const std::string head = path + ": ";
  if (!d.zerocopy || !names.exists) return explain_path(config, path);
  if (names.links > 1 && config.integrity.hard_links == HardLinks::copy)
    return head + "copy: it has " + std::to_string(names.links) +
           " hard links, whose other names zctls cannot see ([integrity] hard_links = \"copy\"; "
           "the rules alone say zerocopy " +
           by_what(config, d) + ")\n";
  for (const std::string& other : names.other_names) {
    const Decision o = config.decide(other);
    if (!o.zerocopy)
      return head + "copy: it is also " + other + " (another mount of its filesystem), copy " +
             by_what(config, o) + "\n";
  }
  return explain_path(config, path);
}

}  // namespace zctls::cli
