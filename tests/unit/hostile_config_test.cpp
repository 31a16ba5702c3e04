// Hostile configs (tests/hostile-configs/): each one gets a clear,
// positioned error or loads, and nothing crashes.  The shim side (pass
// everything through) is ShimE2E.HostileConfigsPassEverythingThrough.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "zctls/config.h"

#ifndef ZCTLS_HOSTILE_CONFIGS_DIR
#error "ZCTLS_HOSTILE_CONFIGS_DIR must name tests/hostile-configs"
#endif

namespace {

const std::string kDir = ZCTLS_HOSTILE_CONFIGS_DIR;

// NAME -> expectation, from the manifest.
std::map<std::string, std::string> manifest() {
  std::map<std::string, std::string> out;
  std::ifstream in(kDir + "/expected");
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const std::size_t tab = line.find('\t');
    if (tab != std::string::npos) out[line.substr(0, tab)] = line.substr(tab + 1);
  }
  return out;
}

std::string describe(const zctls::ConfigResult& r) {
  if (r.config) return "ok " + std::to_string(r.config->rules.size()) + " rules";
  std::string s;
  for (const auto& e : r.errors) s += e.to_string() + "\n";
  return s;
}

TEST(HostileConfigs, EveryFileIsListedAndThereAreAtLeastThirty) {
  const auto expected = manifest();
  std::size_t files = 0;
  DIR* dir = opendir(kDir.c_str());
  ASSERT_NE(dir, nullptr);
  while (const dirent* e = readdir(dir)) {
    const std::string name = e->d_name;
    if (name.size() < 5 || name.substr(name.size() - 5) != ".toml") continue;
    ++files;
    EXPECT_TRUE(expected.count(name)) << name << " has no line in expected";
  }
  closedir(dir);
  EXPECT_EQ(files, expected.size());
  EXPECT_GE(files, 30U);
}

TEST(HostileConfigs, EachGetsItsErrorOrLoads) {
  for (const auto& [name, expect] : manifest()) {
    SCOPED_TRACE(name);
    const std::string path = kDir + "/" + name;
    const zctls::ConfigResult r = zctls::load_config_file(path);
    if (expect.rfind("ok ", 0) == 0) {
      EXPECT_EQ(describe(r), expect);
      continue;
    }
    ASSERT_FALSE(r.config) << "loaded, but expected: " << expect;
    ASSERT_FALSE(r.errors.empty());
    const std::string where = expect.substr(0, expect.find(' '));
    const std::string message = expect.substr(expect.find(' ') + 1);
    const std::string got = r.errors.front().to_string();
    const std::string prefix = where == "-" ? path + ": " : path + ":" + where + ": ";
    EXPECT_EQ(got.substr(0, prefix.size() + message.size()), prefix + message) << got;
  }
}

// The cases too big or too odd to keep in git.
class GeneratedHostileConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/zctls-hostile-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { ASSERT_EQ(std::system(("rm -rf '" + dir_ + "'").c_str()), 0); }
  std::string first_error(const std::string& path) {
    const zctls::ConfigResult r = zctls::load_config_file(path);
    EXPECT_FALSE(r.config);
    return r.errors.empty() ? "(none)" : r.errors.front().to_string();
  }
  std::string dir_;
};

TEST_F(GeneratedHostileConfig, HundredMegabytesIsRefusedUnread) {
  const std::string path = dir_ + "/big.toml";
  const int fd = open(path.c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 100'000'000), 0);  // sparse: reading it would take a while
  close(fd);
  EXPECT_EQ(first_error(path), path + ": larger than 1 MiB; not a zctls config");
}

TEST_F(GeneratedHostileConfig, DirectoryFifoAndDeviceAreNotConfigs) {
  const std::string fifo = dir_ + "/fifo.toml";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);  // opened without blocking on a writer
  for (const std::string& path : {dir_, fifo, std::string("/dev/zero")})
    EXPECT_EQ(first_error(path), path + ": not a regular file");
}

TEST_F(GeneratedHostileConfig, SymlinkLoopAndMissingFileSayWhy) {
  const std::string loop = dir_ + "/loop.toml";
  ASSERT_EQ(symlink(loop.c_str(), loop.c_str()), 0);
  EXPECT_EQ(first_error(loop), loop + ": cannot open: Too many levels of symbolic links");
  EXPECT_EQ(first_error(dir_ + "/none.toml"),
            dir_ + "/none.toml: cannot open: No such file or directory");
}

TEST(ConfigTrust, RootRefusesFilesOtherUsersCanWriteOrOwn) {
  using zctls::config_trust_problem;
  // Anyone but root trusts what it can read.
  EXPECT_EQ(config_trust_problem(1000, 1000, S_IFREG | 0666, 1000), "");
  EXPECT_EQ(config_trust_problem(1000, 1000, S_IFREG | 0666, 33), "");
  // Root: owned by root, not writable by others or a non-root group.
  EXPECT_EQ(config_trust_problem(0, 0, S_IFREG | 0644, 0), "");
  EXPECT_EQ(config_trust_problem(0, 0, S_IFREG | 0664, 0), "");
  EXPECT_EQ(config_trust_problem(0, 0, S_IFREG | 0600, 0), "");
  EXPECT_EQ(config_trust_problem(0, 0, S_IFREG | 0646, 0),
            "refusing it as root: any user can write it (mode 0646); chmod o-w it");
  EXPECT_EQ(config_trust_problem(0, 33, S_IFREG | 0664, 0),
            "refusing it as root: group 33 can write it (mode 0664); chmod g-w it or chgrp root "
            "it");
  EXPECT_EQ(config_trust_problem(1000, 0, S_IFREG | 0644, 0),
            "refusing it as root: it belongs to uid 1000, not root; chown root it");
}

}  // namespace
