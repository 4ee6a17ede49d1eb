"""The REST API's endpoints through real clients: /healthy, /stats (GET and
POST, queries), /metrics (parsed strictly as Prometheus text, counters
following real traffic), /ruleset/invoke, /ruleset/update (failures keep
the previous ruleset), /ruleset/gc, /ruleset/rpcall."""

import os
import re
import signal
import socket
import time
import zlib

import pytest

from harness import (Api, comm, free_ports, MIB, parse_prometheus, recv_all, request, routed,
                     RPC_MIME, ruleset_pid, ruleset_text, sample, server_socket_queues,
                     socks5_connect, start_api, stats_numbers, stats_value, wait_until)


def test_prometheus_parser_is_strict():
    """The parser used below refuses what the format forbids."""
    good = ("# HELP a_total A.\n# TYPE a_total counter\na_total 1\n"
            "# TYPE s summary\ns{quantile=\"0.5\"} 1e-3\ns_sum 2\ns_count 3\n")
    fams = parse_prometheus(good)
    assert sample(fams, "s_count") == 3 and sample(fams, "s", quantile="0.5") == 0.001
    bad = [
        "a 1\n",                                          # no TYPE
        "# TYPE a counter\na 1",                          # no final newline
        "# TYPE a counter\na{x=\"1} 1\n",                 # unterminated label
        "# TYPE a counter\na{x=1} 1\n",                   # unquoted label
        "# TYPE a counter\na 1,5\n",                      # bad float
        "# TYPE a counter\n# TYPE a counter\na 1\n",      # TYPE twice
        "# TYPE a counter\n# TYPE b gauge\na 1\nb 1\na{x=\"y\"} 2\n",  # not contiguous
        "# TYPE a counter\na 1\na 2\n",                   # same series twice
        "# TYPE a widget\na 1\n",                         # unknown type
        "# TYPE 1a counter\n1a 1\n",                      # bad name
        "# TYPE a counter\na -1\n",                       # negative counter
    ]
    for text in bad:
        with pytest.raises(AssertionError):
            parse_prometheus(text)


# ---- endpoints ----


def test_healthy(daemon_factory, tmp_path, http_target):
    d = start_api(daemon_factory, tmp_path, http_target.port)
    r = d.api.curl("/healthy")
    assert r.status == 200 and r.body == b"" and "content-type" not in r.headers, r
    assert r.headers["content-length"] == "0"
    # the ruleset's healthy() returning a string: 503 with that text
    assert d.api.invoke('_G.UNHEALTHY = "backend pool empty"').status == 200
    r = d.api.curl("/healthy")
    assert r.status == 503 and r.body == b"backend pool empty", r
    assert r.headers["content-type"].startswith("text/plain")
    # ... and raising: 503 with the error
    assert d.api.invoke('_G.UNHEALTHY = nil; ruleset.healthy = function() '
                        'error("probe failed", 0) end').status == 200
    r = d.api.curl("/healthy")
    assert r.status == 503 and r.body == b"probe failed", r
    assert d.api.invoke("ruleset.healthy = nil").status == 200
    assert d.api.curl("/healthy").status == 200
    r = d.api.curl("/healthy", "-X", "POST")
    assert r.status == 405 and r.headers["allow"] == "GET", r


