// Other names of a file under the other mounts of its filesystem
// (kernel/mounts.h), from mountinfo text as the kernel writes it.
#include "kernel/mounts.h"

#include <gtest/gtest.h>

namespace {

namespace k = zctls::kernel;
using Names = std::optional<std::vector<std::string>>;
Names names(std::initializer_list<std::string> list) { return std::vector<std::string>(list); }

// Debian root on 254:1, /srv/www bind-mounted at /var/www/html, the
// uploads subtree bound again at /srv/upload-view, a tmpfs, and another
// filesystem (254:2) twice.  One mount point has a space (\040).
constexpr const char* kMountinfo =
    "20 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
    "21 20 0:21 / /proc rw,nosuid - proc proc rw\n"
    "30 20 254:1 /srv/www /var/www/html rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
    "31 20 254:1 /srv/www/uploads /srv/upload-view rw - ext4 /dev/vda1 rw\n"
    "32 20 0:30 / /tmp rw - tmpfs tmpfs rw\n"
    "40 20 254:2 / /data rw - ext4 /dev/vdb rw\n"
    "41 20 254:2 /pub /mnt/my\\040data rw - ext4 /dev/vdb rw\n"
    "garbage line\n"
    "42 20 x:y / /broken rw - ext4 /dev/vdc rw\n";

TEST(Mountinfo, ParsesFieldsAndUnescapes) {
  const auto mounts = k::parse_mountinfo(kMountinfo);
  ASSERT_EQ(mounts.size(), 7U) << "the two unreadable lines are skipped";
  EXPECT_EQ(mounts[2].id, 30U);
  EXPECT_EQ(mounts[2].major, 254U);
  EXPECT_EQ(mounts[2].minor, 1U);
  EXPECT_EQ(mounts[2].root, "/srv/www");
  EXPECT_EQ(mounts[2].point, "/var/www/html");
  EXPECT_EQ(mounts[6].point, "/mnt/my data");
}

TEST(Mountinfo, OtherNamesUnderEveryMountOfTheFilesystem) {
  const auto m = k::parse_mountinfo(kMountinfo);
  // Through the root mount: the bind of /srv/www shows it too; the
  // uploads bind does not contain it.
  EXPECT_EQ(k::other_names(m, 20, "/srv/www/static/app.js"),
            names({"/var/www/html/static/app.js"}));
  // Through the bind: the root mount's name.
  EXPECT_EQ(k::other_names(m, 30, "/var/www/html/static/app.js"),
            names({"/srv/www/static/app.js"}));
  // An upload: three names.
  EXPECT_EQ(k::other_names(m, 30, "/var/www/html/uploads/a.png"),
            names({"/srv/www/uploads/a.png", "/srv/upload-view/a.png"}));
  // The mount point itself.
  EXPECT_EQ(k::other_names(m, 31, "/srv/upload-view"),
            names({"/srv/www/uploads", "/var/www/html/uploads"}));
  // Another filesystem, with a space in a mount point.
  EXPECT_EQ(k::other_names(m, 40, "/data/pub/x"), names({"/mnt/my data/x"}));
  EXPECT_EQ(k::other_names(m, 40, "/data/private/x"), names({}));
}

TEST(Mountinfo, NoOtherNames) {
  const auto m = k::parse_mountinfo(kMountinfo);
  const Names none = names({});
  EXPECT_EQ(k::other_names(m, 32, "/tmp/a"), none) << "mounted once";
  // Component-wise: /srv/www2 is not under the bind of /srv/www.
  EXPECT_EQ(k::other_names(m, 20, "/srv/www2/a"), none);
  // Cannot be known: the mount is not in the table, or the path is not
  // under its mount point.
  EXPECT_EQ(k::other_names(m, 99, "/srv/www/a"), std::nullopt) << "unknown mount";
  EXPECT_EQ(k::other_names(m, 30, "/srv/wwwx/a"), std::nullopt) << "not under its mount point";
}

TEST(Mountinfo, ThisProcessesOwnTable) {
  std::string text;
  ASSERT_TRUE(k::read_mountinfo(&text));
  const auto mounts = k::parse_mountinfo(text);
  ASSERT_FALSE(mounts.empty());
  bool root = false;
  for (const auto& m : mounts) root = root || m.point == "/";
  EXPECT_TRUE(root);
}

}  // namespace
