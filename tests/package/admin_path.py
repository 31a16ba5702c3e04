#!/usr/bin/python3
"""The admin's path, run inside a booted Debian system (tests/package/admin-path
boots it: systemd is PID 1, the kTLS guest's kernel).

    admin_path.py DEB

Every step is what README's "Installing the Debian package" and "zctls with
nginx in production" tell an admin to do, with Debian's own units and
packages: apt installs the .deb and nginx, the example site and config go in
place, the drop-in starts nginx under zctls, the shipped textfile timer
feeds Debian's prometheus-node-exporter, Debian's prometheus scrapes it.
Witnesses are not zctls's own: strace attached to the workers for the
flag, sha256 for the bytes, systemctl and journalctl for the service,
node_exporter's /metrics and Prometheus's query API for the counters.
The bench's kTLS is software, so the config says offload = "assume" (on a
host without an offload NIC zctls would, rightly, do nothing to watch).
Exit 0 only if every check held.
"""

import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "servers"))
import serverlib as sl  # noqa: E402

EXAMPLES = "/usr/share/doc/zctls/examples"
LIBRARY = "/usr/lib/x86_64-linux-gnu/zctls/libzctls.so"
ENGINE = "/usr/lib/x86_64-linux-gnu/zctls/libzctls-engine.so.1"
WWW = "/var/www/site"
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
DASHBOARD = os.path.join(EXAMPLES, "grafana", "zctls.json")
MiB = 1 << 20
ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LANG="C.UTF-8")


