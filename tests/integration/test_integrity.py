"""Data integrity: several MiB in both directions at once through every
protocol, the buffered relay (--no-pipe), -f forwarding and a chain, plus
half-close in each direction."""

import hashlib
import os
import queue
import socket
import threading

import pytest

from harness import (connect, exchange, free_port, http_connect, pattern_bytes, read_head, recv_all,
                     recv_exact, socks4_connect, socks5_connect, socks5_read_reply, socks5_target,
                     start_proxy)


@pytest.fixture
def proxy(daemon_factory):
    """Like conftest's proxy, but with two ports that are surely distinct."""
    return start_proxy(daemon_factory)


MIB = 1 << 20
UP = 6 * MIB
DOWN = 6 * MIB


def open_tunnel(mode, ports, hs, hs6):
    """Open a tunnel to the HashServer through a daemon; returns a socket."""
    if mode == "socks4":
        s, cd = socks4_connect(ports.socks, "127.0.0.1", hs.port)
        assert cd == 90, f"SOCKS4 CD {cd}"
    elif mode == "socks4a":
        s, cd = socks4_connect(ports.socks, "localhost", hs.port)
        assert cd == 90, f"SOCKS4A CD {cd}"
    elif mode == "socks5-ipv4":
        s, rep = socks5_connect(ports.socks, "127.0.0.1", hs.port)
        assert rep == 0, f"REP {rep}"
    elif mode == "socks5-ipv6":
        s, rep = socks5_connect(ports.socks, "::1", hs6.port)
        assert rep == 0, f"REP {rep}"
    elif mode == "socks5-domain":
        s, rep = socks5_connect(ports.socks, "localhost", hs.port)
        assert rep == 0, f"REP {rep}"
    elif mode == "http-connect":
        s, status, head = http_connect(ports.http, f"127.0.0.1:{hs.port}")
        assert status == 200, head
    elif mode == "http-connect-ipv6":
        s, status, head = http_connect(ports.http, f"[::1]:{hs6.port}")
        assert status == 200, head
    else:
        raise AssertionError(mode)
    return s


MODES = ["socks4", "socks4a", "socks5-ipv4", "socks5-ipv6", "socks5-domain",
         "http-connect", "http-connect-ipv6"]


@pytest.mark.parametrize("mode", MODES)
def test_bulk_both_ways(proxy, hash_server, hash_server6, mode):
    s = open_tunnel(mode, proxy, hash_server, hash_server6)
    with s:
        exchange(s, UP, DOWN)
    # the access log counts every byte of the tunnel (request line + payload
    # up, payload + digest down)
    up = len(f"{DOWN}\n") + UP
    proxy.d.wait_log(f" up={up} down={DOWN + 32} ")


@pytest.mark.parametrize("mode", ["socks5-ipv4", "socks4", "http-connect"])
def test_bulk_buffered_relay(daemon_factory, hash_server, hash_server6, mode):
    p = start_proxy(daemon_factory, "--no-pipe")
    with open_tunnel(mode, p, hash_server, hash_server6) as s:
        exchange(s, UP, DOWN)


def test_bulk_forward(daemon_factory, hash_server):
    port = free_port()
    d = daemon_factory("-l", f"127.0.0.1:{port}", "-f", f"127.0.0.1:{hash_server.port}",
                       "--loglevel", "5")
    with connect(port) as s:
        exchange(s, UP, DOWN)
    d.wait_log(f"proto=forward target=127.0.0.1:{hash_server.port} route=direct")


def test_bulk_forward_buffered(daemon_factory, hash_server):
    port = free_port()
    daemon_factory("-l", f"127.0.0.1:{port}", "-f", f"127.0.0.1:{hash_server.port}",
                   "--no-pipe")
    with connect(port) as s:
        exchange(s, UP, DOWN)


@pytest.mark.parametrize("scheme", ["socks5", "http", "socks4a"])
def test_bulk_through_chain(daemon_factory, proxy, hash_server, hash_server6, scheme):
    hop_port = proxy.http if scheme == "http" else proxy.socks
    b = start_proxy(daemon_factory, "-x", f"{scheme}://127.0.0.1:{hop_port}")
    with open_tunnel("socks5-ipv4", b, hash_server, hash_server6) as s:
        exchange(s, UP, DOWN)
    with open_tunnel("http-connect", b, hash_server, hash_server6) as s:
        exchange(s, MIB, MIB)


