"""Outbound chains (-x): our daemon through other instances of itself, a
three-hop mixed chain, and hops that need credentials (microsocks for
SOCKS5, a small Python CONNECT proxy for HTTP)."""

import os
import shutil
import socket
import subprocess
import time

import pytest

from harness import (assert_http_served, assert_socks5_served, AT_ONCE, AuthConnectProxy, connect,
                     cpu_seconds, curl, exchange, free_port, free_ports, http_connect,
                     pattern_bytes, recv_exact, ScriptedServer, socks5_connect, socks5_read_reply,
                     socks5_target, SplitReplyProxy, start_proxy, WAIT, wait_port, wait_until)


@pytest.fixture
def proxy(daemon_factory):
    """Like conftest's proxy, but with two ports that are surely distinct."""
    return start_proxy(daemon_factory)


MICROSOCKS = "/usr/bin/microsocks"
SIZE = 200000


def fetch_both(socks, http, target_port, size=SIZE):
    """curl through a daemon's SOCKS5 and HTTP listeners; both must return the
    exact bytes."""
    url = f"http://127.0.0.1:{target_port}/size/{size}"
    rc, out, err = curl("--socks5", f"127.0.0.1:{socks}", url)
    assert rc == 0, err
    assert out == pattern_bytes(size)
    rc, out, err = curl("-p", "-x", f"http://127.0.0.1:{http}", url)
    assert rc == 0, err
    assert out == pattern_bytes(size)


@pytest.mark.parametrize("scheme", ["socks5", "http"])
def test_two_daemon_chain(daemon_factory, proxy, http_target, scheme):
    hop_port = proxy.socks if scheme == "socks5" else proxy.http
    hop = f"{scheme}://127.0.0.1:{hop_port}"
    b, b_socks, b_http = start_proxy(daemon_factory, "-x", hop)
    fetch_both(b_socks, b_http, http_target.port)
    # B names the chain in its access log, A dialed the real target directly
    b.wait_log(f"target=127.0.0.1:{http_target.port} route={hop} ", count=2)
    proxy.d.wait_log(f"target=127.0.0.1:{http_target.port} route=direct", count=2)


def test_socks5h_and_socks4_hops(daemon_factory, proxy, http_target):
    """Issue 15: -x took neither socks5h:// (curl's spelling; a synonym
    of socks5://, names always go to the proxy) nor socks4:// (the hop is
    sent an IPv4 address, which this daemon resolves)."""
    url = f"http://localhost:{http_target.port}/size/{SIZE}"
    b, b_socks, _ = start_proxy(daemon_factory, "-x", f"socks5h://127.0.0.1:{proxy.socks}")
    rc, out, err = curl("--socks5-hostname", f"127.0.0.1:{b_socks}", url)
    assert rc == 0 and out == pattern_bytes(SIZE), err
    # the name went to the hop, which resolved it
    proxy.d.wait_log(f"proto=socks5 target=localhost:{http_target.port} route=direct")
    b.wait_log(f"route=socks5://127.0.0.1:{proxy.socks} ")

    c, c_socks, _ = start_proxy(daemon_factory, "-x", f"socks4://127.0.0.1:{proxy.socks}")
    rc, out, err = curl("--socks5-hostname", f"127.0.0.1:{c_socks}", url)
    assert rc == 0 and out == pattern_bytes(SIZE), err
    # the hop got plain SOCKS4 with the address, not SOCKS4A with the name
    proxy.d.wait_log(f"proto=socks4 target=127.0.0.1:{http_target.port} route=direct")
    c.wait_log(f"route=socks4://127.0.0.1:{proxy.socks} ")
    # an IPv6 target cannot go through a SOCKS4 hop: refused, not sent
    s, rep = socks5_connect(c_socks, "::1", http_target.port)
    s.close()
    assert rep != 0


