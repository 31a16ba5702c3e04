#!/usr/bin/python3
"""The demo's second half, run where kTLS is (natively or in the bench
guest): Debian's nginx with kTLS under zctls, started as the shipped
systemd drop-in starts it, with the shipped static-site zctls.toml.

It downloads a handful of files and reports, per file, the rule that
matched (`zctls explain`), whether the kernel had zerocopy on for its
sendfile calls (seen by strace, not by the shim's word), the bytes and
their sha256, and the integrity checks.  Then it rewrites a big file in
place while nginx is sending it, shows the event the shim logged into
nginx's error.log, and what the quarantine policy did next.
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
         "assets/video.mp4": 24 * MiB, "uploads/photo.jpg": 1_200_000,
         "generated/feed.xml": 70_000, "index.html": 1_200}
SHOWN = ["index.html", "assets/app.3f9c1e.js", "assets/logo.8d1a2b.png", "uploads/photo.jpg",
         "generated/feed.xml", "assets/video.mp4"]


class Demo(NginxE2E):
    def __init__(self):
        super().__init__()
        self.c.quiet = True

    def make_files(self):
        sl.ServerE2E.make_files(self, FILES)

    def explain(self, rel):
        out = subprocess.run([sl.zctls_cli(), "explain", "--config", self.config,
                              os.path.join(self.www, rel)], stdout=subprocess.PIPE,
                             text=True).stdout
        m = re.search(r": (zerocopy|copy) by (rule \d+) \(.*?, path \"(.*?)\"\)", out)
        if m:
            return "%s (%s)" % (m.group(2), m.group(3).replace(self.www + "/", ""))
        return "default (no rule)" if "by default" in out else out.strip()

    def downloads(self):
        print("\n== nginx (kTLS, sendfile on) under zctls: %d downloads on one keep-alive "
              "connection ==" % len(SHOWN))
        print("  (No NIC here offloads TLS, so this kTLS is software, where the flag has no "
              "effect and zctls,\n  by default ([kernel] offload = \"auto\"), leaves every "
              "send alone.  This demo runs it with\n  offload = \"assume\": every kTLS socket "
              "treated as offloaded, so its decisions show.)")
        before = self.stats_totals()
        self.server.reset_trace()
        f = sl.fetch(self.port, SHOWN)
        time.sleep(0.5)
        trace = self.server.trace()
        after = self.stats_totals()
        print("  %-24s %-24s %-9s %10s  %s" % ("FILE", "RULE", "ZEROCOPY", "BYTES", "SHA256"))
        for r in f.results:
            path = os.path.join(self.www, r["path"])
            flags = {s.flag for s in trace.sends if s.path == path}
            calls = len([s for s in trace.sends if s.path == path])
            zc = {frozenset([1]): "on", frozenset([0]): "off"}.get(frozenset(flags), "mixed")
            same = "identical" if r["sha256"] == self.digests[r["path"]] else "DIFFERENT"
            print("  %-24s %-24s %-9s %10d  %s (%d sendfile call%s)"
                  % (r["path"], self.explain(r["path"]), zc, r["size"], same, calls,
                     "" if calls == 1 else "s"))
        checks = after["zerocopy_sends"] - before["zerocopy_sends"]
        events = after["integrity_events"] - before["integrity_events"]
        print("  integrity: %d zerocopy sendfile calls, each with the file's inode, size, "
              "mtime and ctime checked before and after: %d change%s"
              % (checks, events, "" if events == 1 else "s"))

    def rewrite_during_send(self):
        rel = "assets/video.mp4"
        path = os.path.join(self.www, rel)
        print("\n== %s is rewritten in place while nginx sends it ==" % rel)
        before = self.stats_totals()
        log_start = os.path.getsize(self.error_log)
        # A client that reads the first MiB, then stops reading: nginx's
        # zerocopy sends pile up in the socket's queue, unacknowledged.
        # While they wait, one in-place write of 4 KiB near the end of the
        # file, as an editor or `cp` over a live file would do; then the
        # client reads on.
        def write_in_place():
            with open(path, "r+b") as f:
                f.seek(20 * MiB)
                f.write(os.urandom(4096))

        got = sl.paused_download(self.port, rel, MiB, write_in_place)
        after = self.stats_totals()
        with open(self.error_log, errors="replace") as f:
            f.seek(log_start)
            events = [l.split("zctls", 1)[1] for l in f if "integrity:" in l]
        print("  the client paused after 1 MiB; one 4 KiB write at offset 20 MiB; the shim "
              "logged (nginx error.log):")
        for line in events[:2]:
            print("    zctls" + line.rstrip())
        if len(events) > 2:
            print("    ... (%d more)" % (len(events) - 2))
        copies = {k: after["copy_" + k] - before["copy_" + k] for k in ("quarantine", "settle")}
        print("  counted: %d integrity event(s); the rest of that response went by copy "
              "(%d sendfile calls: %d quarantine, %d settle)"
              % (after["integrity_events"] - before["integrity_events"], sum(copies.values()),
                 copies["quarantine"], copies["settle"]))
        now = sl.sha256_of_file(path)
        print("  the client got %d bytes, %s the file as it is now; the connection stayed up."
              % (got[0], "identical to" if got[1] == now else "different from"))
        print("  (What zctls guards against happens only on a TLS-offload NIC: a zerocopy record "
              "retransmitted\n  after such a write is re-read from the changed page cache, fails "
              "authentication, and the\n  client drops the connection.)")

        # The policy: the inode stays on copy for [integrity] quarantine.
        self.server.reset_trace()
        f = sl.fetch(self.port, [rel])
        time.sleep(0.5)
        trace = self.server.trace()
        flags = sorted({s.flag for s in trace.sends})
        same = sl.sha256_of_file(path) == f.results[0]["sha256"]
        print("  downloaded again: kernel zerocopy flag %s during its %d sendfile calls "
              "(quarantine: 60 s), bytes %s"
              % ("off" if flags == [0] else flags, len(trace.sends),
                 "identical to the file" if same else "DIFFERENT"))

    def run(self):
        try:
            self.make_files()
            self.write_configs()
            self.start()
            self.downloads()
            self.rewrite_during_send()
        finally:
            self.stop()
            self.cleanup([self.error_log])
        if self.c.failed:
            print("demo: setup checks failed: " + "; ".join(self.c.failed))
            return 1
        return 0


if __name__ == "__main__":
    sl.main_guard(lambda: Demo().run())
