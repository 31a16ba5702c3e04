#!/usr/bin/python3
"""Debian's nginx under zctls on a kTLS kernel, end to end.

nginx is started exactly as the shipped systemd drop-in
(examples/systemd/zctls.conf) starts it, with the shipped site config
(examples/nginx/zctls-site.conf) and the shipped static-site zctls.toml
(examples/zctls-static-site.toml), only paths and the port rewritten.  Its
workers run as www-data.  The config reaches them through ZCTLS_CONFIG
alone, which nginx strips from the workers' environment, and there is no
/etc/zctls.toml: every zerocopy send below proves the config survived.

Independent observation: strace -ff -yy of master and workers gives each
sendfile(2) on a kTLS socket and the TLS_TX_ZEROCOPY_RO value the kernel had
then; curl gives the bytes (sha256) and its client port.  zctls stats must
agree with strace to the send.

Phases: every kTLS cipher over TLS 1.2 and 1.3 (keep-alive, the flag toggles
per file); every size class 0 B .. 100 MiB around the 2 MiB
sendfile_max_chunk; range requests at unaligned offsets; 32 concurrent
clients; `nginx -s reload` during traffic; `aio threads` with open_file_cache;
a binary upgrade (USR2, QUIT) during traffic; an in-place write while a
response waits in a stalled socket; HTTP/2; OpenSSL's own
KTLSTxZerocopySendfile in both app_flag modes (OpenSSL >= 3.2); [stats]
dir = "".  --phases picks some.  --device runs nginx on the emulated
TLS-offload NIC (tests/offload-nic) instead, with its own phases: the flag
and the NIC's page-cache witness per rule, TLS 1.3, and (OpenSSL >= 3.2)
a copy-rule file changed in flight under both app_flag modes.
Runs where kTLS is (tests/vm/session exec).  Environment: ZCTLS_BUILD_DIR.
"""

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serverlib as sl  # noqa: E402

MiB = 1 << 20
EXAMPLES = sl.EXAMPLES_DIR
# Size classes: empty, tiny, around a page, around the 2 MiB chunk, large.
ASSET_SIZES = [0, 1, 4095, 4096, 4097, 65536, MiB, 2 * MiB - 1, 2 * MiB, 2 * MiB + 1,
               16 * MiB + 3, 100 * MiB]
UPLOAD_SIZES = [0, 1, 4097, 2 * MiB - 1, 2 * MiB + 1, 5 * MiB]


