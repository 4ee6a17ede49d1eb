"""SOCKS5 BIND (issue 13): an active-mode-style exchange (the client asks
for a listening port, tells a server, the server connects to it), the
peer check, the ruleset's refusal, and BIND when it is off."""

import socket
import struct
import textwrap
import threading

from harness import (access_fields, access_line, connect, free_ports, is_closed, recv_exact,
                     socks5_read_reply, socks5_target)


def bind_request(proxy_port, host, port):
    """Send a BIND; returns (socket, REP, (bound host, port))."""
    s = connect(proxy_port, timeout=20)
    s.sendall(b"\x05\x01\x00")
    assert recv_exact(s, 2) == b"\x05\x00"
    s.sendall(b"\x05\x02\x00" + socks5_target(host, port))
    rep, raw = socks5_read_reply(s)
    return s, rep, reply_addr(raw)


def reply_addr(raw):
    if raw[3] == 1:
        return socket.inet_ntop(socket.AF_INET, raw[4:8]), struct.unpack(">H", raw[8:10])[0]
    return socket.inet_ntop(socket.AF_INET6, raw[4:20]), struct.unpack(">H", raw[20:22])[0]


class ActiveServer:
    """The server side of an active-mode transfer (an FTP server's data
    connection): told an address, it connects to it from 127.0.0.1, sends
    a banner and echoes one line back."""

    def __init__(self):
        self.done = threading.Event()
        self.err = []

    def connect_to(self, addr, source="127.0.0.1"):
        def run():
            try:
                c = socket.create_connection(addr, timeout=20, source_address=(source, 0))
                c.sendall(b"150 here is your data\r\n")
                line = b""
                while not line.endswith(b"\n"):
                    ch = c.recv(1)
                    if not ch:
                        break
                    line += ch
                c.sendall(b"got " + line)
                c.shutdown(socket.SHUT_WR)
                c.recv(1)
                c.close()
            except OSError as e:
                self.err.append(e)
            self.done.set()
        threading.Thread(target=run, daemon=True).start()


def test_bind_active_mode_exchange(daemon_factory):
    """BIND for the server's address: the first reply gives the listening
    address, a connection from elsewhere is refused, the server's is
    accepted and named in the second reply, then bytes flow both ways."""
    port = free_ports(1)[0]
    d = daemon_factory("-l", f"127.0.0.1:{port}", "--enable-socks5-bind", "--loglevel", "5")
    server_port = free_ports(1)[0]
    s, rep, bound = bind_request(port, "127.0.0.1", server_port)
    assert rep == 0 and bound[0] == "127.0.0.1" and bound[1] != 0, (rep, bound)
    # someone else first: closed, the BIND waits on
    intruder = socket.create_connection(bound, timeout=10, source_address=("127.0.0.2", 0))
    assert is_closed(intruder, timeout=10)
    intruder.close()
    d.wait_log("BIND: refused a connection from 127.0.0.2")
    srv = ActiveServer()
    srv.connect_to(bound)
    rep2, raw = socks5_read_reply(s)
    assert rep2 == 0 and reply_addr(raw)[0] == "127.0.0.1", raw
    assert recv_exact(s, 23) == b"150 here is your data\r\n"
    s.sendall(b"RETR file\n")
    assert recv_exact(s, 14) == b"got RETR file\n"
    s.shutdown(socket.SHUT_WR)  # the half-close reaches the server
    assert srv.done.wait(20) and not srv.err, srv.err
    s.close()
    f = access_fields(access_line(d, "socks5-bind"))
    assert (f["target"], f["route"], f["reply"], f["outcome"]) == \
        (f"127.0.0.1:{server_port}", "direct", "00", "ok"), f


def test_bind_any_peer_with_unspecified_address(daemon_factory):
    """DST 0.0.0.0: any peer is taken; the socket listens where the
    client reached the daemon."""
    port = free_ports(1)[0]
    daemon_factory("-l", f"127.0.0.1:{port}", "--enable-socks5-bind")
    s, rep, bound = bind_request(port, "0.0.0.0", 0)
    assert rep == 0 and bound[0] == "127.0.0.1"
    srv = ActiveServer()
    srv.connect_to(bound, source="127.0.0.3")
    rep2, raw = socks5_read_reply(s)
    assert rep2 == 0 and reply_addr(raw)[0] == "127.0.0.3"
    assert recv_exact(s, 23) == b"150 here is your data\r\n"
    s.close()


def test_bind_refused_by_the_ruleset_is_rep_02(daemon_factory, tmp_path):
    """The ruleset decides BIND's DST like a CONNECT's; a refusal is 02."""
    rs = tmp_path / "bind.lua"
    rs.write_text(textwrap.dedent("""
        local rs = {}
        function rs.route(addr)
            if addr:match("^127%.0%.0%.1:") then return addr end
            return nil
        end
        return rs
    """))
    port = free_ports(1)[0]
    daemon_factory("-l", f"127.0.0.1:{port}", "--enable-socks5-bind", "-r", str(rs))
    s, rep, _ = bind_request(port, "127.0.0.9", 21)
    assert rep == 2
    assert is_closed(s)
    s, rep, bound = bind_request(port, "127.0.0.1", 21)
    assert rep == 0 and bound[1] != 0
    s.close()


def test_bind_wait_is_bounded_by_the_handshake_deadline(daemon_factory):
    """-t bounds the wait for the peer: no one connects, so the second
    reply is REP 06 (TTL expired, the reference's code) and the
    connection closes."""
    port = free_ports(1)[0]
    d = daemon_factory("-l", f"127.0.0.1:{port}", "--enable-socks5-bind", "-t", "5",
                       "--loglevel", "5")
    s, rep, bound = bind_request(port, "127.0.0.1", 21)
    assert rep == 0 and bound[1] != 0
    rep2, _ = socks5_read_reply(s)
    assert rep2 == 6
    assert is_closed(s)
    s.close()
    f = access_fields(access_line(d, "socks5-bind"))
    assert (f["target"], f["reply"], f["outcome"]) == ("127.0.0.1:21", "06", "timeout"), f
    # the listening socket went with the session
    probe = socket.socket()
    try:
        assert probe.connect_ex(bound) != 0
    finally:
        probe.close()


def test_bind_is_refused_unless_enabled(daemon_factory):
    port = free_ports(1)[0]
    daemon_factory("-l", f"127.0.0.1:{port}")
    s, rep, _ = bind_request(port, "127.0.0.1", 21)
    assert rep == 7
    s.close()