def sh(*cmd, timeout=600):
    """Runs cmd; returns (exit status, stdout + stderr)."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env=ENV, timeout=timeout)
    return p.returncode, p.stdout


def step(title):
    print("-- " + title, flush=True)


class AdminPath:
    def __init__(self, deb):
        self.deb = deb
        self.c = sl.Checks()
        self.files = {}    # relative path -> sha256
        self.events = 0    # integrity events the test made

    # --- helpers ---------------------------------------------------------

    def must(self, ok, what, detail=""):
        if not self.c.check(ok, what, detail):
            raise sl.Failure(what)

    def ran(self, what, *cmd, timeout=600):
        rc, out = sh(*cmd, timeout=timeout)
        self.must(rc == 0, what, "exit %d: %s" % (rc, out[-2000:]))
        return out

    def nginx_pids(self):
        master = int(sh("systemctl", "show", "-P", "MainPID", "nginx")[1].strip() or 0)
        rc, out = sh("pgrep", "-P", str(master))
        return master, [int(p) for p in out.split()] if rc == 0 else []

    def zctls_totals(self):
        rc, out = sh("zctls", "stats", "--json")
        try:
            return json.loads(out).get("totals", {}) if rc == 0 else {}
        except ValueError:
            return {}

    def maps_library(self, pid, library=LIBRARY):
        try:
            with open("/proc/%d/maps" % pid) as f:
                return any(line.rstrip().endswith(library) for line in f)
        except OSError:
            return False

    def restart_nginx(self):
        self.ran("systemctl daemon-reload", "systemctl", "daemon-reload")
        return sh("systemctl", "restart", "nginx", timeout=180)[0]

    def journal(self, since, *args):
        return sh("journalctl", "--no-pager", "--since", since, *args)[1]

    def prom_query(self, expr):
        """The API's reply; a refused query (HTTP 400: a bad expression)
        is returned as its error reply, not raised."""
        url = "http://127.0.0.1:9090/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            try:
                return json.load(e)
            except ValueError:
                return {"status": "error", "error": "HTTP %d" % e.code}

    def prom_value(self, expr):
        """The sum of an instant query's samples, or None if it has none."""
        try:
            reply = self.prom_query(expr)
        except OSError:
            return None
        result = reply.get("data", {}).get("result", [])
        if reply.get("status") != "success" or not result:
            return None
        return sum(float(s["value"][1]) for s in result)

    def wait_for(self, what, probe, timeout):
        start = time.time()
        while time.time() < start + timeout:
            value = probe()
            if value:
                self.c.check(True, "%s (after %.0f s)" % (what, time.time() - start))
                return value
            time.sleep(1)
        self.must(False, what, "not within %d s" % timeout)

    # --- the path --------------------------------------------------------

    def install(self):
        step("apt install the package and nginx (Debian's, from the root's apt cache)")
        self.ran("apt-get install ./zctls_*.deb", "apt-get", "install", "-y", self.deb)
        self.ran("apt-get install nginx", "apt-get", "install", "-y", "--no-install-recommends",
                 "nginx")
        self.must(sh("systemctl", "is-active", "nginx")[1].strip() == "active",
                  "Debian's nginx unit is active after apt install")
        self.package_files = [p for p in self.ran("dpkg -L zctls", "dpkg", "-L", "zctls").split()
                              if os.path.isfile(p)]

        step("the example kTLS site from %s" % EXAMPLES)
        self.ran("certificate", "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=example.org",
                 "-keyout", "/etc/ssl/private/example.org.key",
                 "-out", "/etc/ssl/certs/example.org.pem")
        shutil.copy(os.path.join(EXAMPLES, "nginx", "zctls-site.conf"),
                    "/etc/nginx/sites-available/zctls-site.conf")
        os.symlink("/etc/nginx/sites-available/zctls-site.conf",
                   "/etc/nginx/sites-enabled/zctls-site.conf")
        self.files = sl.make_tree(WWW, {
            "assets/app.js": MiB + 3, "assets/big-1.bin": 16 * MiB + 3,
            "assets/big-2.bin": 16 * MiB + 5, "uploads/report.pdf": 2 * MiB + 1,
        })
        self.ran("systemctl reload nginx", "systemctl", "reload", "nginx")
        rc, probe = sh("zctls", "probe")
        print(probe.splitlines()[0] if probe else "")
        self.must(rc == 0, "zctls probe: this kernel can do it (exit 0)", probe[-1000:])

        step("edit /etc/zctls.toml from the static-site example, zctls check")
        with open(os.path.join(EXAMPLES, "zctls-static-site.toml")) as f:
            self.config = f.read()
        # The bench's kTLS is software: make zctls do what an offload NIC
        # would have it do, so that there is a flag to watch.
        self.config += '\n[kernel]\noffload = "assume"\n'
        self.write_config(self.config)
        self.ran("zctls check /etc/zctls.toml", "zctls", "check", "/etc/zctls.toml")

    def write_config(self, text):
        with open("/etc/zctls.toml.new", "w") as f:
            f.write(text)
        os.chmod("/etc/zctls.toml.new", 0o644)
        os.replace("/etc/zctls.toml.new", "/etc/zctls.toml")

    def drop_in(self):
        step("the drop-in, daemon-reload, restart nginx")
        os.makedirs("/etc/systemd/system/nginx.service.d", exist_ok=True)
        shutil.copy(os.path.join(EXAMPLES, "systemd", "zctls.conf"),
                    "/etc/systemd/system/nginx.service.d/zctls.conf")
        self.must(self.restart_nginx() == 0, "systemctl restart nginx")
        self.must(sh("systemctl", "is-active", "nginx")[1].strip() == "active",
                  "systemctl: nginx is active")
        master, workers = self.nginx_pids()
        self.must(bool(workers), "nginx has workers", "master %d" % master)
        self.c.check(all(self.maps_library(p) for p in [master] + workers),
                     "master and workers map %s" % LIBRARY, "pids %s" % workers)

    def downloads(self):
        step("downloads over TLS, the flag per file seen by strace on the workers")
        _, workers = self.nginx_pids()
        prefix = "/tmp/admin-path.strace"
        trace = subprocess.Popen(
            ["strace", "-ff", "-yy", "-qq", "-s", "0", "-o", prefix, "-e",
             "trace=setsockopt,sendfile,sendfile64", "-e", "signal=none"]
            + [a for p in workers for a in ("-p", str(p))])
        # Attached once every worker has a tracer.
        self.wait_for("strace attached to the workers", lambda: all(
            "TracerPid:\t0" not in open("/proc/%d/status" % p).read() for p in workers), 30)
        paths = ["assets/app.js", "uploads/report.pdf", "assets/app.js"]
        got = sl.fetch(443, paths)
        trace.send_signal(signal.SIGINT)
        trace.wait(timeout=60)
        for r in got.results:
            self.c.check(r["status"] == 200 and r["sha256"] == self.files[r["path"]],
                         "%s byte-identical" % r["path"], "%s" % r)
        sends = sl.Trace(prefix).for_port(got.ports[0])
        flags = {}
        for s in sends:
            flags.setdefault(os.path.relpath(s.path, WWW), set()).add(s.flag)
        self.c.equal(flags, {"assets/app.js": {1}, "uploads/report.pdf": {0}},
                     "strace: the flag on for assets/ (zerocopy rule), off for uploads/")

        step("zctls status, zctls stats and zctls explain, as the README's Verify says")
        rc, out = sh("zctls", "status", "--json")
        try:
            status = json.loads(out)
        except ValueError:
            status = {}
        ours = {p["pid"] for p in status.get("zctls_processes", [])}
        served = {s.tid for s in sends}  # nginx's workers are single-threaded: tid = pid
        self.c.check(rc == 0 and served and served <= ours,
                     "zctls status lists the worker that served the downloads",
                     "served by %s, status lists %s" % (sorted(served), sorted(ours)))
        # The hooks load the engine at a process's first kTLS TX socket: the
        # worker that served TLS maps it, the master (no TLS) does not.
        master, _ = self.nginx_pids()
        self.c.check(all(self.maps_library(p, ENGINE) for p in served)
                     and not self.maps_library(master, ENGINE),
                     "the engine is mapped by the worker that served kTLS, not by the master",
                     "served by %s, master %d" % (sorted(served), master))
        stats = self.zctls_totals()
        self.c.check(stats.get("zerocopy_sends", 0) >= 1 and stats.get("copy_rule_off", 0) >= 1,
                     "zctls stats: zerocopy sends and rule_off copies", "%s" % stats)
        for rel, want in (("assets/app.js", "zerocopy"), ("uploads/report.pdf", "copy")):
            out = sh("zctls", "explain", os.path.join(WWW, rel))[1]
            self.c.check(want in out, "zctls explain %s says %s" % (rel, want), out[-300:])

    def broken_config(self):
        step("a config with an error fails the restart, with zctls check's message in the journal")
        since = time.strftime("%Y-%m-%d %H:%M:%S")
        self.write_config(self.config + "\n[[rule]]\npath = \"/var/www/site/[x\"\nzerocopy = true\n")
        rc = self.restart_nginx()
        self.c.check(rc != 0, "systemctl restart nginx fails")
        log = self.journal(since, "-u", "nginx")
        self.c.check(re.search(r"/etc/zctls\.toml:\d+:\d+", log) is not None,
                     "journalctl -u nginx has zctls check's file:line:col", log[-1500:])
        self.write_config(self.config)
        self.must(self.restart_nginx() == 0, "fixed: systemctl restart nginx starts it again")

    def integrity_event(self, rel):
        """An in-place write while a zerocopy response waits in a stalled
        socket: one integrity event."""
        path = os.path.join(WWW, rel)

        def write():
            with open(path, "r+b") as f:
                f.seek(12 * MiB)
                f.write(b"\1" * 4096)

        got = sl.paused_download(443, rel, MiB, write)
        self.events += 1
        self.c.equal(got[0], os.path.getsize(path), "%s: the stalled client got every byte" % rel)
        return path

    def integrity(self):
        step("integrity events: nginx's error.log (log target stderr), the journal (syslog)")
        error_log = "/var/log/nginx/error.log"
        start = os.path.getsize(error_log)
        path = self.integrity_event("assets/big-1.bin")
        time.sleep(1)
        with open(error_log, errors="replace") as f:
            f.seek(start)
            lines = [l for l in f if "integrity: " + path + " changed" in l]
        self.c.check(len(lines) == 1, "the event is in nginx's error.log", "%s" % lines)

        self.write_config(self.config.replace('level = "warn"', 'level = "warn"\ntarget = "syslog"'))
        # Workers re-read an edited config at their next send, at most
        # every two seconds: which worker the next connection meets is not
        # ours to choose, so reload nginx (new workers load the new config
        # at their first send) and wait until the old workers are gone.
        _, old = self.nginx_pids()
        self.ran("systemctl reload nginx", "systemctl", "reload", "nginx")
        self.wait_for("the workers from before the reload have exited",
                      lambda: not any(os.path.exists("/proc/%d" % p) for p in old), 60)
        since = time.strftime("%Y-%m-%d %H:%M:%S")
        path = self.integrity_event("assets/big-2.bin")
        time.sleep(2)
        entries = [json.loads(l) for l in
                   self.journal(since, "-u", "nginx", "-p", "warning", "-o", "json").splitlines()
                   if l.startswith("{")]
        ours = [e for e in entries if "integrity: " + path + " changed" in str(e.get("MESSAGE"))]
        self.c.check(len(ours) == 1, "journalctl -u nginx -p warning finds the event",
                     "%d entries" % len(entries))
        if ours:
            e = ours[0]
            self.c.equal((e.get("_SYSTEMD_UNIT"), e.get("SYSLOG_IDENTIFIER"), e.get("PRIORITY")),
                         ("nginx.service", "nginx", "4"),
                         "journal fields: the unit, nginx as identifier, priority warning")
        self.write_config(self.config)

    def textfile_timer(self):
        step("the shipped textfile timer feeds node_exporter, Prometheus scrapes it")
        self.ran("systemctl enable --now zctls-textfile.timer",
                 "systemctl", "enable", "--now", "zctls-textfile.timer")
        self.wait_for("node_exporter serves zctls_* metrics", lambda: "zctls_sends_total" in
                      self.metrics(), 60)
        self.wait_for("Prometheus has scraped zctls_sends_total",
                      lambda: self.prom_value("zctls_sends_total") is not None, 120)

    def metrics(self):
        try:
            with urllib.request.urlopen("http://127.0.0.1:9100/metrics", timeout=30) as r:
                return r.read().decode()
        except OSError:
            return ""

    def prometheus(self):
        step("PromQL over Prometheus's HTTP API returns what the downloads made")
        # The timer writes every 15 s and Prometheus scrapes every 15 s:
        # wait until the last download's event has gone all the way.
        self.wait_for("Prometheus has every integrity event the test made", lambda:
                      self.prom_value("sum(zctls_integrity_events_total)") == self.events, 120)
        rate = self.prom_value("sum(rate(zctls_zerocopy_bytes_total[1m]))")
        self.c.check(rate is not None and rate > 0, "rate(zctls_zerocopy_bytes_total[1m]) > 0",
                     "%s" % rate)
        # Exactly what zctls's counter files hold (no traffic since), and at
        # least what the test sent zerocopy: app.js twice, and each big
        # file's first MiB before the write.
        totals = self.zctls_totals()
        zc = self.prom_value("sum(zctls_zerocopy_bytes_total)")
        self.c.check(zc is not None and zc == totals.get("zerocopy_bytes") and
                     zc >= 2 * (MiB + 3) + 2 * MiB,
                     "Prometheus's zerocopy bytes are zctls stats's, and at least what was sent "
                     "zerocopy", "Prometheus %s, zctls stats %s" % (zc, totals.get("zerocopy_bytes")))
        in_flight = self.prom_value("sum(zctls_integrity_events_in_flight_total)")
        self.c.equal(in_flight, float(self.events), "both events were caught in flight")

    def dashboard(self):
        step("every query of the Grafana dashboard evaluates and returns series")
        # The installed copy (dh_compress may have gzipped it).
        opener = (open, DASHBOARD) if os.path.exists(DASHBOARD) else (gzip.open, DASHBOARD + ".gz")
        with opener[0](opener[1], "rt") as f:
            board = json.load(f)
        exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
        self.must(len(exprs) >= 4, "the dashboard has its panels' queries", "%d" % len(exprs))
        # The host variable's query (label_values(zctls_sends_total,
        # instance)) as PromQL: it must offer this host.
        hosts = self.prom_query("count by (instance) (zctls_sends_total)")["data"]["result"]
        self.c.check(len(hosts) == 1, "the dashboard's host variable finds this host", "%s" % hosts)
        for expr in exprs:
            # Grafana's own variables, as Grafana would fill them in
            # (all hosts selected).
            concrete = (expr.replace("$__rate_interval", "1m").replace("$__range", "5m")
                        .replace("$instance", ".*"))
            # A rate needs two scrapes of a series: the workers nginx
            # started at the last restart may have had only one so far.
            deadline = time.time() + 60
            while True:
                reply = self.prom_query(concrete)
                if reply.get("status") != "success" or reply["data"]["result"]:
                    break
                if time.time() > deadline:
                    break
                time.sleep(2)
            self.c.check(reply.get("status") == "success" and reply["data"]["result"],
                         "dashboard query returns series: " + expr, "%s" % reply)

    def upgrade(self):
        step("the package again over itself (an upgrade's maintainer scripts): the timer runs on")
        self.ran("apt-get install --reinstall ./zctls_*.deb", "apt-get", "install", "--reinstall",
                 "-y", self.deb)
        self.c.equal(sh("systemctl", "is-active", "zctls-textfile.timer")[1].strip(), "active",
                     "zctls-textfile.timer still active")

    def remove(self):
        step("remove the drop-in, remove and purge the package: nginx clean, nothing left, "
             "metrics gone")
        os.remove("/etc/systemd/system/nginx.service.d/zctls.conf")
        self.must(self.restart_nginx() == 0, "nginx restarts without the drop-in")
        master, workers = self.nginx_pids()
        self.c.check(workers and not any(self.maps_library(p) for p in [master] + workers),
                     "no nginx process maps the library")
        self.ran("apt-get remove zctls", "apt-get", "remove", "-y", "zctls")
        self.c.equal(sh("systemctl", "is-active", "zctls-textfile.timer")[1].strip() == "active",
                     False, "apt remove stopped the timer")
        self.c.equal(os.path.exists(os.path.join(TEXTFILE_DIR, "zctls.prom")), False,
                     "apt remove took zctls.prom from the textfile directory")
        self.c.check(os.path.exists("/etc/zctls.toml"), "apt remove keeps /etc/zctls.toml")
        self.ran("apt-get purge zctls", "apt-get", "purge", "-y", "zctls")
        left = [p for p in self.package_files + ["/etc/zctls.toml"] if os.path.exists(p)]
        self.c.equal(left, [], "no file of the package is left")
        self.c.check(not os.path.lexists(
            "/etc/systemd/system/timers.target.wants/zctls-textfile.timer") and
            sh("systemctl", "is-active", "zctls-textfile.timer")[1].strip() != "active",
            "the timer is stopped and no longer enabled")
        self.c.equal(os.path.exists(os.path.join(TEXTFILE_DIR, "zctls.prom")), False,
                     "zctls.prom is gone from the textfile directory")
        metrics = self.metrics()
        self.c.check("node_textfile_scrape_error" in metrics and "zctls_" not in metrics,
                     "node_exporter still serves, and no zctls_* metric",
                     "%d bytes" % len(metrics))
        self.c.equal(sh("systemctl", "is-active", "nginx")[1].strip(), "active",
                     "nginx still active")

    def run(self):
        try:
            self.install()
            self.drop_in()
            self.textfile_timer()
            self.downloads()
            self.broken_config()
            self.integrity()
            self.prometheus()
            self.dashboard()
            self.upgrade()
            self.remove()
        except sl.Failure as e:
            print("stopped at: %s" % e)
            if str(e) not in self.c.failed:  # raised by serverlib, not by a check here
                self.c.failed.append(str(e))
        return self.c.finish()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(64)
    sys.exit(AdminPath(os.path.abspath(sys.argv[1])).run())
