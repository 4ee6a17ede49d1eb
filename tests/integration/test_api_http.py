"""The REST API's HTTP/1.1 transport: status codes and framing errors,
Expect: 100-continue, compression both ways, keep-alive and in-order
pipelining, a client that does not read, the 4 MiB body and inflate
limits, deflate bombs, the request and idle deadlines, the connection cap,
and /ruleset/invoke bounded by the Lua limits while SOCKS keeps routing."""

import gzip
import threading
import time
import zlib

import pytest

from harness import (curl, gzip_members, LIMIT, lua_comment, MIB, parse_prometheus, request,
                     routed, RPC_MIME, ruleset_pid, ruleset_text, sample, server_socket_queues,
                     server_socket_state, start_api, vm_hwm_kib, WAIT, wait_until, zero_bomb)


def test_not_found_method_and_length(daemon_factory, tmp_path, http_target):
    d = start_api(daemon_factory, tmp_path, http_target.port)
    c = d.api.conn()
    try:
        for path in ("/", "/stats/", "/metrics/", "/ruleset", "/ruleset/", "/ruleset/invoke/x",
                     "/Stats", "/nope"):
            c.send(request("GET", path, host=d.api.host))
            r = c.response()
            assert r.status == 404, (path, r)
        for method, path, allow in (("GET", "/ruleset/invoke", "POST"), ("DELETE", "/stats", "GET, POST"),
                                    ("POST", "/healthy", "GET"), ("PUT", "/ruleset/gc", "POST")):
            c.send(request(method, path, host=d.api.host))
            r = c.response()
            assert r.status == 405 and r.headers["allow"] == allow, (method, path, r)
        # a POST with a body but no length (and not chunked) for endpoints
        # that take a body
        for path in ("/ruleset/invoke", "/ruleset/update", "/ruleset/rpcall"):
            c.send(request("POST", path, headers={"Content-Length": None,
                                                  "Content-Type": RPC_MIME}, host=d.api.host))
            r = c.response()
            assert r.status == 411, (path, r)
        # well-framed errors keep the connection: it still answers
        c.send(request("GET", "/healthy", host=d.api.host))
        assert c.response().status == 200
    finally:
        c.close()
    # gc needs no body
    c = d.api.conn()
    c.send(b"POST /ruleset/gc HTTP/1.1\r\n\r\n")
    assert c.response().status == 200
    c.close()
    # a framing error closes the connection
    c = d.api.conn()
    c.send(b"GET /healthy HTTP/1.1\r\nContent-Length: x\r\n\r\n")
    assert c.response().status == 400
    assert c.closed_by_peer()
    c.close()
    # an unknown content coding
    r = d.api.one("POST", "/ruleset/invoke", b"x", {"Content-Encoding": "br"})
    assert r.status == 415, r