def test_three_hop_mixed_chain(daemon_factory, http_target):
    a1, a1_socks, _ = start_proxy(daemon_factory)
    a2, _, a2_http = start_proxy(daemon_factory)
    a3, a3_socks, _ = start_proxy(daemon_factory)
    chain = (f"socks5://127.0.0.1:{a1_socks},http://127.0.0.1:{a2_http},"
             f"socks4a://127.0.0.1:{a3_socks}")
    b, b_socks, b_http = start_proxy(daemon_factory, "-x", chain)

    url = f"http://localhost:{http_target.port}/size/{SIZE}"
    rc, out, err = curl("--socks5-hostname", f"127.0.0.1:{b_socks}", url)
    assert rc == 0, err
    assert out == pattern_bytes(SIZE)
    rc, out, err = curl("-p", "-x", f"http://127.0.0.1:{b_http}", url)
    assert rc == 0, err
    assert out == pattern_bytes(SIZE)

    # an IPv6 target crosses the socks4a hop as a textual host name
    rc, out, err = curl("--socks5", f"127.0.0.1:{b_socks}",
                        f"http://[::1]:{http_target.port}/size/1000")
    assert rc == 0, err
    assert out == pattern_bytes(1000)
    # (the hop got the literal as a name; either spelling is fine in its log)
    p = http_target.port
    wait_until(lambda: any(f"proto=socks4a target={t}:{p} route=direct" in a3.log()
                           for t in ("[::1]", "::1")), what=a3.log)

    text = (f"socks5://127.0.0.1:{a1_socks}->http://127.0.0.1:{a2_http}"
            f"->socks4a://127.0.0.1:{a3_socks}")
    b.wait_log(f"target=localhost:{http_target.port} route={text} ", count=2)
    # each hop was asked for the next one, the last for the target by name
    a1.wait_log(f"proto=socks5 target=127.0.0.1:{a2_http} route=direct", count=2)
    a2.wait_log(f"proto=http method=CONNECT target=127.0.0.1:{a3_socks} route=direct", count=2)
    a3.wait_log(f"proto=socks4a target=localhost:{http_target.port} route=direct", count=2)


# ---- credentials on a SOCKS5 hop (microsocks) ----

class Microsocks:
    def __init__(self, user, password):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [MICROSOCKS, "-i", "127.0.0.1", "-p", str(self.port), "-u", user, "-P", password],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(self.port)
        except AssertionError:
            self.close()
            raise

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def microsocks_factory():
    if not (os.path.exists(MICROSOCKS) and shutil.which(MICROSOCKS)):
        pytest.skip(f"{MICROSOCKS} not installed (Debian package microsocks)")
    started = []

    def make(user, password):
        m = Microsocks(user, password)
        started.append(m)
        return m

    yield make
    for m in started:
        m.close()


def test_socks5_hop_with_credentials(daemon_factory, microsocks_factory, http_target):
    m = microsocks_factory("alice", "s3cret-pw")
    b, b_socks, b_http = start_proxy(
        daemon_factory, "-x", f"socks5://alice:s3cret-pw@127.0.0.1:{m.port}")
    fetch_both(b_socks, b_http, http_target.port)
    # the log names the user but never the password
    b.wait_log(f"route=socks5://alice@127.0.0.1:{m.port} ", count=2)
    assert "s3cret-pw" not in b.log()


def test_socks5_hop_wrong_password(daemon_factory, microsocks_factory, http_target):
    m = microsocks_factory("alice", "s3cret-pw")
    b, b_socks, b_http = start_proxy(
        daemon_factory, "-x", f"socks5://alice:wrong@127.0.0.1:{m.port}")
    s, rep = socks5_connect(b_socks, "127.0.0.1", http_target.port)
    s.close()
    assert rep == 0x02, f"expected REP 02 (upstream auth failed), got {rep}"
    s, status, head = http_connect(b_http, f"127.0.0.1:{http_target.port}")
    s.close()
    assert status == 502, head
    b.wait_log("proxy authentication failed", count=1)
    b.wait_log(f"proxy socks5://alice@127.0.0.1:{m.port} refused our credentials")
    # the daemon is fine: a correctly configured daemon still uses the hop
    good, g_socks, _ = start_proxy(
        daemon_factory, "-x", f"socks5://alice:s3cret-pw@127.0.0.1:{m.port}")
    s, rep = socks5_connect(g_socks, "127.0.0.1", http_target.port)
    s.close()
    assert rep == 0


