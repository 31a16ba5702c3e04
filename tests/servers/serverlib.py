"""Shared parts of the real-server end-to-end tests (nginx, openssl s_server).

The servers run under `zctls run` and under `strace -ff -yy`, which is how
the tests see the TLS_TX_ZEROCOPY_RO flag without trusting the shim: every
setsockopt(SOL_TLS, ...) the server process makes (the shim's included) is
replayed per socket, so each sendfile(2) is known with the flag value the
kernel had at that moment.  Clients are curl, matched to their server-side
socket by the client's port.
"""

import glob
import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

PYTHON = "/usr/bin/python3"
SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_dir():
    return os.environ.get("ZCTLS_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))


def zctls_cli():
    return os.environ.get("ZCTLS_CLI", os.path.join(build_dir(), "cli", "zctls"))


# The shipped examples: the source tree's, or an installed package's
# (/usr/share/doc/zctls/examples, tests/package/install-test).
EXAMPLES_DIR = os.environ.get("ZCTLS_EXAMPLES_DIR", os.path.join(SOURCE_DIR, "examples"))


def installed_run():
    """Run against an installed package (ZCTLS_CLI=/usr/bin/zctls)."""
    return os.environ.get("ZCTLS_CLI", "").startswith("/usr/")


class Failure(Exception):
    pass


class Checks:
    """Collects check results; prints one line per check, fails at the end."""

    def __init__(self):
        self.failed = []
        self.quiet = False  # print failures only

    def check(self, ok, what, detail=""):
        if not ok or not self.quiet:
            print(("ok   " if ok else "FAIL ") + what + ("" if ok or not detail else ": " + detail),
                  flush=True)
        if not ok:
            self.failed.append(what)
        return ok

    def equal(self, got, want, what):
        return self.check(got == want, what, "got %r, want %r" % (got, want))

    def finish(self):
        if self.failed:
            print("%d check(s) failed: %s" % (len(self.failed), "; ".join(self.failed)))
            return 1
        print("all checks passed")
        return 0


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, **kw)


def make_tree(root, files):
    """files: {relative path: size}.  Random content; readable by all (the
    workers run as www-data).  Returns {relative path: sha256}."""
    digests = {}
    for rel, size in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        h = hashlib.sha256()
        with open(path, "wb") as f:
            left = size
            while left > 0:
                block = os.urandom(min(left, 1 << 20))
                f.write(block)
                h.update(block)
                left -= len(block)
        digests[rel] = h.hexdigest()
    for d, _, names in os.walk(root):
        os.chmod(d, 0o755)
        for n in names:
            os.chmod(os.path.join(d, n), 0o644)
    return digests


