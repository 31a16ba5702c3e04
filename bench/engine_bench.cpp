// The shim's user-space cost per send, without the syscalls: the engine's
// before_send + after_send against a KernelPort that answers from memory.
// What a real send adds on top is the syscalls the engine asks for (counted
// by bench/run with strace) and the hook's few instructions (counted with
// callgrind by bench/run).
//
//   zctls_bench_engine [--benchmark_filter=...]   (Google Benchmark flags)
//
// The port's answers are those of the steady state on a kTLS socket: every
// file is regular and unchanged, every byte already acknowledged.
#include <benchmark/benchmark.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "engine.h"

namespace {

namespace k = zctls::kernel;

// Files are fds [kFirstFile, kFirstFile + n); sockets are fds below.
constexpr int kFirstFile = 1000;

class MemoryKernel final : public zctls::KernelPort {
 public:
  explicit MemoryKernel(int files) {
    paths_.reserve(static_cast<std::size_t>(files));
    for (int i = 0; i < files; ++i)
      paths_.push_back("/srv/www/assets/build/" + std::to_string(i) + ".js");
  }
  int stat_fd(int fd, struct stat* st) noexcept override {
    std::memset(st, 0, sizeof *st);
    st->st_mode = S_IFREG | 0644;
    st->st_dev = 2049;
    st->st_ino = static_cast<ino_t>(fd);
    st->st_size = 65536;
    st->st_nlink = 1;
    st->st_mtim.tv_sec = st->st_ctim.tv_sec = 1'700'000'000;
    return 0;
  }
  ssize_t fd_path(int fd, char* buf, std::size_t size) noexcept override {
    const std::string& p = paths_[static_cast<std::size_t>(fd - kFirstFile)];
    if (p.size() >= size) return -1;
    std::memcpy(buf, p.data(), p.size());
    return static_cast<ssize_t>(p.size());
  }
  k::TxKind query_tx(int fd, k::KeyVersion* version) noexcept override {
    if (fd < 100) return k::TxKind::not_ktls;
    if (version != nullptr) *version = k::KeyVersion::tls12;
    return k::TxKind::ktls_tx;
  }
  // Device offload: the sockets zctls works on (software ones cost a
  // counted return).
  k::TxOffload tx_offload(int) noexcept override { return k::TxOffload::device; }
  k::FlagState get_zerocopy(int) noexcept override { return {0, false}; }
  int set_zerocopy(int, bool) noexcept override { return 0; }
  std::int64_t realtime_ns() noexcept override { return 1'800'000'000'000'000'000; }
  std::int64_t monotonic_ns() noexcept override { return 5'000'000'000; }
  void peer_name(int, char* buf, std::size_t size) noexcept override {
    std::snprintf(buf, size, "?");
  }
  off_t file_position(int) noexcept override { return 0; }
  void shutdown_socket(int) noexcept override {}
  void backtrace(char* buf, std::size_t size) noexcept override { std::snprintf(buf, size, "?"); }
  bool tcp_progress(int, k::TcpProgress* out) noexcept override {
    *out = {1000, 1000};  // everything acknowledged
    return true;
  }
  k::KernelIdentity kernel_identity() noexcept override {
    k::KernelIdentity id;
    std::snprintf(id.release, sizeof id.release, "6.12.117+deb12-amd64");
    std::snprintf(id.version, sizeof id.version, "#1 SMP Debian 6.12.117-1~deb12u1");
    return id;
  }
  bool read_offset(const off_t* where, off_t* value) noexcept override {
    *value = *where;
    return true;
  }
  zctls::NameLookup other_names(int, std::string_view,
                                std::vector<std::string>*) noexcept override {
    return zctls::NameLookup::known;  // one mount of each filesystem
  }
  bool refresh_mounts(bool) noexcept override { return false; }
  void write_back(int) noexcept override {}

 private:
  std::vector<std::string> paths_;
};

const zctls::Config* bench_config() {
  static const zctls::Config* config = [] {
    auto parsed = zctls::parse_config(R"(
[[rule]]
path = "/srv/www/uploads/**"
zerocopy = false
[[rule]]
path = "/srv/www/generated/*.html"
zerocopy = false
[[rule]]
path = "/srv/www/assets/**/*.{js,css,png,woff2}"
zerocopy = true
)",
                                      "bench.toml");
    return parsed.config ? new zctls::Config(std::move(*parsed.config)) : nullptr;
  }();
  return config;
}

struct Setup {
  explicit Setup(int files) : kernel(files), engine(kernel, bench_config) {}
  MemoryKernel kernel;
  zctls::Engine engine;
};

void one_send(zctls::Engine& engine, int sock, int file, off_t* offset) {
  const zctls::SendTicket ticket = engine.before_send(sock, file, offset);
  engine.after_send(ticket, 65536, offset);
}

// A send on a plain socket: what every non-kTLS sendfile pays.
void BM_PlainSocket(benchmark::State& state) {
  Setup s(1);
  off_t offset = 0;
  for (auto _ : state) one_send(s.engine, 5, kFirstFile, &offset);
}
BENCHMARK(BM_PlainSocket);

// A zerocopy send on a kTLS socket with its decision cached.
void BM_KtlsWarm(benchmark::State& state) {
  Setup s(1);
  off_t offset = 0;
  for (auto _ : state) one_send(s.engine, 200, kFirstFile, &offset);
}
BENCHMARK(BM_KtlsWarm);

// Round-robin over N distinct files: flat while the decision cache holds
// them all.
void BM_DistinctFiles(benchmark::State& state) {
  const int files = static_cast<int>(state.range(0));
  Setup s(files);
  off_t offset = 0;
  int next = 0;
  // Warm up until a whole pass over the files misses under 0.1% (the
  // cache grows on the way), at most 64 passes.
  for (int pass = 0; pass < 64; ++pass) {
    const auto misses = s.engine.count(zctls::Counter::decision_cache_misses);
    for (int i = 0; i < files; ++i) one_send(s.engine, 200, kFirstFile + i, &offset);
    if (s.engine.count(zctls::Counter::decision_cache_misses) - misses <=
        std::uint64_t(files) / 1000)
      break;
  }
  const double warm_misses =
      static_cast<double>(s.engine.count(zctls::Counter::decision_cache_misses));
  for (auto _ : state) {
    one_send(s.engine, 200, kFirstFile + next, &offset);
    if (++next == files) next = 0;
  }
  state.counters["cache_misses_per_send"] = benchmark::Counter(
      static_cast<double>(s.engine.count(zctls::Counter::decision_cache_misses)) - warm_misses,
      benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_DistinctFiles)->RangeMultiplier(10)->Range(10, 100000);

// T threads, each sending on its own kTLS socket: no lock on the hot path,
// so the time per send should not grow with T beyond what the cores allow.
void BM_Threads(benchmark::State& state) {
  static Setup shared(64);  // one engine, as in a server process
  off_t offset = 0;
  const int sock = 200 + state.thread_index();
  const int file = kFirstFile + state.thread_index() % 64;
  for (auto _ : state) one_send(shared.engine, sock, file, &offset);
}
BENCHMARK(BM_Threads)->ThreadRange(1, 16)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