def test_socks5_hop_percent_encoded_credentials(daemon_factory, microsocks_factory, http_target):
    m = microsocks_factory("bob@home", "p@ss:w/rd%")
    b, b_socks, b_http = start_proxy(
        daemon_factory, "-x", f"socks5://bob%40home:p%40ss%3Aw%2Frd%25@127.0.0.1:{m.port}")
    fetch_both(b_socks, b_http, http_target.port)


# ---- credentials on an HTTP hop (a Python CONNECT proxy) ----

@pytest.fixture
def auth_proxy_factory():
    started = []

    def make(user, password):
        p = AuthConnectProxy(user, password)
        started.append(p)
        return p

    yield make
    for p in started:
        p.close()


def test_http_hop_with_credentials(daemon_factory, auth_proxy_factory, http_target):
    up = auth_proxy_factory("carol", "hunter2")
    b, b_socks, b_http = start_proxy(
        daemon_factory, "-x", f"http://carol:hunter2@127.0.0.1:{up.port}")
    fetch_both(b_socks, b_http, http_target.port)
    assert up.auth_seen == ["carol:hunter2"] * 2
    b.wait_log(f"route=http://carol@127.0.0.1:{up.port} ", count=2)
    assert "hunter2" not in b.log()


def test_http_hop_wrong_password(daemon_factory, auth_proxy_factory, http_target):
    up = auth_proxy_factory("carol", "hunter2")
    b, b_socks, b_http = start_proxy(
        daemon_factory, "-x", f"http://carol:nope@127.0.0.1:{up.port}")
    s, rep = socks5_connect(b_socks, "127.0.0.1", http_target.port)
    s.close()
    assert rep == 0x02, f"expected REP 02 (upstream auth failed), got {rep}"
    s, status, head = http_connect(b_http, f"127.0.0.1:{http_target.port}")
    s.close()
    assert status == 502, head
    assert up.auth_seen == ["carol:nope"] * 2
    b.wait_log("proxy authentication failed", count=1)
    b.wait_log(f"proxy http://carol@127.0.0.1:{up.port} refused our credentials")


def test_http_hop_without_credentials_gets_407(daemon_factory, auth_proxy_factory, http_target):
    up = auth_proxy_factory("carol", "hunter2")
    b, b_socks, b_http = start_proxy(daemon_factory, "-x", f"http://127.0.0.1:{up.port}")
    s, rep = socks5_connect(b_socks, "127.0.0.1", http_target.port)
    s.close()
    assert rep == 0x02
    s, status, head = http_connect(b_http, f"127.0.0.1:{http_target.port}")
    s.close()
    assert status == 502, head


def test_http_hop_percent_encoded_credentials(daemon_factory, auth_proxy_factory, http_target):
    up = auth_proxy_factory("dave@corp", "p@ss:w/rd%")
    b, b_socks, b_http = start_proxy(
        daemon_factory, "-x", f"http://dave%40corp:p%40ss%3Aw%2Frd%25@127.0.0.1:{up.port}")
    fetch_both(b_socks, b_http, http_target.port)
    assert up.auth_seen == ["dave@corp:p@ss:w/rd%"] * 2


# ---- failures along a chain ----

@pytest.mark.parametrize("scheme", ["socks5", "http", "socks4a"])
def test_chain_target_refused(daemon_factory, proxy, hash_server, scheme):
    """The last hop cannot reach the target: the client gets a failure
    reply at once, and the next client is served."""
    hop_port = proxy.http if scheme == "http" else proxy.socks
    b, b_socks, b_http = start_proxy(daemon_factory, "-x", f"{scheme}://127.0.0.1:{hop_port}")
    dead = free_port()
    s, rep = socks5_connect(b_socks, "127.0.0.1", dead, timeout=AT_ONCE)
    s.close()
    assert rep == (0x02 if scheme == "socks4a" else 0x05), f"REP {rep}"
    s, status, head = http_connect(b_http, f"127.0.0.1:{dead}", timeout=AT_ONCE)
    s.close()
    assert status == 502, head
    proxy.d.wait_log(f"target=127.0.0.1:{dead} route=direct", count=2)
    assert_socks5_served(b_socks, hash_server.port)
    assert_http_served(b_http, hash_server.port)


