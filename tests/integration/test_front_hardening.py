"""Issue 9, defects 1-3: one request must not kill the front, reach the
daemon's own listeners or API, or pass IP rules through IPv4-mapped IPv6.

Defect 1: a host name holding '%' reached evdns_getaddrinfo(); libevent read
it as an IPv6 zone and called if_nametoindex(), whose socket() and ioctl()
the front's seccomp filter kills. Every tunnel died with the front. Each test
below keeps a tunnel open across the bad request, then shows the front has
the same pid and the tunnel still carries data both ways."""

import os
import shutil
import signal
import struct

import pytest

from conftest import ROOT
from helpers import (connect, exchange, free_ports, http_connect, recv_exact,
                     socks4_connect, socks5_connect, socks5_read_reply)

FRONT = "neosocksd: front"


def open_tunnel(d, socks, hash_server):
    s, rep = socks5_connect(socks, "127.0.0.1", hash_server.port)
    assert rep == 0, f"tunnel refused: REP {rep}\n{d.log()}"
    return s


def assert_front_survived(d, front, tunnel):
    """Same front pid, and the tunnel opened before still flows."""
    exchange(tunnel, 30000, 30000)
    tunnel.close()
    assert d.child_by_title(FRONT) == front, f"the front was replaced:\n{d.log()}"
    assert "front exited" not in d.log() and "killed by signal" not in d.log(), d.log()


def socks5_raw_name(port, name, dport=80):
    """A SOCKS5 CONNECT with ATYP 3 and these exact name bytes; returns REP."""
    s = connect(port)
    s.sendall(b"\x05\x01\x00")
    assert recv_exact(s, 2) == b"\x05\x00"
    s.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack(">H", dport))
    rep, _ = socks5_read_reply(s)
    s.close()
    return rep


def socks4a_raw_name(port, name, dport=80):
    s = connect(port)
    s.sendall(b"\x04\x01" + struct.pack(">H", dport) + b"\0\0\0\x01" + b"\0" + name + b"\0")
    r = recv_exact(s, 8)
    s.close()
    return r[1]


BAD_NAMES = [b"x%y", b"a%lo", b"fe80::1%lo", b"a..b", b"caf\xc3\xa9", b"a b", b".", b"a%"]


@pytest.fixture
def started(daemon_factory):
    socks, http = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--http", f"127.0.0.1:{http}",
                       "--loglevel", "5")
    return d, socks, http


@pytest.mark.parametrize("name", BAD_NAMES, ids=lambda n: n.decode(errors="replace"))
def test_socks5_bad_name_gets_01_and_front_lives(started, hash_server, name):
    """Regression (issue 9, defect 1): SOCKS5 ATYP 3 "x%y" killed the front."""
    d, socks, _ = started
    front = d.child_by_title(FRONT)
    tunnel = open_tunnel(d, socks, hash_server)
    assert socks5_raw_name(socks, name) == 0x01
    assert_front_survived(d, front, tunnel)
    assert "bad domain name" in d.log()


@pytest.mark.parametrize("name", BAD_NAMES, ids=lambda n: n.decode(errors="replace"))
def test_socks4a_bad_name_gets_91_and_front_lives(started, hash_server, name):
    """Regression (issue 9, defect 1): SOCKS4A "x%y" killed the front."""
    d, socks, _ = started
    front = d.child_by_title(FRONT)
    tunnel = open_tunnel(d, socks, hash_server)
    assert socks4a_raw_name(socks, name) == 91
    assert_front_survived(d, front, tunnel)
    assert "bad host name" in d.log()


@pytest.mark.parametrize("target", ["a%lo:80", "x%y:443", "[fe80::1%lo]:80",
                                    "[fe80::1%25lo]:80", "a..b:80"])
def test_http_connect_bad_name_gets_400_and_front_lives(started, hash_server, target):
    """Regression (issue 9, defect 1): HTTP "CONNECT a%lo:80" killed the front."""
    d, socks, http = started
    front = d.child_by_title(FRONT)
    tunnel = open_tunnel(d, socks, hash_server)
    s, status, head = http_connect(http, target)
    s.close()
    assert status == 400, head
    assert_front_survived(d, front, tunnel)


