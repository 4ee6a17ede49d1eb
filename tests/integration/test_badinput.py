"""Malformed, truncated, oversized and pipelined client input on the SOCKS
and HTTP listeners. Every bad request is answered in the right dialect or
closed at once (harness.AT_ONCE, no sleeps), and the same daemon then
serves a well-formed client."""

import hashlib
import os
import socket
import struct

import pytest

from harness import (access_fields, access_line, assert_http_served, assert_socks5_served, AT_ONCE,
                     connect, curl, exchange, head_status, http_connect, pattern_bytes, read_head,
                     recv_all, recv_exact, reply_then_close, socks5_read_reply, socks5_target,
                     start_proxy)


@pytest.fixture
def proxy(daemon_factory):
    """Like conftest's proxy, but with two ports that are surely distinct."""
    return start_proxy(daemon_factory)



S4_REJECT = b"\x00\x5b" + b"\x00" * 6
S5_NOMETHOD = b"\x05\xff"
GREET = b"\x05\x01\x00"
GREET_OK = b"\x05\x00"
IPV4_80 = b"\x01\x7f\x00\x00\x01\x00\x50"


def s5_rep(rep):
    """The daemon's SOCKS5 failure reply: REP with BND 0.0.0.0:0."""
    return bytes([5, rep, 0, 1]) + b"\x00" * 6


def s4_req(cmd=1, port=80, ip=b"\x7f\x00\x00\x01", userid=b"", host=None):
    req = b"\x04" + bytes([cmd]) + struct.pack(">H", port) + ip + userid + b"\x00"
    if host is not None:
        req += host + b"\x00"
    return req


def send_and_collect(port, data, half_close=False):
    """Send data on a fresh connection (optionally half-close) and return all
    the daemon sends before it closes, which must happen at once."""
    s = connect(port, timeout=AT_ONCE)
    try:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        return reply_then_close(s, AT_ONCE)
    finally:
        s.close()


# ---- SOCKS: (id, bytes sent, exact reply before the close, log outcome) ----

HTTP_ON_SOCKS = (b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                 b"Content-Type: text/plain; charset=utf-8\r\n"
                 b"X-Content-Type-Options: nosniff\r\nContent-Length: 51\r\n\r\n"
                 b"this port speaks SOCKS4/5; use the HTTP proxy port\n")

