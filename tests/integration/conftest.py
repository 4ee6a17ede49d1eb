"""Shared fixtures for the black-box tests: start the real daemon on free
loopback ports, wait for readiness through the systemd notify protocol (no
sleeps), stop it by pid, and fail the test if the daemon's log shows a
sanitizer report."""

import hashlib
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from helpers import free_port, free_ports, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("NEOSOCKSD_BIN", os.path.join(ROOT, "build", "neosocksd"))
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


def pytest_sessionstart(session):
    """Started as root, the daemon runs its children as 'neosocksd' and
    'neosocksd-rules' (sandbox/neosocksd.sysusers) and refuses to start
    without them: create them when missing, as on a fresh CI machine."""
    if os.geteuid() == 0:
        subprocess.run([os.path.join(ROOT, "mk", "users.sh")], check=True)


class Daemon:
    """One neosocksd process tree started by a test."""

    def __init__(self, args, env=None, binary=None, tmpdir=None):
        self.args = list(args)
        self.binary = binary or BIN
        self.tmp = tempfile.mkdtemp(prefix="nsd-", dir=tmpdir)
        self.logpath = os.path.join(self.tmp, "daemon.log")
        self.notify_path = os.path.join(self.tmp, "notify")
        self.env = dict(os.environ)
        self.env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
        # extra settings for the daemon only (not for pytest itself), e.g.
        # the malloc-perturbation run: "LD_PRELOAD=... MALLOC_CHECK_=3"
        for kv in os.environ.get("NEOSOCKSD_TEST_ENV", "").split():
            k, _, v = kv.partition("=")
            self.env[k] = v
        if env:
            self.env.update(env)
        self.proc = None
        self.notify = None
        self.notes = []

    def start(self, wait_ready=True, timeout=15.0):
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        os.chmod(self.notify_path, 0o777)  # tests may run the daemon unprivileged
        self.env["NOTIFY_SOCKET"] = self.notify_path
        self.logf = open(self.logpath, "wb")
        self.proc = subprocess.Popen(
            [self.binary] + self.args,
            stdin=subprocess.DEVNULL,
            stdout=self.logf,
            stderr=self.logf,
            env=self.env,
        )
        if wait_ready:
            self.wait_notify("READY=1", timeout)
        return self

    def wait_notify(self, what, timeout=15.0):
        """Wait for a notify datagram containing `what`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what} within {timeout}s; log:\n{self.log()}")
            self.notify.settimeout(min(left, 0.2))
            try:
                msg = self.notify.recv(4096).decode()
            except socket.timeout:
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"daemon exited with {self.proc.returncode} before {what}; log:\n{self.log()}"
                    )
                continue
            self.notes.append(msg)
            if what in msg.split("\n"):
                return msg

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def children(self):
        """Pids of the direct children (front, ruleset)."""
        out = []
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
                out = [int(x) for x in f.read().split()]
        except FileNotFoundError:
            pass
        return out

    def child_by_title(self, title):
        for pid in self.children():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if f.read().split(b"\0")[0].decode() == title:
                        return pid
            except FileNotFoundError:
                continue
        return None

    def wait_log(self, pattern, timeout=10.0, count=1):
        """Poll the log until `pattern` occurs `count` times."""
        wait_until(lambda: self.log().count(pattern) >= count, timeout,
                   lambda: f"'{pattern}' x{count} not in log:\n{self.log()}")

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"daemon did not stop on signal {sig}; log:\n{self.log()}")
        return self.proc.returncode

    def close(self):
        try:
            self.stop()
        finally:
            if self.notify:
                self.notify.close()
            self.logf.close()

    def sanitizer_report(self):
        text = self.log()
        for mark in SANITIZER_MARKS:
            if mark in text:
                return text
        return None


@pytest.fixture
def daemon_factory(tmp_path):
    """daemon_factory(args...) -> started Daemon; all are stopped at teardown
    and a sanitizer report in any daemon's log fails the test."""
    started = []

    def make(*args, env=None, wait_ready=True, binary=None):
        d = Daemon(args, env=env, binary=binary, tmpdir=str(tmp_path))
        started.append(d)
        return d.start(wait_ready=wait_ready)

    yield make
    reports = []
    for d in started:
        d.close()
        rep = d.sanitizer_report()
        if rep:
            reports.append(rep)
    if reports:
        pytest.fail("sanitizer report in daemon log:\n" + reports[0][-6000:])


class ProxyPorts:
    """A daemon serving SOCKS on .socks and HTTP on .http."""

    def __init__(self, d, socks, http):
        self.d, self.socks, self.http = d, socks, http


@pytest.fixture
def proxy(daemon_factory):
    socks, http = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--http", f"127.0.0.1:{http}",
                       "--loglevel", "5")
    return ProxyPorts(d, socks, http)


# ---- local servers used as targets ----

class HTTPFiles:
    """A threaded HTTP/1.1 server on 127.0.0.1 and ::1 serving /size/N
    (N deterministic bytes) and / (a short page)."""

    def __init__(self):
        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path.startswith("/size/"):
                    n = int(self.path[6:])
                    body = pattern_bytes(n)
                else:
                    body = b"hello from the target\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class V6Server(http.server.ThreadingHTTPServer):
            address_family = socket.AF_INET6

        self.port = free_port()
        self.servers = [http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)]
        try:
            self.servers.append(V6Server(("::1", self.port), Handler))
        except OSError:
            pass
        self.threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in self.servers]
        for t in self.threads:
            t.start()

    def close(self):
        for s in self.servers:
            s.shutdown()
            s.server_close()


def pattern_bytes(n, seed=b"neosocksd"):
    """n deterministic pseudo-random bytes."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:n])


@pytest.fixture(scope="session")
def http_target():
    s = HTTPFiles()
    yield s
    s.close()


class HashServer:
    """For data-integrity tests. A client sends "<n>\\n", then any number of
    bytes and a half-close. The server concurrently sends n bytes of
    pattern_bytes(n, b"srv"), then, after the client's EOF, the SHA-256 of
    everything it received (32 bytes), then closes."""

    def __init__(self, host="127.0.0.1"):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            line = b""
            while not line.endswith(b"\n"):
                ch = c.recv(1)
                if not ch:
                    return
                line += ch
            n = int(line)
            sender = threading.Thread(target=c.sendall, args=(pattern_bytes(n, b"srv"),))
            sender.start()
            h = hashlib.sha256()
            while True:
                data = c.recv(65536)
                if not data:
                    break
                h.update(data)
            sender.join()
            c.sendall(h.digest())
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.stopping = True
        self.sock.close()


@pytest.fixture(scope="session")
def hash_server():
    s = HashServer()
    yield s
    s.close()


@pytest.fixture(scope="session")
def hash_server6():
    s = HashServer("::1")
    yield s
    s.close()
