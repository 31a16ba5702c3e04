#!/usr/bin/python3
"""The demo's second half, run in the bench guest on the emulated
TLS-offload NIC (tests/offload-nic; scripts/demo brings it up), in Debian
13's userland: nginx 1.26 with OpenSSL 3.5, whose KTLSTxZerocopySendfile
option turns zerocopy on for every kTLS connection.

1. Without zctls: a file changed while the NIC holds a frame of its
   response for retransmission reaches the client as a failed TLS record.
2. Under zctls, started as the shipped systemd drop-in starts it, with the
   shipped static-site zctls.toml and the default keys (offload = "auto",
   app_flag = "govern"): per file, the rule, the kernel's flag (strace, not
   the shim's word), where the NIC read the bytes (its own counters), the
   bytes; TLS 1.3; the same change on a copy-rule file (intact) and on a
   file the rules call static (the failure reaches the client; zctls
   reports it and quarantines the file).
3. zctls stats.
"""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests", "servers"))
import serverlib as sl  # noqa: E402
from nginx_e2e import NginxE2E  # noqa: E402

MiB = 1 << 20
FILES = {"assets/app.3f9c1e.js": 310_000, "assets/logo.8d1a2b.png": 48_213,
         "assets/video.mp4": 4 * MiB, "uploads/photo.jpg": 1_200_000,
         "generated/feed.xml": 70_000, "index.html": 1_200}
SHOWN = ["index.html", "assets/app.3f9c1e.js", "assets/logo.8d1a2b.png", "uploads/photo.jpg",
         "generated/feed.xml", "assets/video.mp4"]
TLS12 = ["--tls-max", "1.2"]
# A frame from stream byte 64 KiB on carries file bytes below 256 KiB
# (serverlib.hazard).
HAZARD = (64 << 10, (0, 256 << 10))