@pytest.mark.parametrize("raw,status", [
    (b"POST /ruleset/invoke HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n", 400),                                   # both framings: smuggling
    (b"POST /ruleset/invoke HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nx=1--", 400),
    (b"POST /ruleset/invoke HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST /ruleset/invoke HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    (b"GET /healthy HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET /healthy HTTP/1.1\nHost: x\n\n", 400),            # bare LF
    (b"GET /healthy HTTP/2.0\r\n\r\n", 505),
    (b"GET http://127.0.0.1/healthy HTTP/1.1\r\n\r\n", 400),  # not origin-form
    (b"GET //healthy HTTP/1.1\r\n\r\n", 400),
    (b"POST /ruleset/invoke HTTP/1.1\r\nExpect: something\r\nContent-Length: 1\r\n\r\nx", 417),
])
def test_framing_errors_close(daemon_factory, tmp_path, http_target, raw, status):
    d = start_api(daemon_factory, tmp_path, http_target.port)
    c = d.api.conn()
    try:
        # a valid request after the bad one is never answered
        c.send(raw + request("GET", "/healthy"))
        r = c.response()
        assert r.status == status, r
        assert r.headers["connection"] == "close"
        assert c.closed_by_peer()
    finally:
        c.close()
    assert d.api.one("GET", "/healthy").status == 200


def test_expect_continue_with_curl(daemon_factory, tmp_path, http_target):
    """curl sends "Expect: 100-continue" with large bodies: it gets the
    interim answer and sends 4 MiB, or a 413 and sends nothing."""
    d = start_api(daemon_factory, tmp_path, http_target.port)
    ok = tmp_path / "4m.lua"
    ok.write_bytes(lua_comment(LIMIT))
    rc, out, err = curl("-v", "--data-binary", f"@{ok}", d.api.url("/ruleset/invoke"))
    assert rc == 0 and "< HTTP/1.1 100 Continue" in err and "< HTTP/1.1 200 OK" in err, err
    big = tmp_path / "4m1.lua"
    big.write_bytes(lua_comment(LIMIT + 1))
    r = d.api.curl("/ruleset/invoke", "--data-binary", f"@{big}")
    assert r.status == 413, r


# ---- compression ----


def test_compressed_request_bodies(daemon_factory, tmp_path, http_target):
    d = start_api(daemon_factory, tmp_path, http_target.port)
    # deflate is the zlib format (RFC 1950)
    r = d.api.one("POST", "/ruleset/invoke", zlib.compress(b"_G.INVOKED = true"),
                  {"Content-Encoding": "deflate"})
    assert r.status == 200, r
    assert routed(d, "invoked.test")
    # gzip, two members: they are concatenated
    v2 = ruleset_text("v2.test", http_target.port).encode()
    half = len(v2) // 2
    r = d.api.one("POST", "/ruleset/update", gzip_members(v2[:half], v2[half:]),
                  {"Content-Encoding": "gzip"})
    assert r.status == 200, r
    assert routed(d, "v2.test") and not routed(d, "v1.test")
    # rpcall with a compressed body, with curl
    path = tmp_path / "rpc.z"
    path.write_bytes(zlib.compress(b'return "via deflate"'))
    r = d.api.curl("/ruleset/rpcall", "-H", f"Content-Type: {RPC_MIME}", "-H",
                   "Content-Encoding: deflate", "--data-binary", f"@{path}")
    assert r.status == 200 and r.body == b'return true,"via deflate"', r
    # raw deflate (no zlib header) is not what "deflate" means here
    raw = zlib.compressobj(wbits=-15)
    r = d.api.one("POST", "/ruleset/invoke", raw.compress(b"x = 1") + raw.flush(),
                  {"Content-Encoding": "deflate"})
    assert r.status == 400, r
    # truncated gzip
    r = d.api.one("POST", "/ruleset/invoke", gzip.compress(b"x = 1")[:-6],
                  {"Content-Encoding": "gzip"})
    assert r.status == 400, r
    r = d.api.one("POST", "/ruleset/invoke", b"x = 1", {"Content-Encoding": "br"})
    assert r.status == 415, r
    # the connection-level counters saw every one of them
    assert d.api.one("GET", "/healthy").status == 200


def test_compressed_responses(daemon_factory, tmp_path, http_target):
    d = start_api(daemon_factory, tmp_path, http_target.port)
    plain = d.api.curl("/stats?nobanner=0")
    for accept in ("deflate", "gzip, deflate;q=0.5", "*"):
        r = d.api.curl("/stats", "-H", f"Accept-Encoding: {accept}")
        assert r.status == 200 and r.headers.get("content-encoding") == "deflate", (accept, r)
        text = zlib.decompress(r.body).decode()
        assert text.startswith("neosocksd ") and "API Requests" in text
        assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert plain.headers.get("content-encoding") is None
    # gzip only: not compressed (only deflate is offered)
    r = d.api.curl("/stats", "-H", "Accept-Encoding: gzip")
    assert "content-encoding" not in r.headers and r.text.startswith("neosocksd "), r
    # POST /stats and /metrics too
    r = d.api.curl("/stats?q=zz", "-X", "POST", "-H", "Accept-Encoding: deflate")
    assert "custom stats: dt is number, q=zz" in zlib.decompress(r.body).decode()
    r = d.api.curl("/metrics", "-H", "Accept-Encoding: deflate")
    assert r.headers.get("content-encoding") == "deflate", r
    parse_prometheus(zlib.decompress(r.body).decode())
    # rpcall: compressed only when the result is at least 256 bytes
    big = d.api.rpc('return string.rep("z", 300)', {"Accept-Encoding": "deflate"})
    assert big.status == 200 and big.headers.get("content-encoding") == "deflate", big
    assert zlib.decompress(big.body) == b'return true,"' + b"z" * 300 + b'"'
    small = d.api.rpc('return string.rep("z", 100)', {"Accept-Encoding": "deflate"})
    assert "content-encoding" not in small.headers
    assert small.body == b'return true,"' + b"z" * 100 + b'"'
    unasked = d.api.rpc('return string.rep("z", 300)')
    assert "content-encoding" not in unasked.headers and len(unasked.body) == 314
    # other endpoints never compress
    r = d.api.curl("/ruleset/gc", "-X", "POST", "-H", "Accept-Encoding: deflate")
    assert "content-encoding" not in r.headers and r.text.startswith("Difference")


# ---- keep-alive and pipelining ----


def test_keepalive_and_close(daemon_factory, tmp_path, http_target):
    d = start_api(daemon_factory, tmp_path, http_target.port)
    c = d.api.conn()
    try:
        for i in range(5):
            c.send(request("POST", "/ruleset/rpcall", f"return {i}".encode(),
                           {"Content-Type": RPC_MIME}, host=d.api.host))
            r = c.response()
            assert r.status == 200 and r.body == f"return true,{i}".encode(), r
            assert r.headers["connection"] == "keep-alive"
        # curl reuses one connection for several URLs
        rc, out, err = curl("-v", d.api.url("/healthy"), d.api.url("/healthy"), d.api.url("/healthy"))
        assert rc == 0 and err.count("Re-using existing connection") == 2, err
        # Connection: close on HTTP/1.1 ends it after the answer
        c.send(request("GET", "/healthy", headers={"Connection": "close"}, host=d.api.host))
        r = c.response()
        assert r.status == 200 and r.headers["connection"] == "close"
        assert c.closed_by_peer()
    finally:
        c.close()
    # a request that asks for the close is still read whole: its body may
    # come later than its head (HTTP/1.0, Connection: close), or in many
    # segments (await.invoke sends Connection: close with big bodies)
    for version, hdr in (("1.0", {}), ("1.1", {"Connection": "close"})):
        c = d.api.conn()
        body = b"_G.INVOKED = true"
        c.send(request("POST", "/ruleset/invoke", headers=dict(hdr, **{"Content-Length": str(len(body))}),
                       version=version))
        # the body comes once the server has read the head
        port = c.s.getsockname()[1]
        wait_until(lambda: (server_socket_queues(d.api.port, port) or (0, 0))[1] == 0)
        c.send(body)
        r = c.response()
        assert r.status == 200 and r.headers["connection"] == "close", (version, r)
        assert c.closed_by_peer()
        c.close()
    big = b'return "' + b"y" * (2 * MIB) + b'"'
    r = d.api.one("POST", "/ruleset/rpcall", big, {"Content-Type": RPC_MIME, "Connection": "close"})
    assert r.status == 200 and len(r.body) == len("return true,") + len(big) - len("return "), r
    # an error answered by the transport ends such a connection too
    c = d.api.conn()
    c.send(request("POST", "/ruleset/invoke", headers={"Content-Length": None, "Connection": "close"})
           + request("GET", "/healthy"))
    r = c.response()
    assert r.status == 411 and r.headers["connection"] == "close", r
    assert c.closed_by_peer()
    c.close()
    # HTTP/1.0 closes
    c = d.api.conn()
    c.send(request("GET", "/healthy", version="1.0"))
    r = c.response()
    assert r.status == 200 and r.headers["connection"] == "close", r
    assert c.closed_by_peer()
    c.close()


def test_pipelining_in_order(daemon_factory, tmp_path, http_target):
    d = start_api(daemon_factory, tmp_path, http_target.port)
    before = sample(d.api.metrics(), "neosocksd_api_requests_total")
    rpc = {"Content-Type": RPC_MIME}
    batch = [
        # the first one waits a while, the others are quick: the answers
        # still come in the order asked
        request("POST", "/ruleset/rpcall", b'await.sleep(0.2); return "first"', rpc),
        request("GET", "/nope"),
        request("POST", "/ruleset/rpcall", b'return "third"', rpc),
        request("POST", "/ruleset/invoke", zlib.compress(b"_G.INVOKED = 4"),
                {"Content-Encoding": "deflate"}),
        request("POST", "/ruleset/rpcall", b'return rawget(_G, "INVOKED")', rpc),
        request("GET", "/healthy"),
    ]
    c = d.api.conn()
    try:
        c.send(b"".join(batch))  # one write
        got = [c.response() for _ in batch]
    finally:
        c.close()
    assert [r.status for r in got] == [200, 404, 200, 200, 200, 200], got
    assert got[0].body == b'return true,"first"'
    assert got[2].body == b'return true,"third"'
    assert got[4].body == b"return true,4"
    # every one was counted (and the /metrics request itself)
    after = sample(d.api.metrics(), "neosocksd_api_requests_total")
    assert after - before == len(batch) + 1
    # many small ones in one write
    c = d.api.conn()
    try:
        n = 50
        c.send(b"".join(request("POST", "/ruleset/rpcall", f"return {i}".encode(), rpc)
                        for i in range(n)))
        for i in range(n):
            assert c.response().body == f"return true,{i}".encode()
    finally:
        c.close()


def test_deep_pipeline(daemon_factory, tmp_path, http_target):
    """Tens of thousands of requests in one write, each answered at once:
    they are served in a loop, not by recursion (which used to overflow
    the ruleset process's stack), all in order on the one connection."""
    d = start_api(daemon_factory, tmp_path, http_target.port)
    pid = ruleset_pid(d)
    n = 100000
    one = request("GET", "/healthy")
    c = d.api.conn()
    err = []

    def send():
        try:
            c.s.sendall(one * n)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=send)
    t.start()
    try:
        # every answer is the same "200, no body"; read them in bulk
        parts = []
        heads = 0
        tail = b""
        deadline = time.monotonic() + 60
        while heads < n and time.monotonic() < deadline:
            chunk = c.s.recv(1 << 20)
            assert chunk, "EOF: the connection (or the process) died"
            parts.append(chunk)
            heads += (tail + chunk).count(b"\r\n\r\n")
            tail = chunk[-3:]
        data = b"".join(parts)
        assert data.count(b"HTTP/1.1 ") == n
        assert data.count(b"HTTP/1.1 200 OK\r\n") == n
        assert data.count(b"Content-Length: 0\r\n\r\n") == n
        assert data.endswith(b"\r\n\r\n")
        # and the connection is still good
        t.join(30)
        assert not err, err
        c.send(request("POST", "/ruleset/rpcall", b"return 42", {"Content-Type": RPC_MIME}))
        assert c.response().body == b"return true,42"
    finally:
        c.close()
        t.join(30)
    assert ruleset_pid(d) == pid, "the ruleset process died"
    assert routed(d, "v1.test")


