#include "kernel/mounts.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace zctls::kernel {
namespace {

// mountinfo escapes ' ', '\t', '\n' and '\\' as \ooo (fs/proc_namespace.c,
// mangle()).
std::string unescape(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && field[i + 1] >= '0' && field[i + 1] <= '3' &&
        field[i + 2] >= '0' && field[i + 2] <= '7' && field[i + 3] >= '0' && field[i + 3] <= '7') {
      out += static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                               (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

bool parse_number(std::string_view s, std::uint64_t* out) {
  if (s.empty()) return false;
  std::uint64_t v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

// "a/b" + "c" with one slash between; "/" + "x" = "/x".
std::string join(std::string_view dir, std::string_view rest) {
  std::string out(dir);
  if (rest.empty()) return out;
  if (out.empty() || out.back() != '/') out += '/';
  out += rest;
  return out;
}

// The part of `path` below `dir` ("" for dir itself), or false if it is
// not below it.  Component-wise: /srv/www2 is not below /srv/www.
bool below(std::string_view path, std::string_view dir, std::string_view* rest) {
  if (dir == "/") {
    if (path.empty() || path[0] != '/') return false;
    *rest = path.substr(1);
    return true;
  }
  if (!path.starts_with(dir)) return false;
  if (path.size() == dir.size()) {
    *rest = {};
    return true;
  }
  if (path[dir.size()] != '/') return false;
  *rest = path.substr(dir.size() + 1);
  return true;
}

}  // namespace

std::vector<Mount> parse_mountinfo(std::string_view text) {
  std::vector<Mount> mounts;
  while (!text.empty()) {
    const std::size_t eol = text.find('\n');
    const std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    // id parent major:minor root point options... - fstype source super
    std::string_view fields[5];
    std::string_view rest = line;
    bool ok = true;
    for (auto& f : fields) {
      const std::size_t sp = rest.find(' ');
      if (sp == std::string_view::npos) {
        ok = false;
        break;
      }
      f = rest.substr(0, sp);
      rest = rest.substr(sp + 1);
    }
    Mount m;
    std::uint64_t major = 0, minor = 0;
    const std::size_t colon = fields[2].find(':');
    if (!ok || !parse_number(fields[0], &m.id) || colon == std::string_view::npos ||
        !parse_number(fields[2].substr(0, colon), &major) ||
        !parse_number(fields[2].substr(colon + 1), &minor) || fields[3].empty() ||
        fields[4].empty())
      continue;
    m.major = static_cast<unsigned>(major);
    m.minor = static_cast<unsigned>(minor);
    m.root = unescape(fields[3]);
    m.point = unescape(fields[4]);
    mounts.push_back(std::move(m));
  }
  return mounts;
}

std::optional<std::vector<std::string>> other_names(const std::vector<Mount>& mounts,
                                                    std::uint64_t mount_id, std::string_view path) {
  std::vector<std::string> names;
  const Mount* mine = nullptr;
  for (const Mount& m : mounts)
    if (m.id == mount_id) mine = &m;
  std::string_view rel;
  if (mine == nullptr || !below(path, mine->point, &rel)) return std::nullopt;
  // Where the file is inside its filesystem.
  const std::string inside = join(mine->root, rel);
  for (const Mount& m : mounts) {
    if (&m == mine || m.major != mine->major || m.minor != mine->minor) continue;
    std::string_view under;
    if (!below(inside, m.root, &under)) continue;
    std::string name = join(m.point, under);
    if (name != path) names.push_back(std::move(name));
  }
  return names;
}

bool read_mountinfo(std::string* text) {
  const int fd = static_cast<int>(
      syscall(SYS_openat, AT_FDCWD, "/proc/self/mountinfo", O_RDONLY | O_CLOEXEC, 0));
  if (fd < 0) return false;
  // Read into the string itself: no page-sized buffer on the caller's
  // stack (a sending thread's, which may be a 16 KiB coroutine's).
  constexpr std::size_t kStep = 8192;
  text->clear();
  int err = 0;
  try {
    for (;;) {
      const std::size_t have = text->size();
      text->resize(have + kStep);
      const long n = syscall(SYS_read, fd, text->data() + have, kStep);
      if (n < 0 && errno == EINTR) {
        text->resize(have);
        continue;
      }
      text->resize(have + static_cast<std::size_t>(n > 0 ? n : 0));
      if (n < 0) err = errno;
      if (n <= 0) break;
    }
  } catch (...) {
    err = ENOMEM;
  }
  syscall(SYS_close, fd);
  errno = err;
  return err == 0;
}

}  // namespace zctls::kernel
