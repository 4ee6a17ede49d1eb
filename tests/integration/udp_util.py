"""Helpers for the SOCKS5 UDP ASSOCIATE and BIND tests: a UDP echo server,
raw UDP ASSOCIATE (so tests can also send bad datagrams), the SOCKS UDP
header, and a dnsmasq on loopback."""

import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading

from helpers import connect, recv_exact, socks5_read_reply, socks5_target, wait_until


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


def udp_header(host, port, frag=0):
    return b"\0\0" + bytes([frag]) + socks5_target(host, port)


def parse_udp(data):
    """(host, port, payload) of a datagram from the relay."""
    assert data[:3] == b"\0\0\0", data[:8]
    atyp = data[3]
    if atyp == 1:
        host, off = socket.inet_ntop(socket.AF_INET, data[4:8]), 8
    elif atyp == 4:
        host, off = socket.inet_ntop(socket.AF_INET6, data[4:20]), 20
    else:
        n = data[4]
        host, off = data[5:5 + n].decode(), 5 + n
    port = struct.unpack(">H", data[off:off + 2])[0]
    return host, port, data[off + 2:]


def udp_associate(proxy_port, user=None, password=None, dst=("0.0.0.0", 0)):
    """A raw UDP ASSOCIATE: (control socket, REP, relay (host, port))."""
    s = connect(proxy_port)
    if user is None:
        s.sendall(b"\x05\x01\x00")
        assert recv_exact(s, 2) == b"\x05\x00"
    else:
        s.sendall(b"\x05\x01\x02")
        assert recv_exact(s, 2) == b"\x05\x02"
        u, p = user.encode(), password.encode()
        s.sendall(b"\x01" + bytes([len(u)]) + u + bytes([len(p)]) + p)
        assert recv_exact(s, 2) == b"\x01\x00"
    s.sendall(b"\x05\x03\x00" + socks5_target(*dst))
    rep, raw = socks5_read_reply(s)
    if raw[3] == 1:
        relay = (socket.inet_ntop(socket.AF_INET, raw[4:8]), struct.unpack(">H", raw[8:10])[0])
    else:
        relay = (socket.inet_ntop(socket.AF_INET6, raw[4:20]), struct.unpack(">H", raw[20:22])[0])
    return s, rep, relay


def udp_client(relay, timeout=10.0):
    fam = socket.AF_INET6 if ":" in relay[0] else socket.AF_INET
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.bind(("::1" if fam == socket.AF_INET6 else "127.0.0.1", 0))
    u.settimeout(timeout)
    return u


def udp_roundtrip(u, relay, host, port, payload):
    """Send payload to host:port through the relay; the reply's (host,
    port, payload)."""
    u.sendto(udp_header(host, port) + payload, relay)
    return parse_udp(u.recvfrom(65535)[0])


class Dnsmasq:
    """dnsmasq on 127.0.0.1:port answering A queries for NAME from its own
    --address (no upstream, no hosts file)."""

    def __init__(self, name, ip):
        exe = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.tmp = tempfile.mkdtemp(prefix="dnsmasq-")
        args = [exe, "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                "--listen-address=127.0.0.1", "--bind-interfaces",
                f"--port={self.port}", f"--address=/{name}/{ip}",
                f"--pid-file={self.tmp}/pid", "--log-facility=-"]
        if os.geteuid() == 0:
            args.append("--user=root")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_until(self._answers, 10, "dnsmasq does not answer")

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
