"""The example rulesets in examples/, each started as `-r examples/X.lua`
(the built-in libruleset, nothing on --lua-path), checked against local
targets: every target and peer is on loopback.

  ruleset_simple.lua  tables only: a name redirected to the target, names
                      and private addresses refused, hosts, IPv4/IPv6
  lb.lua              lb.iwrr over two local backends, weights 3:1
  default.lua         what make run starts with: direct, .invalid refused
  ruleset.lua         authentication (secrets), tags in the log, a chain to
                      a second daemon, failover, a sub-chain, a regex
"""

import base64
import os
import socket
import subprocess
import time

import pytest

from harness import (BIN, curl, free_port, free_ports, http_connect, http_get_over, recv_all, ROOT,
                     socks5_connect, TcpServer)

EXAMPLES = os.path.join(ROOT, "examples")
TARGET_BODY = b"hello from the target\n"

@pytest.fixture(scope="module")
def nsd():
    """The binary (and extra arguments) to run the examples with."""
    return BIN, ()


def example(name):
    return os.path.join(EXAMPLES, name)


class Example:
    def __init__(self, d, socks, http):
        self.d, self.socks, self.http = d, socks, http


def start_example(daemon_factory, nsd, name, *extra):
    """The example with SOCKS and HTTP listeners; loglevel 6 so that
    libruleset's debug log (tags, authentication failures) is visible."""
    binary, binargs = nsd
    socks, http = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--http", f"127.0.0.1:{http}",
                       "-r", example(name), "--loglevel", "6", *binargs, *extra,
                       binary=binary)
    return Example(d, socks, http)


def socks5_get(proxy_port, host, port, user=None, password=None):
    """GET / through a SOCKS5 tunnel; returns the body, or the REP code when
    the proxy refused (-1: no acceptable authentication method)."""
    s, rep = socks5_connect(proxy_port, host, port, user, password)
    try:
        if rep != 0:
            return rep
        return http_get_over(s, host, port, "/")
    finally:
        s.close()


def connect_status(proxy_port, target, auth=None):
    headers = b""
    if auth is not None:
        headers = b"Proxy-Authorization: Basic " + base64.b64encode(auth.encode()) + b"\r\n"
    s, status, _ = http_connect(proxy_port, target, headers)
    return s, status


def tag_logged(d, tag, addr):
    """libruleset logs a tagged decision as D <ts> <file>:<line> [tag] "addr"."""
    return f'[{tag}] "{addr}"' in d.log()


# ---- ruleset_simple.lua ----

def test_simple_redirects_lan_names(daemon_factory, nsd, http_target):
    ex = start_example(daemon_factory, nsd, "ruleset_simple.lua")
    port = http_target.port
    # a name under .lan goes to 127.0.0.1 on the same port
    assert socks5_get(ex.socks, "web.lan", port) == TARGET_BODY
    assert socks5_get(ex.socks, "A.B.LAN", port) == TARGET_BODY
    s, status = connect_status(ex.http, f"web.lan:{port}")
    try:
        assert status == 200
        assert http_get_over(s, "web.lan", port, "/") == TARGET_BODY
    finally:
        s.close()
    rc, out, err = _curl_socks5h(ex.socks, f"http://www.lan:{port}/")
    assert rc == 0, err
    assert out == TARGET_BODY
    ex.d.wait_log(f'[lan] "web.lan:{port}"')
    # the access log shows where it went
    ex.d.wait_log(f"target=web.lan:{port} route=direct to=127.0.0.1:{port} ")


