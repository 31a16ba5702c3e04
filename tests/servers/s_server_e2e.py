#!/usr/bin/python3
"""`openssl s_server -WWW -sendfile` under zctls on a kTLS kernel.

s_server turns kTLS on only through its OpenSSL config: it runs with
OPENSSL_CONF=examples/openssl-ktls.cnf (Options = KTLS) and serves the tree
from its working directory with SSL_sendfile, one file per connection.
The rules are examples/zctls-static-site.toml's.  As in nginx_e2e.py, the
flag of every sendfile(2) comes from strace of the server, bytes from curl,
and zctls stats must agree with strace.  --device runs it on the emulated
TLS-offload NIC (tests/offload-nic) under the default keys.  Environment:
ZCTLS_BUILD_DIR.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serverlib as sl  # noqa: E402

MiB = 1 << 20
FILES = {"assets/size-4097.bin": 4097, "assets/size-2097153.bin": 2 * MiB + 1,
         "assets/size-4194307.bin": 4 * MiB + 3, "uploads/size-4097.bin": 4097,
         "uploads/size-2097153.bin": 2 * MiB + 1, "index.html": 1200}


class SServerE2E(sl.ServerE2E):
    def __init__(self):
        super().__init__("s_server-e2e")

    def start(self):
        cert, key = sl.make_certificate(self.work)
        env = dict(os.environ, OPENSSL_CONF=os.path.join(sl.SOURCE_DIR, "examples",
                                                          "openssl-ktls.cnf"))
        self.server = sl.StraceServer(
            self.work, "s_server",
            ["openssl", "s_server", "-WWW", "-sendfile", "-accept",
             "%s:%d" % (sl.SERVER_HOST, self.port),
             "-cert", cert, "-key", key, "-quiet"],
            config=self.config, env=env, cwd=self.www)
        if not sl.wait_for_port(self.port):
            raise sl.Failure("s_server did not start")
        self.wait_settled()

    def versions(self):
        for version, opts in (("1.2", ["--tls-max", "1.2"]), ("1.3", ["--tlsv1.3"])):
            def body():
                # s_server -WWW answers one request per connection.
                return [sl.fetch(self.port, [path], extra=opts) for path in self.fetched()]

            label = "s_server TLS " + version + (" on the offload NIC" if sl.ON_NIC else "")
            # On the offload NIC TLS 1.3 is software kTLS: zctls sets nothing.
            software = sl.ON_NIC and version == "1.3"
            trace, fetches = self.phase(label, body, software=software)
            bad = self.failed_fetches(fetches)
            self.c.check(not bad, label + ": every body byte-identical",
                         "%s" % [fetches[i].results for i in bad])
            self.c.check(all(f.cipher and f.cipher[0] == "TLSv" + version for f in fetches),
                         label + ": negotiated", "%s" % [f.cipher for f in fetches])
            if software:
                self.c.equal(trace.flag_sets, {}, label + ": software kTLS, no flag set (strace)")
            else:
                self.check_flags(trace, label)
            for f in fetches:
                path = os.path.join(self.www, f.results[0]["path"])
                sent = sum(max(s.result, 0) for s in trace.for_port(f.ports[0]) if s.path == path)
                self.c.equal(sent, os.path.getsize(path),
                             label + ": %s went by sendfile on its kTLS socket" % f.results[0]["path"])
            if not software:
                assets = sum(1 for p in self.fetched() if p.startswith("assets/"))
                self.c.equal(sorted(v for values in trace.flag_sets.values() for v in values),
                             [1] * assets, label + ": the flag was set once per assets/ "
                             "connection, never for the others (fresh sockets start off)")

    @staticmethod
    def fetched():
        """One connection per file (s_server -WWW answers one request per
        connection); on the offload NIC one file of each kind."""
        if sl.ON_NIC:
            return ["assets/size-2097153.bin", "uploads/size-2097153.bin"]
        return sorted(FILES)

    def run(self):
        return self.run_server(FILES, [self.versions], [os.path.join(self.work, "s_server.out")])


def main():
    args = sys.argv[1:]
    if args == ["--device"]:
        # On the emulated offload NIC (tests/offload-nic).
        sl.use_offload_nic()
    elif args:
        raise sl.Failure("usage: s_server_e2e.py [--device]")
    return SServerE2E().run()


if __name__ == "__main__":
    sl.main_guard(main)
