// The shim's log: rate limit, and never writing into an fd that is not a
// log (issue 18: a daemon's kTLS socket on fd 2 got zctls's messages).
#include "log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>
#include <string>

namespace {

std::string drain(int fd) {
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;)
    text.append(buf, static_cast<std::size_t>(n));
  return text;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void next_second() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  const long start = now.tv_sec;
  do {
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  } while (now.tv_sec == start);
}

// Puts `fd` on the log's fd 2 for the test's lifetime, at info level.
class StderrIs {
 public:
  explicit StderrIs(int fd) : saved_(dup(2)), level_(zctls::log_level()) {
    dup2(fd, 2);
    zctls::log_to_stderr();
    zctls::set_log_level(zctls::LogLevel::info);
  }
  ~StderrIs() {
    dup2(saved_, 2);
    close(saved_);
    zctls::set_log_level(level_);
  }

 private:
  int saved_;
  zctls::LogLevel level_;
};

TEST(Log, BurstThenSuppressedCount) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  {
    const StderrIs redirect(p[1]);
    next_second();  // a whole budget
    for (int i = 0; i < zctls::kLogBurst + 10; ++i) zctls::log(zctls::LogLevel::info, "line %d", i);
    next_second();  // one more line carries the count of those dropped
    zctls::log(zctls::LogLevel::info, "after");
  }
  close(p[1]);
  const std::string text = drain(p[0]);
  close(p[0]);
  int lines = 0;
  for (char c : text) lines += c == '\n';
  EXPECT_EQ(lines, zctls::kLogBurst + 1) << text;
  EXPECT_NE(text.find("after (10 earlier messages suppressed)"), std::string::npos) << text;
  EXPECT_EQ(text.find("line 20"), std::string::npos);
}

TEST(Log, ARegularFileOrAPipeOnStderrIsALog) {
  char path[] = "/tmp/zctls-log-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  {
    const StderrIs redirect(fd);
    next_second();
    zctls::log(zctls::LogLevel::warn, "to the file %d", 1);
  }
  close(fd);
  const std::string text = slurp(path);
  unlink(path);
  EXPECT_NE(text.find("zctls["), std::string::npos) << text;
  EXPECT_NE(text.find("warn: to the file 1\n"), std::string::npos) << text;
}

// A TCP (here: any non-journal) socket on fd 2 is a peer, not a log: not
// one byte of a message reaches it.
TEST(Log, ASocketOnStderrGetsNothing) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  {
    const StderrIs redirect(sv[0]);
    next_second();
    zctls::log(zctls::LogLevel::error, "cannot open %s", "/etc/zctls.toml");
    zctls::log(zctls::LogLevel::warn, "integrity: a change");
  }
  close(sv[0]);
  EXPECT_EQ(drain(sv[1]), "");
  close(sv[1]);
}

// ...unless it is the journal's stream socket (systemd's JOURNAL_STREAM).
TEST(Log, TheJournalsSocketOnStderrIsALog) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  struct stat st {};
  ASSERT_EQ(fstat(sv[0], &st), 0);
  const std::string stream =
      std::to_string(st.st_dev) + ":" + std::to_string(static_cast<unsigned long long>(st.st_ino));
  zctls::capture_log_environment(stream.c_str());
  {
    const StderrIs redirect(sv[0]);
    next_second();
    zctls::log(zctls::LogLevel::warn, "to the journal");
  }
  zctls::capture_log_environment(nullptr);
  close(sv[0]);
  EXPECT_NE(drain(sv[1]).find("warn: to the journal\n"), std::string::npos);
  close(sv[1]);
}

// file:PATH is opened for each line: no fd is kept for the application to
// close and reuse, and a rotated file (renamed away) is followed.
TEST(Log, FileTargetFollowsRotationAndKeepsNoFd) {
  char dir[] = "/tmp/zctls-logdir-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  static const std::string path = std::string(dir) + "/zctls.log";  // outlives the target
  const zctls::LogLevel level = zctls::log_level();
  zctls::set_log_level(zctls::LogLevel::info);
  zctls::log_to_file(path.c_str());
  next_second();
  const int probe = dup(0);  // the lowest free number before logging
  close(probe);
  zctls::log(zctls::LogLevel::info, "first");
  const int after = dup(0);  // the same number: the log kept no fd
  close(after);
  EXPECT_EQ(after, probe);
  ASSERT_EQ(rename(path.c_str(), (path + ".1").c_str()), 0);
  zctls::log(zctls::LogLevel::info, "second");
  zctls::log_to_stderr();
  zctls::set_log_level(level);
  EXPECT_NE(slurp(path + ".1").find("info: first\n"), std::string::npos);
  EXPECT_NE(slurp(path).find("info: second\n"), std::string::npos);
  EXPECT_EQ(slurp(path).find("first"), std::string::npos);
  std::remove((path + ".1").c_str());
  std::remove(path.c_str());
  rmdir(dir);
}

}  // namespace