def test_stats_get_and_post(daemon_factory, tmp_path, http_target):
    d = start_api(daemon_factory, tmp_path, http_target.port)
    r = d.api.curl("/stats")
    assert r.status == 200, r
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    assert r.text.startswith("neosocksd ")
    for label in ("Server Time", "Uptime", "Num Sessions", "Num Rejected", "Conn Accepts",
                  "Requests", "API Requests", "Traffic", "Connect Latency"):
        stats_value(r.text, label)
    # GET is stateless: no rates, no ruleset output, no runtime by default
    assert "Accept Rate" not in r.text and "custom stats" not in r.text
    assert "Ruleset Allocated" not in r.text
    # nobanner: bare key is true (the reference reads it as false), =0 false
    assert not d.api.curl("/stats?nobanner").text.startswith("neosocksd")
    assert not d.api.curl("/stats?nobanner=1").text.startswith("neosocksd")
    assert d.api.curl("/stats?nobanner=0").text.startswith("neosocksd")
    # server=0: the banner only; with nobanner nothing at all
    r = d.api.curl("/stats?server=0")
    assert r.status == 200 and "Uptime" not in r.text and r.text.startswith("neosocksd")
    assert d.api.curl("/stats?server=0&nobanner").body == b""
    # runtime: the Lua heap and its cap
    r = d.api.curl("/stats?runtime=1")
    assert re.search(r"^Ruleset Allocated +: \S+ < 128MiB \(", r.text, re.M), r.text
    stats_value(r.text, "Ruleset Threads")
    # POST: rates since the previous POST and the ruleset's own text with q
    r = d.api.curl("/stats?nobanner&q=hello%20there", "-X", "POST")
    assert r.status == 200, r
    assert "custom stats: dt is number, q=hello there\n" in r.text, r.text
    # the first POST has nothing to compare CPU time with
    assert re.search(r"^Server Load +: \(unknown\) \(last \S+\)$", r.text, re.M), r.text
    for label in ("Accept Rate", "Request Rate", "Reject Rate", "Throughput"):
        stats_value(r.text, label)
    r = d.api.curl("/stats?nobanner", "-X", "POST")
    assert "custom stats: dt is number, q=nil\n" in r.text, r.text
    assert re.search(r"^Server Load +: \d+\.\d{3}% \(last \S+\)$", r.text, re.M), r.text
    # q on GET reaches nothing
    assert "custom stats" not in d.api.curl("/stats?q=x").text
    # a malformed escape is refused
    assert d.api.curl("/stats?q=%zz").status == 400
    # a query or path too long to keep whole is refused, not cut
    r = d.api.curl("/stats?q=" + "a" * 1000, "-X", "POST")
    assert r.status == 200 and "q=" + "a" * 1000 + "\n" in r.text
    assert d.api.curl("/stats?q=" + "a" * 1100).status == 414
    assert d.api.curl("/" + "a" * 300).status == 414
    r = d.api.curl("/stats", "-X", "PUT")
    assert r.status == 405 and r.headers["allow"] == "GET, POST", r


def test_metrics_endpoint(daemon_factory, tmp_path, http_target):
    d = start_api(daemon_factory, tmp_path, http_target.port, "--memlimit", "64")
    r = d.api.curl("/metrics")
    assert r.status == 200, r
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert r.headers["cache-control"] == "no-store"
    fams = parse_prometheus(r.text)
    for name in ("sessions_active", "uptime_seconds", "connections_accepted_total",
                 "requests_total", "requests_success_total", "api_requests_total",
                 "uplink_bytes_total", "downlink_bytes_total", "lua_memory_bytes",
                 "lua_objects", "lua_threads_active", "sessions_peak", "halfopen_connections",
                 "process_cpu_seconds_total", "rejects_timeout_total", "rejects_upstream_total",
                 "dns_queries_total", "dns_success_total", "api_client_requests_total",
                 "lua_threads_peak", "lua_memory_limit_bytes", "log_lines_dropped_total"):
        assert "neosocksd_" + name in fams, name
        assert fams["neosocksd_" + name]["help"], name
    # ours: restarts and sandbox layers per role, the Lua cap, API by status
    for role in ("front", "ruleset"):
        assert sample(fams, "neosocksd_process_restarts_total", role=role) == 0
    layers = {}
    for role in ("main", "front", "ruleset"):
        for layer in ("seccomp", "nnp", "caps"):
            layers[role, layer] = sample(fams, "neosocksd_sandbox_layer", role=role, layer=layer)
    assert all(v in (0, 1) for v in layers.values()), layers
    assert layers["front", "seccomp"] == 1 and layers["ruleset", "seccomp"] == 1
    assert sample(fams, "neosocksd_lua_memory_limit_bytes") == 64 * MIB
    assert 0 < sample(fams, "neosocksd_lua_memory_bytes") < 64 * MIB
    assert sample(fams, "neosocksd_process_cpu_seconds_total") > 0
    assert sample(fams, "neosocksd_halfopen_connections") == 0
    assert sample(fams, "neosocksd_lua_threads_peak") >= sample(fams, "neosocksd_lua_threads_active")
    before = sample(fams, "neosocksd_api_responses_total", code="4xx")
    ok_before = sample(fams, "neosocksd_api_responses_total", code="2xx")
    assert d.api.curl("/no-such-page").status == 404
    fams = d.api.metrics()
    assert sample(fams, "neosocksd_api_responses_total", code="4xx") == before + 1
    # the 200 for the first /metrics was counted once it was answered
    assert sample(fams, "neosocksd_api_responses_total", code="2xx") == ok_before + 1
    r = d.api.curl("/metrics", "-X", "POST")
    assert r.status == 405 and r.headers["allow"] == "GET", r