def test_good_names_still_resolve(started, hash_server):
    """The validator lets real names through: localhost, a trailing dot, an
    underscore, upper case, and an IPv6 literal sent as a name."""
    d, socks, http = started
    for name in ("localhost", "LocalHost.", "x_y.localhost"):
        s, rep = socks5_connect(socks, name, hash_server.port)
        assert rep == 0, (name, d.log())
        exchange(s, 100, 100)
        s.close()
    s, cd = socks4_connect(socks, "localhost", hash_server.port)
    assert cd == 90
    s.close()
    s, status, head = http_connect(http, f"localhost.:{hash_server.port}")
    assert status == 200, head
    s.close()


RESOLVE_RULESET = """\
local ruleset = {}
function ruleset.route(addr)
    local host, port = neosocksd.splithostport(addr)
    if port == "%d" then return addr end
    -- any other port: resolve the name the test put in _G.probe; an
    -- answer dials the address (refused: 05), none rejects (01)
    if await.resolve(_G.probe) then return addr end
    return nil
end
return ruleset
"""


@pytest.mark.parametrize("name", ["a%lo", "x%y", "fe80::1%lo", "a..b", "caf\u00e9"])
def test_await_resolve_bad_name_is_nil_and_front_lives(daemon_factory, tmp_path,
                                                      hash_server, name):
    """Regression (issue 9, defect 1): await.resolve("a%lo") in a ruleset made
    the front (which resolves for the ruleset) call if_nametoindex(): killed."""
    from api_util import Api
    socks, api = free_ports(2)
    rs = tmp_path / "rs.lua"
    rs.write_text(RESOLVE_RULESET % hash_server.port)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "-r", str(rs),
                       "--api", f"127.0.0.1:{api}", "--loglevel", "5")
    front = d.child_by_title(FRONT)
    tunnel = open_tunnel(d, socks, hash_server)
    r = Api(port=api).invoke(f"_G.probe = {name!r}")
    assert r.status == 200, r
    s, rep = socks5_connect(socks, "127.0.0.1", 9)
    s.close()
    assert rep == 0x01, "await.resolve must answer nil"
    assert_front_survived(d, front, tunnel)
    # a good name still resolves (through the front's hosts/localhost)
    assert Api(port=api).invoke('_G.probe = "localhost"').status == 200
    s, rep = socks5_connect(socks, "127.0.0.1", 9)
    s.close()
    assert rep == 0x05, "localhost resolves, the dial to port 9 is refused"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a private mount namespace")
def test_sighup_with_zoned_nameserver_keeps_the_front(daemon_factory, tmp_path, hash_server):
    """Regression (issue 9, audit of defect 1): a resolv.conf nameserver with
    an interface zone ("fe80::1%lo") was handed to libevent's parser, which
    calls if_nametoindex(): harmless at start, fatal to the sandboxed front
    on SIGHUP's reload. Zones are now looked up before the sandbox only."""
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver fe80::1%lo\nnameserver 127.0.0.1\nsearch a%b.example ok.example\n")
    socks, = free_ports(1)
    binary = os.environ.get("NEOSOCKSD_BIN") or os.path.join(ROOT, "build", "neosocksd")
    script = (f"mount --bind {conf} /etc/resolv.conf && exec {binary} "
              f"-l 127.0.0.1:{socks} --loglevel 5")
    d = daemon_factory("-m", "sh", "-c", script, binary=shutil.which("unshare"))
    front = d.child_by_title(FRONT)
    tunnel = open_tunnel(d, socks, hash_server)
    with open(conf, "r+") as f:  # same inode: the bind mount sees it
        f.seek(0)
        f.truncate()
        f.write("nameserver fe80::2%lo\nnameserver fe80::3%nosuchif0\n")
    os.kill(d.pid, signal.SIGHUP)
    d.wait_log("resolver reloaded")
    assert_front_survived(d, front, tunnel)
    assert "fe80::3%nosuchif0' not used" in d.log()
    assert "search domain 'a%b.example' not used" in d.log()
    # and it still serves
    s, rep = socks5_connect(socks, "127.0.0.1", hash_server.port)
    assert rep == 0
    s.close()