class Demo(NginxE2E):
    def __init__(self):
        super().__init__()
        self.c.quiet = True

    def make_files(self):
        sl.ServerE2E.make_files(self, FILES)

    def write_configs(self):
        super().write_configs()
        # The admin has turned OpenSSL's own zerocopy on: the setting zctls
        # makes safe.
        with open(self.site) as f:
            site = f.read()
        with open(self.site, "w") as f:
            f.write(site.replace("ssl_conf_command Options KTLS;",
                                 "ssl_conf_command Options KTLS,KTLSTxZerocopySendfile;"))

    def explain(self, rel):
        out = subprocess.run([sl.zctls_cli(), "explain", "--config", self.config,
                              os.path.join(self.www, rel)], stdout=subprocess.PIPE,
                             text=True).stdout
        m = re.search(r": (zerocopy|copy) by (rule \d+) \(.*?, path \"(.*?)\"\)", out)
        if m:
            return "%s (%s)" % (m.group(2), m.group(3).replace(self.www + "/", ""))
        return "default (no rule)" if "by default" in out else out.strip()

    def outcome(self, rel, f):
        r = f.results[0]
        if f.returncode == 0 and r["sha256"] == self.digests[rel]:
            return "intact: %d bytes, identical" % r["size"]
        return "%s (%d of %d bytes)" % (f.error or "curl exit %d" % f.returncode, r["size"],
                                        os.path.getsize(os.path.join(self.www, rel)))

    def without_zctls(self):
        print("\n== 1. nginx with OpenSSL's KTLSTxZerocopySendfile, WITHOUT zctls ==")
        nginx = ["nginx", "-p", self.work + "/", "-c", self.nginx_conf, "-e", self.error_log]
        self.server = sl.StraceServer(self.work, "nginx-alone", nginx, shim=False)
        if not sl.wait_for_port(self.port):
            raise sl.Failure("nginx did not start")
        self.wait_settled()
        rel = "uploads/photo.jpg"
        f = self.hazard(rel, *HAZARD, extra=TLS12)
        print("  %s (an upload: a file that changes) rewritten in place while the NIC holds a"
              "\n  frame of its response for retransmission; what curl got:\n    %s"
              % (rel, self.outcome(rel, f)))
        self.stop()

    def downloads(self):
        print("\n== 2. the same nginx under zctls: the shipped drop-in and static-site rules, "
              "default keys ==")
        print("  (offload = \"auto\": zctls learns that these TLS 1.2 sockets leave by a NIC "
              "with TLS TX offload;\n   app_flag = \"govern\": the rules decide OpenSSL's flag "
              "too)")
        self.server.reset_trace()
        # One download at a time, so that the NIC's own counters say where
        # each file's payload came from.
        rows = []
        for rel in SHOWN:
            before = sl.nic_counters()
            f = sl.fetch(self.port, [rel], extra=TLS12)
            after = sl.nic_counters()
            pages = after["tx_tls_pagecache_bytes"] - before["tx_tls_pagecache_bytes"]
            total = pages + after["tx_tls_private_bytes"] - before["tx_tls_private_bytes"]
            rows.append((f.results[0], pages, total))
        time.sleep(0.5)
        trace = self.server.trace()
        print("  %-24s %-24s %-9s %-18s %9s  %s" % ("FILE", "RULE", "ZEROCOPY", "NIC READ",
                                                     "BYTES", "SHA256"))
        for r, pages, total in rows:
            path = os.path.join(self.www, r["path"])
            flags = {s.flag for s in trace.sends if s.path == path}
            zc = {frozenset([1]): "on", frozenset([0]): "off"}.get(frozenset(flags),
                                                                    "none" if not flags else "mixed")
            same = "identical" if r["sha256"] == self.digests[r["path"]] else "DIFFERENT"
            read = "pages %.0f %%" % (100.0 * pages / total) if pages else "copies"
            print("  %-24s %-24s %-9s %-18s %9d  %s" % (
                r["path"], self.explain(r["path"]), zc, read, r["size"], same))
        print("  ZEROCOPY: the kernel's flag at each sendfile (strace of nginx).  NIC READ: the "
              "NIC's own count\n  of the payload it sent from page-cache pages (record headers "
              "and tags are always copies).")
        self.server.reset_trace()
        f = sl.fetch(self.port, ["assets/app.3f9c1e.js"], extra=["--tlsv1.3"])
        time.sleep(0.5)
        sets = self.server.trace().flag_sets.get(f.ports[0], [])
        print("  the same asset over TLS 1.3: %s; the flag as OpenSSL set it %s, zctls set "
              "nothing: device offload\n  takes TLS 1.2 keys only, so this is software kTLS, "
              "where the flag does nothing" % (self.outcome("assets/app.3f9c1e.js", f), sets))

    def in_flight(self):
        rel = "uploads/photo.jpg"
        f = self.hazard(rel, *HAZARD, extra=TLS12)
        print("\n  %s rewritten in flight again: %s\n    (a copy rule: zctls turned the flag "
              "off, the retransmission carries the bytes sent)" % (rel, self.outcome(rel, f)))
        rel = "assets/video.mp4"
        log_start = os.path.getsize(self.error_log)
        f = self.hazard(rel, *HAZARD, extra=TLS12)
        time.sleep(1)
        with open(self.error_log, errors="replace") as log:
            log.seek(log_start)
            events = [l.split("zctls", 1)[1].rstrip() for l in log if "warn: integrity:" in l]
        print("  %s (the rules call it static) rewritten in flight: %s" % (rel, self.outcome(rel, f)))
        if events:
            print("    zctls cannot take back bytes in flight; it logged (nginx error.log):")
            for line in events[:1]:
                print("    zctls" + line)
        else:
            # A race: nginx looks at the socket again when the stalled bytes
            # are acknowledged, the client resets it when it reads the
            # broken record.  If the reset comes first, nginx closes the
            # file, then the socket, without another send.
            print("    zctls logged nothing this time: the client reset the connection before "
                  "nginx sent on it\n    again, and nginx closed the file first; zctls drops a "
                  "send's record with its file's\n    close (ARCHITECTURE.md, \"Not caught\")")
        # Past the settle window (the file got its bytes back as the
        # hazard ended): what decides now is the quarantine, or nothing.
        time.sleep(2.5)
        self.server.reset_trace()
        before = self.stats_totals()
        f = sl.fetch(self.port, [rel], extra=TLS12)
        time.sleep(0.5)
        flags = sorted({s.flag for s in self.server.trace().sends})
        after = self.stats_totals()
        why = ("quarantined: copy for 60 s"
               if after["copy_quarantine"] > before["copy_quarantine"] else
               "zerocopy again" if flags == [1] else "by copy")
        print("    downloaded again: flag %s (%s), %s"
              % ({(0,): "off", (1,): "on"}.get(tuple(flags), flags), why,
                 "identical" if f.results[0]["sha256"] == sl.sha256_of_file(
                     os.path.join(self.www, rel)) else "DIFFERENT"))

    def report(self):
        print("\n== 3. zctls stats ==")
        out = subprocess.run([sl.zctls_cli(), "stats", "--dir", self.stats],
                             stdout=subprocess.PIPE, text=True).stdout
        print("".join("  " + l + "\n" for l in out.split("\n\n")[0].splitlines()))

    def run(self):
        sl.use_offload_nic()
        try:
            self.make_files()
            self.write_configs()
            print("== the device: zctls probe in the server's namespace ==")
            probe = subprocess.run(sl.SERVER_NETNS + [sl.zctls_cli(), "probe"],
                                   stdout=subprocess.PIPE, text=True).stdout
            print("".join(l + "\n" for l in probe.splitlines()
                          if re.match(r"^(zerocopy|  kernel |  TLS offload|  NIC TLS|  TLS 1.3)", l)),
                  end="")
            self.without_zctls()
            self.start()
            self.downloads()
            self.in_flight()
            self.report()
        finally:
            self.stop()
            self.cleanup([self.error_log])
        if self.c.failed:
            print("demo: setup checks failed: " + "; ".join(self.c.failed))
            return 1
        return 0


if __name__ == "__main__":
    sl.main_guard(lambda: Demo().run())