SOCKS_CASES = [
    # SOCKS4 / SOCKS4A
    ("s4-userid-300", s4_req(userid=b"u" * 300), S4_REJECT, "SOCKS4 USERID too long"),
    ("s4-userid-300-unterminated", s4_req(userid=b"u" * 300)[:-1], S4_REJECT,
     "SOCKS4 USERID too long"),
    ("s4a-host-300", s4_req(ip=b"\x00\x00\x00\x01", host=b"h" * 300), S4_REJECT,
     "SOCKS4A host name too long"),
    ("s4a-empty-host", s4_req(ip=b"\x00\x00\x00\x01", host=b""), S4_REJECT,
     "SOCKS4A empty host name"),
    ("s4-bind", s4_req(cmd=2), S4_REJECT, "command not supported"),
    ("s4-unknown-cmd", s4_req(cmd=9), S4_REJECT, "command not supported"),
    ("s4a-bind", s4_req(cmd=2, ip=b"\x00\x00\x00\x01", host=b"localhost"), S4_REJECT,
     "command not supported"),
    # wrong version / garbage as the first byte
    ("version-6", b"\x06\x01\x00", b"", "unknown SOCKS version"),
    ("version-0", b"\x00" * 16, b"", "unknown SOCKS version"),
    # an HTTP client on the SOCKS port is told so (issue 11)
    ("http-on-socks", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", HTTP_ON_SOCKS,
     "bad request: HTTP on the SOCKS port (400 this port speaks SOCKS4/5; use the HTTP proxy port)"),
    ("connect-on-socks", b"CONNECT a:1 HTTP/1.1\r\n\r\n", HTTP_ON_SOCKS,
     "bad request: HTTP on the SOCKS port (400 this port speaks SOCKS4/5; use the HTTP proxy port)"),
    ("lowercase-http-on-socks", b"get / HTTP/1.1\r\n\r\n", b"", "unknown SOCKS version"),
    ("tls-on-socks", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"",
     "unknown SOCKS version"),
    ("garbage", bytes(range(0x80, 0x100)), b"", "unknown SOCKS version"),
    # SOCKS5 greeting
    ("s5-nmethods-0", b"\x05\x00", S5_NOMETHOD, "greeting offers no methods"),
    ("s5-only-gssapi", b"\x05\x01\x01", S5_NOMETHOD, "no acceptable auth method"),
    ("s5-no-acceptable", b"\x05\x03\x01\x03\x80", S5_NOMETHOD, "no acceptable auth method"),
    # SOCKS5 username/password sub-negotiation (RFC 1929)
    ("s5-auth-version-5", b"\x05\x01\x02" + b"\x05\x01u\x01p", b"\x05\x02\x01\x01",
     "RFC 1929 version is not 1"),
    ("s5-auth-empty-user", b"\x05\x01\x02" + b"\x01\x00\x01p", b"\x05\x02\x01\x01",
     "RFC 1929 empty user"),
    ("s5-auth-empty-pass", b"\x05\x01\x02" + b"\x01\x01u\x00", b"\x05\x02\x01\x01",
     "RFC 1929 empty password"),
    ("s5-auth-nul-user", b"\x05\x01\x02" + b"\x01\x02u\x00\x01p", b"\x05\x02\x01\x01",
     "RFC 1929 NUL in user"),
    # SOCKS5 request
    ("s5-bind", GREET + b"\x05\x02\x00" + IPV4_80, GREET_OK + s5_rep(7), "command not supported"),
    ("s5-udp-associate", GREET + b"\x05\x03\x00" + IPV4_80, GREET_OK + s5_rep(7),
     "command not supported"),
    ("s5-unknown-cmd", GREET + b"\x05\x7f\x00" + IPV4_80, GREET_OK + s5_rep(7),
     "command not supported"),
    ("s5-bind-after-auth", b"\x05\x01\x02\x01\x01u\x01p" + b"\x05\x02\x00" + IPV4_80,
     b"\x05\x02\x01\x00" + s5_rep(7), "command not supported"),
    ("s5-atyp-2", GREET + b"\x05\x01\x00\x02\x7f\x00\x00\x01\x00\x50", GREET_OK + s5_rep(8),
     "unknown address type"),
    ("s5-atyp-ff-alone", GREET + b"\x05\x01\x00\xff", GREET_OK + s5_rep(8),
     "unknown address type"),
    ("s5-empty-domain", GREET + b"\x05\x01\x00\x03\x00\x00\x50", GREET_OK + s5_rep(1),
     "empty domain name"),
    ("s5-nul-in-domain", GREET + b"\x05\x01\x00\x03\x03a\x00b\x00\x50", GREET_OK + s5_rep(1),
     "NUL in domain name"),
    ("s5-request-version-4", GREET + b"\x04\x01\x00" + IPV4_80, GREET_OK,
     "request version is not 5"),
]


@pytest.mark.parametrize("data,reply,outcome", [c[1:] for c in SOCKS_CASES],
                         ids=[c[0] for c in SOCKS_CASES])
def test_socks_bad_input(proxy, hash_server, data, reply, outcome):
    got = send_and_collect(proxy.socks, data)
    assert got == reply
    line = access_line(proxy.d, outcome)
    assert access_fields(line)["outcome"].endswith(outcome), line
    assert_socks5_served(proxy.socks, hash_server.port)


# ---- HTTP: (id, bytes sent, status, extra check on the head) ----

def many_fields(n):
    return b"".join(b"X-F%d: v\r\n" % i for i in range(n))


CONNECT_HEAD = b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n"

