// Shared by the shim's end-to-end tests: a temp tree with a file the rules
// name (static/a.bin) and one they do not (private/b.bin), and a runner that
// starts zctls_test_sender under strace, with or without libzctls.so.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#ifndef ZCTLS_SHIM_PATH
#error "ZCTLS_SHIM_PATH must name libzctls.so"
#endif
#ifndef ZCTLS_SENDER_PATH
#error "ZCTLS_SENDER_PATH must name zctls_test_sender"
#endif

namespace zctls_e2e {

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

inline void spit(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

struct Outcome {
  int status = -1;
  std::string out, err, strace;
  // setsockopt(fd, SOL_TLS, TLS_TX_ZEROCOPY_RO, [v]) values, in order.  The
  // result is not matched: with threads strace splits a call into
  // "<unfinished ...>" and "resumed" lines (the flag read-backs check it).
  std::vector<int> flag_sets() const {
    std::vector<int> values;
    static const std::regex re(
        R"(setsockopt\(\d+, SOL_TLS, (?:TLS_TX_ZEROCOPY_RO|0x3 /\* TLS_\?\?\? \*/), \[(\d+)\], 4)");
    for (const auto& line : lines_of(strace)) {
      std::smatch m;
      if (std::regex_search(line, m, re)) values.push_back(std::stoi(m[1]));
    }
    return values;
  }
};

inline const std::string kNoSettle = "[integrity]\nsettle = 0\n";

class ShimE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    // The bench's kTLS is software (no NIC offloads TLS), where zctls under
    // the default [kernel] offload = "auto" does nothing per send: every
    // program these tests start treats kTLS sockets as offloaded unless a
    // test says otherwise (OffloadE2E).
    ASSERT_EQ(setenv("ZCTLS_OFFLOAD", "assume", 1), 0);
    char tmpl[] = "/tmp/zctls-e2e-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(mkdir((dir_ + "/static").c_str(), 0755), 0);
    ASSERT_EQ(mkdir((dir_ + "/private").c_str(), 0755), 0);
    // Several records each, sizes not multiples of a record or a page.
    std::string a(300000, '\0'), b(100001, '\0');
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<char>(i * 31 + 7);
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<char>(i * 17 + 3);
    spit(static_file(), a);
    spit(private_file(), b);
    // settle = 0: these files were written a moment ago, and the settle
    // window (tested on its own) would send them all by copy.
    spit(config(), "[[rule]]\npath = \"" + dir_ + "/static/**\"\nzerocopy = true\n" + kNoSettle);
  }
  void TearDown() override {
    const std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }

  std::string static_file() const { return dir_ + "/static/a.bin"; }
  std::string private_file() const { return dir_ + "/private/b.bin"; }
  std::string config() const { return dir_ + "/zctls.toml"; }

  // Runs the sender under strace, with the shim preloaded when `env` says
  // so (env is a list of VAR=value words for env(1)).
  // traced = false: no strace (the program's own getsockopt of the flag
  // is the witness), for tests that run it many times.
  Outcome run(const std::string& env, const std::string& args, bool preload = true,
              const std::string& program = ZCTLS_SENDER_PATH, bool traced = true) {
    Outcome r;
    const std::string out = dir_ + "/out", err = dir_ + "/err", trace = dir_ + "/strace";
    const std::string tracer =
        traced ? "strace -f -qq -o " + trace + " -e trace=setsockopt,getsockopt,write,close "
               : std::string();
    if (!traced) std::remove(trace.c_str());
    const std::string cmd = prefix_ + tracer + "env " +
                            (preload ? "LD_PRELOAD=" ZCTLS_SHIM_PATH " " : "") + env + " " +
                            program + " " + args + " > " + out + " 2> " + err;
    const int rc = std::system(cmd.c_str());
    r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    r.strace = slurp(trace);
    return r;
  }

  // The sender sending `files` in `mode` (one kTLS connection), under
  // strace: calls per syscall name, of every syscall the shim makes on a
  // send (and the socket and ethtool calls of learning a mode), not
  // counting the once-a-second look at the config file for a reload: that
  // one depends on the clock, not on the sends.  (The receiver's reads are
  // left out: how many there are depends on timing.)
  std::map<std::string, int> syscall_counts(const std::string& env, const std::string& files,
                                            bool preload, const std::string& mode = "raw") {
    const std::string trace = dir_ + "/counted";
    const std::string cmd =
        prefix_ + "strace -f -qq -o " + trace +
        " -e trace=fstat,newfstatat,statx,setsockopt,getsockopt,ioctl,lseek,readlink,"
        "process_vm_readv,sync_file_range,getsockname,getpeername,socket,sendto,sendmsg env " +
        (preload ? "LD_PRELOAD=" ZCTLS_SHIM_PATH " " : "") + env + " " + ZCTLS_SENDER_PATH + " " +
        mode + " " + files + " > /dev/null 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::map<std::string, int> calls;
    for (const std::string& line : lines_of(slurp(trace))) {
      if (line.find("resumed>") != std::string::npos || line.find(config()) != std::string::npos)
        continue;
      const std::size_t paren = line.find('(');
      if (paren == std::string::npos) continue;
      const std::size_t start = line.rfind(' ', paren);
      ++calls[line.substr(start == std::string::npos ? 0 : start + 1, paren - start - 1)];
    }
    return calls;
  }
  // What (many - few) sends cost with the shim beyond what they cost
  // without it, per syscall name (every name either run made).
  static std::map<std::string, int> extra_calls(const std::map<std::string, int>& base_few,
                                                const std::map<std::string, int>& base_many,
                                                const std::map<std::string, int>& shim_few,
                                                const std::map<std::string, int>& shim_many) {
    std::map<std::string, int> extra;
    const auto at = [](const std::map<std::string, int>& m, const std::string& name) {
      const auto it = m.find(name);
      return it == m.end() ? 0 : it->second;
    };
    for (const auto* m : {&base_few, &base_many, &shim_few, &shim_many})
      for (const auto& [name, n] : *m)
        extra[name] = (at(shim_many, name) - at(shim_few, name)) -
                      (at(base_many, name) - at(base_few, name));
    return extra;
  }
  static std::string times(int n, const std::string& file) {
    std::string out;
    for (int i = 0; i < n; ++i) out += file + " ";
    return out;
  }

  std::string dir_;
  // A command the programs run under (DeviceE2E: the offload NIC's server
  // namespace).
  std::string prefix_;
};

// How many times `needle` occurs in `text`.
inline int count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
    ++n;
  return n;
}

}  // namespace zctls_e2e