def test_metrics_and_stats_callbacks(daemon_factory, tmp_path):
    """ruleset.metrics() is appended to /metrics verbatim; when it raises,
    the page is still whole and valid and the error is logged; an error
    in ruleset.stats() shows in the POST /stats page instead of its text."""
    socks, api = free_ports(2)
    rs = tmp_path / "cb.lua"
    rs.write_text(
        "local rs = {}\n"
        "function rs.metrics()\n"
        "    if rawget(_G, 'BROKEN') then error('metrics went wrong') end\n"
        "    return '# HELP my_queue_depth Items waiting.\\n# TYPE my_queue_depth gauge\\n'\n"
        "        .. 'my_queue_depth{queue=\"a\"} 7\\n'\n"
        "end\n"
        "function rs.stats(dt, q) error('stats went wrong') end\n"
        "return rs\n")
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--api", f"127.0.0.1:{api}", "-r", str(rs))
    d.api = Api(port=api)
    fams = d.api.metrics()
    assert sample(fams, "my_queue_depth", queue="a") == 7
    assert fams["my_queue_depth"]["help"] == "Items waiting."
    assert "neosocksd_uptime_seconds" in fams
    assert d.api.invoke("_G.BROKEN = true").status == 200
    fams = d.api.metrics()
    assert "my_queue_depth" not in fams and "neosocksd_uptime_seconds" in fams
    d.wait_log("metrics went wrong")
    r = d.api.curl("/stats", "-X", "POST")
    assert r.status == 200, r
    stats_value(r.text, "Uptime")
    assert "stats went wrong" in r.text, r.text


def test_invoke(daemon_factory, tmp_path, http_target):
    d = start_api(daemon_factory, tmp_path, http_target.port)
    assert not routed(d, "invoked.test")
    r = d.api.curl("/ruleset/invoke", "--data-binary", "_G.INVOKED = true")
    assert r.status == 200 and r.body == b"", r
    assert routed(d, "invoked.test")
    # bare globals stay in the chunk's own environment
    assert d.api.invoke("BARE = 1").status == 200
    assert d.api.rpc('return rawget(_G, "BARE"), rawget(_G, "INVOKED")').body == \
        b"return true,nil,true"
    r = d.api.curl("/ruleset/invoke", "--data-binary", "return (")
    assert r.status == 500 and r.text.startswith("(invoke):1:"), r
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    r = d.api.curl("/ruleset/invoke", "--data-binary", 'error("deliberate")')
    assert r.status == 500 and r.text == "(invoke):1: deliberate", r
    # invoke is synchronous: awaiting is not allowed
    r = d.api.curl("/ruleset/invoke", "--data-binary", "await.sleep(0.01)")
    assert r.status == 500 and "asynchronous" in r.text, r
    r = d.api.curl("/ruleset/invoke")
    assert r.status == 405 and r.headers["allow"] == "POST", r