class NginxE2E(sl.ServerE2E):
    def __init__(self, phases=None):
        super().__init__("nginx-e2e")
        self.phases = phases

    # --- setup -------------------------------------------------------------

    def make_files(self):
        # (On the offload NIC only the sizes its phases fetch.)
        files = {"assets/size-%d.bin" % n: n for n in ASSET_SIZES
                 if not sl.ON_NIC or n in (4097, MiB, 2 * MiB + 1)}
        files.update({"uploads/size-%d.bin" % n: n for n in UPLOAD_SIZES
                      if not sl.ON_NIC or n in (4097, 2 * MiB + 1)})
        files["generated/feed.xml"] = 70000
        files["index.html"] = 1200
        super().make_files(files)

    def write_configs(self):
        cert, key = sl.make_certificate(self.work)
        self.write_zctls_config()
        with open(os.path.join(EXAMPLES, "nginx", "zctls-site.conf")) as f:
            site = f.read()
        subst = [
            (r"listen 443 ssl;", "listen %s:%d ssl;" % (sl.SERVER_HOST, self.port)),
            (r"\n\s*listen \[::\]:443 ssl;", ""),
            (r"/etc/ssl/certs/example.org.pem", cert),
            (r"/etc/ssl/private/example.org.key", key),
            (r"root /var/www/site;", "root %s;" % self.www),
            # Every cipher Linux kTLS implements, so that curl can pick each.
            (r"ssl_protocols TLSv1.2 TLSv1.3;",
             "ssl_protocols TLSv1.2 TLSv1.3;\n    ssl_ciphers %s;\n"
             "    ssl_conf_command Ciphersuites %s;"
             % (sl.SERVER_TLS12_CIPHERS, sl.SERVER_TLS13_SUITES)),
        ]
        for pattern, repl in subst:
            site, n = re.subn(pattern, repl.replace("\\", "\\\\"), site)
            if n != 1:
                raise sl.Failure("examples/nginx/zctls-site.conf: no '%s' to rewrite" % pattern)
        self.site = os.path.join(self.work, "site.conf")
        with open(self.site, "w") as f:
            f.write(site)
        self.nginx_conf = os.path.join(self.work, "nginx.conf")
        self.error_log = os.path.join(self.work, "error.log")
        self.pid_file = os.path.join(self.work, "nginx.pid")
        with open(self.nginx_conf, "w") as f:
            # No `env ZCTLS_CONFIG;`: the config must survive without it.
            # examples/nginx/zctls-env.conf in the main context, as Debian's
            # modules-enabled/ puts it: its `env` lines beside the drop-in's
            # -g ones (nginx takes both).
            f.write("include %s;\n" % os.path.join(EXAMPLES, "nginx", "zctls-env.conf"))
            f.write("user www-data;\nworker_processes 2;\npid %s;\nerror_log %s info;\n"
                    "events { worker_connections 1024; }\n"
                    "http {\n  access_log off;\n  default_type application/octet-stream;\n"
                    "  keepalive_requests 1000;\n  include %s;\n}\n"
                    % (self.pid_file, self.error_log, self.site))

    def dropin_commands(self):
        """The drop-in's Environment= and ExecStart* lines, with the packaged
        paths mapped to this test's."""
        env = dict(os.environ)
        pre, start = [], None
        # Absolute, as systemd runs it: a binary upgrade execs argv[0].
        nginx = [shutil.which("nginx") or "/usr/sbin/nginx", "-p", self.work + "/",
                 "-c", self.nginx_conf, "-e", self.error_log]
        with open(os.path.join(EXAMPLES, "systemd", "zctls.conf")) as f:
            for line in f:
                line = line.strip()
                key, _, value = line.partition("=")
                if not value:
                    continue
                value = value.replace("/etc/zctls.toml", self.config)
                argv = []
                for word in shlex.split(value):
                    if word == "/usr/bin/zctls":
                        argv.append(sl.zctls_cli())
                    elif word == "/usr/sbin/nginx":
                        argv += nginx
                    else:
                        argv.append(word)
                if key == "Environment":
                    name, _, v = value.partition("=")
                    env[name] = v
                elif key == "ExecStartPre":
                    pre.append(argv)
                elif key == "ExecStart":
                    start = argv
        return env, pre, start

    def start(self):
        if sl.installed_run():
            # The package's /etc/zctls.toml has no rules: a worker that lost
            # ZCTLS_CONFIG would read it and send everything by copy.
            r = subprocess.run([sl.zctls_cli(), "explain", "--config", "/etc/zctls.toml",
                                os.path.join(self.www, "assets", "size-1.bin")],
                               stdout=subprocess.PIPE, text=True)
            self.c.check(r.returncode == 0 and "copy" in r.stdout and "zerocopy" not in r.stdout,
                         "the packaged /etc/zctls.toml sends nothing zerocopy", r.stdout)
        else:
            self.c.check(not os.path.exists("/etc/zctls.toml"),
                         "no /etc/zctls.toml: zctls can only learn the config from ZCTLS_CONFIG")
        env, pre, start = self.dropin_commands()
        self.c.check(start is not None and start[1] == "run", "the drop-in starts nginx through zctls run")
        for argv in pre:
            r = subprocess.run(sl.SERVER_NETNS + argv, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
            self.c.equal(r.returncode, 0, "drop-in ExecStartPre %s" % " ".join(argv[:2]))
            if r.returncode != 0:
                print(r.stdout)
        self.server = sl.StraceServer(self.work, "nginx", start, shim=False, env=env)
        if not sl.wait_for_port(self.port):
            raise sl.Failure("nginx did not start: " + open(self.error_log).read()[-2000:])
        self.wait_settled()

    def workers(self):
        deadline = time.time() + 10
        while True:  # nginx truncates, then writes, its pid file
            with open(self.pid_file) as f:
                text = f.read().strip()
            if text or time.time() > deadline:
                break
            time.sleep(0.1)
        master = int(text)
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], stdout=subprocess.PIPE,
                             text=True).stdout
        return master, {int(p) for p in out.split()}

    @contextlib.contextmanager
    def site_edited(self, pattern, repl, what, count=0):
        """The site config with `pattern` replaced (once: checked), nginx
        reloaded onto it for the body of the `with`; then the original
        config back and reloaded."""
        with open(self.site) as f:
            original = f.read()
        site, n = re.subn(pattern, repl, original, count=count)
        self.c.equal(n, 1, "site config: %s" % what)
        with open(self.site, "w") as f:
            f.write(site)
        try:
            self.reload_workers(what)
            yield
        finally:
            with open(self.site, "w") as f:
                f.write(original)
            self.reload_workers("with the site config as before")

    def reload_workers(self, what):
        """nginx -s reload, then wait until none of the old workers is left
        (they finish their connections first): the next request reaches a
        worker of the new config.  Returns the new workers."""
        _, old = self.workers()
        self.c.equal(self.nginx_signal("reload"), 0, "nginx -s reload " + what)
        deadline = time.time() + 60
        while time.time() < deadline:
            _, new = self.workers()
            if new and not (new & old):
                return new
            time.sleep(0.2)
        raise sl.Failure("nginx -s reload %s: old workers %s still there after 60 s" % (what, old))

    def nginx_signal(self, sig):
        return subprocess.run(["nginx", "-p", self.work + "/", "-c", self.nginx_conf,
                               "-e", self.error_log, "-s", sig]).returncode

    # --- phases -------------------------------------------------------------

    def ciphers(self):
        files = ["assets/size-%d.bin" % MiB, "uploads/size-%d.bin" % 4097,
                 "assets/size-%d.bin" % MiB, "index.html", "assets/size-%d.bin" % 4097]

        def body():
            return [(version, name, ktls, sl.fetch(self.port, files, extra=opts))
                    for version, name, opts, ktls in sl.CIPHERS]

        trace, fetches = self.phase("ciphers", body)
        for version, name, ktls, f in fetches:
            label = "TLS %s %s" % (version, name)
            self.check_fetch(f, label)
            self.c.equal(f.cipher, ("TLSv" + version, name), label + ": negotiated")
            ports = set(f.ports)
            self.c.equal(len(ports), 1, label + ": one keep-alive connection")
            if not ktls:
                self.c.check(not trace.for_port(f.ports[0]) and f.ports[0] not in trace.flag_sets,
                             label + ": OpenSSL keeps it in user space; no sendfile, no flag")
                continue
            sends = self.check_flags(trace, label, ports)
            self.c.equal(sorted({s.path.rsplit("/", 1)[1] for s in sends}),
                         ["index.html", "size-1048576.bin", "size-4097.bin"],
                         label + ": every body went by sendfile on the kTLS socket")
            self.c.equal(trace.flag_sets.get(f.ports[0]), [1, 0, 1, 0, 1],
                         label + ": flag toggled per file on one socket (strace)")

    def sizes(self):
        assets = ["assets/size-%d.bin" % n for n in ASSET_SIZES]
        uploads = ["uploads/size-%d.bin" % n for n in UPLOAD_SIZES]

        def body():
            return sl.fetch(self.port, assets + uploads, timeout=900)

        trace, f = self.phase("sizes", body)
        self.check_fetch(f, "sizes 0 B..100 MiB")
        self.check_flags(trace, "sizes")
        for rel in assets + uploads:
            path = os.path.join(self.www, rel)
            sends = [s for s in trace.sends if s.path == path]
            size = os.path.getsize(path)
            total = sum(max(s.result, 0) for s in sends)
            biggest = max((s.count for s in sends), default=0)
            self.c.check(total == size and biggest <= 2 * MiB,
                         "%s: %d bytes in %d sendfile calls of at most 2 MiB" % (rel, size, len(sends)),
                         "sent %d, largest call %d" % (total, biggest))

    def ranges(self):
        quirk = sl.probe_json().get("kernel_bug", {}).get("unaligned_zerocopy")
        rel = "assets/size-%d.bin" % (2 * MiB + 1)
        ranges = ["4097-1000000", "1-1", "2097151-2097152", "100-", "0-4095", "12288-"]
        paths = [rel] * len(ranges) + ["uploads/size-%d.bin" % (2 * MiB + 1)]
        ranges.append("3-70000")

        def body():
            return sl.fetch(self.port, paths, ranges=ranges)

        trace, f = self.phase("ranges", body)
        self.check_fetch(f, "range requests", ranges)
        sends = [s for s in trace.sends if s.path.endswith(rel)]
        offsets = [s.offset for s in sends]
        for start in (4097, 1, 2097151, 100, 0, 12288):
            self.c.check(start in offsets, "range from %d: a sendfile starts there" % start,
                         "offsets %s" % offsets)
        unaligned_zc = [s for s in sends if s.offset % 4096 and s.flag == 1]
        if quirk == "not_affected":
            self.check_flags(trace, "ranges (kernel fixed: unaligned offsets go zerocopy too)")
            self.c.check(unaligned_zc, "unaligned range sends went zerocopy")
        else:
            self.c.check(not unaligned_zc, "kernel %s: no zerocopy from unaligned offsets" % quirk)

    def concurrent(self, clients=32):
        files = [["assets/size-%d.bin" % 65536, "uploads/size-%d.bin" % 4097,
                  "assets/size-%d.bin" % MiB][: 1 + i % 3] for i in range(clients)]

        def body():
            results = [None] * clients

            def one(i):
                results[i] = sl.fetch(self.port, files[i])
            threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return results

        trace, fetches = self.phase("concurrent", body)
        bad = self.failed_fetches(fetches)
        self.c.check(not bad, "%d concurrent clients: every body byte-identical" % clients,
                     "clients %s failed" % bad[:5])
        ports = {p for f in fetches for p in f.ports}
        self.c.equal(len(ports), clients, "%d concurrent clients: %d connections" % (clients, clients))
        self.check_flags(trace, "concurrent", ports)
        self.c.equal(len({s.tid for s in trace.sends}), 2, "both workers served")

    def traffic_during(self, action, what, rounds=12):
        """Sequential keep-alive fetches in a thread while action() runs."""
        files = ["assets/size-%d.bin" % MiB, "uploads/size-%d.bin" % 4097]
        fetches = []
        stop = threading.Event()

        def loop():
            while len(fetches) < rounds or not stop.is_set():
                fetches.append(sl.fetch(self.port, files))
                if len(fetches) >= 4 * rounds:
                    break

        def body():
            t = threading.Thread(target=loop)
            t.start()
            time.sleep(2)
            action()
            stop.set()
            t.join()
            return fetches

        master, old_workers = self.workers()
        trace, _ = self.phase(what, body)
        _, new_workers = self.workers()
        bad = self.failed_fetches(fetches)
        self.c.check(not bad, "%s: %d keep-alive clients, every body byte-identical"
                     % (what, len(fetches)), "fetches %s failed" % bad[:5])
        self.check_flags(trace, what)
        return old_workers, new_workers, trace

    def reload(self):
        def action():
            self.c.equal(self.nginx_signal("reload"), 0, "nginx -s reload")
            time.sleep(3)

        old, new, trace = self.traffic_during(action, "nginx -s reload")
        self.c.check(new and not (old & new), "reload replaced the workers",
                     "old %s new %s" % (old, new))
        by_new = [s for s in trace.sends if s.tid in new]
        self.c.check(by_new and all(s.flag == self.expected_flag(s.path) for s in by_new),
                     "new workers (forked after the reload, environment stripped) decide by the "
                     "config: %d sends" % len(by_new))

    def upgrade(self):
        """A binary upgrade as Debian's package upgrade makes it
        (`invoke-rc.d nginx upgrade`): USR2 to the master, which execs nginx
        again with only the variables its `env` directives name, then QUIT
        to the old master.  The drop-in's -g keeps LD_PRELOAD and
        ZCTLS_CONFIG: the new master and its workers map libzctls and decide
        by the config (strace of the new workers)."""
        old_master, _ = self.workers()
        oldbin = self.pid_file + ".oldbin"

        def wait(what, ready, timeout=60):
            deadline = time.time() + timeout
            while not ready():
                if time.time() > deadline:
                    with open(self.error_log, errors="replace") as f:
                        tail = f.read()[-800:]
                    raise sl.Failure("upgrade: no %s after %d s; error.log ends:\n%s"
                                     % (what, timeout, tail))
                time.sleep(0.2)

        def exited(pid):
            # The process can go between any two looks at /proc (ESRCH,
            # ENOENT): each of those means it is gone.
            try:
                with open("/proc/%d/stat" % pid) as f:
                    return f.read().rsplit(")", 1)[1].split()[0] == "Z"
            except OSError:
                return True

        def action():
            os.kill(old_master, signal.SIGUSR2)
            wait("nginx.pid.oldbin and a new master", lambda: os.path.exists(oldbin)
                 and os.path.exists(self.pid_file) and self.workers()[0] != old_master
                 and self.workers()[1])
            time.sleep(2)
            os.kill(old_master, signal.SIGQUIT)
            wait("exit of the old master", lambda: exited(old_master))
            time.sleep(3)

        _, new, trace = self.traffic_during(action, "binary upgrade (USR2, QUIT)")
        master, workers = self.workers()
        self.c.check(master != old_master and workers, "a new master with its own workers",
                     "master %d (was %d), workers %s" % (master, old_master, workers))
        for pid in [master] + sorted(workers):
            with open("/proc/%d/maps" % pid) as f:
                mapped = "libzctls.so" in f.read()
            self.c.check(mapped, "after the upgrade, nginx %d maps libzctls.so" % pid)
        by_new = [s for s in trace.sends if s.tid in workers]
        self.c.check(by_new and all(s.flag == self.expected_flag(s.path) for s in by_new),
                     "the new binary's workers decide by the config: %d sends" % len(by_new))
        # zctls status sees kTLS sockets: hold one open (nginx turns kTLS
        # on at the end of the handshake) while it looks.
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", self.port)) as raw, \
                ctx.wrap_socket(raw) as held:
            held.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
            held.recv(1)
            r = subprocess.run([sl.zctls_cli(), "status", "--json", "--dir", self.stats],
                               stdout=subprocess.PIPE, text=True)
        status = json.loads(r.stdout) if r.returncode == 0 else {}
        self.c.check(any(p["pid"] in workers for s in status.get("sockets", [])
                         for p in s["processes"]),
                     "zctls status sees the held connection in a new worker")
        # This nginx's processes only: the guest is shared with other kTLS
        # tests, some of which run programs without zctls on purpose (the
        # bench's baselines: CI of ecb3b64 saw zctls_bench_sender here).
        ours = {master} | set(workers)
        self.c.equal([p for p in status.get("ktls_processes_without_zctls", [])
                      if p["pid"] in ours], [],
                     "zctls status: no process of this nginx is a kTLS process without zctls")

    def aio_threads(self):
        with open(self.site) as f:
            site = f.read()
        with open(self.site, "w") as f:
            f.write(site.replace("sendfile on;", "sendfile on;\n    aio threads;\n"
                                 "    open_file_cache max=100;", 1))

        def action():
            self.c.equal(self.nginx_signal("reload"), 0,
                         "nginx -s reload with aio threads and open_file_cache")
            time.sleep(3)

        self.traffic_during(action, "aio threads + open_file_cache")

    def write_in_flight(self):
        """An in-place write while a response's zerocopy bytes wait in a
        stalled socket: one event, logged, and the file quarantined."""
        rel = "assets/size-%d.bin" % (16 * MiB + 3)
        path = os.path.join(self.www, rel)
        log_start = os.path.getsize(self.error_log)
        before = self.stats_totals()

        def write():
            with open(path, "r+b") as f:
                f.seek(12 * MiB)
                f.write(b"\0" * 4096)
            self.digests[rel] = sl.sha256_of_file(path)

        def body():
            got = sl.paused_download(self.port, rel, MiB, write)
            again = sl.fetch(self.port, [rel])
            return got, again

        trace, (got, again) = self.phase("in-place write in flight", body, integrity_events=1)
        after = self.stats_totals()
        self.c.equal(after["integrity_events_in_flight"] - before["integrity_events_in_flight"], 1,
                     "the write was caught while the bytes were unacknowledged")
        with open(self.error_log, errors="replace") as f:
            f.seek(log_start)
            logged = [l for l in f if "integrity: " + path + " changed" in l]
        self.c.check(len(logged) == 1 and "action: quarantine" in logged[0],
                     "the event is in nginx's error.log with its action", "%s" % logged)
        self.c.equal(got[0], os.path.getsize(path), "the stalled client got every byte")
        self.check_fetch(again, "downloaded again")
        flags = {s.flag for s in trace.for_port(again.ports[0])}
        self.c.equal(flags, {0}, "downloaded again: quarantined, the flag stays off (strace)")
        self.c.check(after["copy_quarantine"] > before["copy_quarantine"],
                     "copies counted under quarantine")

    def offload_auto(self):
        """[kernel] offload = "auto", the default (issue 20): on the bench's
        software kTLS, which no NIC offloads, the workers learn each
        socket's TX mode once and then leave its sends alone: strace of the
        workers shows no TLS_TX_ZEROCOPY_RO set, and zctls stats counts the
        sends as software kTLS copies.  (That they make no syscall per send
        is OffloadE2E's and the bench's count: nginx fstats files itself.)"""
        self.write_zctls_config(offload="")
        time.sleep(3)  # the running workers read it (two checks a second apart)
        self.reload_workers("with [kernel] offload = \"auto\"")
        files = ["assets/size-%d.bin" % MiB, "uploads/size-%d.bin" % 4097,
                 "assets/size-%d.bin" % MiB, "index.html"]
        # TLS 1.2: learnt from the interfaces (none offloads TLS here); TLS
        # 1.3: from the key alone (no kernel up to 7.3 offloads it).
        for version, opts, tls13 in (("TLS 1.2", ["--tls-max", "1.2"], 0),
                                     ("TLS 1.3", ["--tlsv1.3"], 1)):
            label = "offload = auto, " + version
            before = self.stats_totals()
            trace, f = self.phase(label, lambda: sl.fetch(self.port, files, extra=opts))
            after = self.stats_totals()
            self.check_fetch(f, label)
            port = f.ports[0]
            sends = trace.for_port(port)
            self.c.check(port in trace.ktls_ports and sends,
                         label + ": the connection's TX is kTLS and bodies went by sendfile")
            self.c.equal(trace.flag_sets.get(port, []), [],
                         label + " on software kTLS: the flag is never set (strace)")
            self.c.check(all(s.flag == 0 for s in sends), label + ": every send by copy")
            delta = {k: after[k] - before[k] for k in
                     ("copy_software_ktls", "software_tx_sockets", "software_tls13_sockets")}
            self.c.equal(delta, {"copy_software_ktls": len(sends), "software_tx_sockets": 1,
                                 "software_tls13_sockets": tls13},
                         label + ": zctls stats count the sends as software kTLS")
        self.write_zctls_config()
        time.sleep(3)
        self.reload_workers("with offload = \"assume\" again")

    def private_counters(self):
        """[stats] dir = "" (issue 22): workers started under it keep their
        counters private and make no stats file anywhere; a forked worker
        made one in /dev/shm before its config said so."""
        self.write_zctls_config(stats_dir="")
        time.sleep(3)  # the running workers read it (two checks a second apart)
        workers = self.reload_workers("with [stats] dir = \"\"")
        for _ in range(4):
            self.check_fetch(sl.fetch(self.port, ["assets/size-%d.bin" % MiB,
                                                  "uploads/size-%d.bin" % 4097]),
                             "private counters")
        anywhere = {pid for pid, _ in sl.stats_files(self.stats) | sl.stats_files("/dev/shm")}
        self.c.check(workers and not (workers & anywhere),
                     "workers under [stats] dir = \"\" made no stats file anywhere",
                     "workers %s, files of %s" % (workers, workers & anywhere))

    def http2(self):
        """HTTP/2 over kTLS (issue 19 #4).  Measured with nginx 1.22.1 and
        1.26.3: an h2 connection's TX goes to kTLS like an HTTP/1.1 one, and
        file bodies go out by sendfile(2) there too, one call per DATA frame
        payload of at most http2_chunk_size (8 KiB by default; 1 MiB = 128
        calls, against 1 per 2 MiB over HTTP/1.1 with sendfile_max_chunk
        2m).  So zctls acts on HTTP/2 responses as on HTTP/1.1 ones, with
        its per-send checks that many times more often."""
        text, version = sl.program_version(["nginx", "-v"], "nginx")
        if version and version >= (1, 25, 1):  # 1.25.1 replaced "listen ... http2" by "http2 on"
            edit = (r"sendfile on;", "sendfile on;\n    http2 on;", 1)
        else:
            edit = (r"listen (127\.0\.0\.1:\d+) ssl;", r"listen \1 ssl http2;", 0)
        files = ["assets/size-%d.bin" % MiB, "uploads/size-%d.bin" % 4097, "index.html"]
        sockets = ("ktls_tx_sockets", "ktls_tx_file_sockets")
        with self.site_edited(edit[0], edit[1], "HTTP/2 on (%s)" % text, count=edit[2]):
            before = self.stats_totals()
            trace, f = self.phase("HTTP/2", lambda: sl.fetch(self.port, files,
                                                            extra=["--http2"]))
            self.check_fetch(f, "HTTP/2")
            # A connection whose responses are all generated (nginx's 404
            # page, by SSL_write): a kTLS socket that never sends a file,
            # which zctls stats shows (ktls_tx_sockets - ktls_tx_file_sockets).
            missing = sl.fetch(self.port, ["no-such-file", "nor-this"], extra=["--http2"])
            after = self.stats_totals()
            self.c.equal([r["status"] for r in missing.results], [404, 404],
                         "HTTP/2: a connection with generated responses only")
            self.c.equal({k: after[k] - before[k] for k in sockets},
                         {"ktls_tx_sockets": 2, "ktls_tx_file_sockets": 1},
                         "HTTP/2: zctls stats count both kTLS sockets, one that sent files")
            self.c.equal({r["http_version"] for r in f.results}, {"2"}, "HTTP/2: negotiated h2")
            port = f.ports[0]
            self.c.check(port in trace.ktls_ports, "HTTP/2: the connection's TX is kTLS (strace)")
            self.check_flags(trace, "HTTP/2", {port})
            for rel in files:
                path = os.path.join(self.www, rel)
                sends = [s for s in trace.for_port(port) if s.path == path]
                sent = sum(max(s.result, 0) for s in sends)
                biggest = max((s.count for s in sends), default=0)
                self.c.check(sent == os.path.getsize(path) and biggest <= 8192,
                             "HTTP/2: %s went by sendfile in %d calls of at most 8 KiB "
                             "(http2_chunk_size)" % (rel, len(sends)),
                             "sent %d, largest call %d" % (sent, biggest))

    def app_flag(self):
        """OpenSSL's own zerocopy option (issue 19 #3): with
        `ssl_conf_command Options KTLS,KTLSTxZerocopySendfile;` OpenSSL >= 3.2
        sets TLS_TX_ZEROCOPY_RO to 1 on every connection right after TLS_TX.
        app_flag = "respect" (the opt-out) leaves it so: every file goes
        zerocopy, counted as the application's zerocopy sends; "govern"
        (the default) applies the rules before each send.  strace of the workers shows
        both; error.log has one warning per worker under respect, naming
        the option (under govern it is a notice, below the shipped config's
        level)."""
        if not sl.OPENSSL_HAS_ZEROCOPY_OPTION:
            raise sl.Failure("app_flag: %s has no KTLSTxZerocopySendfile (OpenSSL >= 3.2)"
                             % ssl.OPENSSL_VERSION)
        files = ["assets/size-%d.bin" % MiB, "uploads/size-%d.bin" % 4097,
                 "assets/size-%d.bin" % MiB, "index.html"]

        def run_mode(mode):
            self.write_zctls_config(top='app_flag = "%s"\n' % mode)
            time.sleep(3)  # the running workers read it (two checks a second apart)
            log_start = os.path.getsize(self.error_log)
            workers = self.reload_workers("with app_flag = %s" % mode)
            before = self.stats_totals()
            trace, f = self.phase("app_flag = " + mode, lambda: sl.fetch(self.port, files))
            after = self.stats_totals()
            label = "KTLSTxZerocopySendfile, app_flag = " + mode
            self.check_fetch(f, label)
            port = f.ports[0]
            sends = trace.for_port(port)
            self.c.equal(len(set(f.ports)), 1, label + ": one keep-alive connection")
            self.c.equal(sorted({s.path.rsplit("/", 1)[1] for s in sends}),
                         ["index.html", "size-1048576.bin", "size-4097.bin"],
                         label + ": every body went by sendfile on the kTLS socket")
            sets = trace.flag_sets.get(port, [])
            self.c.check(sets[:1] == [1], label + ": OpenSSL set the flag to 1 itself (strace)",
                         "sets %s" % sets)
            delta = {k: after[k] - before[k] for k in
                     ("app_flag_sockets", "app_flag_sends", "app_zerocopy_sends")}
            if mode == "respect":
                self.c.check(sends and all(s.flag == 1 for s in sends),
                             label + ": every file went zerocopy, as OpenSSL set it (strace)",
                             "%s" % sends)
                self.c.equal(sets, [1], label + ": zctls set nothing (strace)")
                self.c.equal(delta, {"app_flag_sockets": 1, "app_flag_sends": len(sends),
                                     "app_zerocopy_sends": len(sends)},
                             label + ": zctls stats count the application's zerocopy sends")
            else:
                self.check_flags(trace, label, {port}, app_sets=True)
                self.c.equal(sets, [1, 0, 1, 0],
                             label + ": flag 0 before each copy-rule file, 1 before a "
                             "zerocopy one (strace)")
                self.c.equal(delta, {"app_flag_sockets": 1, "app_flag_sends": len(sends),
                                     "app_zerocopy_sends": 0},
                             label + ": zctls stats: the sockets and sends, none left to the "
                             "application")
            with open(self.error_log, errors="replace") as log:
                log.seek(log_start)
                said = [l for l in log if "KTLSTxZerocopySendfile" in l]
            if mode == "govern":
                # A notice, below the shipped config's level = "warn".
                self.c.equal(said, [], label + ": no warning (zctls applies the rules)")
                return
            by = {int(m.group(1)) for m in (re.search(r"zctls\[(\d+)\]: warn: ", l) for l in said)
                  if m}
            self.c.check(said and by <= workers and len(said) == len(by)
                         and all('app_flag = "respect"' in l for l in said),
                         label + ": one warning per worker that met such a socket, naming the "
                         "option and the mode", "\n".join(said[:4]) or "none")

        try:
            with self.site_edited(r"ssl_conf_command Options KTLS;",
                                  "ssl_conf_command Options KTLS,KTLSTxZerocopySendfile;",
                                  "Options KTLS,KTLSTxZerocopySendfile"):
                run_mode("respect")
                run_mode("govern")
        finally:
            self.write_zctls_config()

    def stop(self):
        if self.server is not None:
            self.nginx_signal("quit")
            self.server.proc.wait(timeout=120)
            self.server.stop()
            self.server = None

    # --- on the emulated offload NIC (--device) ---------------------------------

    def device(self):
        """TLS 1.2 over the offload NIC under the default keys: zctls learns
        the sockets are offloaded; the flag follows the rules (strace); the
        NIC read the zerocopy-rule files from their pages and copies of the
        others.  TLS 1.3 over the same NIC: software, no flag set."""
        assets = ["assets/size-%d.bin" % n for n in (MiB, 2 * MiB + 1, 4097)]
        uploads = ["uploads/size-%d.bin" % n for n in (4097, 2 * MiB + 1)] + ["index.html"]
        tls12 = ["--tls-max", "1.2"]
        for label, files, zerocopy in (("assets", assets, True), ("uploads", uploads, False)):
            what = "offload NIC, TLS 1.2, %s" % label
            f, share = self.fetch_on_nic(what, files, zerocopy)
            self.c.equal(f.cipher[0] if f.cipher else None, "TLSv1.2", what + ": negotiated")
            print("   page-cache share of the NIC's payload: %.1f %% (%s)" % (100 * share, label))
        what = "offload NIC, TLS 1.2, keep-alive"
        trace, f = self.phase(what, lambda: sl.fetch(self.port, assets + uploads, extra=tls12))
        self.check_fetch(f, what)
        self.check_flags(trace, what, {f.ports[0]})
        before = self.stats_totals()
        what = "offload NIC, TLS 1.3"
        trace, f = self.phase(what, lambda: sl.fetch(self.port, assets, extra=["--tlsv1.3"]),
                              software=True)
        self.check_fetch(f, what)
        self.c.equal(trace.flag_sets.get(f.ports[0]), None, what + ": no flag set (strace)")
        after = self.stats_totals()
        self.c.equal({k: after[k] - before[k] for k in ("software_tx_sockets",
                                                          "software_tls13_sockets")},
                     {"software_tx_sockets": 1, "software_tls13_sockets": 1},
                     what + ": zctls stats: one software socket, TLS 1.3")

    def device_app_flag(self):
        """OpenSSL's KTLSTxZerocopySendfile on the offload NIC: a copy-rule
        file rewritten while a frame of its response awaits retransmission.
        app_flag = "govern" (the default): zctls turned the flag off, the
        retransmission carries the bytes sent, the body arrives intact.
        "respect": the flag stays OpenSSL's, and the client's TLS fails."""
        if not sl.OPENSSL_HAS_ZEROCOPY_OPTION:
            raise sl.Failure("device_app_flag: %s has no KTLSTxZerocopySendfile"
                             % ssl.OPENSSL_VERSION)
        rel = "uploads/size-%d.bin" % (2 * MiB + 1)
        try:
            with self.site_edited(r"ssl_conf_command Options KTLS;",
                                  "ssl_conf_command Options KTLS,KTLSTxZerocopySendfile;",
                                  "Options KTLS,KTLSTxZerocopySendfile"):
                for mode in ("govern", "respect"):
                    self.write_zctls_config(top='app_flag = "%s"\n' % mode)
                    time.sleep(3)
                    self.reload_workers("with app_flag = " + mode)
                    label = "offload NIC, KTLSTxZerocopySendfile, app_flag = %s, %s changed in " \
                            "flight" % (mode, rel)
                    self.server.reset_trace()
                    # The body from file byte 0, by sendfile: a frame from
                    # stream byte 64 KiB on carries file bytes below 128 KiB.
                    f = self.hazard(rel, 64 << 10, (0, 256 << 10), extra=["--tls-max", "1.2"])
                    time.sleep(0.5)
                    sets = self.server.trace().flag_sets.get(f.ports[0], [])
                    self.c.check(sets[:1] == [1], label + ": OpenSSL set the flag (strace)",
                                 "sets %s" % sets)
                    intact = f.returncode == 0 and f.results[0]["sha256"] == self.digests[rel]
                    if mode == "govern":
                        self.c.check(intact and 0 in sets, label + ": zctls turned the flag off; "
                                     "the body arrived intact", "curl %d, %r, sets %s"
                                     % (f.returncode, f.results[0], sets))
                    else:
                        self.c.check(not intact and sets == [1], label + ": the flag stayed on "
                                     "and the client's TLS failed", "curl %d, %r, sets %s"
                                     % (f.returncode, f.results[0], sets))
                        print("   curl: exit %d, %d bytes" % (f.returncode, f.results[0]["size"]))
        finally:
            self.write_zctls_config()

    def finish(self):
        self.stop()
        log = open(self.error_log).read() if os.path.exists(self.error_log) else ""
        # The expected warnings: write_in_flight's event, app_flag's
        # "the application sets TLS_TX_ZEROCOPY_RO itself".
        zctls_lines = [l for l in log.splitlines() if "zctls" in l and "integrity: " not in l
                       and "KTLSTxZerocopySendfile" not in l]
        self.c.check(not any("error" in l or "warn" in l for l in zctls_lines),
                     "no zctls warnings or errors in nginx's error.log", "\n".join(zctls_lines[:5]))
        stray = sl.stats_files(self.stats) & sl.stats_files("/dev/shm")
        self.c.check(not stray, "no process counted in the stats dir has a file in /dev/shm too",
                     "%s" % stray)
        totals = self.stats_totals()
        # (That both workers served, by the rules, is concurrent's check.)
        self.c.check(totals["config_loads"] >= 1 and totals["config_errors"] == 0,
                     "zctls stats: the workers loaded the config, no errors",
                     "%s" % {k: totals[k] for k in ("config_loads", "config_errors")})

    def run(self):
        started = time.time()
        try:
            self.make_files()
            self.write_configs()
            self.start()
            steps = [self.ciphers, self.sizes, self.ranges, self.concurrent, self.reload,
                     self.aio_threads, self.upgrade, self.write_in_flight, self.http2,
                     self.app_flag, self.offload_auto, self.private_counters]
            if sl.ON_NIC:
                # On the emulated offload NIC: its own phases, the one that
                # needs OpenSSL's option only where OpenSSL has it.
                steps = [self.device] + ([self.device_app_flag]
                                         if sl.OPENSSL_HAS_ZEROCOPY_OPTION else [])
            # --phases ciphers,ranges or ZCTLS_E2E_PHASES=...: a subset (the
            # kernel-only runs of the matrix, the package install test).
            # All of them by default, app_flag only where OpenSSL has the
            # option it tests.
            wanted = self.phases or os.environ.get("ZCTLS_E2E_PHASES")
            if not wanted and not sl.OPENSSL_HAS_ZEROCOPY_OPTION and self.app_flag in steps:
                print("-- app_flag: skipped, %s has no KTLSTxZerocopySendfile"
                      % ssl.OPENSSL_VERSION)
                steps.remove(self.app_flag)
            if wanted:
                names = wanted.split(",")
                unknown = set(names) - {s.__name__ for s in steps}
                if unknown:
                    raise sl.Failure("ZCTLS_E2E_PHASES: no phase %s" % ", ".join(sorted(unknown)))
                steps = [s for s in steps if s.__name__ in names]
            for step in steps:
                print("-- " + step.__name__, flush=True)
                step_started = time.time()
                step()
                print("   (%s: %.0f s)" % (step.__name__, time.time() - step_started), flush=True)
        finally:
            self.finish()
            self.cleanup([self.error_log, os.path.join(self.work, "nginx.out")])
            print("nginx e2e: %.0f s" % (time.time() - started))
        return self.c.finish()


def main():
    args = sys.argv[1:]
    phases = None
    if args[:1] == ["--device"]:
        # On the emulated offload NIC (tests/offload-nic): its phases only.
        sl.use_offload_nic()
        args = args[1:]
    if args[:1] == ["--phases"] and len(args) == 2:
        phases = args[1]
    elif args:
        raise sl.Failure("usage: nginx_e2e.py [--device] [--phases PHASE,PHASE...]")
    return NginxE2E(phases).run()


if __name__ == "__main__":
    sl.main_guard(main)
