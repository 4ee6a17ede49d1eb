"""The HTTP forward proxy (issue 11): http:// URLs through the HTTP listener
with curl and raw clients: every method, bodies of every framing compared
by checksum, heads rewritten (origin-form, Host from the URL, hop-by-hop
fields gone, Via added), keep-alive across hosts with the upstream
connection reused per destination, pipelining, 100-continue, request
smuggling refused on both sides, the reasoned error answers (CONNECT's
too), 407, the SOCKS port answering HTTP, one access line per request,
and the idle timeout."""

import base64
import hashlib
import json
import os
import socket
import subprocess

import pytest

from harness import access_line, access_outcome, access_status, curl, free_ports, http_connect, pattern_bytes, wait_until
from origin import (BufferedSock, Origin, field, get, parse_head, raw_request,
                    read_response, recv_until_close)


@pytest.fixture(scope="module")
def origin():
    o = Origin()
    yield o
    o.close()


@pytest.fixture(scope="module")
def origin2():
    """A second origin on another loopback address."""
    o = Origin("127.0.0.2")
    yield o
    o.close()


@pytest.fixture
def fwd(daemon_factory):
    """A daemon with SOCKS on .socks and the HTTP proxy on .http."""
    socks, http = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--http", f"127.0.0.1:{http}",
                       "--loglevel", "5")
    d.socks, d.http = socks, http
    d.proxy = f"http://127.0.0.1:{http}"
    return d


def curl_fwd(d, *args):
    """curl through the forward proxy (no -p: plain http_proxy use)."""
    return curl("-x", d.proxy, *args, timeout=60)


# ---- curl: the common methods, bodies by checksum ----

@pytest.mark.parametrize("size", [0, 1, 100000, 3 * 1024 * 1024])
def test_curl_get(fwd, origin, size):
    rc, out, err = curl_fwd(fwd, f"{origin.base}/size/{size}")
    assert rc == 0, err
    assert hashlib.sha256(out).digest() == hashlib.sha256(pattern_bytes(size)).digest()
    line = access_line(fwd, f"method=GET url={origin.base}/size/{size} ")
    assert " route=direct " in line and access_status(line) == (200, "ok"), line


@pytest.mark.parametrize("size", [1, 70000, 2 * 1024 * 1024])
def test_curl_chunked_response(fwd, origin, size):
    """A chunked response arrives whole (its framing is re-emitted)."""
    rc, out, err = curl_fwd(fwd, "-D", "-", f"{origin.base}/chunked/{size}")
    assert rc == 0, err
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head and b"X-Chunked: yes" in head, head
    assert body == pattern_bytes(size)


def test_curl_close_delimited_response(fwd, origin):
    """A response that ends with the origin's close ends the client's
    connection too."""
    rc, out, err = curl_fwd(fwd, "-v", f"{origin.base}/close/500000")
    assert rc == 0, err
    assert out == pattern_bytes(500000)
    assert "Connection: close" in err, err


