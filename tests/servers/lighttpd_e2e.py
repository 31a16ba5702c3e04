#!/usr/bin/python3
"""Debian's lighttpd (mod_openssl with kTLS) under zctls on a kTLS kernel.

lighttpd turns kTLS on through its OpenSSL configuration command
(ssl.openssl.ssl-conf-cmd "Options" => "+KTLS"; from 1.4.7x also by
itself where the kernel has the tls ULP) and then sends the rest of a file
body with SSL_sendfile, which is sendfile(2) on the kTLS socket, after the
response headers and the body's first chunk went out through SSL_write
(src/mod_openssl.c, mod_openssl_write_cq_sendfile): small files never reach
sendfile.  It runs as Debian's package runs it (started as root, drops to
www-data), in one process, under `zctls run` with the rules of
examples/zctls-static-site.toml.

lighttpd >= 1.4.70 built with OpenSSL >= 3.2 sets
SSL_OP_ENABLE_KTLS_TX_ZEROCOPY_SENDFILE unconditionally (NEWS 1.4.70): so
Debian 13's 1.4.79 turns TLS_TX_ZEROCOPY_RO on for every kTLS connection
and the app_flag modes decide (govern, the default: the rules; respect:
every file zerocopy), while Debian 12's 1.4.69 (OpenSSL 3.0) leaves the flag
to zctls.  1.4.77 made TLSv1.3 the default minimum; the config below
allows TLSv1.2 so that both versions are tested.

As in nginx_e2e.py, the flag of every sendfile(2) comes from strace of the
server, bytes from curl, and zctls stats must agree with strace.  --device
runs lighttpd on the emulated TLS-offload NIC (tests/offload-nic): the flag
and the NIC's page-cache witness per rule, TLS 1.3, and where lighttpd sets
the flag itself, a copy-rule file changed in flight under both app_flag
modes.  Environment: ZCTLS_BUILD_DIR.
"""

import os
import shutil
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serverlib as sl  # noqa: E402

MiB = 1 << 20
FILES = {"assets/size-4097.bin": 4097, "assets/size-1048576.bin": MiB,
         "assets/size-4194307.bin": 4 * MiB + 3, "uploads/size-4097.bin": 4097,
         "uploads/size-2097153.bin": 2 * MiB + 1, "index.html": 1200}
# One keep-alive connection per TLS version: zerocopy and copy files in turn.
ORDER = ["assets/size-1048576.bin", "uploads/size-4097.bin", "assets/size-4194307.bin",
         "index.html", "assets/size-4097.bin", "uploads/size-2097153.bin"]


