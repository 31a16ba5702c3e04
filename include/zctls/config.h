// The zctls configuration: which files may go zerocopy, and how the shim
// logs.  Parsed from TOML (zctls.toml.example documents every key) and from
// environment variables; pure code, no I/O except reading the file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "zctls/glob.h"

namespace zctls {

// notice: something an operator should know that needs no action now (a
// file under a zerocopy rule changed between two sends, no bytes at risk).
enum class LogLevel { error = 0, warn = 1, notice = 2, info = 3, debug = 4 };
std::optional<LogLevel> parse_log_level(std::string_view text) noexcept;
std::string_view to_string(LogLevel level) noexcept;

// Where the shim's messages go ([log] target).
struct LogTargetConfig {
  enum class Kind { stderr_stream, syslog, file } kind = Kind::stderr_stream;
  std::string path;  // for file
};

struct Rule {
  Glob glob;
  bool zerocopy = false;
  std::string origin;  // "file:line:col" or "ZCTLS_RULES #n": for explain/logs
};

// What to do when a file changes under a zerocopy send ([integrity]).
enum class OnChange { log, quarantine, abort };
std::string_view to_string(OnChange action) noexcept;

// Whether to work around known kernel bugs ([integrity] kernel_quirks):
// automatic = when the running kernel is known or suspected to have them
// (kernel_quirks.h), on = always (a vendor kernel known to be affected),
// off = never (a vendor kernel known to carry the fixes).
enum class KernelQuirks { automatic, on, off };
std::string_view to_string(KernelQuirks mode) noexcept;

// Files with more than one name in their filesystem (hard links,
// st_nlink > 1) ([integrity] hard_links).  zctls sees only the name the
// server opened, not the others, which may be under a copy rule: copy =
// send them by copy; by_path = the opened name's rule decides (each send
// then resolves its path again: no per-inode cache for them).
enum class HardLinks { copy, by_path };
std::string_view to_string(HardLinks mode) noexcept;

// Sockets whose TLS_TX_ZEROCOPY_RO the application sets itself (OpenSSL
// >= 3.2's KTLSTxZerocopySendfile option sets it to 1 on every connection
// at TX key install: ssl/record/methods/ktls_meth.c).  respect = leave the
// flag as the application set it; its zerocopy sends are counted as
// zerocopy and get the integrity checks.  govern = the rules decide the
// flag before each send on those sockets too.
enum class AppFlag { respect, govern };
std::string_view to_string(AppFlag mode) noexcept;
std::optional<AppFlag> parse_app_flag(std::string_view text) noexcept;

// Which kTLS TX sockets get zctls's work ([kernel] offload).  The kernel
// reads TLS_TX_ZEROCOPY_RO only on the device-offload path
// (net/tls/tls_device.c); a software kTLS socket (tls_sw.c) encrypts into
// its own buffers, so its flag has no effect and a file changing under a
// send cannot break a record.  automatic = learn each socket's TX mode
// when it is first seen (no netdev with tls-hw-tx-offload means software;
// else the kernel's TLS_INFO_TXCONF for that socket) and leave software
// ones alone: no syscall per send; assume = treat every kTLS TX socket as
// offloaded (tests and benchmarks on software kTLS, unusual hosts).
enum class Offload { automatic, assume };
std::string_view to_string(Offload mode) noexcept;
std::optional<Offload> parse_offload(std::string_view text) noexcept;

struct KernelConfig {
  Offload offload = Offload::automatic;
};

struct IntegrityConfig {
  // A file changed less than this long ago is sent by copy (it may still be
  // being written).
  std::int64_t settle_ns = 2'000'000'000;
  OnChange on_change = OnChange::quarantine;
  // How long a quarantined inode must stay unchanged to be eligible again.
  std::int64_t quarantine_ns = 60'000'000'000;
  KernelQuirks kernel_quirks = KernelQuirks::automatic;
  HardLinks hard_links = HardLinks::copy;
  // Write a file's dirty pages back (sync_file_range) before each zerocopy
  // send of it.  A store through a shared mapping into a page that is
  // already dirty moves no timestamp; into a clean page it faults, and the
  // filesystem moves mtime (page_mkwrite: ext4, xfs, btrfs; not tmpfs).
  // Clean pages make such stores visible to the checks around the send, for
  // one more syscall per zerocopy send (and a disk write when there was a
  // dirty page: a file being written, which is what it is there to catch).
  bool writeback = false;
};

// Counters shared with `zctls stats` and node_exporter ([stats]).
struct StatsConfig {
  std::string dir = "/dev/shm";  // per-process counter files; "" = keep them private
  // Accepted and ignored (with a notice, and a `zctls check` warning): the
  // library wrote the node_exporter textfile from its send path in 0.1;
  // `zctls stats --textfile DIR` from a timer does it now.  (Its
  // textfile_interval is checked and ignored too.)
  std::string textfile_dir;
};

// The outcome of the rules for one path.
struct Decision {
  // Not rules: what the engine found about the file itself.
  static constexpr int kDefault = -1;    // no rule matched
  static constexpr int kUnlinked = -2;   // no name left (a rename deploy's old inode)
  static constexpr int kHardLinks = -3;  // other names zctls cannot know
  // No name could be read (readlink failed), or the names under other
  // mounts could not be listed (statx, mountinfo, memory): copy.
  static constexpr int kNamesUnknown = -4;

  bool zerocopy = false;
  int rule = kDefault;  // index into Config::rules, or one of the above
};

struct Config {
  std::vector<Rule> rules;             // first match wins
  bool default_zerocopy = false;       // files no rule matches
  AppFlag app_flag = AppFlag::govern;  // top-level app_flag, or ZCTLS_APP_FLAG
  LogLevel log_level = LogLevel::notice;
  LogTargetConfig log_target;
  IntegrityConfig integrity;
  StatsConfig stats;
  KernelConfig kernel;
  std::string source;  // where it came from, for messages

  Decision decide(std::string_view path) const noexcept;
};

// A config error, positioned for the operator: "file:line:col: message".
struct ConfigError {
  std::string source;
  int line = 0;  // 0 when the error has no position (unreadable file)
  int column = 0;
  std::string message;
  // The file could not be opened for want of fds or memory (EMFILE,
  // ENFILE, ENOMEM): reading it again later may work.
  bool transient = false;
  std::string to_string() const;
};

struct ConfigResult {
  std::optional<Config> config;  // empty on error
  std::vector<ConfigError> errors;
};

// Parses TOML text; `source` names it in messages and rule origins.
ConfigResult parse_config(std::string_view toml_text, std::string_view source);

// Reads and parses a file.  A missing file is reported as such (the caller
// decides whether that is an error).  A root process refuses a file that
// config_trust_problem() finds fault with.
ConfigResult load_config_file(const std::string& path);

// Why a process with effective uid `euid` must not trust a config file
// with this owner and mode, or "" if it may.  Only root is picky: a file
// that another user can write, or that another user owns, would let that
// user decide how root's server sends files (and where it logs).  Group
// write is allowed for group root only.
std::string config_trust_problem(unsigned owner_uid, unsigned group_gid, unsigned mode,
                                 unsigned euid);

// ZCTLS_RULES: rules without a file, tried before the file's rules.
//   ZCTLS_RULES='+/srv/static/**;-**/*.tmp;default=-'
// Items are separated by ';'.  "+GLOB" = zerocopy, "-GLOB" = copy,
// "default=+" / "default=-" sets the default.  Applies them to `config`.
bool apply_rules_env(std::string_view text, Config& config, std::vector<ConfigError>& errors);

}  // namespace zctls