def test_curl_post_put_upload_chunked(fwd, origin, tmp_path):
    data = os.urandom(1500000)
    f = tmp_path / "up.bin"
    f.write_bytes(data)
    want = hashlib.sha256(data).hexdigest()
    cases = [
        ("POST", ["--data-binary", f"@{f}"], "POST"),
        ("PUT -T", ["-T", str(f)], "PUT"),
        ("chunked", ["-H", "Transfer-Encoding: chunked", "--data-binary", f"@{f}"], "POST"),
        ("PATCH", ["-X", "PATCH", "--data-binary", f"@{f}"], "PATCH"),
    ]
    for name, opts, method in cases:
        rc, out, err = curl_fwd(fwd, *opts, f"{origin.base}/echo")
        assert rc == 0, (name, err)
        doc = json.loads(out)
        assert doc["method"] == method and doc["sha256"] == want, (name, doc)
        if name == "chunked":
            assert ["transfer-encoding", "chunked"] in doc["fields"], doc
    # a chunked upload from a pipe (curl cannot know the length)
    p = subprocess.run(["curl", "-sS", "--max-time", "50", "-x", fwd.proxy, "-T", "-",
                        f"{origin.base}/echo"], input=data, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["sha256"] == want and ["transfer-encoding", "chunked"] in doc["fields"], doc


def test_curl_head_and_other_methods(fwd, origin):
    rc, out, err = curl_fwd(fwd, "-sSI", f"{origin.base}/size/12345")
    assert rc == 0, err
    assert b"HTTP/1.1 200" in out and b"Content-Length: 12345" in out, out
    for method in ("DELETE", "OPTIONS", "PROPFIND", "M-SEARCH"):
        rc, out, err = curl_fwd(fwd, "-X", method, f"{origin.base}/echo")
        assert rc == 0, err
        assert json.loads(out)["method"] == method
    # bodiless statuses
    for code in (204, 304):
        rc, out, err = curl_fwd(fwd, "-w", "%{http_code}", f"{origin.base}/status/{code}")
        assert rc == 0 and out == str(code).encode(), (out, err)


# ---- heads as forwarded ----

def test_request_head_rewritten(fwd, origin):
    """Origin-form request line, Host from the URI (it wins over a
    differing Host), hop-by-hop fields removed, Via added; the answer's
    hop-by-hop fields removed and Via added too."""
    req = (f"GET {origin.base}/headers?x=1 HTTP/1.1\r\n"
           "Host: somewhere.else.example\r\n"
           "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"
           "Proxy-Connection: keep-alive\r\n"
           "Connection: keep-alive, X-Private\r\n"
           "X-Private: secret\r\n"
           "Keep-Alive: 300\r\n"
           "TE: trailers\r\n"
           "Upgrade: h2c\r\n"
           "X-End-To-End: kept\r\n\r\n").encode()
    [(status, fields, body)], bs = raw_request(fwd.http, [req])
    bs.sock.close()
    assert status == 200
    doc = json.loads(body)
    assert doc["start"] == "GET /headers?x=1 HTTP/1.1"
    names = [n for n, _ in doc["fields"]]
    assert ["host", f"127.0.0.1:{origin.port}"] in doc["fields"]
    assert names.count("host") == 1
    for hop in ("proxy-authorization", "proxy-connection", "connection", "x-private",
                "keep-alive", "te", "upgrade"):
        assert hop not in names, (hop, doc)
    assert ["x-end-to-end", "kept"] in doc["fields"]
    assert ["via", "1.1 neosocksd"] in doc["fields"]
    assert field(fields, "via") == "1.1 neosocksd"


def test_origin_form_and_https_refused(fwd, origin):
    cases = [
        (b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n", "this is an HTTP proxy"),
        (b"GET https://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", "CONNECT"),
        (b"GET ftp://example.com/ HTTP/1.1\r\n\r\n", "only http://"),
        (b"GET http://a%25b/ HTTP/1.1\r\n\r\n", "not a valid host"),
    ]
    for req, words in cases:
        [(status, fields, body)], bs = raw_request(fwd.http, [req])
        assert status == 400, (req, status, body)
        assert words in body.decode(), body
        assert field(fields, "connection") == "close"
        assert recv_until_close(bs.sock) == b""
        bs.sock.close()
    line = access_line(fwd, "method=GET url=https://example.com/ ")
    assert " route=- " in line and access_status(line)[0] == 400, line
    assert access_outcome(line).startswith("https:// URLs go through CONNECT"), line
    assert not origin.requests() or all(r[2] != "/index.html" for r in origin.requests())


# ---- keep-alive, reuse, pipelining ----

def test_keepalive_across_hosts(fwd, origin, origin2):
    """One client connection carries requests to two origins; the upstream
    connection is reused while the destination stays the same and
    replaced when it changes."""
    s = socket.create_connection(("127.0.0.1", fwd.http), timeout=30)
    bs = BufferedSock(s)
    seq = [(origin, 1000), (origin, 2000), (origin2, 3000), (origin2, 4000), (origin, 5000)]
    before = {o: o.conns for o in (origin, origin2)}
    for o, n in seq:
        s.sendall(get(f"{o.base}/size/{n}"))
        status, fields, body, _ = read_response(bs)
        assert status == 200 and body == pattern_bytes(n)
        assert field(fields, "connection") is None  # persistent
    s.close()
    # origin: requests 1 and 2 on one connection, request 5 on a new one
    assert origin.conns - before[origin] == 2
    assert origin2.conns - before[origin2] == 1
    conns = {}
    for n, _, target, _ in origin.requests() + origin2.requests():
        conns.setdefault(target, set()).add(n)
    lines = [access_line(fwd, f"{o.base}/size/{n} ") for o, n in seq]
    ids = [ln.split("]")[0] for ln in lines]
    session = ids[0].split(".")[0]
    assert ids == [f"{session}.{i}" for i in range(1, 6)], ids


def test_curl_reuses_the_proxy_connection(fwd, origin, origin2):
    urls = [f"{origin.base}/size/10", f"{origin2.base}/size/20", f"{origin.base}/size/30"]
    rc, out, err = curl_fwd(fwd, "-v", *urls)
    assert rc == 0, err
    assert out == pattern_bytes(10) + pattern_bytes(20) + pattern_bytes(30)
    assert err.count("Re-using existing connection") == 2, err


def test_pipelined_requests_answered_in_order(fwd, origin, origin2):
    reqs = [get(f"{origin.base}/size/70000"), get(f"{origin2.base}/chunked/5000"),
            f"POST {origin.base}/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello".encode(),
            f"HEAD {origin.base}/size/99 HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
            get(f"{origin2.base}/size/3")]
    out, bs = raw_request(fwd.http, reqs)
    bs.sock.close()
    assert [o[0] for o in out] == [200, 200, 200, 200, 200]
    assert out[0][2] == pattern_bytes(70000)
    assert out[1][2] == pattern_bytes(5000)
    assert json.loads(out[2][2])["sha256"] == hashlib.sha256(b"hello").hexdigest()
    assert field(out[3][1], "content-length") == "99" and out[3][2] == b""
    assert out[4][2] == pattern_bytes(3)


def test_http10_client(fwd, origin):
    """HTTP/1.0: closed after the answer unless it asks for keep-alive; a
    chunked answer reaches it without chunk framing; no 1xx for it."""
    req = f"GET {origin.base}/chunked/9000 HTTP/1.0\r\n\r\n".encode()
    s = socket.create_connection(("127.0.0.1", fwd.http), timeout=30)
    s.sendall(req)
    data = recv_until_close(s)
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding" not in head.lower(), head
    assert body == pattern_bytes(9000)
    req = (f"GET {origin.base}/size/10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
           f"GET {origin.base}/hints HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").encode()
    out, bs = raw_request(fwd.http, [req])
    status, fields, body = out[0]
    assert field(fields, "connection") == "keep-alive" and body == pattern_bytes(10)
    status, fields, body, head = read_response(bs)
    assert status == 200 and body == b"after hints\n", head  # the 103 was not sent
    bs.sock.close()


def test_interim_response_passed_on(fwd, origin):
    s = socket.create_connection(("127.0.0.1", fwd.http), timeout=30)
    s.sendall(get(f"{origin.base}/hints"))
    bs = BufferedSock(s)
    status, fields, _, _ = read_response(bs)
    assert status == 103 and field(fields, "link") == "</style.css>; rel=preload"
    status, fields, body, _ = read_response(bs)
    assert status == 200 and body == b"after hints\n"
    s.close()


def test_upstream_closing_between_requests(fwd, origin):
    """An origin that ends the connection after its answer: the next
    request on the client connection goes over a new one."""
    s = socket.create_connection(("127.0.0.1", fwd.http), timeout=30)
    bs = BufferedSock(s)
    before = origin.conns
    for path in ("/close-after", "/size/7", "/close-after", "/size/8"):
        s.sendall(get(f"{origin.base}{path}"))
        status, fields, body, _ = read_response(bs)
        assert status == 200, path
    s.close()
    assert origin.conns - before == 3


def test_kept_upstream_closed_in_the_race_is_dialed_again(fwd):
    """The origin closes a kept connection just as the next request comes
    (it read it, then closed): a request without a body is sent again on a
    new connection and answered; one with a body gets 502."""
    o = Origin()
    try:
        s = socket.create_connection(("127.0.0.1", fwd.http), timeout=30)
        bs = BufferedSock(s)
        s.sendall(get(f"{o.base}/drop-next"))
        status, _, body, _ = read_response(bs)
        assert status == 200 and body == b"kept\n"
        s.sendall(get(f"{o.base}/size/77"))
        status, _, body, _ = read_response(bs)
        assert status == 200 and body == pattern_bytes(77)
        assert o.conns == 2
        assert [r[2] for r in o.requests()] == ["/drop-next", "/size/77", "/size/77"]
        s.sendall(get(f"{o.base}/drop-next"))
        status, _, body, _ = read_response(bs)
        assert status == 200
        s.sendall(f"POST {o.base}/echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi".encode())
        status, _, body, _ = read_response(bs)
        assert status == 502 and body == b"the upstream closed the connection without answering\n"
        s.close()
    finally:
        o.close()


# ---- 100-continue ----

def test_expect_100_continue_body_after_the_interim(fwd, origin):
    """The proxy forwards the head at once: the client gets the origin's
    100 Continue before it sends a byte of its body."""
    body = os.urandom(300000)
    s = socket.create_connection(("127.0.0.1", fwd.http), timeout=30)
    s.sendall((f"PUT {origin.base}/echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode())
    bs = BufferedSock(s)
    status, _, _, _ = read_response(bs)
    assert status == 100
    s.sendall(body)
    status, _, resp, _ = read_response(bs)
    assert status == 200
    assert json.loads(resp)["sha256"] == hashlib.sha256(body).hexdigest()
    s.close()


def test_expect_100_continue_refused_early(fwd, origin):
    """An origin that answers without reading the body: the client gets the
    answer without sending its body, then the connection closes."""
    s = socket.create_connection(("127.0.0.1", fwd.http), timeout=30)
    s.sendall((f"POST {origin.base}/early-413 HTTP/1.1\r\nHost: x\r\n"
               "Expect: 100-continue\r\nContent-Length: 100000000\r\n\r\n").encode())
    bs = BufferedSock(s)
    status, fields, body, _ = read_response(bs)
    assert status == 413 and body == b"too large\n"
    assert field(fields, "connection") == "close"
    assert recv_until_close(s) == b""
    s.close()
    rc, out, err = curl_fwd(fwd, "-H", "Expect: 100-continue", "--data-binary",
                            "@/dev/null", f"{origin.base}/echo")
    assert rc == 0, err


def test_curl_expect_100_continue(fwd, origin, tmp_path):
    f = tmp_path / "big"
    f.write_bytes(os.urandom(2 * 1024 * 1024))
    rc, out, err = curl_fwd(fwd, "-v", "-H", "Expect: 100-continue", "-T", str(f),
                            f"{origin.base}/echo")
    assert rc == 0, err
    assert "HTTP/1.1 100 Continue" in err, err
    assert json.loads(out)["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()


# ---- smuggling and broken framing ----

SMUGGLE = [
    ("cl-and-te", b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("two-cl", b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    ("te-gzip", b"Transfer-Encoding: gzip\r\n\r\n", 501),
    ("te-in-1.0", None, 400),
]


@pytest.mark.parametrize("name,fields,status", SMUGGLE, ids=[c[0] for c in SMUGGLE])
def test_request_smuggling_refused(fwd, origin, name, fields, status):
    """Conflicting framing gets 400 (501 for an unknown coding) and never
    reaches the origin."""
    path = f"/smuggle-{name}"
    if fields is None:
        req = (f"POST {origin.base}{path} HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
               "0\r\n\r\n").encode()
    else:
        req = f"POST {origin.base}{path} HTTP/1.1\r\nHost: x\r\n".encode() + fields
    [(got, fields_, body)], bs = raw_request(fwd.http, [req])
    assert got == status, body
    assert recv_until_close(bs.sock) == b""
    bs.sock.close()
    assert all(r[2] != path for r in origin.requests())


def test_request_bad_chunk_size(fwd, origin):
    """A bad chunk size in a request body: 400, and the upstream connection
    (which saw a partial request) is closed, not kept."""
    s = socket.create_connection(("127.0.0.1", fwd.http), timeout=30)
    s.sendall((f"POST {origin.base}/echo HTTP/1.1\r\nHost: x\r\n"
               "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n").encode())
    data = recv_until_close(s)
    s.close()
    assert data.startswith(b"HTTP/1.1 400 "), data
    assert b"malformed chunked request body" in data
    line = access_line(fwd, f"method=POST url={origin.base}/echo ")
    assert access_status(line) == (400, "malformed chunked request body"), line


@pytest.mark.parametrize("path,words", [
    ("/cl-te", "malformed response from the upstream: Content-Length with Transfer-Encoding"),
    ("/bighead/70000", "the upstream's response head is over 64 KiB"),
])
def test_origin_breaking_framing_gets_502(fwd, origin, path, words):
    s = socket.create_connection(("127.0.0.1", fwd.http), timeout=30)
    s.sendall(get(f"{origin.base}{path}"))
    data = recv_until_close(s)
    s.close()
    assert data.startswith(b"HTTP/1.1 502 "), data[:200]
    assert words.encode() in data, data[-300:]
    line = access_line(fwd, f"method=GET url={origin.base}{path} ")
    assert access_status(line)[0] == 502 and access_outcome(line).endswith(words), line


def test_large_response_head_is_passed_on(fwd, origin):
    """Heads up to 64 KiB are fine (far more than a request's 8 KiB)."""
    rc, out, err = curl_fwd(fwd, "-D", "-", f"{origin.base}/bighead/50000")
    assert rc == 0, err
    assert b"X-Big: " + b"b" * 50000 in out and out.endswith(b"big head\n")


def test_origin_bad_chunk_mid_body_closes(fwd, origin):
    """The head went out already: the client connection is closed, the
    body left incomplete (curl reports it), and the log says why."""
    rc, out, err = curl_fwd(fwd, f"{origin.base}/badchunk")
    assert rc != 0 and out == b"hello", (rc, out, err)
    line = access_line(fwd, f"method=GET url={origin.base}/badchunk ")
    assert access_status(line) == (200, "the upstream broke the chunked framing"), line


def test_origin_that_never_answers_gets_504(daemon_factory, origin):
    socks, http = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--http", f"127.0.0.1:{http}",
                       "--loglevel", "5", "-t", "5")
    s = socket.create_connection(("127.0.0.1", http), timeout=60)
    s.sendall(get(f"{origin.base}/silent"))
    data = recv_until_close(s, timeout=60)
    s.close()
    assert data.startswith(b"HTTP/1.1 504 "), data
    assert data.endswith(b"upstream did not answer within 5 s\n"), data


# ---- reasoned errors, for forward requests and CONNECT alike ----

def test_reasoned_errors(daemon_factory, origin):
    socks, http, closed = free_ports(3)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--http", f"127.0.0.1:{http}",
                       "--loglevel", "5")
    cases = [
        (f"127.0.0.1:{closed}", 502, f"connection refused by 127.0.0.1:{closed}"),
        ("nothing.invalid:81", 502, "name resolution failed for nothing.invalid"),
    ]
    for target, status, words in cases:
        rc, out, err = curl("-x", f"http://127.0.0.1:{http}", f"http://{target}/x?secret=1")
        assert rc == 0 and out == (words + "\n").encode(), (out, err)
        line = access_line(d, f"method=GET url=http://{target}/x ")
        assert " route=direct " in line and access_status(line) == (status, words), line
        assert "secret" not in line
        s, got, head = http_connect(http, target)
        body = recv_until_close(s)
        s.close()
        assert got == status and body == (words + "\n").encode(), (head, body)
        line = access_line(d, f"proto=http method=CONNECT target={target} ")
        assert access_status(line) == (status, words), line


def test_blocked_and_ruleset_refusals(daemon_factory, tmp_path, origin):
    rs = tmp_path / "r.lua"
    rs.write_text("""
local ruleset = {}
function ruleset.resolve(addr) if addr:find("^refused") then return nil end return addr end
function ruleset.route(addr) return addr end
function ruleset.route6(addr) return addr end
return ruleset
""")
    socks, http = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--http", f"127.0.0.1:{http}",
                       "--loglevel", "5", "--block-outbound", "loopback", "-r", str(rs))
    seen = len(origin.requests())
    rc, out, err = curl("-x", f"http://127.0.0.1:{http}", "-w", " %{http_code}",
                        f"{origin.base}/size/1")
    assert out == b"blocked by --block-outbound (loopback)\n 403", out
    rc, out, err = curl("-x", f"http://127.0.0.1:{http}", "-w", " %{http_code}",
                        "http://refused.example/")
    assert out == b"refused by the ruleset\n 403", out
    s, status, head = http_connect(http, "refused.example:443")
    assert status == 403 and recv_until_close(s) == b"refused by the ruleset\n"
    s.close()
    assert len(origin.requests()) == seen  # nothing reached it
    line = access_line(d, "method=GET url=http://refused.example/ ")
    assert " route=- " in line, line
    assert access_status(line) == (403, "refused by the ruleset"), line


# ---- authentication ----

AUTH_RULESET = """
local function ok(user, pass) return user == "alice" and pass == "wonderland" end
local ruleset = {}
function ruleset.resolve(addr, user, pass) if ok(user, pass) then return addr end end
function ruleset.route(addr, user, pass) if ok(user, pass) then return addr end end
function ruleset.route6(addr, user, pass) if ok(user, pass) then return addr end end
return ruleset
"""


def basic(user, pw):
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


def test_407_for_forward_and_connect(daemon_factory, tmp_path, origin):
    rs = tmp_path / "auth.lua"
    rs.write_text(AUTH_RULESET)
    socks, http = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--http", f"127.0.0.1:{http}",
                       "--loglevel", "5", "--auth-required", "-r", str(rs))
    url = f"{origin.base}/headers"
    for auth in (None, basic("alice", "wrong"), basic("mallory", "wonderland"), "Bearer x"):
        req = f"GET {url} HTTP/1.1\r\nHost: x\r\n"
        if auth:
            req += f"Proxy-Authorization: {auth}\r\n"
        [(status, fields, body)], bs = raw_request(http, [(req + "\r\n").encode()])
        bs.sock.close()
        assert status == 407, (auth, status, body)
        assert field(fields, "proxy-authenticate") == 'Basic realm="neosocksd"'
        # CONNECT with the same credentials: 407 too (was 403)
        hdr = f"Proxy-Authorization: {auth}\r\n".encode() if auth else b""
        s, got, head = http_connect(http, f"127.0.0.1:{origin.port}", headers=hdr)
        s.close()
        assert got == 407 and b'Proxy-Authenticate: Basic realm="neosocksd"' in head, head
    # the right credentials pass, and never reach the origin
    rc, out, err = curl("-x", f"http://alice:wonderland@127.0.0.1:{http}", url)
    assert rc == 0, err
    names = [n for n, _ in json.loads(out)["fields"]]
    assert "proxy-authorization" not in names
    # the needle names the route: the refused requests' lines (route=-)
    # may come after the one awaited otherwise
    line = access_line(d, f"method=GET url={url} target={url.split('/')[2]} route=direct ")
    assert access_status(line) == (200, "ok"), line
    assert " proto=http user=alice method=GET " in line, line
    rc, out, err = curl("-p", "-x", f"http://alice:wonderland@127.0.0.1:{http}",
                        f"{origin.base}/size/5")
    assert rc == 0 and out == pattern_bytes(5), err


def test_user_names_are_escaped_in_the_log(daemon_factory, tmp_path, origin):
    socks, http = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--http", f"127.0.0.1:{http}",
                       "--loglevel", "5")
    auth = basic("ev il\x1b[31m\"", "x")
    req = f"GET {origin.base}/size/1 HTTP/1.1\r\nProxy-Authorization: {auth}\r\n\r\n"
    [(status, _, _)], bs = raw_request(http, [req.encode()])
    bs.sock.close()
    assert status == 200
    line = access_line(d, f"method=GET url={origin.base}/size/1 ")
    assert " proto=http user=ev%20il%1B[31m%22 method=GET " in line, line


# ---- the SOCKS port answers an HTTP client ----

def test_socks_port_answers_http_with_400(fwd, origin):
    rc, out, err = curl("-x", f"http://127.0.0.1:{fwd.socks}", "-w", " %{http_code}",
                        f"{origin.base}/size/1")
    assert out == b"this port speaks SOCKS4/5; use the HTTP proxy port\n 400", (out, err)
    line = access_line(fwd, "HTTP on the SOCKS port")
    assert "400 this port speaks SOCKS4/5" in line, line
    # byte by byte: still recognised
    s = socket.create_connection(("127.0.0.1", fwd.socks), timeout=10)
    for b in b"POST / HTTP/1.1\r\n":
        s.send(bytes([b]))
    data = recv_until_close(s)
    s.close()
    assert data.startswith(b"HTTP/1.1 400 ") and b"use the HTTP proxy port" in data


# ---- connections: idle timeout, drain ----

def test_idle_keepalive_connection_closes(daemon_factory, origin):
    socks, http = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--http", f"127.0.0.1:{http}",
                       "--loglevel", "5", "--http-idle", "0.5")
    s = socket.create_connection(("127.0.0.1", http), timeout=30)
    s.sendall(get(f"{origin.base}/size/100"))
    bs = BufferedSock(s)
    status, _, body, _ = read_response(bs)
    assert status == 200 and body == pattern_bytes(100)
    # the connection was kept (no close in the answer); idle, it goes
    assert recv_until_close(s, timeout=30) == b""
    s.close()
    # one line for the request, none for the idle close
    wait_until(lambda: "[#" in d.log())
    assert sum(1 for ln in d.log().splitlines() if "] client=127.0.0.1:" in ln) == 1, d.log()


def test_sigterm_closes_idle_keepalive_connections(daemon_factory, origin):
    socks, http = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--http", f"127.0.0.1:{http}",
                       "--loglevel", "5", "--drain", "60")
    s = socket.create_connection(("127.0.0.1", http), timeout=30)
    s.sendall(get(f"{origin.base}/size/100"))
    status, _, body, _ = read_response(BufferedSock(s))
    assert status == 200
    d.proc.send_signal(15)
    assert recv_until_close(s, timeout=30) == b""
    s.close()
    assert d.proc.wait(30) == 0