def test_update_ruleset_and_module(daemon_factory, tmp_path, http_target):
    d = start_api(daemon_factory, tmp_path, http_target.port)
    assert routed(d, "v1.test") and not routed(d, "v2.test")
    v2 = ruleset_text("v2.test", http_target.port)
    r = d.api.curl("/ruleset/update?chunkname=%40v2.lua", "--data-binary", v2)
    assert r.status == 200 and re.fullmatch(r"Time Cost {11}: \d+(\.\d+)?(µs|ms)\n", r.text), r
    assert routed(d, "v2.test") and not routed(d, "v1.test")
    # a module: package.loaded[name] is replaced
    r = d.api.curl("/ruleset/update?module=names", "--data-binary",
                   'local name = ...; return { ["mod.test"] = name == "names" }')
    assert r.status == 200, r
    assert routed(d, "mod.test")
    # _G[name] follows the module only if it was the module before
    assert d.api.invoke('_G.names = package.loaded.names; _G.other = {}').status == 200
    assert d.api.curl("/ruleset/update?module=names", "--data-binary",
                      'return { ["mod2.test"] = true }').status == 200
    assert d.api.curl("/ruleset/update?module=other", "--data-binary",
                      'return { replaced = true }').status == 200
    r = d.api.rpc("return _G.names == package.loaded.names, _G.names['mod2.test'], "
                  "_G.other.replaced, package.loaded.other.replaced")
    assert r.body == b"return true,true,true,nil,true", r
    assert routed(d, "mod2.test") and not routed(d, "mod.test")
    # a module returning nothing is loaded as true
    assert d.api.curl("/ruleset/update?module=empty", "--data-binary", "local x = 1").status == 200
    assert d.api.rpc("return package.loaded.empty").body == b"return true,true"
    # chunkname (URL-decoded) names the chunk in errors; default =<module>
    r = d.api.curl("/ruleset/update?module=names&chunkname=%40names.lua", "--data-binary",
                   'error("at load")')
    assert r.status == 500 and r.text == "names.lua:1: at load", r
    r = d.api.curl("/ruleset/update?module=names", "--data-binary", 'error("again")')
    assert r.status == 500 and r.text == "names:1: again", r
    assert routed(d, "mod2.test")
    # module names are checked; dotted names are fine
    assert d.api.curl("/ruleset/update?module=a%2Fb", "--data-binary", "return 1").status == 400
    assert d.api.curl("/ruleset/update?module=a..b", "--data-binary", "return 1").status == 400
    assert d.api.curl("/ruleset/update?module=lib.sub", "--data-binary", "return 5").status == 200
    assert d.api.rpc('return package.loaded["lib.sub"]').body == b"return true,5"
    r = d.api.curl("/ruleset/update")
    assert r.status == 405 and r.headers["allow"] == "POST", r


@pytest.mark.parametrize("module", [False, True])
def test_failed_update_keeps_previous(daemon_factory, tmp_path, http_target, module):
    d = start_api(daemon_factory, tmp_path, http_target.port)
    path = "/ruleset/update"
    if module:
        path += "?module=names"
        assert d.api.curl(path, "--data-binary", 'return {["mod.test"] = true}').status == 200
        assert routed(d, "mod.test")
    cases = [
        ("return {", "ruleset:1: unexpected symbol near <eof>" if not module else "names:1: unexpected symbol"),
        ('local t = nil; return t.x', "attempt to index"),
        ('error("refused by the new code")', "refused by the new code"),
    ]
    if not module:
        cases += [("return 42", "ruleset: expected table, got number"),
                  ("return", "ruleset: expected table, got nil")]
    for src, why in cases:
        r = d.api.curl(path, "--data-binary", src)
        assert r.status == 500 and why in r.text, (src, r)
        assert r.headers["content-type"] == "text/plain; charset=utf-8"
        assert routed(d, "v1.test"), src
        assert not routed(d, "v2.test")
        if module:
            assert routed(d, "mod.test"), src