class LighttpdE2E(sl.ServerE2E):
    def __init__(self):
        super().__init__("lighttpd-e2e")

    def start(self):
        cert, key = sl.make_certificate(self.work)
        self.error_log = os.path.join(self.work, "error.log")
        # lighttpd opens its error log after dropping to www-data.
        open(self.error_log, "w").close()
        shutil.chown(self.error_log, "www-data", "www-data")
        conf = os.path.join(self.work, "lighttpd.conf")
        with open(conf, "w") as f:
            f.write('server.modules = ("mod_openssl")\n'
                    'server.document-root = "%s"\n'
                    'server.bind = "%s"\n'
                    'server.port = %d\n'
                    'server.errorlog = "%s"\n'
                    'server.pid-file = "%s"\n'
                    'server.username = "www-data"\n'
                    'server.groupname = "www-data"\n'
                    'server.max-keep-alive-requests = 1000\n'
                    'mimetype.assign = ("" => "application/octet-stream")\n'
                    'ssl.engine = "enable"\n'
                    'ssl.pemfile = "%s"\n'
                    'ssl.privkey = "%s"\n'
                    'ssl.openssl.ssl-conf-cmd = ("Options" => "+KTLS",'
                    ' "MinProtocol" => "TLSv1.2")\n'
                    % (self.www, sl.SERVER_HOST, self.port, self.error_log,
                       os.path.join(self.work, "lighttpd.pid"), cert, key))
        r = subprocess.run(["lighttpd", "-tt", "-f", conf], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        self.c.equal(r.returncode, 0, "lighttpd -tt accepts the config")
        if r.returncode != 0:
            print(r.stdout)
        text, version = sl.program_version(["lighttpd", "-v"], "lighttpd")
        print(text.splitlines()[0] if text else "lighttpd -v printed nothing")
        self.c.check(version, "lighttpd -v names its version", text)
        self.app_sets_flag = bool(version) and version >= (1, 4, 70) \
            and sl.OPENSSL_HAS_ZEROCOPY_OPTION
        print("lighttpd sets TLS_TX_ZEROCOPY_RO itself: %s (%s)"
              % ("yes" if self.app_sets_flag else "no", ssl.OPENSSL_VERSION))
        self.server = sl.StraceServer(self.work, "lighttpd", ["lighttpd", "-D", "-f", conf],
                                      config=self.config)
        if not sl.wait_for_port(self.port):
            with open(os.path.join(self.work, "lighttpd.out"), errors="replace") as out, \
                    open(self.error_log, errors="replace") as log:
                raise sl.Failure("lighttpd did not start: " + out.read()[-1000:] +
                                 log.read()[-1000:])
        self.wait_settled()

    def versions(self, mode=None):
        """Both TLS versions, one keep-alive connection each; `mode` is the
        app_flag in force where lighttpd sets the flag itself."""
        for version, opts in (("1.2", ["--tls-max", "1.2"]), ("1.3", ["--tlsv1.3"])):
            label = "lighttpd TLS " + version + (", app_flag = " + mode if mode else "")
            trace, f = self.phase(label, lambda: sl.fetch(self.port, ORDER, extra=opts))
            self.check_fetch(f, label)
            self.c.equal(f.cipher[0] if f.cipher else None, "TLSv" + version, label + ": negotiated")
            self.c.equal(len(set(f.ports)), 1, label + ": one keep-alive connection")
            port = f.ports[0]
            sends = trace.for_port(port)
            for rel in ORDER:
                path = os.path.join(self.www, rel)
                mine = [s for s in sends if s.path == path]
                sent = sum(max(s.result, 0) for s in mine)
                first = min((s.offset for s in mine), default=None)
                if os.path.getsize(path) > MiB // 2:
                    # Measured: the first sendfile starts at byte 261910.
                    self.c.check(sent > 0 and first, label + ": %s went by sendfile on the "
                                 "kTLS socket after a first chunk by SSL_write" % rel,
                                 "sent %d from offset %s" % (sent, first))
                else:
                    self.c.equal(sent, 0, label + ": %s (small) went by SSL_write only" % rel)
            sets = trace.flag_sets.get(port, [])
            if mode == "respect":
                self.c.check(sends and all(s.flag == 1 for s in sends),
                             label + ": every file went zerocopy, as lighttpd set it (strace)",
                             "%s" % sends[:4])
                self.c.equal(sets, [1], label + ": lighttpd set the flag, zctls nothing (strace)")
            else:
                self.check_flags(trace, label, {port}, app_sets=self.app_sets_flag)
                if mode == "govern":
                    self.c.check(sets[:1] == [1] and 0 in sets, label + ": lighttpd set the "
                                 "flag, zctls turned it off for the copy-rule files (strace)",
                                 "sets %s" % sets)

    def no_unexpected_logs(self):
        """zctls said nothing but the one expected warning."""
        with open(os.path.join(self.work, "lighttpd.out"), errors="replace") as f:
            lines = [l for l in f if l.startswith("zctls[") and "KTLSTxZerocopySendfile" not in l
                     and (": warn: " in l or ": error: " in l)]
        self.c.equal(lines, [], "no other zctls warnings or errors")

    def app_flag_modes(self):
        """The default (govern) first, then app_flag = "respect" after a
        reload.  zctls says once per process that the application sets the
        flag: a notice under govern, below the shipped config's level, so
        nothing is logged (ShimE2E checks the warning under respect)."""
        log = os.path.join(self.work, "lighttpd.out")
        self.versions("govern")
        with open(log, errors="replace") as f:
            said = [l for l in f if "KTLSTxZerocopySendfile" in l]
        self.c.equal(said, [], "under govern (the default) no warning: the rules apply")
        loads = self.stats_totals()["config_loads"]
        self.write_zctls_config(top='app_flag = "respect"\n')
        # The running process reloads it at a send, once the file has been
        # quiet for a second: send until it has.
        deadline = time.time() + 60
        while self.stats_totals()["config_loads"] == loads and time.time() < deadline:
            sl.fetch(self.port, ["assets/size-1048576.bin"])
            time.sleep(0.5)
        self.c.check(self.stats_totals()["config_loads"] > loads,
                     "lighttpd's process reloaded the config with app_flag = respect")
        self.versions("respect")

    # --- on the emulated offload NIC (--device) ---------------------------------

    def device(self):
        """TLS 1.2 over the offload NIC, default keys: the flag by the rules
        (strace; lighttpd's own 1 first where it sets it) and the NIC's
        page-cache witness per rule.  TLS 1.3: software, zctls sets
        nothing (lighttpd's own flag stays, and does nothing there)."""
        for name, files, zerocopy in (("assets", ["assets/size-1048576.bin"], True),
                                      ("uploads", ["uploads/size-2097153.bin"], False)):
            _, share = self.fetch_on_nic("offload NIC, TLS 1.2, " + name, files, zerocopy,
                                         app_sets=self.app_sets_flag)
            print("   page-cache share of the NIC's payload: %.1f %% (%s; lighttpd's first chunk "
                  "goes by SSL_write, a copy)" % (100.0 * share, name))
        label = "offload NIC, TLS 1.3"
        files = ["assets/size-1048576.bin", "uploads/size-2097153.bin"]
        trace, f = self.phase(label, lambda: sl.fetch(self.port, files, extra=["--tlsv1.3"]),
                              software=True)
        self.check_fetch(f, label)
        sets = trace.flag_sets.get(f.ports[0], [])
        # (OpenSSL 3.5 sets lighttpd's 1 more than once over TLS 1.3.)
        self.c.check(set(sets) <= ({1} if self.app_sets_flag else set()),
                     label + ": software kTLS, zctls set nothing (strace)", "sets %s" % sets)

    def device_hazard(self):
        """A copy-rule file rewritten while a frame of its sendfile part
        (lighttpd sends from byte 261910 on) awaits retransmission on the
        NIC, with lighttpd's own flag on: intact under app_flag = "govern"
        (the default), the client's TLS fails under "respect"."""
        rel = "uploads/size-2097153.bin"
        for mode in ("govern", "respect"):
            loads = self.stats_totals()["config_loads"]
            self.write_zctls_config(top='app_flag = "%s"\n' % mode)
            deadline = time.time() + 60
            while self.stats_totals()["config_loads"] == loads and time.time() < deadline:
                sl.fetch(self.port, ["assets/size-1048576.bin"], extra=["--tls-max", "1.2"])
                time.sleep(0.5)
            label = "offload NIC, lighttpd's flag, app_flag = %s, %s changed in flight" % (mode, rel)
            self.server.reset_trace()
            f = self.hazard(rel, 600000, (512 << 10, MiB), extra=["--tls-max", "1.2"])
            intact = f.returncode == 0 and f.results[0]["sha256"] == self.digests[rel]
            sets = self.server.trace().flag_sets.get(f.ports[0], [])
            if mode == "govern":
                self.c.check(intact and sets[:2] == [1, 0], label + ": zctls turned lighttpd's "
                             "flag off; the body arrived intact",
                             "curl %d, %r, sets %s" % (f.returncode, f.results[0], sets))
            else:
                self.c.check(not intact and sets == [1], label + ": the flag stayed lighttpd's "
                             "and the client's TLS failed",
                             "curl %d, %r, sets %s" % (f.returncode, f.results[0], sets))
                print("   curl: exit %d, %d bytes" % (f.returncode, f.results[0]["size"]))
        self.write_zctls_config()

    def run(self):
        if sl.ON_NIC:
            steps = [self.device] + ([self.device_hazard] if self.app_sets_flag_expected() else [])
        else:
            # After start(): whether lighttpd sets the flag itself is known then.
            steps = [lambda: self.app_flag_modes() if self.app_sets_flag else self.versions(),
                     self.no_unexpected_logs]
        return self.run_server(FILES, steps, [os.path.join(self.work, "error.log"),
                                              os.path.join(self.work, "lighttpd.out")])

    @staticmethod
    def app_sets_flag_expected():
        _, version = sl.program_version(["lighttpd", "-v"], "lighttpd")
        return bool(version) and version >= (1, 4, 70) and sl.OPENSSL_HAS_ZEROCOPY_OPTION


def main():
    args = sys.argv[1:]
    if args == ["--device"]:
        # On the emulated offload NIC (tests/offload-nic): its phases only.
        sl.use_offload_nic()
    elif args:
        raise sl.Failure("usage: lighttpd_e2e.py [--device]")
    return LighttpdE2E().run()


if __name__ == "__main__":
    sl.main_guard(main)