# ---- routing: chains and redirects, as for CONNECT ----

def test_forward_through_a_chain_with_reuse(daemon_factory, origin):
    """-x applies to forwarded requests; two requests to one origin share
    one tunnel through the hop."""
    hop_socks, hop_http, socks, http = free_ports(4)
    hop = daemon_factory("-l", f"127.0.0.1:{hop_socks}", "--loglevel", "5")
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--http", f"127.0.0.1:{http}",
                       "--loglevel", "5", "-x", f"socks5://127.0.0.1:{hop_socks}")
    rc, out, err = curl("-x", f"http://127.0.0.1:{http}", f"{origin.base}/size/100",
                        f"{origin.base}/size/200")
    assert rc == 0 and out == pattern_bytes(100) + pattern_bytes(200), err
    line = access_line(d, f"method=GET url={origin.base}/size/200 ")
    assert f" route=socks5://127.0.0.1:{hop_socks} " in line, line
    hop.wait_log(f"proto=socks5 target=127.0.0.1:{origin.port} route=direct")
    assert hop.log().count(f"proto=socks5 target=127.0.0.1:{origin.port} ") == 1, hop.log()


REDIRECT_RULESET = """
local ruleset = {}
function ruleset.resolve(addr)
    if addr == "moved.test:80" then return "127.0.0.2:%d" end
    return addr
end
function ruleset.route(addr) return addr end
function ruleset.route6(addr) return addr end
return ruleset
"""