def test_client_that_does_not_read(daemon_factory, tmp_path, http_target):
    """A client pipelining requests without reading the answers: the
    server stops taking requests once API_OUT_MAX (8 MiB) of answers wait,
    so its memory stays bounded, and it drops the connection after
    --api-idle; others are served meanwhile. (--api-idle 5, not 1: on a
    busy machine the drop came before the checks that it had not yet.)"""
    d = start_api(daemon_factory, tmp_path, http_target.port, "--api-idle", "5")
    pid = ruleset_pid(d)
    assert d.api.one("GET", "/healthy").status == 200
    hwm0 = vm_hwm_kib(pid)
    c = d.api.conn()
    # 300 answers of 1 MiB each if they were all taken at once
    big = request("POST", "/ruleset/rpcall", b'return string.rep("x", 1 << 20)',
                  {"Content-Type": RPC_MIME})
    c.send(big * 300)
    client_port = c.s.getsockname()[1]
    assert server_socket_state(d.api.port, client_port) == 1  # established
    # others are served while it sits there
    assert d.api.one("GET", "/healthy").status == 200
    wait_until(lambda: server_socket_state(d.api.port, client_port) != 1,
               what="a client that does not read was not dropped")
    growth = vm_hwm_kib(pid) - hwm0
    # unbounded, the answers alone would take 300 MiB (ASan's quarantine
    # of freed blocks adds its own share, hence the margin)
    assert growth < 128 * 1024, f"the ruleset process grew by {growth} KiB"
    # what it got is whole answers followed by the end (no more than the
    # server had queued)
    got = 0
    try:
        while got < 300:
            r = c.response()
            assert r.status == 200 and len(r.body) == len('return true,"') + MIB + 1
            got += 1
    except (EOFError, ConnectionResetError):
        pass
    c.close()
    assert 0 < got < 300, got
    assert ruleset_pid(d) == pid
    assert sample(d.api.metrics(), "neosocksd_process_restarts_total", role="ruleset") == 0