def test_many_concurrent_tunnels(proxy, hash_server, hash_server6):
    """Several tunnels at once, each with its own data, stay separate."""
    errors = []

    def one(i):
        try:
            mode = MODES[i % len(MODES)]
            with open_tunnel(mode, proxy, hash_server, hash_server6) as s:
                exchange(s, 300000 + i * 977, 200000 + i * 1231)
        except Exception as e:  # reported below
            errors.append(f"tunnel {i}: {e!r}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "tunnels hung"
    assert not errors, errors


# ---- half-close ----

@pytest.mark.parametrize("mode", ["socks5-ipv4", "http-connect"])
def test_client_half_closes_first(proxy, hash_server, hash_server6, mode):
    """The client sends only the size line, half-closes at once and then
    only reads: all server-to-client data still arrives."""
    n = 3 * MIB
    s = open_tunnel(mode, proxy, hash_server, hash_server6)
    with s:
        s.settimeout(30)
        s.sendall(f"{n}\n".encode())
        s.shutdown(socket.SHUT_WR)
        got = recv_exact(s, n + 32)
        assert got[:n] == pattern_bytes(n, b"srv")
        assert got[n:] == hashlib.sha256(b"").digest()
        assert recv_all(s) == b""


@pytest.mark.parametrize("proto", ["socks5", "http"])
def test_client_half_closes_right_after_pipelined_request(proxy, hash_server, proto):
    """Request, first data and the client's FIN all arrive before the
    daemon has even dialed: the data is relayed, then the EOF, and the
    whole download still arrives."""
    n = MIB
    s = socket.create_connection(("127.0.0.1", proxy.socks if proto == "socks5" else proxy.http),
                                 timeout=30)
    with s:
        if proto == "socks5":
            s.sendall(b"\x05\x01\x00" + b"\x05\x01\x00"
                      + socks5_target("127.0.0.1", hash_server.port)
                      + f"{n}\n".encode() + b"tail")
        else:
            t = f"127.0.0.1:{hash_server.port}".encode()
            s.sendall(b"CONNECT " + t + b" HTTP/1.1\r\nHost: " + t + b"\r\n\r\n"
                      + f"{n}\n".encode() + b"tail")
        s.shutdown(socket.SHUT_WR)
        if proto == "socks5":
            assert recv_exact(s, 2) == b"\x05\x00"
            rep, _ = socks5_read_reply(s)
            assert rep == 0
        else:
            head = read_head(s)
            assert head.startswith(b"HTTP/1.1 200"), head
        got = recv_exact(s, n + 32)
        assert got[:n] == pattern_bytes(n, b"srv")
        assert got[n:] == hashlib.sha256(b"tail").digest()
        assert recv_all(s) == b""


class HalfCloseServer:
    """On each connection: send `n` bytes of pattern_bytes(n, b"hc"), where
    n comes from the listen-time setting, half-close, then read until EOF
    and put (bytes received, SHA-256) on .results."""

    def __init__(self, n):
        self.n = n
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.results = queue.Queue()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        with c:
            try:
                c.settimeout(60)
                c.sendall(pattern_bytes(self.n, b"hc"))
                c.shutdown(socket.SHUT_WR)
                h, total = hashlib.sha256(), 0
                while True:
                    data = c.recv(65536)
                    if not data:
                        break
                    h.update(data)
                    total += len(data)
                self.results.put((total, h.digest()))
            except OSError as e:
                self.results.put((None, repr(e)))

    def close(self):
        self.sock.close()


@pytest.fixture
def halfclose_server():
    s = HalfCloseServer(MIB)
    yield s
    s.close()


@pytest.mark.parametrize("mode", ["socks5-ipv4", "socks4", "http-connect"])
@pytest.mark.parametrize("relay", ["splice", "no-pipe"])
def test_server_half_closes_first(daemon_factory, halfclose_server, mode, relay):
    """The server sends its data and half-closes first; the client sees EOF,
    then still sends, and the server receives everything."""
    extra = ["--no-pipe"] if relay == "no-pipe" else []
    p = start_proxy(daemon_factory, *extra)
    s = open_tunnel(mode, p, halfclose_server, None)
    with s:
        s.settimeout(30)
        got = recv_exact(s, MIB)
        assert got == pattern_bytes(MIB, b"hc")
        # the server's FIN reaches the client while our side stays open
        assert s.recv(1) == b"", "expected EOF after the server's half-close"
        payload = os.urandom(2 * MIB)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        total, digest = halfclose_server.results.get(timeout=30)
        assert total == len(payload), f"server got {total} of {len(payload)} bytes"
        assert digest == hashlib.sha256(payload).digest()
        # both directions are done: the daemon closes the tunnel
        assert recv_all(s) == b""
    p.d.wait_log(f" up={2 * MIB} down={MIB} ")