def make_certificate(work):
    cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", key, "-out", cert])
    os.chmod(key, 0o644)
    return cert, key


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Every cipher Linux kTLS implements (linux/tls.h TLS_CIPHER_*: AES-GCM-128,
# AES-GCM-256, AES-CCM-128, ChaCha20-Poly1305; SM4 and ARIA have no TLS
# suite in OpenSSL 3.0), over TLS 1.2 and 1.3: (version, name, curl options,
# whether OpenSSL hands it to the kernel).  OpenSSL 3.0 (Debian 12) keeps
# TLS 1.3 AES-CCM in user space (ssl/ktls.c: "broken on 5.x kernels"), so
# that connection must work without kTLS and without the shim doing
# anything; OpenSSL 3.5 (Debian 13, measured with 3.5.9) hands it to the
# kernel like the others.  The servers and this process load the same
# libssl (the userland's).
TLS13_CCM_IN_KERNEL = ssl.OPENSSL_VERSION_INFO >= (3, 5)
# KTLSTxZerocopySendfile (SSL_OP_ENABLE_KTLS_TX_ZEROCOPY_SENDFILE): OpenSSL >= 3.2.
OPENSSL_HAS_ZEROCOPY_OPTION = ssl.OPENSSL_VERSION_INFO >= (3, 2)


# --- where servers and clients run ------------------------------------------
#
# On loopback by default.  use_offload_nic() moves them onto the emulated
# TLS-offload NIC (tests/offload-nic): the server in the NIC's server
# namespace, listening on its address, the clients (curl) in the client
# namespace, so that every connection leaves through a device with TLS TX
# offload; zctls keeps its default [kernel] offload = "auto".
SERVER_HOST = "127.0.0.1"
SERVER_NETNS = []  # prefix for the server and for what looks at its sockets
CLIENT_NETNS = []  # prefix for the clients
NIC = os.path.join(SOURCE_DIR, "tests", "offload-nic", "nic")
ON_NIC = False


def use_offload_nic():
    """Run the servers on the emulated offload NIC; exit 77 (skipped) with
    the reason if it is not up in this guest."""
    global SERVER_HOST, SERVER_NETNS, CLIENT_NETNS, ON_NIC
    r = subprocess.run([NIC, "require"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    if r.returncode != 0:
        print(r.stdout.strip() or "the emulated offload NIC is not up")
        sys.exit(77 if r.returncode == 77 else 1)
    SERVER_HOST = "10.77.0.1"
    SERVER_NETNS = ["ip", "netns", "exec", "zctls-srv"]
    CLIENT_NETNS = ["ip", "netns", "exec", "zctls-cli"]
    ON_NIC = True


def nic_counters():
    """The server end's ethtool -S counters, {name: value} (nic stats)."""
    out = run([NIC, "stats"]).stdout
    return {k: int(v) for k, v in (l.split("=", 1) for l in out.split())}


def nic_loss(what):
    """The NIC's loss control (nic loss): N loses the Nth offloaded frame
    from now on, "@B" the first reaching byte B of its stream, and holds
    its retransmissions; 0 releases them."""
    run([NIC, "loss", str(what)])


def program_version(argv, name):
    """(text, (major, minor, patch) or None) from what `argv` prints
    (stdout or stderr) as NAME/x.y.z, as `nginx -v` and `lighttpd -v` do."""
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    m = re.search(re.escape(name) + r"/(\d+)\.(\d+)\.(\d+)", r.stdout)
    return r.stdout.strip(), tuple(int(x) for x in m.groups()) if m else None


def _tls12(name):
    return ("1.2", name, ["--tls-max", "1.2", "--ciphers", name], True)


def _tls13(name, ktls=True):
    return ("1.3", name, ["--tlsv1.3", "--tls13-ciphers", name], ktls)


CIPHERS = [
    _tls12("ECDHE-ECDSA-AES128-GCM-SHA256"),
    _tls12("ECDHE-ECDSA-AES256-GCM-SHA384"),
    _tls12("ECDHE-ECDSA-CHACHA20-POLY1305"),
    _tls12("ECDHE-ECDSA-AES128-CCM"),
    _tls13("TLS_AES_128_GCM_SHA256"),
    _tls13("TLS_AES_256_GCM_SHA384"),
    _tls13("TLS_CHACHA20_POLY1305_SHA256"),
    _tls13("TLS_AES_128_CCM_SHA256", ktls=TLS13_CCM_IN_KERNEL),
]
SERVER_TLS13_SUITES = ("TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                       "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_CCM_SHA256")
SERVER_TLS12_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-CCM")


class Fetch:
    """One curl run: the client ports of its connections, and per URL the
    sha256 of the body, its size and the HTTP status; curl's error line
    ("curl: (56) ..."), if any."""

    def __init__(self, results, ports, cipher, returncode, error=""):
        self.results, self.ports, self.cipher = results, ports, cipher
        self.returncode, self.error = returncode, error


# The traces key connections by the client's port, so no two fetches of a
# test may share one.  Left to the kernel they can: Linux reuses a
# TIME_WAIT port for loopback connections (net.ipv4.tcp_tw_reuse = 2).  So
# each fetch gets its own 10-port range (curl tries them in turn), below
# the ephemeral range, unique within a process for 2000 fetches.
_LOCAL_PORTS = (10000, 30000)
_local_port_lock = threading.Lock()
_next_local_port = [_LOCAL_PORTS[0] + (os.getpid() % 1000) * 20]


def _local_port_range():
    with _local_port_lock:
        first = _next_local_port[0]
        _next_local_port[0] += 10
        if _next_local_port[0] >= _LOCAL_PORTS[1]:
            _next_local_port[0] = _LOCAL_PORTS[0]
    return "%d-%d" % (first, first + 9)


def fetch(port, paths, extra=(), ranges=None, timeout=600):
    """Downloads https://127.0.0.1:PORT/PATH for each path with one curl (so
    one keep-alive connection), hashing the bodies.  ranges: one "a-b" per
    path or None."""
    outdir = tempfile.mkdtemp(dir="/tmp", prefix="fetch-")
    cmd = CLIENT_NETNS + ["curl"]
    local_ports = _local_port_range()
    for i, p in enumerate(paths):
        # curl's options apply per URL; --next starts the next URL's.  The
        # same options let the URLs share one keep-alive connection.
        cmd += (["--next"] if i > 0 else []) + ["-sSk", "--http1.1", "-v", "--max-time",
                                                 str(timeout), "--local-port", local_ports]
        cmd += list(extra)
        if ranges and ranges[i]:
            cmd += ["-r", ranges[i]]
        cmd += ["-w", "%{http_code} %{size_download} %{local_port} %{http_version}\\n",
                "-o", os.path.join(outdir, str(i)), "https://%s:%d/%s" % (SERVER_HOST, port, p)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout + 60)
    lines = proc.stdout.split("\n")
    results, ports = [], []
    for i, p in enumerate(paths):
        status, size, local_port, http = ((lines[i].split() if i < len(lines) else [])
                                          + ["0"] * 4)[:4]
        body = os.path.join(outdir, str(i))
        digest = sha256_of_file(body) if os.path.exists(body) else None
        results.append({"path": p, "status": int(status), "size": int(size), "sha256": digest,
                        "http_version": http})
        ports.append(int(local_port))
    shutil.rmtree(outdir, ignore_errors=True)
    m = re.search(r"SSL connection using (\S+) / (\S+)", proc.stderr)
    cipher = (m.group(1), m.group(2)) if m else None
    errors = [l for l in proc.stderr.splitlines() if l.startswith("curl: (")]
    return Fetch(results, ports, cipher, proc.returncode, errors[0] if errors else "")


def sha256_of_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_of_range(path, first, last):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(first)
        h.update(f.read(last - first + 1))
    return h.hexdigest()


# --- strace ---------------------------------------------------------------

_SOCK = r"(\d+)<TCP:\[([\d.]+):(\d+)->([\d.]+):(\d+)\]>"
# strace 6.1 does not name TLS_TX_ZEROCOPY_RO (3): it prints "0x3 /* TLS_??? */".
_SETSOCKOPT = re.compile(r"^setsockopt\(" + _SOCK + r", SOL_TLS, "
                         r"(TLS_TX_ZEROCOPY_RO|TLS_TX|0x3 /\* TLS_\?\?\? \*/)"
                         r"(?:, \[(\d+)\])?.*\) = (-?\d+)")
_SENDFILE = re.compile(r"^sendfile(?:64)?\(" + _SOCK + r", \d+<([^>]*)>, (?:\[(\d+)\]|NULL)"
                       r"(?: => \[\d+\])?, (\d+)\) = (-?\d+)")


class Send:
    def __init__(self, tid, peer_port, path, offset, count, result, flag):
        self.tid, self.peer_port, self.path = tid, peer_port, path
        self.offset, self.count, self.result, self.flag = offset, count, result, flag

    def __repr__(self):
        return "sendfile(%s @%s +%d = %d, flag %d, port %d)" % (
            self.path, self.offset, self.count, self.result, self.flag, self.peer_port)


class Trace:
    """The kTLS sends and flag changes of a server, from strace -ff -yy
    files PREFIX.TID.  The flag of a socket is what its last successful
    setsockopt(SOL_TLS, TLS_TX_ZEROCOPY_RO) set, 0 from TLS_TX on."""

    def __init__(self, prefix):
        self.sends = []  # on kTLS TX sockets (plain ones are skipped), in per-thread order
        self.flag_sets = {}    # client port -> [values set, in order]
        self.ktls_ports = set()
        events = []
        for name in glob.glob(prefix + ".*"):
            tid = int(name.rsplit(".", 1)[1])
            with open(name, errors="replace") as f:
                for n, line in enumerate(f):
                    events.append((tid, n, line.strip()))
        # Sockets are per-process but one client port is one connection, and
        # the flag lives in the socket: replay per port.  Threads of one
        # worker can touch one socket (aio threads), so order within a
        # thread's file is exact and across threads the flag of a port is
        # only ever changed by one thread at a time (nginx serialises a
        # connection); sort by thread, then line.
        flag = {}
        for tid, _, line in sorted(events):
            m = _SETSOCKOPT.match(line)
            if m:
                port, opt, value, rc = int(m.group(5)), m.group(6), m.group(7), int(m.group(8))
                if rc != 0:
                    continue
                if opt == "TLS_TX":
                    self.ktls_ports.add(port)
                    flag[port] = 0
                else:
                    flag[port] = int(value)
                    self.flag_sets.setdefault(port, []).append(int(value))
                continue
            m = _SENDFILE.match(line)
            if m and int(m.group(5)) in self.ktls_ports:
                port = int(m.group(5))
                self.sends.append(Send(tid, port, m.group(6),
                                       int(m.group(7)) if m.group(7) else None, int(m.group(8)),
                                       int(m.group(9)), flag[port]))

    def for_port(self, port):
        return [s for s in self.sends if s.peer_port == port]


class StraceServer:
    """A server command run under `zctls run` (unless shim=False) and
    strace.  Remove the trace files between phases with reset_trace()."""

    def __init__(self, work, name, command, config=None, shim=True, env=None, cwd=None):
        self.prefix = os.path.join(work, name + ".strace")
        wrapped = list(command)
        if shim:
            wrapped = [zctls_cli(), "run"] + (["--config", config] if config else []) + ["--"] + wrapped
        self.cmd = SERVER_NETNS + ["strace", "-ff", "-yy", "-qq", "-s", "0", "-o", self.prefix,
                    "-e", "trace=setsockopt,sendfile,sendfile64", "-e", "signal=none"] + wrapped
        self.log = open(os.path.join(work, name + ".out"), "w")
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env, cwd=cwd)

    def trace(self):
        return Trace(self.prefix)

    def reset_trace(self):
        for name in glob.glob(self.prefix + ".*"):
            # strace keeps the files of live threads open: truncate, not unlink.
            open(name, "w").close()

    def stop(self, sig=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def wait_for_port(port, timeout=120):
    import socket
    deadline = time.time() + timeout
    while time.time() < deadline:
        if CLIENT_NETNS:  # a connection from the client namespace
            if subprocess.run(CLIENT_NETNS + ["bash", "-c", "exec 3<>/dev/tcp/%s/%d"
                                              % (SERVER_HOST, port)],
                              stderr=subprocess.DEVNULL).returncode == 0:
                return True
            time.sleep(0.2)
            continue
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def stats_files(directory):
    """{(pid, start time)} of the zctls process files in `directory`."""
    out = set()
    for name in os.listdir(directory) if os.path.isdir(directory) else []:
        m = re.match(r"zctls-(\d+)-(\d+)\.stats$", name)
        if m:
            out.add((int(m.group(1)), int(m.group(2))))
    return out


def zctls_stats(stats_dir):
    out = run([zctls_cli(), "stats", "--dir", stats_dir, "--json"]).stdout
    return json.loads(out)


def main_guard(body):
    try:
        sys.exit(body())
    except Failure as e:
        print("FAIL " + str(e))
        sys.exit(1)


class ServerE2E:
    """A server under zctls serving a tree by the rules of
    examples/zctls-static-site.toml: assets/ zerocopy, everything else copy.
    Subclasses start self.server (a StraceServer) and run phases."""

    def __init__(self, name):
        self.name = name
        self.c = Checks()
        self.work = tempfile.mkdtemp(dir="/tmp", prefix=name + "-")
        os.chmod(self.work, 0o755)
        self.www = os.path.join(self.work, "site")
        self.stats = os.path.join(self.work, "stats")
        os.mkdir(self.stats)
        os.chmod(self.stats, 0o1777)  # workers may run as another user
        self.port = free_port()
        self.server = None

    def make_files(self, files):
        self.digests = make_tree(self.www, files)
        self.created = time.time()

    def run_server(self, files, steps, logs):
        """The whole run of a one-process server test: the tree, the
        config, self.start(), each step, then stop and clean up; the exit
        status."""
        started = time.time()
        try:
            self.make_files(files)
            self.write_zctls_config()
            self.start()
            for step in steps:
                step()
        finally:
            if self.server is not None:
                self.server.stop()
            self.cleanup(logs)
            print("%s: %.0f s" % (self.name, time.time() - started))
        return self.c.finish()

    def write_zctls_config(self, stats_dir=None, top="", offload=None):
        """The shipped static-site config, for this tree, counting into
        self.stats (or `stats_dir`; "" keeps counters private), with `top`
        (top-level keys) first.  [kernel] offload = "assume" unless told
        otherwise or on the emulated offload NIC: the bench's loopback kTLS
        is software, where under the default ("auto") zctls leaves every
        send alone.  Written whole and renamed into place, as a deploy
        should."""
        if offload is None:
            offload = "" if ON_NIC else "assume"
        with open(os.path.join(EXAMPLES_DIR, "zctls-static-site.toml")) as f:
            toml = top + f.read().replace("/var/www/site", self.www)
        self.config = os.path.join(self.work, "zctls.toml")
        with open(self.config + ".new", "w") as f:
            f.write(toml + '\n[stats]\ndir = "%s"\n'
                    % (self.stats if stats_dir is None else stats_dir))
            if offload:
                f.write('\n[kernel]\noffload = "%s"\n' % offload)
        os.rename(self.config + ".new", self.config)

    def wait_settled(self):
        # Within the settle window (2 s) a fresh file goes by copy.
        time.sleep(max(0.0, self.created + 2.5 - time.time()))

    def cleanup(self, logs=()):
        """On failure, show the server's logs; then free the guest's tmpfs
        (later tests share the guest)."""
        if self.c.failed:
            for name in logs:
                if os.path.exists(name):
                    print("--- last lines of %s" % name)
                    print("".join(open(name, errors="replace").readlines()[-30:]), end="")
        shutil.rmtree(self.work, ignore_errors=True)

    def expected_flag(self, path):
        """What examples/zctls-static-site.toml says, written out independently."""
        return 1 if os.path.relpath(path, self.www).startswith("assets/") else 0

    # --- checking one phase ------------------------------------------------

    def stats_totals(self):
        return zctls_stats(self.stats)["totals"]

    def check_fetch(self, fetch, what, ranges=None):
        """Bodies identical; each response's sends carried the flag its file
        calls for; the flag was set only when it had to change."""
        ok = fetch.returncode == 0
        for i, r in enumerate(fetch.results):
            want = self.digests[r["path"]]
            if ranges and ranges[i]:
                first, _, last = ranges[i].partition("-")
                size = os.path.getsize(os.path.join(self.www, r["path"]))
                last = int(last) if last else size - 1
                want = sha256_of_range(os.path.join(self.www, r["path"]), int(first), last)
                ok &= r["status"] == 206
            else:
                ok &= r["status"] == 200
            ok &= r["sha256"] == want
        self.c.check(ok, what + ": bodies byte-identical",
                     "curl %d: %s" % (fetch.returncode,
                                      [(r["path"], r["status"], r["size"]) for r in fetch.results]))
        return ok

    def failed_fetches(self, fetches):
        """Indexes of the fetches that failed or got bytes other than the file's."""
        return [i for i, f in enumerate(fetches)
                if f.returncode != 0 or any(r["sha256"] != self.digests[r["path"]]
                                            for r in f.results)]

    def check_flags(self, trace, what, ports=None, app_sets=False):
        """app_sets: the server (its OpenSSL) sets the flag to 1 itself when
        the key is installed, perhaps more than once; zctls's own sets
        follow those."""
        sends = trace.sends if ports is None else [s for s in trace.sends if s.peer_port in ports]
        wrong = [s for s in sends if s.flag != self.expected_flag(s.path)]
        self.c.check(sends and not wrong, what + ": %d kTLS sendfile calls, each with the flag "
                     "its file's rule gives" % len(sends), "wrong: %s" % wrong[:5])

        def zctls_sets(values):  # what zctls set: a flag that starts at 0
            # (The server's own 1s come first, one or more: OpenSSL sets it
            # at each key; a redundant 1 of zctls's right after them would
            # go unseen.)
            if app_sets:
                while values[:1] == [1]:
                    values = values[1:]
                return [1] + values
            return [0] + values

        redundant = [p for p, values in trace.flag_sets.items()
                     if any(a == b for a, b in zip(zctls_sets(values), zctls_sets(values)[1:]))]
        self.c.check(not redundant, what + ": setsockopt only when the flag must change",
                     "ports %s: %s" % (redundant[:3], [trace.flag_sets[p] for p in redundant[:3]]))
        return sends

    def check_stats(self, before, trace, what, integrity_events=0, software=False):
        after = self.stats_totals()
        delta = {k: after[k] - before.get(k, 0) for k in ("sends", "zerocopy_sends", "bytes",
                                                           "integrity_events")}
        # On software kTLS the flag does nothing and every send is a copy,
        # whatever the application set.
        want = {"sends": len(trace.sends),
                "zerocopy_sends": 0 if software else sum(1 for s in trace.sends if s.flag == 1),
                "bytes": sum(max(s.result, 0) for s in trace.sends),
                "integrity_events": integrity_events}
        self.c.equal(delta, want, what + ": zctls stats agree with strace")
        copies = sum(v for k, v in after.items() if k.startswith("copy_") and k != "copy_bytes")
        self.c.equal((after["sends"], after["bytes"]),
                     (after["zerocopy_sends"] + copies,
                      after["zerocopy_bytes"] + after["copy_bytes"]),
                     what + ": zctls stats: sends = zerocopy + copies, bytes likewise")

    # --- on the emulated offload NIC -----------------------------------------

    def fetch_on_nic(self, what, files, zerocopy, extra=("--tls-max", "1.2"), app_sets=False):
        """Fetches files of one kind over the offload NIC (all by a zerocopy
        rule, or all by copy), as a phase.  Its witness, independent of
        zctls's counters: the payload bytes the NIC sent from page-cache
        pages must cover what the server sent by sendfile (strace) for
        zerocopy, and be none for copy (what goes by SSL_write is always a
        copy).  Returns (Fetch, share of the NIC's payload from pages)."""
        counters = {}

        def body():
            counters["before"] = nic_counters()
            f = fetch(self.port, files, extra=list(extra))
            counters["after"] = nic_counters()
            return f

        trace, f = self.phase(what, body)
        self.check_fetch(f, what)
        self.check_flags(trace, what, app_sets=app_sets)
        delta = {k: counters["after"][k] - counters["before"][k]
                 for k in ("tx_tls_pagecache_bytes", "tx_tls_private_bytes")}
        pages, total = delta["tx_tls_pagecache_bytes"], sum(delta.values())
        sent = sum(max(s.result, 0) for s in trace.sends)
        if zerocopy:
            self.c.check(sent > 0 and sent <= pages <= 1.05 * sent, what + ": the NIC sent the "
                         "%d bytes of sendfile from the files' page-cache pages" % sent,
                         "%d bytes from pages" % pages)
        else:
            self.c.check(sent > 0 and pages == 0, what + ": the NIC sent copies only, not one "
                         "page-cache byte", "%d bytes from pages" % pages)
        return f, pages / total if total else 0.0

    def hazard(self, rel, at, rewrite, extra=()):
        """The NIC loses the first frame of `rel`'s response that reaches
        byte `at` of the TLS stream and holds its retransmissions while the
        file's bytes in `rewrite` (first, last) that the server has
        already handed to the socket are rewritten in place, then releases
        it.  `at` and `rewrite` are chosen so that the lost frame carries
        some of those bytes (a stream byte is its file byte plus the
        response headers and 29 bytes per 16 KiB record before it).
        Returns the Fetch; the file gets its bytes back afterwards."""
        path = os.path.join(self.www, rel)
        first, last = rewrite
        with open(path, "rb") as f:
            f.seek(first)
            original = f.read(last - first)
        lost = nic_counters()["tx_tls_loss_dropped"]
        nic_loss("@%d" % at)
        got = {}
        client = threading.Thread(target=lambda: got.update(
            f=fetch(self.port, [rel], extra=list(extra), timeout=120)))
        client.start()
        try:
            deadline = time.time() + 60
            while nic_counters()["tx_tls_loss_dropped"] == lost and time.time() < deadline:
                time.sleep(0.1)
            if nic_counters()["tx_tls_loss_dropped"] == lost:
                raise Failure("hazard: the NIC lost no frame of " + rel)
            # The server stalls behind the hole; what it has handed to the
            # socket by then (strace: sendfile's offsets and results) is
            # queued, the lost frame's bytes among it.
            queued, since = None, time.time()
            while time.time() - since < 1.0 and time.time() < deadline:
                now = server_send_queue(self.port, None)
                if now != queued:
                    queued, since = now, time.time()
                time.sleep(0.1)
            handed = max(((s.offset or 0) + max(s.result, 0)
                          for s in self.server.trace().sends if s.path == path), default=0)
            if handed <= first:
                raise Failure("hazard: the server had sent none of %s's bytes %d-%d when it "
                              "stalled (strace)" % (rel, first, last))
            size = max(0, min(last, handed) - first)
            with open(path, "r+b") as f:
                f.seek(first)
                f.write(bytes(b ^ 0xFF for b in original[:size]))
            time.sleep(0.3)  # its retransmissions held meanwhile
        finally:
            nic_loss(0)
            client.join()
            with open(path, "r+b") as f:
                f.seek(first)
                f.write(original)
        return got.get("f")

    def phase(self, what, body, integrity_events=0, software=False):
        """Runs body() between a trace reset and the trace read-back.
        software: its connections are software kTLS (check_stats)."""
        self.server.reset_trace()
        before = self.stats_totals()
        result = body()
        time.sleep(0.5)  # strace flushes per line; let the last ones land
        trace = self.server.trace()
        self.check_stats(before, trace, what, integrity_events, software)
        return trace, result


def server_send_queue(port, client_port):
    """Bytes queued and unacknowledged in the server's socket of the
    connection from `client_port` (ss: Send-Q; None: the server's only
    connection), or None if not found."""
    match = "( sport = :%d )" % port if client_port is None else \
        "( sport = :%d and dport = :%d )" % (port, client_port)
    out = subprocess.run(SERVER_NETNS + ["ss", "-Htn", "state", "established", match],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    fields = out.split()
    return int(fields[1]) if len(fields) >= 2 else None


def wait_until_stalled(port, client_port, timeout=120):
    """Waits until the server has filled its socket's queue and stopped:
    Send-Q over 256 KiB and unchanged for half a second.  Only then is the
    server sure to be waiting for the peer and not inside a sendfile call
    (on a loaded TCG guest one can last longer than a fixed sleep)."""
    deadline = time.time() + timeout
    last, since = None, time.time()
    while time.time() < deadline:
        queued = server_send_queue(port, client_port)
        if queued != last:
            last, since = queued, time.time()
        elif queued is not None and queued > 256 * 1024 and time.time() - since >= 0.5:
            return queued
        time.sleep(0.05)
    raise Failure("the server's send queue to client port %d never stalled (last %s)"
                  % (client_port, last))


def paused_download(port, rel, pause_after, during_pause):
    """GET over TLS that stops reading after `pause_after` body bytes, waits
    until the server's sends stall (wait_until_stalled), runs
    during_pause(), then reads the rest.  Returns (bytes, sha256)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port)) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        client_port = tls.getsockname()[1]
        tls.sendall(("GET /%s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                     % rel).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += tls.recv(65536)
        head, body = data.split(b"\r\n\r\n", 1)
        h = hashlib.sha256(body)
        size = len(body)
        paused = False
        while True:
            if not paused and size >= pause_after:
                wait_until_stalled(port, client_port)
                during_pause()
                paused = True
            block = tls.recv(1 << 20)
            if not block:
                break
            h.update(block)
            size += len(block)
    return size, h.hexdigest()


def probe_json():
    r = subprocess.run([zctls_cli(), "probe", "--json"], stdout=subprocess.PIPE, text=True)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return {}