# ---- limits ----


def test_body_limits(daemon_factory, tmp_path, http_target):
    d = start_api(daemon_factory, tmp_path, http_target.port)
    # exactly 4 MiB: accepted
    r = d.api.one("POST", "/ruleset/invoke", lua_comment(LIMIT))
    assert r.status == 200, r
    # one byte more: 413 as soon as the head is read
    c = d.api.conn()
    c.send(request("POST", "/ruleset/invoke", headers={"Content-Length": str(LIMIT + 1)},
                   host=d.api.host))
    r = c.response()
    assert r.status == 413 and r.headers["connection"] == "close", r
    assert c.closed_by_peer()
    c.close()
    # chunked bodies: accepted, bounded the same way
    body = b"_G.INVOKED = true"
    chunked = b"5\r\n" + body[:5] + b"\r\n" + f"{len(body) - 5:x}\r\n".encode() + body[5:] + \
        b"\r\n0\r\n\r\n"
    r = d.api.one("POST", "/ruleset/invoke", chunked,
                  {"Transfer-Encoding": "chunked", "Content-Length": None})
    assert r.status == 200, r
    assert routed(d, "invoked.test")
    big = lua_comment(LIMIT + 1)
    c = d.api.conn()
    head = request("POST", "/ruleset/invoke", headers={"Transfer-Encoding": "chunked"},
                   host=d.api.host)
    head = head.replace(b"Content-Length: 0\r\n", b"")
    c.send(head)

    def send_chunks():
        try:
            for i in range(0, len(big), MIB):
                part = big[i:i + MIB]
                c.s.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            c.s.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server may stop reading once it has answered

    t = threading.Thread(target=send_chunks)
    t.start()
    r = c.response()
    t.join(30)
    c.close()
    assert r.status == 413, r
    # inflating: exactly 4 MiB accepted, one more byte 413
    r = d.api.one("POST", "/ruleset/invoke", zlib.compress(lua_comment(LIMIT)),
                  {"Content-Encoding": "deflate"})
    assert r.status == 200, r
    r = d.api.one("POST", "/ruleset/invoke", zlib.compress(lua_comment(LIMIT + 1)),
                  {"Content-Encoding": "deflate"})
    assert r.status == 413, r
    r = d.api.one("POST", "/ruleset/invoke", gzip.compress(lua_comment(LIMIT + 1)),
                  {"Content-Encoding": "gzip"})
    assert r.status == 413, r
    # a 413 after inflating is well framed: the connection goes on
    c = d.api.conn()
    c.send(request("POST", "/ruleset/invoke", zlib.compress(lua_comment(LIMIT + 1)),
                   {"Content-Encoding": "deflate"}, host=d.api.host)
           + request("GET", "/healthy", host=d.api.host))
    assert c.response().status == 413
    assert c.response().status == 200
    c.close()
    # a head larger than the parser allows
    r = d.api.one("GET", "/healthy", headers={"X-Big": "a" * 20000})
    assert r.status == 431, r


