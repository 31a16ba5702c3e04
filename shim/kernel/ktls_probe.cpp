#include "kernel/ktls_probe.h"

#include <sys/socket.h>
#include <sys/utsname.h>

#include <cerrno>

#include "kernel/loopback.h"

namespace zctls::kernel {
namespace {

KeyMaterial probe_key() {
  KeyMaterial km;
  for (unsigned i = 0; i < sizeof km.key; ++i) km.key[i] = static_cast<std::uint8_t>(i);
  return km;
}

// TLS_TX and TLS_RX of one version/cipher on a fresh pair (a key can be
// installed only once per direction and socket).
CipherSupport try_cipher(TlsVersion version, Cipher cipher) {
  CipherSupport support{version, cipher, 0, 0};
  LoopbackPair pair;
  if (pair.error() != 0) {
    support.tx_error = support.rx_error = pair.error();
    return support;
  }
  const KeyMaterial km = probe_key();
  support.tx_error = attach_tls_ulp(pair.client());
  if (support.tx_error == 0)
    support.tx_error = install_key(pair.client(), Direction::tx, version, cipher, km);
  support.rx_error = attach_tls_ulp(pair.server());
  if (support.rx_error == 0)
    support.rx_error = install_key(pair.server(), Direction::rx, version, cipher, km);
  return support;
}

// The ULP and a TLS 1.3 key on one end of `pair`: the client for TX, the
// server for RX.  Returns the first errno value, 0 when the socket is ready.
int ktls_end(const LoopbackPair& pair, Direction dir) {
  if (pair.error() != 0) return pair.error();
  const int fd = dir == Direction::tx ? pair.client() : pair.server();
  const int err = attach_tls_ulp(fd);
  return err != 0 ? err : install_key(fd, dir, TlsVersion::tls13, Cipher::aes_gcm_128, probe_key());
}

void probe_zerocopy(KtlsCapabilities& caps) {
  LoopbackPair pair;
  int err = ktls_end(pair, Direction::tx);
  bool kept = true;
  for (const bool want : {true, false}) {
    if (err == 0) err = set_tx_zerocopy(pair.client(), want);
    if (err == 0) {
      const FlagState state = get_tx_zerocopy(pair.client());
      err = state.error;
      kept = kept && state.on == want;
    }
  }
  caps.zerocopy_error = err;
  caps.zerocopy_reads_back = err == 0 && kept;
}

void probe_rx_no_pad(KtlsCapabilities& caps) {
  LoopbackPair pair;
  int err = ktls_end(pair, Direction::rx);
  if (err == 0) {
    const unsigned int one = 1;
    if (setsockopt(pair.server(), kSolTls, kTlsRxExpectNoPad, &one, sizeof one) != 0) err = errno;
  }
  caps.rx_no_pad_error = err;
}

}  // namespace

bool KtlsCapabilities::ktls_usable() const noexcept {
  if (socket_error != 0 || ulp_error != 0) return false;
  for (const CipherSupport& c : ciphers)
    if (c.tx_error == 0) return true;
  return false;
}

bool KtlsCapabilities::zerocopy_usable() const noexcept {
  return ktls_usable() && zerocopy_error == 0 && zerocopy_reads_back;
}

KtlsCapabilities probe_ktls() {
  KtlsCapabilities caps;
  utsname uts{};
  if (uname(&uts) == 0) caps.kernel_release = uts.release;
  caps.unaligned_bug = unaligned_zerocopy_bug(read_kernel_identity());

  LoopbackPair pair;
  caps.socket_error = pair.error();
  if (caps.socket_error != 0) return caps;
  caps.ulp_error = attach_tls_ulp(pair.client());
  if (caps.ulp_error != 0) return caps;

  for (const TlsVersion v : kAllVersions)
    for (const Cipher c : kAllCiphers) caps.ciphers.push_back(try_cipher(v, c));
  probe_zerocopy(caps);
  probe_rx_no_pad(caps);
  return caps;
}

}  // namespace zctls::kernel