def test_gc(daemon_factory, tmp_path, http_target):
    d = start_api(daemon_factory, tmp_path, http_target.port)
    assert d.api.invoke('_G.junk = {}; for i = 1, 20000 do _G.junk[i] = {i} end; '
                        '_G.junk = nil').status == 200
    r = d.api.curl("/ruleset/gc", "-X", "POST")
    assert r.status == 200, r
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    diff = stats_value(r.text, "Difference")
    assert re.fullmatch(r"-\d\S*(B|KiB|MiB) \(-\S+ objects\)", diff), r.text
    assert re.fullmatch(r"\S+ < 128MiB \(\S+ objects\)", stats_value(r.text, "Ruleset Allocated"))
    stats_value(r.text, "Ruleset Threads")
    assert re.fullmatch(r"\d+(\.\d+)?(µs|ms)", stats_value(r.text, "Time Cost")), r.text
    assert d.api.curl("/ruleset/gc").status == 405


def test_rpcall(daemon_factory, tmp_path, http_target):
    d = start_api(daemon_factory, tmp_path, http_target.port, "-t", "5")
    r = d.api.curl("/ruleset/rpcall", "-H", f"Content-Type: {RPC_MIME}", "--data-binary",
                   'return 1, "a\\nb", {2, x = "y"}, nil, true, 3.5')
    assert r.status == 200, r
    assert r.headers["content-type"] == RPC_MIME
    assert r.body == b'return true,1,"a\\\nb",{2,["x"]="y",},nil,true,0x1.cp+1', r.body
    assert d.api.rpc("local x = 1").body == b"return true"
    # it runs in an asynchronous routine: it may await
    r = d.api.rpc('await.sleep(0.05); return "slept"')
    assert r.status == 200 and r.body == b'return true,"slept"', r
    # parameters in another order and quoted
    r = d.api.rpc("return 7", {"Content-Type": 'application/x-neosocksd-rpc;charset=x; version="1"'})
    assert r.body == b"return true,7", r
    # the wrong MIME type, version or none at all: 400
    for ct in ("text/plain", "application/x-neosocksd-rpc", "application/x-neosocksd-rpc; version=2",
               "application/x-neosocksd-rpc; version=10", None):
        r = d.api.rpc("return 1", {"Content-Type": ct})
        assert r.status == 400, (ct, r)
    # a runtime error: 500 with the message in the RPC type (a deviation:
    # the reference says only "rpcall did not return")
    r = d.api.rpc('error("remote failure")')
    assert r.status == 500 and r.headers["content-type"] == RPC_MIME, r
    assert r.body == b"(rpc):1: remote failure"
    # a load error: 500 text/plain with the message
    r = d.api.rpc("return (")
    assert r.status == 500 and r.headers["content-type"].startswith("text/plain"), r
    assert r.text.startswith("(rpc):1:")
    # results that marshal cannot write
    r = d.api.rpc("return function() end")
    assert r.status == 500, r
    # sandboxed: bare globals do not persist
    assert d.api.rpc("LEAK = 1").status == 200
    assert d.api.rpc('return rawget(_G, "LEAK")').body == b"return true,nil"
    assert d.api.curl("/ruleset/rpcall").status == 405
    # exactly what the reference's await.invoke sends: no Host, Connection:
    # close, a deflated body (>= 256 bytes), Accept-Encoding: deflate
    code = ('local t = {} for i = 1, 100 do t[i] = string.format("%03d", i) end '
            'return table.concat(t, ",") -- ' + "pad" * 80).encode()
    body = zlib.compress(code)
    c = d.api.conn()
    c.send(b"POST /ruleset/rpcall HTTP/1.1\r\nAccept-Encoding: deflate\r\nConnection: close\r\n"
           b"Content-Length: %d\r\nContent-Type: %s\r\nContent-Encoding: deflate\r\n\r\n"
           % (len(body), RPC_MIME.encode()) + body)
    r = c.response()
    assert c.closed_by_peer()
    c.close()
    assert r.status == 200 and r.headers["connection"] == "close", r
    assert r.headers["content-encoding"] == "deflate"
    assert zlib.decompress(r.body) == b'return true,"' + ",".join(
        "%03d" % i for i in range(1, 101)).encode() + b'"'
    # the client leaves while its call waits: the late answer is dropped
    for _ in range(3):
        c = d.api.conn()
        c.send(request("POST", "/ruleset/rpcall", b"await.sleep(0.2); return 1",
                       {"Content-Type": RPC_MIME}))
        c.close()
    assert d.api.rpc("await.sleep(0.4); return 2").body == b"return true,2"
    # a call that does not end is answered 504 after -t (here 5 s)
    t0 = time.monotonic()
    r = d.api.rpc("await.sleep(600)")
    assert r.status == 504 and r.headers["content-type"] == RPC_MIME, r
    assert r.body == b"rpcall timed out"
    assert time.monotonic() - t0 >= 4.9
    assert d.api.rpc("return 3").body == b"return true,3"