def _curl_socks5h(socks, url):
    p = subprocess.run(["curl", "-sS", "--max-time", "20", "--socks5-hostname",
                        f"127.0.0.1:{socks}", url], capture_output=True, timeout=30)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def test_simple_rejects(daemon_factory, nsd, http_target):
    ex = start_example(daemon_factory, nsd, "ruleset_simple.lua")
    port = http_target.port
    # blocked domains and their subdomains
    for host in ("ads.example", "x.tracker.example"):
        rep = socks5_get(ex.socks, host, port)
        assert rep == 1, f"{host}: REP {rep}"
    ex.d.wait_log(f'[blocked] "ads.example:{port}"')
    s, status = connect_status(ex.http, f"ads.example:{port}")
    s.close()
    assert status == 403
    # a name nothing knows: route_default refuses it
    assert socks5_get(ex.socks, "unknown.example", port) == 1
    ex.d.wait_log(f'[default] "unknown.example:{port}"')
    # private addresses are refused, loopback goes direct
    assert socks5_get(ex.socks, "10.1.2.3", port) == 1
    ex.d.wait_log(f'[private] "10.1.2.3:{port}"')
    assert socks5_get(ex.socks, "127.0.0.1", port) == TARGET_BODY
    ex.d.wait_log(f'[loopback] "127.0.0.1:{port}"')
    # HTTP proxy requests for addresses take the same path
    s, status = connect_status(ex.http, f"192.168.1.1:{port}")
    s.close()
    assert status == 403


def test_simple_hosts_and_ipv6(daemon_factory, nsd, http_target):
    ex = start_example(daemon_factory, nsd, "ruleset_simple.lua")
    port = http_target.port
    # hosts: localhost -> 127.0.0.1, then the IPv4 table (loopback: direct)
    assert socks5_get(ex.socks, "LOCALHOST", port) == TARGET_BODY
    ex.d.wait_log(f'[loopback] "127.0.0.1:{port}"')
    # hosts to a private address: refused by the IPv4 table
    assert socks5_get(ex.socks, "router.home", port) == 1
    ex.d.wait_log(f'[private] "192.168.1.1:{port}"')
    if len(http_target.servers) < 2:
        pytest.skip("no IPv6 loopback")
    assert socks5_get(ex.socks, "::1", port) == TARGET_BODY
    ex.d.wait_log(f'[loopback] "[::1]:{port}"')
    assert socks5_get(ex.socks, "ip6-localhost", port) == TARGET_BODY
    assert socks5_get(ex.socks, "fd00::1", port) == 1


# ---- lb.lua ----

class Backend(TcpServer):
    """Accepts connections on host:port; answers each with its name and
    closes. Counts connections."""

    def __init__(self, host, port, name):
        self.name = name
        self.count = 0
        super().__init__(host, port)

    def _serve(self, c):
        with self.lock:
            self.count += 1
        c.sendall(self.name)


@pytest.fixture
def backends():
    """Two backends on 127.0.0.2 and 127.0.0.3, on the same free port (lb.lua
    keeps the requested port)."""
    for _ in range(20):
        port = free_port("127.0.0.2")
        try:
            a = Backend("127.0.0.2", port, b"A")
        except OSError:
            continue
        try:
            b = Backend("127.0.0.3", port, b"B")
        except OSError:
            a.close()
            continue
        yield port, a, b
        a.close()
        b.close()
        return
    pytest.skip("no port free on both 127.0.0.2 and 127.0.0.3")


def lb_pick(ex, port, via="socks5"):
    """One connection through the balancer; returns the backend's name."""
    if via == "socks5":
        s, rep = socks5_connect(ex.socks, "lb.internal", port)
        assert rep == 0, f"REP {rep}"
    else:
        s, status = connect_status(ex.http, f"lb.internal:{port}")
        assert status == 200, status
    try:
        return recv_all(s)
    finally:
        s.close()


def test_lb_weights(daemon_factory, nsd, backends):
    port, a, b = backends
    ex = start_example(daemon_factory, nsd, "lb.lua")
    # weights 3:1, interleaved: A B A A, then again
    seq = b"".join(lb_pick(ex, port) for _ in range(8))
    assert seq == b"ABAAABAA", seq
    assert (a.count, b.count) == (6, 2)
    # HTTP CONNECT requests share the same balancer
    seq = b"".join(lb_pick(ex, port, via="http") for _ in range(4))
    assert seq == b"ABAA", seq
    assert (a.count, b.count) == (9, 3)
    # many more: exactly 3:1 over whole cycles
    for _ in range(40):
        lb_pick(ex, port)
    assert (a.count, b.count) == (39, 13)


