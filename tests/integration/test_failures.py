"""Failures a client sees: refused and unresolvable targets, targets blocked
by policy, the handshake deadline (-t), and the session limit (-m). Every
failure is answered in the client's dialect, logged with its outcome, and
leaves the daemon serving the next client."""

import hashlib
import socket
import struct
import threading
import time

import pytest

from harness import (access_fields, access_line, access_outcome, access_status, assert_http_served,
                     assert_socks5_served, AT_ONCE, connect, free_port, free_ports, http_connect,
                     recv_exact, reply_then_close, SilentServer, socks4_connect, socks5_connect,
                     socks5_target, SplitReplyProxy, start_proxy, WAIT, wait_until, watch_closes)

DEADLINE = 5     # -t for the deadline tests (the daemon's minimum)


@pytest.fixture
def proxy(daemon_factory):
    """Like conftest's proxy, but with two ports that are surely distinct."""
    return start_proxy(daemon_factory)


@pytest.fixture
def silent_server():
    s = SilentServer()
    yield s
    s.close()


@pytest.fixture
def silent_dns():
    """A UDP port on 127.0.0.1 that takes DNS queries and never answers."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    yield u
    u.close()


def closed_port():
    """A loopback port nobody listens on."""
    return free_port()


# ---- refused ----

def test_refused(proxy, hash_server):
    port = closed_port()
    s, rep = socks5_connect(proxy.socks, "127.0.0.1", port)
    assert rep == 0x05, f"SOCKS5 REP {rep}, want 05 (connection refused)"
    assert reply_then_close(s) == b"", "the daemon must close after a failure reply"
    s.close()
    line = access_line(proxy.d, f"proto=socks5 target=127.0.0.1:{port} ")
    assert access_outcome(line) == "connection failed: Connection refused", line

    s, status, head = http_connect(proxy.http, f"127.0.0.1:{port}")
    assert status == 502, head
    assert reply_then_close(s) == f"connection refused by 127.0.0.1:{port}\n".encode()
    s.close()
    line = access_line(proxy.d, f"proto=http method=CONNECT target=127.0.0.1:{port} ")
    assert access_status(line) == (502, f"connection refused by 127.0.0.1:{port}"), line

    s, cd = socks4_connect(proxy.socks, "127.0.0.1", port)
    assert cd == 91, f"SOCKS4 CD {cd}"
    s.close()
    s, cd = socks4_connect(proxy.socks, "localhost", port)
    assert cd == 91, f"SOCKS4A CD {cd}"
    s.close()
    access_line(proxy.d, f"proto=socks4 target=127.0.0.1:{port} ")
    access_line(proxy.d, f"proto=socks4a target=localhost:{port} ")

    assert_socks5_served(proxy.socks, hash_server.port)
    assert_http_served(proxy.http, hash_server.port)


def test_refused_ipv6(proxy, hash_server6):
    port = free_port("::1")
    s, rep = socks5_connect(proxy.socks, "::1", port)
    s.close()
    assert rep == 0x05
    s, status, head = http_connect(proxy.http, f"[::1]:{port}")
    s.close()
    assert status == 502, head
    assert_socks5_served(proxy.socks, hash_server6.port, host="::1")


# ---- name resolution ----

def test_unresolvable(proxy, hash_server):
    s, rep = socks5_connect(proxy.socks, "nothing.invalid", 80)
    s.close()
    assert rep == 0x04, f"SOCKS5 REP {rep}, want 04 (host unreachable)"
    s, status, head = http_connect(proxy.http, "nothing.invalid:80")
    s.close()
    assert status == 502, head
    s, cd = socks4_connect(proxy.socks, "nothing.invalid", 80)
    s.close()
    assert cd == 91
    for proto in ("socks5", "socks4a"):
        line = access_line(proxy.d, f"proto={proto} target=nothing.invalid:80 ")
        assert access_outcome(line) == "name resolution failed", line
    line = access_line(proxy.d, "proto=http method=CONNECT target=nothing.invalid:80 ")
    assert access_status(line) == (502, "name resolution failed for nothing.invalid"), line
    assert_socks5_served(proxy.socks, hash_server.port)
    assert_http_served(proxy.http, hash_server.port)
    # a name that does resolve still works after the failures
    assert_socks5_served(proxy.socks, hash_server.port, host="localhost")


# ---- outbound policy ----

def test_blocked_loopback(daemon_factory, silent_server, hash_server):
    d, socks, http = start_proxy(daemon_factory, "--block-outbound", "loopback")
    t = silent_server.port
    s, rep = socks5_connect(socks, "127.0.0.1", t)
    s.close()
    assert rep == 0x02, f"SOCKS5 REP {rep}, want 02 (not allowed)"
    s, rep = socks5_connect(socks, "::1", t)
    s.close()
    assert rep == 0x02, f"SOCKS5 REP {rep} for [::1], want 02"
    s, rep = socks5_connect(socks, "localhost", t)
    s.close()
    assert rep == 0x02, f"SOCKS5 REP {rep} for localhost, want 02"
    s, status, head = http_connect(http, f"127.0.0.1:{t}")
    s.close()
    assert status == 403, head
    s, cd = socks4_connect(socks, "127.0.0.1", t)
    s.close()
    assert cd == 91
    line = access_line(d, f"proto=http method=CONNECT target=127.0.0.1:{t} ")
    assert access_status(line) == (403, "blocked by --block-outbound (loopback)"), line
    assert " block=loopback " in line, line
    # nothing was dialed
    assert silent_server.accepted == 0
    # and the daemon keeps answering the same way
    s, rep = socks5_connect(socks, "127.0.0.1", hash_server.port)
    s.close()
    assert rep == 0x02

    # the default policy (multicast only) lets loopback through
    d2, socks2, http2 = start_proxy(daemon_factory)
    assert_socks5_served(socks2, hash_server.port)
    assert_http_served(http2, hash_server.port)


def test_blocked_first_hop_of_chain(daemon_factory, proxy, hash_server):
    """--block-outbound judges the first hop: a loopback proxy is blocked."""
    d, socks, http = start_proxy(daemon_factory, "--block-outbound", "loopback",
                                 "-x", f"socks5://127.0.0.1:{proxy.socks}")
    s, rep = socks5_connect(socks, "127.0.0.1", hash_server.port)
    s.close()
    assert rep == 0x02
    s, status, head = http_connect(http, f"127.0.0.1:{hash_server.port}")
    s.close()
    assert status == 403, head


# ---- handshake deadline ----

def test_handshake_deadline(request, daemon_factory, silent_server, silent_dns, hash_server):
    """With -t 5: silent and incomplete clients are closed (408 for an
    incomplete HTTP head), requests whose dial hangs get REP 06 / 504 / 91,
    and so do requests whose name resolution hangs (a DNS server that never
    answers). All clients run at once. None may end before -t from its own
    connect; by the daemon's own clock (the access line) each ends within
    -t + 4 s, and by ours before -t + 15 s (a slow or busy machine delays
    what we see, not the daemon's timer; the default -t is 60 s). A tunnel
    established before the deadline is not affected by it."""
    d1, socks1, http1 = start_proxy(daemon_factory, "-t", str(DEADLINE))
    d2, socks2, http2 = start_proxy(daemon_factory, "-t", str(DEADLINE),
                                    "-x", f"socks5://127.0.0.1:{silent_server.port}")
    dns_port = silent_dns.getsockname()[1]
    d3, socks3, http3 = start_proxy(daemon_factory, "-t", str(DEADLINE),
                                    "--nameserver", f"127.0.0.1:{dns_port}")
    target = f"127.0.0.1:{hash_server.port}".encode()
    # a tunnel opened first, so its handshake deadline would come first;
    # -t bounds the handshake only, so it must outlive the deadline
    tunnel, rep = socks5_connect(socks1, "127.0.0.1", hash_server.port)
    request.addfinalizer(tunnel.close)
    assert rep == 0
    tunnel.sendall(b"1000\n")
    assert len(recv_exact(tunnel, 1000)) == 1000
    clients, born = {}, {}

    def client(port):
        s = connect(port)
        born[s] = time.monotonic()
        return s

    clients["socks-silent"] = client(socks1)
    clients["http-silent"] = client(http1)
    s = client(http1)
    s.sendall(b"CONNECT " + target + b" HTTP/1.1\r\nHost: ")
    clients["http-partial-head"] = s
    s = client(socks1)
    s.sendall(b"\x05\x01\x00\x05\x01\x00\x01\x7f")  # request cut inside DST.ADDR
    clients["socks5-partial-request"] = s
    s = client(socks1)
    s.sendall(b"\x04\x01\x00\x50\x7f\x00\x00\x01user")  # no USERID terminator
    clients["socks4-partial-request"] = s

    s = client(socks2)
    s.sendall(b"\x05\x01\x00\x05\x01\x00" + socks5_target("127.0.0.1", hash_server.port))
    clients["socks5-dial-hangs"] = s
    s = client(http2)
    s.sendall(b"CONNECT " + target + b" HTTP/1.1\r\nHost: " + target + b"\r\n\r\n")
    clients["http-dial-hangs"] = s
    s = client(socks2)
    s.sendall(b"\x04\x01" + hash_server.port.to_bytes(2, "big") + b"\x7f\x00\x00\x01\x00")
    clients["socks4-dial-hangs"] = s

    s = client(socks3)
    s.sendall(b"\x05\x01\x00\x05\x01\x00" + socks5_target("hang.test", hash_server.port))
    clients["socks5-resolve-hangs"] = s
    s = client(http3)
    s.sendall(b"CONNECT hang.test:80 HTTP/1.1\r\nHost: hang.test:80\r\n\r\n")
    clients["http-resolve-hangs"] = s
    s = client(socks3)
    s.sendall(b"\x04\x01\x00\x50\x00\x00\x00\x01\x00hang.test\x00")
    clients["socks4a-resolve-hangs"] = s

    t0 = time.monotonic()
    try:
        res = watch_closes(clients, DEADLINE + 15)
    finally:
        for s in clients.values():
            s.close()

    for name, (t, _) in res.items():
        assert t is not None, f"{name}: not closed within {DEADLINE + 15}s"
        lived = t0 + t - born[clients[name]]
        assert lived >= DEADLINE - 0.2, f"{name}: closed {lived:.2f}s after its connect"
    assert res["socks-silent"][1] == b""
    assert res["http-silent"][1] == b""
    assert res["http-partial-head"][1].startswith(b"HTTP/1.1 408 "), res["http-partial-head"]
    assert res["socks5-partial-request"][1] == b"\x05\x00"
    assert res["socks4-partial-request"][1] == b""
    data = res["socks5-dial-hangs"][1]
    assert data[:2] == b"\x05\x00" and data[2:4] == b"\x05\x06", data
    assert res["http-dial-hangs"][1].startswith(b"HTTP/1.1 504 "), res["http-dial-hangs"]
    assert res["socks4-dial-hangs"][1] == b"\x00\x5b" + b"\x00" * 6
    data = res["socks5-resolve-hangs"][1]
    assert data[:2] == b"\x05\x00" and data[2:4] == b"\x05\x06", data
    assert res["http-resolve-hangs"][1].startswith(b"HTTP/1.1 504 "), res["http-resolve-hangs"]
    assert res["socks4a-resolve-hangs"][1] == b"\x00\x5b" + b"\x00" * 6

    # the hung dials reached the silent hop and were abandoned: the daemon
    # closed its upstream connections too
    assert silent_server.accepted == 3
    wait_until(lambda: silent_server.peer_closed == 3, what=
               lambda: f"{silent_server.peer_closed} of 3 upstream connections closed")
    # every one of them is in the access log as a timeout (the front's log
    # lines reach the file through the parent, so poll); the HTTP ones say
    # which deadline passed, in the words of their answer
    outcomes = {"http-partial-head": f'outcome="the request did not arrive whole within {DEADLINE} s"',
                "http-dial-hangs": f'outcome="upstream did not answer within {DEADLINE} s"'}
    for d, n, http_words in ((d1, 4, outcomes["http-partial-head"]),
                             (d2, 2, outcomes["http-dial-hangs"]),
                             (d3, 2, outcomes["http-dial-hangs"])):
        d.wait_log(" outcome=timeout", count=n)
        assert d.log().count(" outcome=timeout") == n, d.log()
        d.wait_log(http_words)
        # by the daemon's own clock, each ended at its deadline
        took = [float(access_fields(ln)["dur"]) for ln in d.log().splitlines()
                if "[#" in ln and (" outcome=timeout" in ln or http_words in ln)]
        assert len(took) == n + 1, d.log()
        assert all(DEADLINE - 0.2 <= x <= DEADLINE + 4 for x in took), took
    access_line(d2, f"proto=socks5 target=127.0.0.1:{hash_server.port} route=socks5://")

    # the early tunnel is still open and carries data both ways
    tunnel.sendall(b"abc")
    tunnel.shutdown(socket.SHUT_WR)
    assert recv_exact(tunnel, 32) == hashlib.sha256(b"abc").digest()
    assert reply_then_close(tunnel) == b""
    tunnel.close()

    # the deadline daemon serves a fresh client in full
    assert_socks5_served(socks1, hash_server.port)
    assert_http_served(http1, hash_server.port)
    # the daemon with the dead DNS server still serves names from
    # /etc/hosts and literal addresses
    assert_socks5_served(socks3, hash_server.port, host="localhost")
    assert_http_served(http3, hash_server.port)
    # the hanging-chain daemon still runs its handshakes promptly
    s = connect(socks2, timeout=AT_ONCE)
    s.sendall(b"\x05\x01\x00")
    assert recv_exact(s, 2) == b"\x05\x00"
    s.close()


# ---- session limit ----

def test_max_sessions(request, daemon_factory, hash_server):
    d, socks, http = start_proxy(daemon_factory, "-m", "1")
    first, rep = socks5_connect(socks, "127.0.0.1", hash_server.port)
    request.addfinalizer(first.close)
    assert rep == 0
    first.sendall(b"10\n")
    assert len(recv_exact(first, 10)) == 10

    # over the limit: closed at once, no reply, on either listener
    s = connect(socks, timeout=AT_ONCE)
    s.sendall(b"\x05\x01\x00")
    assert reply_then_close(s) == b""
    s.close()
    s = connect(http, timeout=AT_ONCE)
    s.sendall(b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n")
    assert reply_then_close(s) == b""
    s.close()

    # the held tunnel is unaffected
    first.sendall(b"xyz")
    first.shutdown(socket.SHUT_WR)
    assert recv_exact(first, 32) == hashlib.sha256(b"xyz").digest()
    assert reply_then_close(first) == b""
    first.close()
    line = access_line(d, f"proto=socks5 target=127.0.0.1:{hash_server.port} ")
    assert access_outcome(line) == "ok", line
    # once it is gone, a new client is served
    assert_socks5_served(socks, hash_server.port)
    assert_http_served(http, hash_server.port)


# ---- clients and servers that vanish ----

@pytest.fixture
def split_hop():
    hop = SplitReplyProxy("socks5")
    yield hop
    hop.release.set()
    hop.close()


def rst_close(s):
    """Close with a TCP RST instead of a FIN."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def test_client_gone_during_dial(daemon_factory, split_hop, hash_server):
    """The client resets while the daemon is still negotiating with the
    hop; when the hop finally answers, the session is dropped and the daemon
    keeps serving."""
    d, socks, http = start_proxy(daemon_factory, "-x", f"socks5://127.0.0.1:{split_hop.port}")
    s = connect(socks)
    s.sendall(b"\x05\x01\x00\x05\x01\x00" + socks5_target("127.0.0.1", hash_server.port))
    assert recv_exact(s, 2) == b"\x05\x00"
    assert split_hop.first_sent.wait(WAIT)
    rst_close(s)
    split_hop.release.set()
    line = access_line(d, f"proto=socks5 target=127.0.0.1:{hash_server.port} ")
    # nothing was relayed and the session is not counted as a success
    assert " up=0 down=0 " in line and not line.endswith(" outcome=ok"), line
    # a fresh client through the same (now released) hop is served
    split_hop.first_sent.clear()
    assert_socks5_served(socks, hash_server.port)


def test_client_resets_mid_relay(proxy, hash_server):
    s, rep = socks5_connect(proxy.socks, "127.0.0.1", hash_server.port)
    assert rep == 0
    s.sendall(b"100000\n" + b"x" * 50000)
    recv_exact(s, 1000)
    rst_close(s)
    access_line(proxy.d, f"proto=socks5 target=127.0.0.1:{hash_server.port} ")
    assert_socks5_served(proxy.socks, hash_server.port)
    assert_http_served(proxy.http, hash_server.port)


class ResettingServer:
    """Sends b"partial", then resets the connection."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                c.sendall(b"partial")
                c.settimeout(10)
                c.recv(100)  # wait for the client's first bytes
            except OSError:
                pass
            rst_close(c)

    def close(self):
        self.sock.close()


@pytest.fixture
def resetting_server():
    s = ResettingServer()
    yield s
    s.close()


@pytest.mark.parametrize("relay", ["splice", "no-pipe"])
def test_server_resets_mid_relay(daemon_factory, resetting_server, hash_server, relay):
    """The target resets the connection: the client gets what was sent
    before, then the tunnel ends (EOF or reset), at once."""
    extra = ["--no-pipe"] if relay == "no-pipe" else []
    d, socks, http = start_proxy(daemon_factory, *extra)
    s, rep = socks5_connect(socks, "127.0.0.1", resetting_server.port)
    assert rep == 0
    assert recv_exact(s, 7) == b"partial"
    s.sendall(b"hello")
    assert reply_then_close(s) == b""
    s.close()
    line = access_line(d, f"proto=socks5 target=127.0.0.1:{resetting_server.port} ")
    assert " down=7 " in line, line
    assert_socks5_served(socks, hash_server.port)


def test_forward_target_down(daemon_factory, hash_server):
    """-f to a port nobody listens on: each client is closed at once, with
    the reason in the log; the daemon keeps running."""
    port, dead = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{port}", "-f", f"127.0.0.1:{dead}", "--loglevel", "5")
    for _ in range(3):
        s = connect(port, timeout=AT_ONCE)
        assert reply_then_close(s) == b""
        s.close()
    d.wait_log(f"proto=forward target=127.0.0.1:{dead} route=direct", count=3)
    line = access_line(d, f"proto=forward target=127.0.0.1:{dead} ")
    assert access_outcome(line) == "connection failed: Connection refused", line


# spellings of a loopback target that must all be refused by
# --block-outbound loopback (REP 02, or 04 when the spelling is not a
# resolvable name) and must never reach the target
BYPASS_SOCKS5 = [
    ("ipv4-other-loopback", b"\x01" + socket.inet_aton("127.1.2.3")),
    ("ipv4-unspecified", b"\x01" + socket.inet_aton("0.0.0.0")),
    ("ipv4-mapped", b"\x04" + socket.inet_pton(socket.AF_INET6, "::ffff:127.0.0.1")),
    ("ipv6-unspecified", b"\x04" + socket.inet_pton(socket.AF_INET6, "::")),
    ("ipv6-loopback", b"\x04" + socket.inet_pton(socket.AF_INET6, "::1")),
    ("name-literal", b"\x03\x09127.0.0.1"),
    ("name-mapped-literal", b"\x03\x10::ffff:127.0.0.1"),
    ("name-localhost", b"\x03\x09localhost"),
    ("name-localhost-caps", b"\x03\x09LOCALHOST"),
    ("name-localhost-dot", b"\x03\x0alocalhost."),
    ("name-decimal", b"\x03\x0a2130706433"),
    ("name-short-form", b"\x03\x05127.1"),
]


@pytest.mark.parametrize("addr", [c[1] for c in BYPASS_SOCKS5], ids=[c[0] for c in BYPASS_SOCKS5])
def test_block_loopback_spellings(daemon_factory, silent_server, addr):
    d, socks, http = start_proxy(daemon_factory, "--block-outbound", "loopback")
    s = connect(socks, timeout=AT_ONCE)
    with s:
        s.sendall(b"\x05\x01\x00\x05\x01\x00" + addr + silent_server.port.to_bytes(2, "big"))
        got = reply_then_close(s, AT_ONCE)
    assert got[:2] == b"\x05\x00", got
    assert got[2:4] in (b"\x05\x02", b"\x05\x04"), f"not refused: {got!r}"
    assert silent_server.accepted == 0


@pytest.mark.parametrize("target", ["[::ffff:127.0.0.1]", "0.0.0.0", "127.0.0.2", "[::1]"])
def test_block_loopback_spellings_http(daemon_factory, silent_server, target):
    d, socks, http = start_proxy(daemon_factory, "--block-outbound", "loopback")
    s, status, head = http_connect(http, f"{target}:{silent_server.port}", timeout=AT_ONCE)
    s.close()
    assert status == 403, head
    assert silent_server.accepted == 0