def test_metrics_after_many_ruleset_events(daemon_factory, tmp_path, http_target):
    d = start_api(daemon_factory, tmp_path, http_target.port)
    pid = ruleset_pid(d)
    n = 300
    c = d.api.conn()
    try:
        c.send(b"".join(request("POST", "/ruleset/rpcall", b"return 1", {"Content-Type": RPC_MIME})
                        for _ in range(n)))
        for _ in range(n):
            assert c.response().body == b"return true,1"
    finally:
        c.close()
    r = d.api.one("GET", "/stats?runtime=1")
    assert r.status == 200 and re.search(r"^Ruleset Events +: P50=", r.text, re.M), r
    fams = d.api.metrics()
    assert ruleset_pid(d) == pid
    assert sample(fams, "neosocksd_process_restarts_total", role="ruleset") == 0


def test_metrics_after_many_dials(daemon_factory):
    socks, api_port = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--api", f"127.0.0.1:{api_port}")
    api = Api(port=api_port)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    n = 260
    try:
        for _ in range(n):
            s, rep = socks5_connect(socks, "127.0.0.1", srv.getsockname()[1])
            assert rep == 0
            srv.accept()[0].close()
            s.close()
    finally:
        srv.close()
    fams = api.metrics()
    assert sample(fams, "neosocksd_connect_latency_seconds_count") >= n
    assert sample(fams, "neosocksd_process_restarts_total", role="front") == 0
    assert "killed by signal" not in d.log()


# ---- counters follow the traffic ----


def test_counters_follow_traffic(daemon_factory, tmp_path, http_target):
    d = start_api(daemon_factory, tmp_path, http_target.port)
    m0 = d.api.metrics()
    s0 = stats_numbers(d.api.curl("/stats").text)
    n, size, rejected = 6, 200000, 3
    get = b"GET /size/%d HTTP/1.0\r\nHost: x\r\n\r\n" % size
    for _ in range(n):
        s, rep = socks5_connect(d.socks, "v1.test", 80)
        assert rep == 0
        s.sendall(get)
        data = recv_all(s)
        s.close()
        assert len(data) > size
    for _ in range(rejected):
        assert not routed(d, "v2.test")

    def g(fams, name, **lb):
        return sample(fams, "neosocksd_" + name, **lb)

    def caught_up():
        m = d.api.metrics()
        return (g(m, "requests_success_total") - g(m0, "requests_success_total") >= n and
                g(m, "downlink_bytes_total") - g(m0, "downlink_bytes_total") >= n * size and
                g(m, "sessions_active") == 0)

    wait_until(caught_up, what="the counters did not follow the traffic")
    m1 = d.api.metrics()
    grew = {name: g(m1, name) - g(m0, name) for name in (
        "requests_total", "requests_success_total", "rejects_ruleset_total",
        "connections_accepted_total", "connections_served_total", "uplink_bytes_total",
        "downlink_bytes_total", "api_requests_total", "api_requests_success_total")}
    assert grew["requests_total"] >= n + rejected, grew
    assert grew["requests_success_total"] >= n, grew
    assert grew["rejects_ruleset_total"] >= rejected, grew
    assert grew["connections_accepted_total"] >= n + rejected, grew
    assert grew["connections_served_total"] >= n + rejected, grew
    assert grew["uplink_bytes_total"] >= n * len(get), grew
    assert grew["downlink_bytes_total"] >= n * size, grew
    assert grew["api_requests_total"] >= 2 and grew["api_requests_success_total"] >= 2, grew
    # SOCKS5 handshakes: at least 3 + 10 bytes in per request
    hs = g(m1, "protocol_bytes_total", direction="rx", module="proxy_server") - \
        g(m0, "protocol_bytes_total", direction="rx", module="proxy_server")
    assert hs >= (n + rejected) * 13, hs
    api_rx = g(m1, "protocol_bytes_total", direction="rx", module="api_server") - \
        g(m0, "protocol_bytes_total", direction="rx", module="api_server")
    assert api_rx >= len("GET /metrics HTTP/1.1\r\n\r\n"), api_rx
    # a dial happened: the latency summary is there
    assert g(m1, "connect_latency_seconds_count") >= n
    assert g(m1, "connect_latency_seconds", quantile="0.5") > 0
    # /stats tells the same story
    s1 = stats_numbers(d.api.curl("/stats").text)
    assert s1["ok"] - s0["ok"] >= n, (s0, s1)
    assert s1["failed"] - s0["failed"] >= rejected, (s0, s1)
    assert s1["accepts"] - s0["accepts"] >= n + rejected, (s0, s1)
    assert s1["rej_ruleset"] - s0["rej_ruleset"] >= rejected, (s0, s1)
    # the byte counts are rounded to three digits
    assert s1["down"] * 1.01 - s0["down"] >= n * size, (s0, s1)
    assert s1["up"] * 1.01 - s0["up"] >= n * len(get), (s0, s1)
    assert s1["api"] > s0["api"]