def test_ruleset_redirect_keeps_host(daemon_factory, tmp_path, origin2):
    rs = tmp_path / "redirect.lua"
    rs.write_text(REDIRECT_RULESET % origin2.port)
    socks, http = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--http", f"127.0.0.1:{http}",
                       "--loglevel", "5", "-r", str(rs))
    rc, out, err = curl("-x", f"http://127.0.0.1:{http}", "http://moved.test/headers")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["start"] == "GET /headers HTTP/1.1"
    assert ["host", "moved.test"] in doc["fields"], doc
    line = access_line(d, "method=GET url=http://moved.test/headers ")
    assert f" route=direct to=127.0.0.2:{origin2.port} " in line, line


# ---- bounded memory, backpressure both ways ----

def front_rss_kib(d):
    pid = d.child_by_title("neosocksd-front") or next(
        p for p in d.children() if open(f"/proc/{p}/comm").read().strip() == "neosocksd-front")
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    raise AssertionError("no VmRSS")


def wait_stalled(progress, polls=10, timeout=60):
    """Poll progress() until it stops changing for `polls` polls in a row."""
    import time
    deadline = time.monotonic() + timeout
    last, same = progress(), 0
    while same < polls:
        assert time.monotonic() < deadline, "the transfer never stalled"
        time.sleep(0.05)
        now = progress()
        same = same + 1 if now == last else 0
        last = now
    return last