def test_lb_refuses_other_names(daemon_factory, nsd, backends):
    port, a, b = backends
    ex = start_example(daemon_factory, nsd, "lb.lua")
    s, rep = socks5_connect(ex.socks, "other.internal", port)
    s.close()
    assert rep == 1
    s, rep = socks5_connect(ex.socks, "127.0.0.2", port)
    s.close()
    assert rep == 1
    assert (a.count, b.count) == (0, 0)
    ex.d.wait_log(f'[refused] "other.internal:{port}"')


# ---- ruleset.lua ----

PEER_HOST, PEER_PORT = "127.0.2.1", 1081  # PEER in examples/ruleset.lua
ALICE = ("alice", "correct horse")


@pytest.fixture
def peer(daemon_factory):
    """The second daemon examples/ruleset.lua chains through (no ruleset),
    at the fixed address the example names."""
    # a fixed address may be taken for a moment by another test run
    deadline = time.monotonic() + 10
    while True:
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the daemon does
        try:
            probe.bind((PEER_HOST, PEER_PORT))
            break
        except OSError as e:
            if time.monotonic() > deadline:
                pytest.skip(f"{PEER_HOST}:{PEER_PORT} is not free: {e}")
            time.sleep(0.2)
        finally:
            probe.close()
    return daemon_factory("-l", f"{PEER_HOST}:{PEER_PORT}", "--loglevel", "5")


def test_full_chain_through_peer(daemon_factory, nsd, http_target, peer):
    ex = start_example(daemon_factory, nsd, "ruleset.lua", "--auth-required")
    port = http_target.port
    # names under peer.internal: 127.0.0.1:<port> dialed by the peer
    assert socks5_get(ex.socks, "web.peer.internal", port, *ALICE) == TARGET_BODY
    ex.d.wait_log(f"target=web.peer.internal:{port} route=socks5://{PEER_HOST}:{PEER_PORT} ")
    peer.wait_log(f"target=127.0.0.1:{port} route=direct ")
    ex.d.wait_log(f'[via-peer] "web.peer.internal:{port}"')
    # the same through the HTTP listener
    s, status = connect_status(ex.http, f"web.peer.internal:{port}", auth="alice:correct horse")
    try:
        assert status == 200
        assert http_get_over(s, "web.peer.internal", port, "/") == TARGET_BODY
    finally:
        s.close()
    peer.wait_log(f"target=127.0.0.1:{port} route=direct ", count=2)


def test_full_authentication(daemon_factory, nsd, http_target):
    ex = start_example(daemon_factory, nsd, "ruleset.lua", "--auth-required")
    port = http_target.port
    # secrets: alice with her password, guest with any
    assert socks5_get(ex.socks, "web.lan", port, *ALICE) == TARGET_BODY
    assert socks5_get(ex.socks, "web.lan", port, "guest", "whatever") == TARGET_BODY
    # a wrong password, an unknown user: the request is refused
    assert socks5_get(ex.socks, "web.lan", port, "alice", "wrong") == 1
    ex.d.wait_log('authenticate failed: "alice"')
    assert socks5_get(ex.socks, "web.lan", port, "mallory", "x") == 1
    ex.d.wait_log('authenticate failed: "mallory"')
    # no credentials at all: SOCKS5 insists on user/password
    assert socks5_get(ex.socks, "web.lan", port) == -1
    # HTTP: 407 without credentials and with wrong ones (so that a browser
    # asks again; the ruleset judges them), 200 with good ones
    s, status = connect_status(ex.http, f"web.lan:{port}")
    s.close()
    assert status == 407
    s, status = connect_status(ex.http, f"web.lan:{port}", auth="alice:nope")
    s.close()
    assert status == 407
    s, status = connect_status(ex.http, f"web.lan:{port}", auth="guest:")
    s.close()
    assert status == 200
    # the same with curl (the password has a space: percent-encoded in the URL)
    url = f"http://web.lan:{port}/"
    for opts, proxy in ((["--socks5-hostname"], f"127.0.0.1:{ex.socks}"),
                        (["-p", "-x"], f"http://127.0.0.1:{ex.http}")):
        scheme, hostport = proxy.split("127.0.0.1")[0], "127.0.0.1" + proxy.split("127.0.0.1")[1]
        for cred, good in (("alice:correct%20horse@", True), ("alice:wrong@", False), ("", False)):
            rc, out, err = curl(*opts, f"{scheme}{cred}{hostport}", url)
            if good:
                assert rc == 0 and out == TARGET_BODY, (opts, cred, err)
            else:
                assert rc != 0 and out == b"", (opts, cred, out)