def test_chain_unresolvable_at_the_hop(daemon_factory, proxy, hash_server):
    """The name is resolved by the hop, not by us; its failure comes back
    as a failure reply, and a SOCKS5 hop's own REP (04: host unreachable)
    is passed on to the client."""
    b, b_socks, b_http = start_proxy(daemon_factory, "-x", f"socks5://127.0.0.1:{proxy.socks}")
    s, rep = socks5_connect(b_socks, "nothing.invalid", 80, timeout=AT_ONCE)
    s.close()
    assert rep == 0x04
    s, status, head = http_connect(b_http, "nothing.invalid:80", timeout=AT_ONCE)
    s.close()
    assert status == 502, head
    proxy.d.wait_log("nothing.invalid:80 route=direct", count=2)
    line = [ln for ln in proxy.d.log().splitlines() if "nothing.invalid:80" in ln]
    assert len(line) == 2 and all(ln.endswith('outcome="name resolution failed"') for ln in line), line
    b.wait_log("nothing.invalid:80 route=socks5://", count=2)
    assert_socks5_served(b_socks, hash_server.port, host="localhost")


@pytest.mark.parametrize("scheme", ["socks5", "http", "socks4a"])
def test_chain_first_hop_down(daemon_factory, hash_server, scheme):
    dead = free_port()
    b, b_socks, b_http = start_proxy(daemon_factory, "-x", f"{scheme}://127.0.0.1:{dead}")
    s, rep = socks5_connect(b_socks, "127.0.0.1", hash_server.port, timeout=AT_ONCE)
    s.close()
    assert rep == 0x05, f"REP {rep}"
    s, status, head = http_connect(b_http, f"127.0.0.1:{hash_server.port}", timeout=AT_ONCE)
    s.close()
    assert status == 502, head
    b.wait_log("connection failed: Connection refused", count=1)
    b.wait_log(f"connection refused by proxy 127.0.0.1:{dead}")