def test_download_backpressure(fwd, origin):
    """A client that stops reading stops the origin (the proxy holds a
    bounded amount, whatever the body's size); then all of it arrives."""
    from origin import stream_digest
    total = 256 * 1024 * 1024
    s = socket.create_connection(("127.0.0.1", fwd.http), timeout=60)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(get(f"{origin.base}/stream/{total}"))
    bs = BufferedSock(s)
    head = bs.head()
    assert head.startswith(b"HTTP/1.1 200"), head
    with origin.lock:
        before = sum(origin.sent.values())
    sent = wait_stalled(lambda: sum(origin.sent.values())) - before
    # socket buffers and one pipe in flight, not the body
    assert sent < 64 * 1024 * 1024, sent
    assert front_rss_kib(fwd) < 64 * 1024
    h = hashlib.sha256(bs.buf)
    got = len(bs.buf)
    while got < total:
        chunk = s.recv(1 << 20)
        assert chunk, f"EOF after {got}"
        h.update(chunk)
        got += len(chunk)
    assert h.hexdigest() == stream_digest(total)
    s.close()


def test_upload_backpressure(fwd):
    """An origin that does not read stops the client's upload (the proxy
    holds a bounded amount); then all of it arrives intact."""
    import select
    o = Origin()
    try:
        total = 256 * 1024 * 1024
        block = os.urandom(1 << 20)
        h = hashlib.sha256()
        s = socket.create_connection(("127.0.0.1", fwd.http), timeout=60)
        s.sendall((f"PUT {o.base}/slow-sink HTTP/1.1\r\nHost: x\r\n"
                   f"Content-Length: {total}\r\n\r\n").encode())
        s.setblocking(False)
        sent, idle = 0, 0
        while sent < total and idle < 20:  # 20 polls in a row without room
            try:
                n = s.send(block[:min(len(block), total - sent)])
            except BlockingIOError:
                idle += 1
                select.select([], [s], [], 0.05)
                continue
            h.update(block[:n])
            sent += n
            idle = 0
        assert sent < 128 * 1024 * 1024, sent
        assert front_rss_kib(fwd) < 64 * 1024
        o.release.set()
        s.setblocking(True)
        while sent < total:
            n = s.send(block[:min(len(block), total - sent)])
            h.update(block[:n])
            sent += n
        status, _, body, _ = read_response(BufferedSock(s))
        assert status == 200 and body.decode() == h.hexdigest()
        s.close()
    finally:
        o.release.set()
        o.close()
