// zctls_test_hazard: the failure zctls guards against, made on purpose over
// the emulated offload NIC.  A kTLS application of its own (it knows
// nothing about zctls; the tests run it with and without libzctls.so), run
// in the NIC's server namespace (tests/offload-nic/nic srv), TLS 1.2 so
// that its socket gets device offload:
//
//   zctls_test_hazard FILE [NEXT]
//
//  1. one connection over the NIC, keys installed by the program itself
//     (ZCTLS_TEST_APP_FLAG=1: it also sets TLS_TX_ZEROCOPY_RO, as OpenSSL's
//     KTLSTxZerocopySendfile does);
//  2. the NIC loses the 3rd frame from now on and holds its
//     retransmissions; FILE goes out whole by sendfile (the send queue has
//     room for it) and the program waits for the loss;
//  3. FILE is rewritten in place: every byte, the same size;
//  4. NEXT, if given, is sent on the same connection (FILE's fd still
//     open, as nginx's open_file_cache keeps it): zctls's next look at the
//     socket;
//  5. the NIC releases the frame: its retransmission is made from what
//     the pages hold now; the peer reads to the end;
//  6. a second connection sends FILE again (a quarantine shows there).
//
// Prints "FILE flag=N" after each send (a raw getsockopt), "NEXT rc=..
// errno=..", then what the peer saw: "peer: received R of E, end=..." and
// "peer: bytes ok" (FILE as it was, then NEXT) or "peer: BYTES DIFFER".
// Exit status 0 when every step ran, whatever the peer saw: the tests
// judge that.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include "kernel_test_support.h"
#include "ktls_app.h"
#include "offload_nic.h"

using namespace zctls_ktls_app;

namespace {

bool send_whole(int sock, int fd, std::size_t size) {
  off_t off = 0;
  while (static_cast<std::size_t>(off) < size)
    if (sendfile(sock, fd, &off, size - static_cast<std::size_t>(off)) <= 0) return false;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);  // as servers do: an aborted connection is EPIPE
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: %s FILE [NEXT]\n", argv[0]);
    return 2;
  }
  setenv("ZCTLS_TEST_NIC", "1", 1);
  setenv("ZCTLS_TEST_TLS", "1.2", 1);
  const std::string path = argv[1], next = argc == 3 ? argv[2] : "";
  const std::string original = slurp(path), following = next.empty() ? "" : slurp(next);
  const int file = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (file < 0 || original.empty()) return 1;
  const long long lost = zctls_nic::counter("tx_tls_loss_dropped");
  const long long held = zctls_nic::counter("tx_tls_loss_held");
  if (lost < 0) {
    say("no emulated offload NIC here (run in its server namespace)");
    return 1;
  }
  {
    const TestPair pair;
    if (!make_ktls(pair)) return 1;
    const int room = 8 << 20;
    setsockopt(pair.client(), SOL_SOCKET, SO_SNDBUF, &room, sizeof room);
    zctls_kernel_test::Reader peer(pair.server(), original.size() + following.size());
    if (!zctls_nic::set_loss(3)) {
      say(std::string("the loss control: ") + strerror(errno));
      return 1;
    }
    const bool sent = send_whole(pair.client(), file, original.size());
    say(base(path) + " flag=" + std::to_string(raw_flag(pair.client())) + (sent ? "" : " FAILED"));
    for (int i = 0; i < 1000 && zctls_nic::counter("tx_tls_loss_dropped") == lost; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (zctls_nic::counter("tx_tls_loss_dropped") == lost) {
      say("no frame was lost");
      zctls_nic::set_loss(0);
      return 1;
    }
    std::string changed = original;
    for (char& c : changed) c = static_cast<char>(~c);
    if (pwrite(file, changed.data(), changed.size(), 0) != static_cast<ssize_t>(changed.size()))
      return 1;
    if (!next.empty()) {
      const int fd = open(next.c_str(), O_RDONLY | O_CLOEXEC);
      off_t off = 0;
      const ssize_t rc = sendfile(pair.client(), fd, &off, following.size());
      const int err = errno;
      say(base(next) + " rc=" + std::to_string(rc) + " errno=" + (rc < 0 ? strerrorname_np(err) : "-") +
          " flag=" + std::to_string(raw_flag(pair.client())));
      close(fd);
    }
    // TCP has retransmitted the lost frame (held) before the release.
    for (int i = 0; i < 500 && zctls_nic::counter("tx_tls_loss_held") == held; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    zctls_nic::set_loss(0);
    const std::vector<unsigned char>& got = peer.finish();
    const std::string bytes(got.begin(), got.end());
    const std::string end = got.size() == original.size() + following.size() ? "complete"
                            : peer.error() != 0 ? strerrorname_np(peer.error())
                                                : "EOF";
    say("peer: received " + std::to_string(got.size()) + " of " +
        std::to_string(original.size() + following.size()) + ", end=" + end);
    say(bytes == original + following ? "peer: bytes ok" : "peer: BYTES DIFFER");
  }
  // A second connection, FILE as it is now.
  const std::string now = slurp(path);
  const TestPair again;
  if (!make_ktls(again)) return 1;
  Receiver receiver(again.server(), now);
  const bool resent = send_whole(again.client(), file, now.size());
  say("again flag=" + std::to_string(raw_flag(again.client())) + (resent ? "" : " FAILED"));
  say(receiver.compare() ? "again: bytes ok" : "again: BYTES DIFFER");
  close(file);
  return 0;
}
