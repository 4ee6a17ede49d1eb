"""Peers for the SOCKS5 UDP tests: a UDP echo server that records what it
got, and a dnsmasq on loopback answering from its own --address."""

import os
import shutil
import socket
import subprocess
import tempfile
import threading

from harness import wait_until


class UdpEcho:
    """Answers every datagram with b"echo:" + it; counts what it got."""

    def __init__(self, host="127.0.0.1"):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.got = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                data, addr = self.sock.recvfrom(65535)
            except OSError:
                return
            with self.lock:
                self.got.append((data, addr))
            try:
                self.sock.sendto(b"echo:" + data, addr)
            except OSError:
                pass

    def count(self):
        with self.lock:
            return len(self.got)

    def close(self):
        self.sock.close()


class Dnsmasq:
    """dnsmasq on 127.0.0.1:port answering A queries for NAME from its own
    --address (no upstream, no hosts file). It binds the port for TCP too,
    which another process may hold: a start that fails is tried again on
    another port."""

    def __init__(self, name, ip):
        self.tmp = tempfile.mkdtemp(prefix="dnsmasq-")
        self.proc = None
        why = ""
        for _ in range(5):
            if self._start(name, ip):
                return
            with open(self.log, errors="replace") as f:
                why = f.read().strip()
        raise AssertionError("dnsmasq does not start: " + why)

    def _start(self, name, ip):
        exe = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        args = [exe, "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                "--listen-address=127.0.0.1", "--bind-interfaces",
                f"--port={self.port}", f"--address=/{name}/{ip}",
                f"--pid-file={self.tmp}/pid", "--log-facility=-"]
        if os.geteuid() == 0:
            args.append("--user=root")
        self.log = os.path.join(self.tmp, "log")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
        wait_until(lambda: self.proc.poll() is not None or self._answers(), 30,
                   "dnsmasq does not answer")
        return self.proc.poll() is None

    def _answers(self):
        q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            try:
                s.sendto(q, ("127.0.0.1", self.port))
                return s.recv(512)[:2] == b"\x12\x34"
            except OSError:
                return False

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        shutil.rmtree(self.tmp, ignore_errors=True)
