"""SOCKS5 UDP ASSOCIATE (issue 13): real clients (PySocks, dnspython over
PySocks against dnsmasq), a two-daemon socks5 chain, ruleset decisions per
destination, counters, lifetime and bad input."""

import socket
import textwrap

import pytest
import socks

from harness import (access_fields, access_line, assert_socks5_served, curl, free_ports, is_closed,
                     parse_udp, udp_associate, udp_client, udp_header, udp_roundtrip, wait_until)
from udppeers import Dnsmasq, UdpEcho


@pytest.fixture
def echo():
    e = UdpEcho()
    yield e
    e.close()


@pytest.fixture
def echo6():
    try:
        e = UdpEcho("::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    yield e
    e.close()


def udp_daemon(daemon_factory, *extra):
    port, api = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{port}", "--enable-socks5-udp",
                       "--api", f"127.0.0.1:{api}", "--loglevel", "5", *extra)
    return d, port, api


def pysocks_udp(port, user=None, password=None):
    s = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
    s.set_proxy(socks.SOCKS5, "127.0.0.1", port, username=user, password=password)
    s.settimeout(10)
    return s


def test_udp_associate_is_refused_unless_enabled(daemon_factory):
    """Without --enable-socks5-udp the command stays REP 07, as before."""
    port = free_ports(1)[0]
    daemon_factory("-l", f"127.0.0.1:{port}")
    c, rep, _ = udp_associate(port)
    c.close()
    assert rep == 7


def test_pysocks_udp_to_a_local_echo(daemon_factory, echo):
    """PySocks sends datagrams through an association and gets the echoes,
    the header naming the echo server as their source."""
    d, port, _ = udp_daemon(daemon_factory)
    s = pysocks_udp(port)
    try:
        for i in range(5):
            s.sendto(b"ping %d" % i, ("127.0.0.1", echo.port))
            data, src = s.recvfrom(65535)
            assert data == b"echo:ping %d" % i
            assert src == ("127.0.0.1", echo.port)
        big = bytes(range(256)) * 40  # 10,240 bytes in one datagram
        s.sendto(big, ("127.0.0.1", echo.port))
        assert s.recvfrom(65535)[0] == b"echo:" + big
    finally:
        s.close()
    f = access_fields(access_line(d, "socks5-udp"))
    assert (f["reply"], f["dests"], f["refused"], f["datagrams"], f["dropped"], f["outcome"]) == \
        ("00", "1", "0", "6/6", "0", "ok"), f
    assert f["up"] == str(5 * 6 + 10240) and f["down"] == str(int(f["up"]) + 6 * 5), f


def test_a_burst_keeps_every_datagram_whole(daemon_factory, echo):
    """Bursts of datagrams to one destination, the same size but the last
    shorter, then sizes mixed: the relay may send a run of them as one
    UDP_SEGMENT train (both ways); each arrives as its own datagram, with
    its own bytes, none merged or cut."""
    d, port, _ = udp_daemon(daemon_factory)
    c, rep, relay = udp_associate(port)
    assert rep == 0
    u = udp_client(relay)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    hdr = udp_header("127.0.0.1", echo.port)
    sizes = [1200] * 40 + [700] + [1, 1400, 1400, 64, 9000, 9000, 9000, 3]
    want = []
    for i, n in enumerate(sizes):
        payload = bytes([i]) * n
        want.append(payload)
        u.sendto(hdr + payload, relay)
    got = []
    for _ in sizes:
        host, p, data = parse_udp(u.recvfrom(65535)[0])
        assert (host, p) == ("127.0.0.1", echo.port)
        got.append(data)
    # an echo is its datagram whole; the order may differ
    assert sorted(got) == sorted(b"echo:" + w for w in want)
    assert sorted(g for g, _ in echo.got) == sorted(want)
    c.close()
    f = access_fields(access_line(d, "socks5-udp"))
    assert (f["datagrams"], f["up"], f["down"], f["dropped"]) == \
        (f"{len(sizes)}/{len(sizes)}", str(sum(sizes)), str(sum(sizes) + 5 * len(sizes)), "0"), f