def test_no_ruleset(daemon_factory):
    """Started without -r or -c the front never asks a ruleset: /ruleset/*
    says so (the reference's 500) instead of pretending to apply updates;
    /healthy, /stats and /metrics work."""
    socks, api_port = free_ports(2)
    daemon_factory("-l", f"127.0.0.1:{socks}", "--api", f"127.0.0.1:{api_port}")
    api = Api(port=api_port)
    for path, args in (("/ruleset/update", ("--data-binary", "return {}")),
                       ("/ruleset/invoke", ("--data-binary", "x = 1")),
                       ("/ruleset/rpcall", ("-H", f"Content-Type: {RPC_MIME}", "--data-binary", "return 1")),
                       ("/ruleset/gc", ("-X", "POST")),
                       ("/ruleset/nothing", ())):
        r = api.curl(path, *args)
        assert r.status == 500 and r.body == b"ruleset is not enabled on the server", (path, r)
    assert api.curl("/healthy").status == 200
    assert api.curl("/stats").status == 200
    fams = api.metrics()
    assert sample(fams, "neosocksd_lua_memory_bytes") >= 0


def test_stats_queue_full(daemon_factory, tmp_path, http_target):
    """/stats and /metrics wait for the front's counters; with 64 waiting
    already, another is told to come back (503, Retry-After) rather than
    given zeros, which a scraper would read as counter resets."""
    d = start_api(daemon_factory, tmp_path, http_target.port, "--api-max-conns", "100")
    front = next(p for p in d.children() if comm(p) == "neosocksd-front")
    conns = []
    # the parent is held too: its heartbeat would replace a front stopped
    # for 6 s, which a slow machine can take to open 64 connections
    os.kill(d.pid, signal.SIGSTOP)
    os.kill(front, signal.SIGSTOP)
    try:
        for _ in range(64):
            c = d.api.conn()
            c.send(request("GET", "/metrics"))
            conns.append(c)

        def all_read():
            return all((server_socket_queues(d.api.port, c.s.getsockname()[1]) or (0, 1))[1] == 0
                       for c in conns)

        wait_until(all_read, 60, "the server did not read the requests")
        r = d.api.one("GET", "/stats")
        assert r.status == 503 and r.headers["retry-after"] == "1", r
        assert d.api.one("GET", "/healthy").status == 200
    finally:
        os.kill(front, signal.SIGCONT)
        os.kill(d.pid, signal.SIGCONT)
    for c in conns:
        r = c.response()
        assert r.status == 200, r
        parse_prometheus(r.text)
        c.close()
    assert sample(d.api.metrics(), "neosocksd_process_restarts_total", role="front") == 0
