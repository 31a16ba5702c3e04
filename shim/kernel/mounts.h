// Where else a file can be reached in this process's mount namespace.
//
// zctls decides by path, from the name the kernel gives the open file
// (/proc/self/fd/N).  One filesystem can be mounted at several places (bind
// mounts, the same device mounted twice), and then every file on it has a
// name under each: a file under a zerocopy rule at one name may sit under a
// copy rule (uploads/) at another.  These functions find those other names
// from /proc/self/mountinfo (proc(5)): the mounts that share the file's
// superblock (major:minor), each showing the subtree at its "root" field.
//
// What this cannot see: other mount namespaces (a container's view of the
// same files), and hard links (other names inside one filesystem: only
// their count is known, st_nlink).  ARCHITECTURE.md, "Names".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zctls::kernel {

struct Mount {
  std::uint64_t id = 0;           // mountinfo field 1, statx's stx_mnt_id
  unsigned major = 0, minor = 0;  // the superblock's device
  std::string root;               // the subtree of the filesystem mounted here
  std::string point;              // where, relative to the process's root
};

// Parses mountinfo text; lines it cannot read are skipped.  Octal escapes
// (\040 for a space, ...) are decoded.
std::vector<Mount> parse_mountinfo(std::string_view text);

// Every other name of `path`, the name the file has through mount
// `mount_id`: the same place in the filesystem under each other mount of
// it whose subtree contains it (empty if none).  nullopt if the mount is
// not in `mounts` or `path` is not under its mount point: then the names
// cannot be known.
std::optional<std::vector<std::string>> other_names(const std::vector<Mount>& mounts,
                                                    std::uint64_t mount_id, std::string_view path);

// stx_mnt_id of an open file (statx(2), Linux 5.8+), and its filesystem's
// device (`major`, `minor`, if given): true on success.
bool mount_id_of(int fd, std::uint64_t* id, unsigned* major = nullptr,
                 unsigned* minor = nullptr) noexcept;

// Reads /proc/self/mountinfo whole (raw syscalls, no fd kept); false, with
// errno saying why, if it cannot be read.
bool read_mountinfo(std::string* text);

}  // namespace zctls::kernel