HTTP_CASES = [
    ("head-over-8k", CONNECT_HEAD + b"X-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    ("head-over-8k-unterminated", CONNECT_HEAD + b"X-Big: " + b"a" * 9000, 431),
    ("65-fields", b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n" + many_fields(65) + b"\r\n", 431),
    ("bare-lf", b"CONNECT 127.0.0.1:1 HTTP/1.1\nHost: 127.0.0.1:1\n\n", 400),
    ("bare-lf-in-field", CONNECT_HEAD + b"X-A: b\n\r\n", 400),
    ("nul-in-value", CONNECT_HEAD + b"X-A: b\x00c\r\n\r\n", 400),
    ("nul-in-name", CONNECT_HEAD + b"X-\x00A: b\r\n\r\n", 400),
    ("nul-in-request-line", b"CONNECT 127.0.0.1:1\x00 HTTP/1.1\r\n\r\n", 400),
    ("obs-fold", CONNECT_HEAD + b"X-A: b\r\n  continued\r\n\r\n", 400),
    ("duplicate-content-length", CONNECT_HEAD + b"Content-Length: 0\r\nContent-Length: 0\r\n\r\n",
     400),
    ("content-length-and-te", CONNECT_HEAD + b"Content-Length: 0\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n", 400),
    ("te-gzip", CONNECT_HEAD + b"Transfer-Encoding: gzip\r\n\r\n", 501),
    ("space-before-colon", CONNECT_HEAD + b"X-A : b\r\n\r\n", 400),
    ("duplicate-host", CONNECT_HEAD + b"Host: other:1\r\n\r\n", 400),
    ("http-2.0", b"CONNECT 127.0.0.1:1 HTTP/2.0\r\nHost: 127.0.0.1:1\r\n\r\n", 505),
    ("http-3.1", b"CONNECT 127.0.0.1:1 HTTP/3.1\r\n\r\n", 505),
    ("bad-version-token", b"CONNECT 127.0.0.1:1 HTPT/1.1\r\n\r\n", 400),
    ("extra-space", b"CONNECT  127.0.0.1:1 HTTP/1.1\r\n\r\n", 400),
    # the forward proxy wants absolute http:// URLs (issue 11)
    ("origin-form-get", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400),
    ("https-url", b"GET https://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n", 400),
    ("lowercase-connect", b"connect 127.0.0.1:1 HTTP/1.1\r\n\r\n", 400),
    ("url-with-userinfo", b"GET http://u:p@127.0.0.1:1/ HTTP/1.1\r\n\r\n", 400),
    ("connect-no-port", b"CONNECT 127.0.0.1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400),
    ("connect-garbage", b"CONNECT !!garbage!! HTTP/1.1\r\n\r\n", 400),
    ("connect-empty-host", b"CONNECT :80 HTTP/1.1\r\n\r\n", 400),
    ("connect-port-too-big", b"CONNECT 127.0.0.1:65536 HTTP/1.1\r\n\r\n", 400),
    ("connect-port-not-number", b"CONNECT 127.0.0.1:8x HTTP/1.1\r\n\r\n", 400),
    ("connect-unclosed-bracket", b"CONNECT [::1:80 HTTP/1.1\r\n\r\n", 400),
    ("connect-url", b"CONNECT http://127.0.0.1:80/ HTTP/1.1\r\n\r\n", 400),
    ("bad-proxy-authorization", CONNECT_HEAD + b"Proxy-Authorization: Basic !!!\r\n\r\n", 400),
    ("socks5-on-http", GREET, 400),
    ("tls-on-http", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),
    # the head parser judges a line once its CRLF is there; control bytes
    # (above) are refused as soon as they arrive
    ("binary-garbage-line", bytes(range(0x80, 0x100)) + b"\r\n\r\n", 400),
    ("high-bit-method", b"CONN\xc3\x89CT 127.0.0.1:1 HTTP/1.1\r\n\r\n", 400),
]


@pytest.mark.parametrize("data,status", [c[1:] for c in HTTP_CASES],
                         ids=[c[0] for c in HTTP_CASES])
def test_http_bad_input(proxy, hash_server, data, status):
    got = send_and_collect(proxy.http, data)
    head, _, body = got.partition(b"\r\n\r\n")
    assert head_status(got) == status, got
    lines = head.split(b"\r\n")
    assert b"Connection: close" in lines, head
    # the body is exactly what Content-Length announced
    length = [int(ln.split(b":")[1]) for ln in lines if ln.lower().startswith(b"content-length:")]
    assert length == [len(body)], got
    line = access_line(proxy.d, f" status={status} ")
    assert access_fields(line)["status"] == str(status), line
    assert_http_served(proxy.http, hash_server.port)


def test_http_64_fields_is_accepted(proxy, hash_server):
    """The field limit is 64: a head with exactly 64 fields is served."""
    t = f"127.0.0.1:{hash_server.port}".encode()
    s = connect(proxy.http)
    with s:
        s.sendall(b"CONNECT " + t + b" HTTP/1.1\r\nHost: " + t + b"\r\n"
                  + many_fields(63) + b"\r\n")
        head = read_head(s)
        assert head_status(head) == 200, head
        exchange(s, 1000, 1000)


def test_http_head_just_under_8k_is_accepted(proxy, hash_server):
    t = f"127.0.0.1:{hash_server.port}".encode()
    start = b"CONNECT " + t + b" HTTP/1.1\r\nHost: " + t + b"\r\nX-Pad: "
    pad = 8192 - len(start) - 4 - 64
    s = connect(proxy.http)
    with s:
        s.sendall(start + b"p" * pad + b"\r\n\r\n")
        head = read_head(s)
        assert head_status(head) == 200, head
        exchange(s, 1000, 1000)


# ---- truncated input followed by a close ----

def valid_requests(hs_port):
    t = f"127.0.0.1:{hs_port}".encode()
    return {
        "socks4": (s4_req(port=hs_port, userid=b"someone"), None),
        "socks4a": (s4_req(port=hs_port, ip=b"\x00\x00\x00\x01", userid=b"x", host=b"localhost"),
                    None),
        "socks5": (GREET + b"\x05\x01\x00" + socks5_target("127.0.0.1", hs_port), None),
        "socks5-domain": (GREET + b"\x05\x01\x00" + socks5_target("localhost", hs_port), None),
        "socks5-auth": (b"\x05\x01\x02" + b"\x01\x04user\x04pass" + b"\x05\x01\x00"
                        + socks5_target("127.0.0.1", hs_port), None),
        "http": (b"CONNECT " + t + b" HTTP/1.1\r\nHost: " + t + b"\r\nUser-Agent: t\r\n\r\n",
                 "http"),
    }


@pytest.mark.parametrize("kind", ["socks4", "socks4a", "socks5", "socks5-domain",
                                  "socks5-auth", "http"])
def test_truncated_then_close(proxy, hash_server, kind):
    """Every proper prefix of a valid request, followed by the client's
    close: the daemon closes at once and never dials."""
    req, listener = valid_requests(hash_server.port)[kind]
    port = proxy.http if listener else proxy.socks
    for cut in range(1, len(req)):
        s = connect(port, timeout=AT_ONCE)
        s.sendall(req[:cut])
        s.shutdown(socket.SHUT_WR)
        got = reply_then_close(s, AT_ONCE)
        s.close()
        # only the SOCKS5 method (and auth) replies may have been sent
        assert not got.startswith(b"HTTP/"), (cut, got)
        assert len(got) <= 4, (cut, got)
    # each ended as a client close, and none reached the target
    proxy.d.wait_log('outcome="client closed', count=len(req) - 1)
    log = proxy.d.log()
    assert log.count('outcome="client closed') == len(req) - 1, log
    assert f":{hash_server.port} via" not in log, log
    assert_socks5_served(proxy.socks, hash_server.port)
    assert_http_served(proxy.http, hash_server.port)


@pytest.mark.parametrize("kind", ["socks4", "socks4a", "socks5", "socks5-domain",
                                  "socks5-auth", "http"])
def test_request_byte_by_byte(proxy, hash_server, kind):
    """A valid request sent one byte per write is parsed incrementally."""
    req, listener = valid_requests(hash_server.port)[kind]
    s = connect(proxy.http if listener else proxy.socks)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with s:
        for b in req:
            s.send(bytes([b]))
        if listener:
            assert head_status(read_head(s)) == 200
        elif kind.startswith("socks4"):
            assert recv_exact(s, 8)[:2] == b"\x00\x5a"
        else:
            assert recv_exact(s, 2) == (b"\x05\x02" if kind == "socks5-auth" else GREET_OK)
            if kind == "socks5-auth":
                assert recv_exact(s, 2) == b"\x01\x00"
            rep, _ = socks5_read_reply(s)
            assert rep == 0
        exchange(s, 5000, 5000)


# ---- pipelined input: request and payload in one write ----

@pytest.mark.parametrize("size", [100, 256 * 1024], ids=["small", "256k"])
@pytest.mark.parametrize("kind", ["socks4", "socks4a", "socks5", "socks5-domain",
                                  "socks5-auth", "http"])
def test_pipelined_request_and_payload(proxy, hash_server, kind, size):
    """The whole handshake and the first payload in ONE write (more than
    the daemon's handshake buffer for the large size): the payload reaches
    the target intact and the answer comes back."""
    req, listener = valid_requests(hash_server.port)[kind]
    down = 5000
    payload = os.urandom(size)
    s = connect(proxy.http if listener else proxy.socks, timeout=30)
    with s:
        s.sendall(req + f"{down}\n".encode() + payload)
        s.shutdown(socket.SHUT_WR)
        if listener:
            assert head_status(read_head(s)) == 200
        elif kind.startswith("socks4"):
            assert recv_exact(s, 8)[:2] == b"\x00\x5a"
        else:
            assert recv_exact(s, 2) == (b"\x05\x02" if kind == "socks5-auth" else GREET_OK)
            if kind == "socks5-auth":
                assert recv_exact(s, 2) == b"\x01\x00"
            rep, _ = socks5_read_reply(s)
            assert rep == 0
        got = recv_exact(s, down + 32)
        assert got[:down] == pattern_bytes(down, b"srv")
        assert got[down:] == hashlib.sha256(payload).digest(), "pipelined payload corrupted"
        assert recv_all(s) == b""


def test_pipelined_after_error_is_not_relayed(proxy, hash_server):
    """Bytes pipelined after a rejected request are discarded, not relayed:
    a BIND followed by a CONNECT in the same write gets only REP 07."""
    data = (GREET + b"\x05\x02\x00" + IPV4_80
            + b"\x05\x01\x00" + socks5_target("127.0.0.1", hash_server.port))
    got = send_and_collect(proxy.socks, data)
    assert got == GREET_OK + s5_rep(7)
    proxy.d.wait_log("command not supported")
    assert f":{hash_server.port} via" not in proxy.d.log()


def test_http_binary_garbage_refused_at_once(proxy, http_target):
    """Bytes that cannot begin an HTTP request get a 400 as they arrive,
    without a line end, 8 KiB or the deadline."""
    s = connect(proxy.http, timeout=AT_ONCE)
    s.sendall(bytes(range(0x80, 0x90)))
    data = recv_all(s)
    assert data.startswith(b"HTTP/1.1 400 "), data
    s.close()
    _fresh_http_client_served(proxy, http_target)


def test_http_connect_port_zero(proxy, http_target):
    s, status, head = http_connect(proxy.http, "127.0.0.1:0", timeout=AT_ONCE)
    s.close()
    assert status == 400, head
    _fresh_http_client_served(proxy, http_target)


def _fresh_http_client_served(proxy, http_target):
    rc, out, err = curl("-p", "-x", f"http://127.0.0.1:{proxy.http}",
                        f"http://127.0.0.1:{http_target.port}/")
    assert rc == 0, err
    assert out == b"hello from the target\n"