def test_zero_bomb_builder():
    z = zero_bomb(total=8 * MIB)
    assert zlib.decompress(z) == b"\0" * (8 * MIB)
    g = zero_bomb(gz=True, total=8 * MIB)
    assert gzip.decompress(g) == b"\0" * (8 * MIB)


def test_deflate_bomb(daemon_factory, tmp_path, http_target):
    d = start_api(daemon_factory, tmp_path, http_target.port)
    pid = ruleset_pid(d)
    assert d.api.one("GET", "/healthy").status == 200
    hwm0 = vm_hwm_kib(pid)
    for gz in (False, True):
        bomb = zero_bomb(gz)
        assert len(bomb) < 2 * MIB
        r = d.api.one("POST", "/ruleset/invoke", bomb,
                      {"Content-Encoding": "gzip" if gz else "deflate"})
        assert r.status == 413, r
    assert ruleset_pid(d) == pid, "the ruleset process died"
    growth = vm_hwm_kib(pid) - hwm0
    assert growth < 64 * 1024, f"the ruleset process grew by {growth} KiB"
    assert d.api.one("GET", "/healthy").status == 200
    assert routed(d, "v1.test")


# ---- deadlines and the connection cap ----


def test_slow_client_cut_off_others_served(daemon_factory, tmp_path, http_target):
    """A head sent one byte at a time never completes: the connection is
    closed once --api-timeout passes, while other clients are served."""
    d = start_api(daemon_factory, tmp_path, http_target.port, "--api-timeout", "1")
    head = request("GET", "/healthy", headers={"X-Padding": "p" * 100}, host=d.api.host)
    slow = d.api.conn()
    result = {}

    def trickle():
        t0 = time.monotonic()
        sent = 0
        try:
            for b in head:  # bounded: len(head) bytes, 50 ms apart (> 5 s)
                slow.s.send(bytes([b]))
                sent += 1
                time.sleep(0.05)
        except OSError:
            pass
        result["sent"] = sent
        try:
            result["closed"] = slow.closed_by_peer(timeout=10)
        except AssertionError as e:  # it got an answer
            result["closed"] = str(e)
        result["elapsed"] = time.monotonic() - t0

    t = threading.Thread(target=trickle)
    t.start()
    served = 0
    try:
        # meanwhile, others are answered
        while t.is_alive() and served < 200:
            assert d.api.one("GET", "/healthy").status == 200
            served += 1
            time.sleep(0.02)
    finally:
        t.join(WAIT)
        slow.close()
    assert served >= 1
    assert result["closed"] is True, f"the slow client was not cut off: {result['closed']}"
    # cut off before the head was whole (sending it takes over 5 s), and
    # not before --api-timeout
    assert result["sent"] < len(head), "the whole head was sent"
    assert result["elapsed"] >= 0.9, result
    # and the slow one got no answer (closed_by_peer asserts no bytes)