BOGUS_HOPS = [
    ("socks5-closes", "socks5", b""),
    ("socks5-bad-method", "socks5", b"\x05\x07"),
    ("socks5-wrong-version", "socks5", b"\x04\x00"),
    ("socks5-wants-auth", "socks5", b"\x05\x02"),
    ("http-closes", "http", b""),
    ("http-403", "http", b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"),
    ("http-407", "http", b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"),
    ("http-500", "http", b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"),
    ("http-not-http", "http", b"SSH-2.0-OpenSSH_9.2\r\n\r\n"),
    ("http-cut-head", "http", b"HTTP/1.1 200 Connection established\r\n"),
    ("socks4a-rejected", "socks4a", b"\x00\x5b" + b"\x00" * 6),
    ("socks4a-bad-vn", "socks4a", b"\x05\x5a" + b"\x00" * 6),
    ("socks4a-short", "socks4a", b"\x00\x5a\x00"),
]


@pytest.fixture
def scripted_factory():
    started = []

    def make(reply):
        srv = ScriptedServer(reply)
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.close()


@pytest.mark.parametrize("scheme,reply", [c[1:] for c in BOGUS_HOPS],
                         ids=[c[0] for c in BOGUS_HOPS])
def test_misbehaving_hop(daemon_factory, scripted_factory, hash_server, scheme, reply):
    """A hop that answers nonsense or hangs up: the client gets a failure
    reply at once (never a success), and the daemon keeps working."""
    hop = scripted_factory(reply)
    b, b_socks, b_http = start_proxy(daemon_factory, "-x", f"{scheme}://127.0.0.1:{hop.port}")
    s, rep = socks5_connect(b_socks, "127.0.0.1", hash_server.port, timeout=AT_ONCE)
    s.close()
    assert rep != 0, "a failed hop must not be reported as success"
    s, status, head = http_connect(b_http, f"127.0.0.1:{hash_server.port}", timeout=AT_ONCE)
    s.close()
    assert status == 502, head
    # the daemon is still up and answers the next client the same way
    s, rep = socks5_connect(b_socks, "127.0.0.1", hash_server.port, timeout=AT_ONCE)
    s.close()
    assert rep != 0
    assert b.proc.poll() is None


# ---- a hop whose reply arrives in pieces ----

@pytest.fixture
def split_hop_factory():
    started = []

    def make(scheme):
        srv = SplitReplyProxy(scheme)
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.release.set()
        srv.close()


def _start_split_request(daemon_factory, split_hop_factory, scheme, hash_server):
    hop = split_hop_factory(scheme)
    b, b_socks, _ = start_proxy(daemon_factory, "-x", f"{scheme}://127.0.0.1:{hop.port}")
    s = connect(b_socks)
    s.sendall(b"\x05\x01\x00\x05\x01\x00" + socks5_target("127.0.0.1", hash_server.port))
    assert recv_exact(s, 2) == b"\x05\x00"
    assert hop.first_sent.wait(WAIT), "the hop never got the request"
    return b, hop, s


@pytest.mark.parametrize("scheme", ["socks5", "http"])
def test_hop_reply_in_pieces(daemon_factory, split_hop_factory, hash_server, scheme):
    """The hop's reply arrives in two parts: no reply to the client until it
    is complete, then a working tunnel."""
    b, hop, s = _start_split_request(daemon_factory, split_hop_factory, scheme, hash_server)
    with s:
        s.settimeout(0.5)
        with pytest.raises(socket.timeout):
            data = s.recv(1)
            pytest.fail(f"reply before the hop's reply was complete: {data!r}")
        hop.release.set()
        s.settimeout(10)
        rep, _ = socks5_read_reply(s)
        assert rep == 0
        exchange(s, 100000, 100000)


@pytest.mark.parametrize("scheme", ["socks5", "http"])
def test_hop_partial_reply_does_not_spin(daemon_factory, split_hop_factory, hash_server, scheme):
    """While waiting for the rest of a hop's reply the daemon is idle: it
    uses well under a quarter of the elapsed time in CPU. (Regression: the
    dialer used to spin at 100% CPU here, peeking at the partial reply
    under a level-triggered read event; fixed in baf2eae.)"""
    b, hop, s = _start_split_request(daemon_factory, split_hop_factory, scheme, hash_server)
    with s:
        pids = [b.pid] + b.children()
        c0, t0 = cpu_seconds(pids), time.monotonic()
        s.settimeout(1.5)
        with pytest.raises(socket.timeout):
            s.recv(1)
        cpu, wall = cpu_seconds(pids) - c0, time.monotonic() - t0
        hop.release.set()
        s.settimeout(10)
        rep, _ = socks5_read_reply(s)
        assert rep == 0
        assert cpu < 0.25 * wall, f"daemon used {cpu:.2f}s CPU in {wall:.2f}s while idle"


@pytest.mark.parametrize("scheme", ["socks5", "http", "socks4a"])
def test_ipv6_hop_and_target(daemon_factory, hash_server6, scheme):
    """A hop on [::1] and a target on [::1], through every hop scheme."""
    a_socks, a_http = free_ports(2, "::1")
    a = daemon_factory("-l", f"[::1]:{a_socks}", "--http", f"[::1]:{a_http}", "--loglevel", "5")
    hop = f"{scheme}://[::1]:{a_http if scheme == 'http' else a_socks}"
    b, b_socks, b_http = start_proxy(daemon_factory, "-x", hop)
    s, rep = socks5_connect(b_socks, "::1", hash_server6.port)
    with s:
        assert rep == 0, f"REP {rep}"
        exchange(s, 300000, 300000)
    s, status, head = http_connect(b_http, f"[::1]:{hash_server6.port}")
    with s:
        assert status == 200, head
        exchange(s, 300000, 300000)
    b.wait_log(f"target=[::1]:{hash_server6.port} route={hop} ", count=2)
    a.wait_log(f":{hash_server6.port} route=direct", count=2)
