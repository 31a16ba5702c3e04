// statx(2) for stx_mnt_id, in a unit of its own: the kernel's struct statx
// (<linux/stat.h>, which has stx_mnt_id) cannot share one with glibc's
// <sys/stat.h>, whose struct statx (glibc 2.36) does not name the field.
#include <fcntl.h>
#include <linux/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "kernel/mounts.h"

namespace zctls::kernel {

bool mount_id_of(int fd, std::uint64_t* id, unsigned* major, unsigned* minor) noexcept {
  const int saved = errno;
  struct statx stx {};
  const bool ok = syscall(SYS_statx, fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) == 0 &&
                  (stx.stx_mask & STATX_MNT_ID) != 0;
  errno = saved;
  if (ok) {
    *id = stx.stx_mnt_id;
    // (statx fills the device whatever the mask asked)
    if (major != nullptr) *major = stx.stx_dev_major;
    if (minor != nullptr) *minor = stx.stx_dev_minor;
  }
  return ok;
}

}  // namespace zctls::kernel