def test_idle_keepalive_closed(daemon_factory, tmp_path, http_target):
    d = start_api(daemon_factory, tmp_path, http_target.port, "--api-idle", "1",
                  "--api-timeout", "2")
    c = d.api.conn()
    try:
        c.send(request("GET", "/healthy", host=d.api.host))
        assert c.response().status == 200
        t0 = time.monotonic()
        assert c.closed_by_peer(timeout=10), "idle keep-alive connection left open"
        assert time.monotonic() - t0 >= 0.9
    finally:
        c.close()
    # a connection that never sends anything is closed too (its first
    # request did not come within --api-timeout)
    c = d.api.conn()
    try:
        t0 = time.monotonic()
        assert c.closed_by_peer(timeout=10)
        assert time.monotonic() - t0 >= 1.9
    finally:
        c.close()


def test_max_conns(daemon_factory, tmp_path, http_target):
    d = start_api(daemon_factory, tmp_path, http_target.port, "--api-max-conns", "2")
    held = [d.api.conn(), d.api.conn()]
    try:
        for c in held:  # both are served (so both were accepted)
            c.send(request("GET", "/healthy", host=d.api.host))
            assert c.response().status == 200
        extra = d.api.conn()
        r = extra.response()
        assert r.status == 503 and r.headers["connection"] == "close", r
        assert r.headers["retry-after"] == "1" and "date" in r.headers
        assert extra.closed_by_peer()
        extra.close()
        held.pop().close()

        # a freed slot is usable again (once the server has seen the close)
        def slot_free():
            c = d.api.conn()
            try:
                c.send(request("GET", "/healthy", host=d.api.host))
                return c.response().status == 200
            except (EOFError, ConnectionResetError):
                return False
            finally:
                c.close()

        wait_until(slot_free, what="the freed slot was not reused")
        # the one still held keeps working
        held[0].send(request("GET", "/healthy", host=d.api.host))
        assert held[0].response().status == 200
    finally:
        for c in held:
            c.close()


# ---- /ruleset/invoke that does not end, or eats memory ----


@pytest.mark.parametrize("code,why", [
    ("while true do end", "time budget"),
    ("local s = 'x'; while true do s = s .. s end", "not enough memory"),
    ("local t = {}; while true do t[#t + 1] = {} end", "not enough memory"),
    # a bomb that keeps going: it hits the cap over and over for a whole budget
    ("while true do pcall(function() local t = {} while true do t[#t + 1] = {} end end) end",
     "time budget"),
])
def test_invoke_bounded(daemon_factory, tmp_path, http_target, code, why):
    d = start_api(daemon_factory, tmp_path, http_target.port, "--memlimit", "32")
    result = {}

    def bad():
        result["r"] = d.api.invoke(code)

    t = threading.Thread(target=bad)
    t.start()
    # SOCKS clients are routed meanwhile (perhaps after the budget ends)
    # and afterwards
    n = 0
    while t.is_alive() and n < 20:
        assert routed(d, "v1.test")
        n += 1
    t.join(WAIT)
    if why == "time budget":
        assert n >= 1, "no SOCKS request was made while the code ran"
    r = result["r"]
    assert r.status == 500 and why in r.text, r
    assert len(r.body) < 4096
    for _ in range(3):
        assert routed(d, "v1.test")
    assert not routed(d, "v2.test")
    assert d.api.one("GET", "/healthy").status == 200
    fams = d.api.metrics()
    assert sample(fams, "neosocksd_lua_memory_bytes") < 32 * MIB
    assert sample(fams, "neosocksd_process_restarts_total", role="ruleset") == 0


# ---- authentication and access control ----