def test_ipv6_and_name_destinations_in_one_association(daemon_factory, echo, echo6):
    """Targets may be IPv4, IPv6 or names (the reference drops names): a
    name is resolved by the front, here through --nameserver (dnsmasq)."""
    dns = Dnsmasq("echo.test", "127.0.0.1")
    try:
        d, port, _ = udp_daemon(daemon_factory, "--nameserver", f"127.0.0.1:{dns.port}")
        c, rep, relay = udp_associate(port)
        assert rep == 0
        u = udp_client(relay)
        assert udp_roundtrip(u, relay, "127.0.0.1", echo.port, b"v4") == \
            ("127.0.0.1", echo.port, b"echo:v4")
        assert udp_roundtrip(u, relay, "::1", echo6.port, b"v6") == ("::1", echo6.port, b"echo:v6")
        # the reply names its real source: the address the name led to
        assert udp_roundtrip(u, relay, "echo.test", echo.port, b"name") == \
            ("127.0.0.1", echo.port, b"echo:name")
        c.close()
        assert access_fields(access_line(d, "socks5-udp"))["dests"] == "3"
    finally:
        dns.close()


@pytest.mark.parametrize("listen,via", [("[::1]", "::1"), ("", "127.0.0.1"), ("", "::1")])
def test_relay_is_on_the_address_the_client_came_to(daemon_factory, echo, listen, via):
    """The parent binds the relay where the client reached the listener:
    on an IPv6 listener's address, and behind a wildcard listener (-l
    :PORT) on the address the client used, of either family."""
    if ":" in via:
        try:
            socket.socket(socket.AF_INET6).bind(("::1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback")
    port = free_ports(1, host="::1" if listen else "127.0.0.1")[0]
    d = daemon_factory("-l", f"{listen}:{port}", "--enable-socks5-udp", "--loglevel", "5")
    c, rep, relay = udp_associate(port, host=via)
    assert rep == 0 and relay[0] == via, relay
    u = udp_client(relay)
    assert udp_roundtrip(u, relay, "127.0.0.1", echo.port, b"here")[2] == b"echo:here"
    c.close()
    want = f"{via if ':' not in via else '[' + via + ']'}:{relay[1]}"
    assert access_fields(access_line(d, "socks5-udp"))["relay"] == want


def test_dns_query_through_the_association(daemon_factory):
    """dnspython over a PySocks UDP socket asks dnsmasq on loopback."""
    import dns.message
    import dns.query

    server = Dnsmasq("svc.test", "10.9.8.7")
    try:
        d, port, _ = udp_daemon(daemon_factory)
        s = pysocks_udp(port)
        try:
            q = dns.message.make_query("svc.test", "A")
            r = dns.query.udp(q, "127.0.0.1", port=server.port, sock=s, timeout=10)
        finally:
            s.close()
        assert [rr.to_text() for rrset in r.answer for rr in rrset] == ["10.9.8.7"]
        assert access_fields(access_line(d, "socks5-udp"))["dests"] == "1"
    finally:
        server.close()


def test_udp_counters_in_stats_and_metrics(daemon_factory, tmp_path, echo):
    """Datagrams and bytes both ways show in /stats and /metrics while the
    association is open, and in neosocksd.stats()."""
    rs = tmp_path / "direct.lua"
    rs.write_text("local rs = {}\nfunction rs.route(addr) return addr end\nreturn rs\n")
    d, port, api = udp_daemon(daemon_factory, "-r", str(rs))
    s = pysocks_udp(port)
    try:
        for i in range(3):
            s.sendto(b"x" * 100, ("127.0.0.1", echo.port))
            assert s.recvfrom(65535)[0] == b"echo:" + b"x" * 100
        rc, out, err = curl(f"http://127.0.0.1:{api}/metrics")
        assert rc == 0, err
        text = out.decode()
        assert 'neosocksd_udp_datagrams_total{direction="up"} 3' in text, text
        assert 'neosocksd_udp_datagrams_total{direction="down"} 3' in text
        assert 'neosocksd_udp_bytes_total{direction="up"} 300' in text
        assert 'neosocksd_udp_bytes_total{direction="down"} 315' in text
        assert "neosocksd_udp_associations_active 1" in text
        rc, out, _ = curl(f"http://127.0.0.1:{api}/stats")
        assert "UDP Relay           : 1 (1 ever), Up 3 (300B), Down 3 (315B)" in out.decode()
        rc, out, _ = curl("-X", "POST", "--data-binary",
                          "local t = neosocksd.stats(); return t.pkt_udp_up, t.byt_udp_down, t.num_udp_assoc",
                          "-H", "Content-Type: application/x-neosocksd-rpc; version=1",
                          f"http://127.0.0.1:{api}/ruleset/rpcall")
        assert out.decode() == "return true,3,315,1", out
    finally:
        s.close()


def test_two_daemon_socks5_chain_carries_udp(daemon_factory, echo):
    """A's -x socks5://B: A carries the datagrams through B's own UDP
    ASSOCIATE; the client sees the echo's address as the source."""
    b, bport, _ = udp_daemon(daemon_factory)
    a, aport, _ = udp_daemon(daemon_factory, "-x", f"socks5://127.0.0.1:{bport}")
    s = pysocks_udp(aport)
    try:
        for i in range(3):
            s.sendto(b"via B %d" % i, ("127.0.0.1", echo.port))
            data, src = s.recvfrom(65535)
            assert (data, src) == (b"echo:via B %d" % i, ("127.0.0.1", echo.port))
    finally:
        s.close()
    assert access_fields(access_line(a, "socks5-udp"))["datagrams"] == "3/3", a.log()
    # B's association was A's, and ends with A's
    assert access_fields(access_line(b, "socks5-udp"))["datagrams"] == "3/3", b.log()


def test_three_daemon_socks5_chain_carries_udp(daemon_factory, echo):
    """-x socks5://B,socks5://C: C's association is asked for over a
    control connection through B, and each datagram leaves A wrapped
    twice (C's relay, then the echo), B unwraps one header and C the
    other; replies come back the same way."""
    c, cport, _ = udp_daemon(daemon_factory)
    b, bport, _ = udp_daemon(daemon_factory)
    a, aport, _ = udp_daemon(daemon_factory, "-x",
                             f"socks5://127.0.0.1:{bport},socks5://127.0.0.1:{cport}")
    s = pysocks_udp(aport)
    try:
        for i in range(3):
            s.sendto(b"via B and C %d" % i, ("127.0.0.1", echo.port))
            data, src = s.recvfrom(65535)
            assert (data, src) == (b"echo:via B and C %d" % i, ("127.0.0.1", echo.port))
    finally:
        s.close()
    assert [g for g, _ in echo.got] == [b"via B and C %d" % i for i in range(3)]
    assert access_fields(access_line(a, "socks5-udp"))["datagrams"] == "3/3", a.log()
    # B relayed for A and carried A's control connection to C; C relayed
    # to the echo
    assert access_fields(access_line(b, "socks5-udp"))["datagrams"] == "3/3", b.log()
    f = access_fields(access_line(b, f"target=127.0.0.1:{cport}"))
    assert (f["proto"], f["route"], f["reply"]) == ("socks5", "direct", "00"), f
    assert access_fields(access_line(c, "socks5-udp"))["datagrams"] == "3/3", c.log()


def test_ruleset_decides_each_destination(daemon_factory, tmp_path, echo):
    """Allowed, redirected and refused destinations in one association,
    with the client's credentials; a decision through an http:// hop (which
    cannot carry UDP) drops that destination's datagrams with a log line."""
    other = UdpEcho()
    refused = UdpEcho()
    try:
        rs = tmp_path / "udp.lua"
        rs.write_text(textwrap.dedent(f"""
            local rs = {{}}
            function rs.route(addr, user, pass)
                if user ~= "alice" or pass ~= "s3cret" then return nil end
                if addr == "127.0.0.1:{echo.port}" then return addr end
                if addr == "127.0.0.2:{echo.port}" then return "127.0.0.1:{other.port}" end
                if addr == "127.0.0.3:9" then return addr, "http://127.0.0.1:1" end
                return nil
            end
            function rs.resolve(addr, user)
                if addr == "echo.test:{echo.port}" and user == "alice" then
                    return "127.0.0.1:{echo.port}"
                end
                return nil
            end
            return rs
        """))
        d, port, _ = udp_daemon(daemon_factory, "-r", str(rs))
        c, rep, relay = udp_associate(port, "alice", "s3cret")
        assert rep == 0
        u = udp_client(relay)
        u.sendto(udp_header("127.0.0.1", refused.port) + b"no", relay)
        u.sendto(udp_header("127.0.0.3", 9) + b"no hop", relay)
        d.wait_log(f"udp 127.0.0.1:{refused.port}: rejected by ruleset")
        d.wait_log("udp 127.0.0.3:9: UDP cannot go through a http:// proxy")
        assert udp_roundtrip(u, relay, "127.0.0.1", echo.port, b"a") == \
            ("127.0.0.1", echo.port, b"echo:a")
        # redirected: the reply names the address the client used
        assert udp_roundtrip(u, relay, "127.0.0.2", echo.port, b"b") == \
            ("127.0.0.2", echo.port, b"echo:b")
        assert other.count() == 1
        assert udp_roundtrip(u, relay, "echo.test", echo.port, b"c") == \
            ("echo.test", echo.port, b"echo:c")
        # a refused destination stays refused (decided once)
        u.sendto(udp_header("127.0.0.1", refused.port) + b"again", relay)
        assert udp_roundtrip(u, relay, "127.0.0.1", echo.port, b"d")[2] == b"echo:d"
        assert refused.count() == 0
        assert d.log().count(f"udp 127.0.0.1:{refused.port}: rejected") == 1
        c.close()
        f = access_fields(access_line(d, "socks5-udp"))
        # "no", "no hop", "again": the held ones count as dropped too
        assert (f["user"], f["dests"], f["refused"], f["dropped"]) == ("alice", "5", "2", "3"), f
    finally:
        other.close()
        refused.close()


def test_bad_datagrams_and_a_flood_of_destinations(daemon_factory, echo, hash_server):
    """Truncated headers, FRAG != 0, bad RSV/ATYP, datagrams from a
    stranger and 300 new destinations: all dropped or bounded; the
    association goes on and other sessions are not affected."""
    d, port, _ = udp_daemon(daemon_factory)
    c, rep, relay = udp_associate(port)
    assert rep == 0
    u = udp_client(relay)
    assert udp_roundtrip(u, relay, "127.0.0.1", echo.port, b"first")[2] == b"echo:first"
    before = echo.count()
    bad = [b"", b"\0", b"\0\0\0", b"\0\0\0\x01\x7f\0",
           udp_header("127.0.0.1", echo.port, frag=1) + b"fragment",
           b"\x01\0\0" + udp_header("127.0.0.1", echo.port)[3:] + b"rsv",
           b"\0\0\0\x05" + b"\x7f\0\0\x01\0\x07" + b"atyp",
           b"\0\0\0\x03\x00\0\x07", b"\0\0\0\x03\x03a\0b\0\x07"]
    for b in bad:
        u.sendto(b, relay)
    stranger = udp_client(relay)
    stranger.sendto(udp_header("127.0.0.1", echo.port) + b"stranger", relay)
    # 240.0.0.1 (reserved) is always blocked: entries, and nothing sent;
    # in bursts of 50, each followed by a round trip, so the relay
    # socket's buffer does not overflow on a slow (sanitizer) build
    for p in range(300):
        u.sendto(udp_header("240.0.0.1", 1 + p) + b"flood", relay)
        if p % 50 == 49:
            assert udp_roundtrip(u, relay, "127.0.0.1", echo.port, b"sync")[2] == b"echo:sync"
    assert udp_roundtrip(u, relay, "127.0.0.1", echo.port, b"after")[2] == b"echo:after"
    assert [g for g, _ in echo.got[before:]] == [b"sync"] * 6 + [b"after"]
    assert_socks5_served(port, hash_server.port)
    c.close()
    f = access_fields(access_line(d, "socks5-udp"))
    assert f["dests"] == "256", f
    assert int(f["dropped"]) >= len(bad) + 1 + 300 - 255, f


def test_datagrams_held_while_deciding_are_bounded(daemon_factory, tmp_path, echo):
    """While the ruleset decides a destination its datagrams wait, at most
    64 KiB of them per association; the rest are dropped and counted, and
    the held ones go once the decision comes."""
    rs = tmp_path / "slow.lua"
    rs.write_text(textwrap.dedent("""
        local rs = {}
        _G.go = false
        function rs.route(addr)
            while not _G.go do await.sleep(0.02) end
            return addr
        end
        return rs
    """))
    d, port, api = udp_daemon(daemon_factory, "-r", str(rs))
    c, rep, relay = udp_associate(port)
    assert rep == 0
    u = udp_client(relay)
    for i in range(20):  # 80,000 bytes: 16 of them fit in 64 KiB
        u.sendto(udp_header("127.0.0.1", echo.port) + bytes([i]) * 4000, relay)

    def dropped():
        rc, out, _ = curl(f"http://127.0.0.1:{api}/metrics")
        return rc == 0 and "neosocksd_udp_dropped_total 4\n" in out.decode()

    # every datagram was read: 16 held, 4 dropped; then the decision
    wait_until(dropped, 30, "the datagrams were not all read")
    rc, out, err = curl("--data-binary", "_G.go = true", f"http://127.0.0.1:{api}/ruleset/invoke")
    assert rc == 0, err
    got = [parse_udp(u.recvfrom(65535)[0])[2] for _ in range(16)]
    assert sorted(got) == [b"echo:" + bytes([i]) * 4000 for i in range(16)]
    # nothing more was held: the next datagram's echo comes right after
    assert udp_roundtrip(u, relay, "127.0.0.1", echo.port, b"sync")[2] == b"echo:sync"
    assert len(echo.got) == 17
    c.close()
    f = access_fields(access_line(d, "socks5-udp"))
    assert (f["datagrams"], f["up"], f["dropped"]) == ("17/17", "64004", "4"), f


def test_the_port_named_in_the_request_is_the_only_one_taken(daemon_factory, echo):
    """A request naming its source port: datagrams from another port of
    the same IP are strangers'."""
    d, port, _ = udp_daemon(daemon_factory)
    u = udp_client(("127.0.0.1", 1))
    other = udp_client(("127.0.0.1", 1))
    c, rep, relay = udp_associate(port, dst=("127.0.0.1", u.getsockname()[1]))
    assert rep == 0
    other.sendto(udp_header("127.0.0.1", echo.port) + b"other port", relay)
    assert udp_roundtrip(u, relay, "127.0.0.1", echo.port, b"mine")[2] == b"echo:mine"
    assert [g for g, _ in echo.got] == [b"mine"]
    c.close()


def test_association_ends_after_udp_idle(daemon_factory, echo):
    """--udp-idle: an association without datagrams closes its control
    connection (the client learns it) and logs 'idle'."""
    d, port, _ = udp_daemon(daemon_factory, "--udp-idle", "1")
    c, rep, relay = udp_associate(port)
    u = udp_client(relay)
    assert udp_roundtrip(u, relay, "127.0.0.1", echo.port, b"x")[2] == b"echo:x"
    assert is_closed(c, timeout=30)
    assert access_fields(access_line(d, "socks5-udp"))["outcome"] == "idle"


def test_association_counts_toward_max_sessions(daemon_factory):
    """-m 1: an open association is a session; the next client is closed
    at once without a reply."""
    d, port, _ = udp_daemon(daemon_factory, "-m", "1")
    c, rep, _ = udp_associate(port)
    assert rep == 0
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    assert is_closed(s, timeout=10)
    s.close()
    c.close()
