"""Relay behaviour: backpressure bounds memory and flow; big transfers
stay intact with splice and with buffers."""

import hashlib
import os
import signal
import socket
import threading

import pytest

from harness import (free_ports, http_connect, pattern_bytes, recv_all, socks5_connect, WAIT,
                     wait_until)


def _rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class Flood:
    """A server that writes `total` bytes to each client as fast as the
    socket lets it and counts how many it got into the kernel."""

    def __init__(self, total):
        self.total = total
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.sent = 0
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        c, _ = self.sock.accept()
        chunk = pattern_bytes(1 << 20)
        try:
            while self.sent < self.total:
                n = c.send(chunk[: min(len(chunk), self.total - self.sent)])
                self.sent += n
        finally:
            c.close()
            self.done.set()

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("mode", ["splice", "buffers"])
def test_slow_reader_backpressure(daemon_factory, mode):
    """A client that stops reading must stall the sender instead of making
    the daemon buffer: the front's memory stays flat and the sender gets
    only as far as the socket buffers allow."""
    total = 96 << 20
    flood = Flood(total)
    port, = free_ports(1)
    args = ["-l", f"127.0.0.1:{port}"] + (["--no-pipe"] if mode == "buffers" else [])
    d = daemon_factory(*args)
    front = d.child_by_title("neosocksd: front")
    rss0 = _rss_kib(front)
    s, rep = socks5_connect(port, "127.0.0.1", flood.port)
    assert rep == 0
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    # the sender fills every buffer on the way, then stalls: wait until
    # its count stops moving
    last = [-1]

    def stalled():
        now = flood.sent
        if now == last[0] and now > 0:
            return True
        last[0] = now
        return False

    wait_until(stalled, 30, "the sender never stalled", interval=0.3)
    assert flood.sent < 64 << 20, f"{flood.sent} bytes left the sender"
    assert _rss_kib(front) - rss0 < 4096, "the front buffered the stream"
    # now read it all: nothing lost or reordered
    h = hashlib.sha256()
    got = 0
    s.settimeout(30)
    while got < total:
        data = s.recv(1 << 20)
        assert data, f"EOF after {got} bytes"
        h.update(data)
        got += len(data)
    assert got == total
    want = hashlib.sha256()
    chunk = pattern_bytes(1 << 20)
    for _ in range(total >> 20):
        want.update(chunk)
    assert h.digest() == want.digest()
    assert flood.done.wait(WAIT)
    s.close()
    flood.close()


def test_many_tunnels_share_small_pools(daemon_factory, hash_server):
    """More concurrent busy tunnels than the pipe pool keeps: all intact."""
    from harness import exchange

    port, = free_ports(1)
    daemon_factory("-l", f"127.0.0.1:{port}")
    errors = []

    def one():
        try:
            s, rep = socks5_connect(port, "127.0.0.1", hash_server.port)
            assert rep == 0
            exchange(s, 1 << 20, 1 << 20)
            s.close()
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(80)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]


@pytest.mark.parametrize("kind", ["socks", "http"])
def test_bytes_and_eof_in_one_edge_reach_the_target(proxy, hash_server, kind):
    """Regression (edge-triggered tunnels): the front reads a tunnel's
    sockets on their readiness edges and takes a short read as "empty".
    When a client's last bytes and its EOF are both in before the front
    wakes, one edge announces both: the EOF must still be read and passed
    on (here the target answers only after it), not wait for an edge
    that never comes. The front is stopped while both arrive."""
    front = proxy.d.child_by_title("neosocksd: front")
    assert front
    if kind == "socks":
        s, rep = socks5_connect(proxy.socks, "127.0.0.1", hash_server.port)
        assert rep == 0
    else:
        s, status, _ = http_connect(proxy.http, f"127.0.0.1:{hash_server.port}")
        assert status == 200
    payload = pattern_bytes(3000, b"last words")
    with s:
        os.kill(front, signal.SIGSTOP)
        try:
            s.sendall(b"0\n" + payload)
            s.shutdown(socket.SHUT_WR)
        finally:
            os.kill(front, signal.SIGCONT)
        s.settimeout(20)
        assert recv_all(s) == hashlib.sha256(payload).digest()