def test_full_rules(daemon_factory, nsd, http_target):
    ex = start_example(daemon_factory, nsd, "ruleset.lua", "--auth-required")
    port = http_target.port
    ok = lambda host: socks5_get(ex.socks, host, port, *ALICE)
    # refused by name, by regex, by the office sub-chain
    assert ok("ads.example") == 1
    assert ok("www.tracker.example") == 1
    assert ok("tmp42.example") == 1
    assert ok("desk.office.internal") == 1
    # allowed by the office sub-chain, by .lan, by hosts + the IPv4 table
    assert ok("printer.office.internal") == TARGET_BODY
    assert ok("x.lan") == TARGET_BODY
    assert ok("gateway.internal") == TARGET_BODY
    assert ok("127.0.0.1") == TARGET_BODY
    assert ok("10.9.9.9") == 1
    for tag, addr in (("blocked", "ads.example"), ("tmp", "tmp42.example"),
                      ("office", "desk.office.internal"), ("printer", "printer.office.internal"),
                      ("lan", "x.lan"), ("loopback", "127.0.0.1"), ("private", "10.9.9.9")):
        ex.d.wait_log(f'[{tag}] "{addr}:{port}"')
    # the regex needs digits after "tmp"
    assert ok("tmpx.lan") == TARGET_BODY


def test_full_failover(daemon_factory, nsd, http_target, peer):
    ex = start_example(daemon_factory, nsd, "ruleset.lua", "--auth-required")
    port = http_target.port
    # the peer is up: the first chain (through it) is used
    assert socks5_get(ex.socks, "svc.ha.internal", port, *ALICE) == TARGET_BODY
    peer.wait_log(f"target=127.0.0.1:{port} route=direct ")
    ex.d.wait_log(f'[failover] "svc.ha.internal:{port}"')
    # the peer is down: directly
    peer.stop()
    assert socks5_get(ex.socks, "svc.ha.internal", port, *ALICE) == TARGET_BODY
    ex.d.wait_log(f'failover: "127.0.0.1:{port}" via [socks5://{PEER_HOST}:{PEER_PORT}]')
    ex.d.wait_log(f"target=svc.ha.internal:{port} route=direct ")


def test_full_as_config(daemon_factory, nsd, tmp_path):
    """ruleset.lua also works as a -c boot configuration."""
    binary, binargs = nsd
    socks = free_port()
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "-c", example("ruleset.lua"), "--loglevel", "6",
                       *binargs, binary=binary)
    s, rep = socks5_connect(socks, "ads.example", 80, *ALICE)
    s.close()
    assert rep == 1
    d.wait_log('[blocked] "ads.example:80"')


def test_default_lets_through_refuses_invalid(daemon_factory, nsd, http_target):
    """default.lua (what `make run` starts with): everything direct, names
    under .invalid refused and tagged."""
    ex = start_example(daemon_factory, nsd, "default.lua")
    port = http_target.port
    assert socks5_get(ex.socks, "127.0.0.1", port) == TARGET_BODY
    assert socks5_get(ex.socks, "localhost", port) == TARGET_BODY
    assert socks5_get(ex.socks, "x.invalid", port) == 1
    ex.d.wait_log(f'[invalid] "x.invalid:{port}"')
    s, status = connect_status(ex.http, f"y.invalid:{port}")
    s.close()
    assert status == 403
