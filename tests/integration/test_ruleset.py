"""The ruleset engine through real clients: decisions, chains, failover,
authentication, ticks, a 1,000-rule ruleset, credentials reaching the
callbacks, and the bounds (loops, memory, errors, silence)."""

import os
import signal
import textwrap
import time

import pytest

from harness import (connect, curl, favour, free_ports, http_connect, pattern_bytes, recv_all,
                     RPC_MIME, SilentServer, socks4_connect, socks5_connect, socks5_read_reply,
                     WAIT, wait_until)


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


def start(daemon_factory, rs, *extra):
    socks, http = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--http", f"127.0.0.1:{http}",
                       "-r", rs, "--loglevel", "5", *extra)
    d.socks, d.http = socks, http
    return d


ROUTER = """
    local T = tonumber(os.getenv and 0 or 0)
    local rs = {}
    local target = "127.0.0.1:%d"
    function rs.resolve(addr, user, pass)
        local host = neosocksd.splithostport(addr)
        if host == "reject.test" then return nil end
        if host == "false.test" then return false end
        if host == "redirect.test" or host == "localhost" then return target end
        if host == "error.test" then error("deliberate") end
        if host == "loop.test" then while true do end end
        if host == "pcall.test" then while true do pcall(function() while true do end end) end end
        if host == "bomb.test" then local t = {} for i = 1, 1e9 do t[i] = ("x"):rep(4096) .. i end end
        if host == "silent.test" then await.sleep(1e6) end
        if host == "badaddr.test" then return "no port here" end
        if host == "notstring.test" then return 42 end
        return addr
    end
    function rs.route(addr) if addr:find("^127%%.0%%.0%%.9:") then return nil end return addr end
    function rs.route6(addr) return addr end
    return rs
"""


@pytest.fixture
def router(daemon_factory, tmp_path, http_target):
    rs = write(tmp_path, "router.lua", ROUTER % http_target.port)
    return start(daemon_factory, rs, "-t", "5")


@pytest.fixture
def spin_router(daemon_factory, tmp_path, http_target):
    """The router with the default -t (60 s) and its ruleset process run
    ahead of other work: for requests that spin until the CPU budget ends
    them. (Regression, a race on a busy machine: with -t 5 a second of CPU
    could take more than 5 s of wall time, and the deadline answered 06
    before the budget's 01.)"""
    rs = write(tmp_path, "router.lua", ROUTER % http_target.port)
    d = start(daemon_factory, rs)
    favour(d.child_by_title("neosocksd: ruleset"))
    return d


def http_get_via_socks5(port, host, target_port, path="/size/1000"):
    s, rep = socks5_connect(port, host, target_port)
    if rep != 0:
        s.close()
        return rep, None
    s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
    data = recv_all(s)
    s.close()
    return 0, data


def served(d, target_port):
    rep, data = http_get_via_socks5(d.socks, "redirect.test", target_port)
    return rep == 0 and data.endswith(pattern_bytes(1000))


def test_redirect(router, http_target):
    rep, data = http_get_via_socks5(router.socks, "redirect.test", 9)
    assert rep == 0 and data.endswith(pattern_bytes(1000))
    rc, out, err = curl("-p", "-x", f"http://127.0.0.1:{router.http}",
                        "http://redirect.test:9/size/500")
    assert rc == 0 and out == pattern_bytes(500), err
    router.wait_log(f"redirect.test:9 route=direct to=127.0.0.1:{http_target.port}")


@pytest.mark.parametrize("host", ["reject.test", "false.test"])
def test_reject(router, http_target, host):
    s, rep = socks5_connect(router.socks, host, 80)
    s.close()
    assert rep == 0x01
    s, status, head = http_connect(router.http, f"{host}:80")
    s.close()
    assert status == 403, head
    # SOCKS4 for an IPv4 the route callback rejects
    s, cd = socks4_connect(router.socks, "127.0.0.9", 80)
    s.close()
    assert cd == 91
    router.wait_log("rejected by ruleset", count=2)
    router.wait_log("refused by the ruleset")
    assert served(router, http_target.port)


def test_chain_returned_by_ruleset(daemon_factory, tmp_path, http_target):
    bs, bh = free_ports(2)
    b = daemon_factory("-l", f"127.0.0.1:{bs}", "--loglevel", "5")
    rs = write(tmp_path, "chain.lua", f"""
        return {{ resolve = function(addr)
            -- addr, proxyN .. proxy1: the last value is the first hop
            return "127.0.0.1:{http_target.port}", "socks5://127.0.0.1:{bs}"
        end }}
    """)
    d = start(daemon_factory, rs)
    rep, data = http_get_via_socks5(d.socks, "anything.test", 1)
    assert rep == 0 and data.endswith(pattern_bytes(1000))
    d.wait_log(f"route=socks5://127.0.0.1:{bs} to=127.0.0.1:{http_target.port}")
    b.wait_log(f"target=127.0.0.1:{http_target.port} route=direct")


def test_x_chain_is_prepended(daemon_factory, tmp_path, http_target):
    """-x with a ruleset: the global chain comes first, then the ruleset's."""
    a_socks, b_socks = free_ports(2)
    a = daemon_factory("-l", f"127.0.0.1:{a_socks}", "--loglevel", "5")
    b = daemon_factory("-l", f"127.0.0.1:{b_socks}", "--loglevel", "5")
    rs = write(tmp_path, "chain2.lua", f"""
        return {{ resolve = function(addr)
            return "127.0.0.1:{http_target.port}", "socks5://127.0.0.1:{b_socks}"
        end }}
    """)
    d = start(daemon_factory, rs, "-x", f"socks5://127.0.0.1:{a_socks}")
    rep, data = http_get_via_socks5(d.socks, "x.test", 1)
    assert rep == 0 and data.endswith(pattern_bytes(1000))
    # a was asked for b, b for the target
    a.wait_log(f"target=127.0.0.1:{b_socks} route=direct")
    b.wait_log(f"target=127.0.0.1:{http_target.port} route=direct")


def test_failover_with_await_forward(daemon_factory, tmp_path, http_target):
    dead, = free_ports(1)
    rs = write(tmp_path, "failover.lua", f"""
        local log = {{}}
        return {{ resolve = function(addr)
            for _, up in ipairs({{ "127.0.0.1:{dead}", "127.0.0.1:{http_target.port}" }}) do
                local ok, err = await.forward(up)
                print("forward", up, ok, err)
                if ok then return end
            end
            return nil
        end }}
    """)
    d = start(daemon_factory, rs)
    rep, data = http_get_via_socks5(d.socks, "svc.test", 1)
    assert rep == 0 and data.endswith(pattern_bytes(1000))
    d.wait_log(f"forward 127.0.0.1:{dead} false connection failed")
    d.wait_log(f"forward 127.0.0.1:{http_target.port} true")
    # all dead: the request is rejected in the end
    rs2 = write(tmp_path, "allfail.lua", f"""
        return {{ resolve = function(addr)
            local ok = await.forward("127.0.0.1:{dead}")
            return nil
        end }}
    """)
    d2 = start(daemon_factory, rs2)
    s, rep = socks5_connect(d2.socks, "svc.test", 1)
    s.close()
    assert rep == 0x01


AUTH = """
    return { resolve = function(addr, user, pass)
        if user ~= "alice" or pass ~= "s3cret" then return nil end
        return "127.0.0.1:%d"
    end, route = function(addr, user) if user ~= "alice" then return nil end return addr end }
"""


def test_auth_required(daemon_factory, tmp_path, http_target):
    rs = write(tmp_path, "auth.lua", AUTH % http_target.port)
    d = start(daemon_factory, rs, "--auth-required")
    url = "http://svc.test:1/size/100"
    # SOCKS5 demands username/password: a client offering none is refused
    rc, out, err = curl("--socks5-hostname", f"127.0.0.1:{d.socks}", url)
    assert rc != 0
    rc, out, err = curl("--socks5-hostname", f"alice:s3cret@127.0.0.1:{d.socks}", url)
    assert rc == 0 and out == pattern_bytes(100), err
    rc, out, err = curl("--socks5-hostname", f"alice:wrong@127.0.0.1:{d.socks}", url)
    assert rc != 0
    # HTTP: 407 with Proxy-Authenticate when credentials are missing
    s, status, head = http_connect(d.http, "svc.test:1")
    s.close()
    assert status == 407 and b"Proxy-Authenticate: Basic" in head
    rc, out, err = curl("-p", "-x", f"http://alice:s3cret@127.0.0.1:{d.http}", url)
    assert rc == 0 and out == pattern_bytes(100), err
    rc, out, err = curl("-p", "-x", f"http://alice:nope@127.0.0.1:{d.http}", url)
    assert rc != 0


def test_credentials_reach_callbacks(daemon_factory, tmp_path, hash_server, http_target):
    """Route by user: alice to the HTTP target, bob to the hash server; the
    SOCKS4 USERID arrives as the username."""
    rs = write(tmp_path, "byuser.lua", f"""
        local function pick(user)
            if user == "alice" then return "127.0.0.1:{http_target.port}" end
            if user == "bob" then return "127.0.0.1:{hash_server.port}" end
            return nil
        end
        return {{ resolve = function(a, user, pass) return pick(user) end,
                  route = function(a, user, pass) return pick(user) end }}
    """)
    d = start(daemon_factory, rs)
    s, rep = socks5_connect(d.socks, "x.test", 1, user="alice", password="pw")
    assert rep == 0
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    assert b"hello from the target" in recv_all(s)
    s.close()
    s, rep = socks5_connect(d.socks, "x.test", 1, user="bob", password="pw")
    assert rep == 0
    s.close()
    s, rep = socks5_connect(d.socks, "x.test", 1, user="carol", password="pw")
    s.close()
    assert rep == 0x01
    s, cd = socks4_connect(d.socks, "127.0.0.1", 1, userid=b"alice")
    assert cd == 90
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    assert b"hello from the target" in recv_all(s)
    s.close()


def test_tick_fires(daemon_factory, tmp_path):
    rs = write(tmp_path, "tick.lua", """
        local n = 0
        neosocksd.setinterval(0.05)
        return { tick = function(now)
            n = n + 1
            print(string.format("tick %d %.0f", n, now))
            if n == 3 then neosocksd.setinterval(0) end
        end }
    """)
    d = start(daemon_factory, rs)
    d.wait_log("tick 3 ")
    now = time.time()
    line = [l for l in d.log().splitlines() if "tick 3 " in l][0]
    assert abs(float(line.split()[-1]) - now) < 60
    assert "tick 4 " not in d.log()


def test_thousand_rules(daemon_factory, tmp_path, http_target):
    """A ruleset of 1,000 rules (exact names, suffixes and CIDRs) decides
    correctly for names at the start, middle and end of the list."""
    rules = []
    for i in range(1000):
        kind = i % 3
        if kind == 0:
            rules.append(f'{{ "exact", "host{i}.example", "127.0.0.1:{http_target.port}" }}')
        elif kind == 1:
            rules.append(f'{{ "suffix", ".zone{i}.example", "127.0.0.1:{http_target.port}" }}')
        else:
            rules.append(f'{{ "reject", "bad{i}.example" }}')
    rs = write(tmp_path, "big.lua", """
        local rules = { %s }
        local exact, suffix, reject = {}, {}, {}
        for _, r in ipairs(rules) do
            if r[1] == "exact" then exact[r[2]] = r[3]
            elseif r[1] == "suffix" then suffix[#suffix + 1] = { r[2], r[3] }
            else reject[r[2]] = true end
        end
        return { resolve = function(addr)
            local host = neosocksd.splithostport(addr):lower()
            if reject[host] then return nil end
            if exact[host] then return exact[host] end
            for _, s in ipairs(suffix) do
                if host:sub(-#s[1]) == s[1] then return s[2] end
            end
            return nil
        end }
    """ % ",\n".join(rules))
    d = start(daemon_factory, rs)
    for host, ok in [("host0.example", True), ("HOST501.example", True),
                     ("a.zone997.example", True), ("bad2.example", False),
                     ("bad998.example", False), ("other.example", False)]:
        s, rep = socks5_connect(d.socks, host, 1)
        s.close()
        assert (rep == 0) == ok, (host, rep)


@pytest.mark.parametrize("form", ["indexed", "linear"])
def test_thousand_libruleset_rules(daemon_factory, tmp_path, http_target, form):
    """1,000 libruleset rules for IPv4 destinations (the shape `make bench`
    measures), written as a few table matchers or as 1,000 entries tried in
    order: the same decisions for the first, middle and last rules and for
    an address no rule covers. Even rules redirect to the HTTP target, odd
    ones refuse; the default refuses."""
    n = 1000
    cidrs = [f"10.{i // 256}.{i % 256}.0/24" for i in range(n)]
    acts = ["rule.redirect(TARGET)", "rule.reject()"]
    if form == "linear":
        rows = [f'{{ inet.subnet("{c}"), {acts[i % 2]} }},' for i, c in enumerate(cidrs)]
    else:
        rows = ["{ inet.subnet({ %s }), %s }," % (
            ", ".join(f'"{c}"' for i, c in enumerate(cidrs) if i % 2 == a), act)
            for a, act in enumerate(acts)]
    rs = write(tmp_path, "rules.lua", "local ruleset = require('libruleset')\n"
               f"local TARGET = '127.0.0.1:{http_target.port}'\n"
               "_G.route = {\n" + "\n".join(rows) + "\n}\n"
               "_G.route_default = { rule.reject() }\n"
               "return ruleset\n")
    d = start(daemon_factory, rs)
    for i, ok in [(0, True), (1, False), (500, True), (501, False), (998, True), (999, False)]:
        addr = f"10.{i // 256}.{i % 256}.77"
        rep, data = http_get_via_socks5(d.socks, addr, 9)
        assert (rep == 0) == ok and (rep in (0, 1)), (addr, rep)
        if ok:
            assert data.endswith(pattern_bytes(1000)), addr
    rep, _ = http_get_via_socks5(d.socks, "10.200.0.1", 9)
    assert rep == 1


@pytest.mark.parametrize("host", ["loop.test", "pcall.test", "bomb.test", "error.test",
                                  "badaddr.test", "notstring.test"])
def test_bounds_then_fresh_client(spin_router, http_target, host):
    # 01 (the callback failed), not 06: the -t deadline (60 s) would give
    # 06, so the bound (memory, CPU budget, error) ended it before
    s, rep = socks5_connect(spin_router.socks, host, 80)
    s.close()
    assert rep == 0x01
    assert served(spin_router, http_target.port)
    spin_router.wait_log("ruleset error", count=1)


def test_callback_that_never_returns(router, http_target):
    """No decision within -t: SOCKS5 answers 06 (TTL expired), HTTP 504."""
    t0 = time.monotonic()
    s, rep = socks5_connect(router.socks, "silent.test", 80)
    s.close()
    assert rep == 0x06
    assert time.monotonic() - t0 > 4, "answered before the -t deadline"
    s, status, head = http_connect(router.http, "silent.test:80")
    s.close()
    assert status == 504, head
    assert served(router, http_target.port)


ORDER = """
    local target = "127.0.0.1:%d"
    local gate = {}
    local rs = {}
    function rs.resolve(addr)
        local host = neosocksd.splithostport(addr)
        if host == "slow.test" then
            print("slow.test waits")
            await.park(gate)
            return target
        end
        if host == "release.test" then neosocksd.unpark(gate) end
        return target
    end
    return rs
"""


def test_decisions_answered_out_of_order(daemon_factory, tmp_path, http_target):
    """Requests wait for their decisions together: a request decided later
    does not hold up one decided sooner, and each answer reaches its own
    client."""
    import select
    import struct
    d = start(daemon_factory, write(tmp_path, "order.lua", ORDER % http_target.port))
    slow = connect(d.socks)
    slow.sendall(b"\x05\x01\x00\x05\x01\x00\x03\x09slow.test" + struct.pack(">H", 80))
    assert slow.recv(2) == b"\x05\x00"
    d.wait_log("slow.test waits")
    # a second request is decided while the first still waits
    s, rep = socks5_connect(d.socks, "fast.test", 80)
    assert rep == 0
    s.sendall(b"GET /size/10 HTTP/1.0\r\n\r\n")
    assert recv_all(s).endswith(pattern_bytes(10))
    s.close()
    assert select.select([slow], [], [], 0)[0] == [], "the first request was answered"
    # a third request lets the first one go: it gets its own reply
    s, rep = socks5_connect(d.socks, "release.test", 80)
    assert rep == 0
    s.close()
    rep, _ = socks5_read_reply(slow)
    assert rep == 0
    slow.sendall(b"GET /size/20 HTTP/1.0\r\n\r\n")
    assert recv_all(slow).endswith(pattern_bytes(20))
    slow.close()


def test_invoke_cancelled_with_its_request(daemon_factory, tmp_path):
    """A routine that waits in await.invoke on a peer that never answers is
    cancelled at the request's -t deadline: the client gets its timeout
    reply, the routine never resumes and the connection to the peer is
    closed, not leaked."""
    from harness import Api, sample
    peer = SilentServer()
    try:
        # the sleep puts the invoke's own -t deadline 2 s after the request's
        rs = write(tmp_path, "inv.lua", f"""
            return {{ resolve = function(addr)
                await.sleep(2)
                await.invoke("return 1", "127.0.0.1:{peer.port}")
                _G.RESUMED = true
                return nil
            end }}
        """)
        api, = free_ports(1)
        d = start(daemon_factory, rs, "-t", "5", "--api", f"127.0.0.1:{api}")
        d.api = Api(port=api)
        s, rep = socks5_connect(d.socks, "x.test", 80)
        s.close()
        assert rep == 0x06
        # the request went out whole (the client half-closes after it; the
        # server's thread may see that a moment after our reply)
        wait_until(lambda: peer.accepted == 1 and peer.peer_closed == 1,
                   what=lambda: f"{peer.accepted} accepted, {peer.peer_closed} closed")
        conn = peer.conns[0]

        def conn_closed():
            # after a half-close only a write tells whether the other end
            # is gone: the first draws a reset, a later one fails
            try:
                conn.send(b"x")
                return False
            except OSError:
                return True

        def gone():
            return conn_closed() and \
                sample(d.api.metrics(), "neosocksd_lua_threads_active") == 0
        wait_until(gone, what="the routine or its connection outlived the request")
        assert d.api.rpc('return rawget(_G, "RESUMED")').body == b"return true,nil"
    finally:
        peer.close()


def test_tick_that_never_returns(daemon_factory, tmp_path, http_target):
    """ruleset.tick spinning forever is cut off by the budget and logged,
    every time; requests keep being decided between ticks. Every other tick
    returns at once: the process's answers to the parent leave at the end
    of a round of callbacks, so two spinning ticks back to back held the
    heartbeat's answer for two seconds of CPU, which a busy machine
    stretched past the parent's 6 s heartbeat (it killed the process)."""
    rs = write(tmp_path, "spin.lua", f"""
        neosocksd.setinterval(0.2)
        local target = "127.0.0.1:{http_target.port}"
        local n = 0
        return {{
            tick = function() n = n + 1 if n % 2 == 1 then while true do end end end,
            resolve = function(addr) return target end,
        }}
    """)
    d = start(daemon_factory, rs)
    favour(d.child_by_title("neosocksd: ruleset"))
    d.wait_log("ruleset.tick: ", count=2)
    lines = [ln for ln in d.log().splitlines() if "ruleset.tick: " in ln]
    assert all("time budget of" in ln and "exceeded" in ln for ln in lines), lines
    for _ in range(3):
        assert served(d, http_target.port)
    assert "stopped answering the heartbeat" not in d.log()


def test_loop_does_not_stall_others(spin_router, http_target):
    """While one request spins until its budget ends, established tunnels
    keep flowing (the front relays on its own) and others get decisions
    right after."""
    import threading
    s0, rep = socks5_connect(spin_router.socks, "redirect.test", 1)
    # (the HTTP target accepts a GET; use it as a live tunnel)
    assert rep == 0
    t = threading.Thread(target=lambda: socks5_connect(spin_router.socks, "loop.test", 80))
    t.start()
    s0.sendall(b"GET /size/2000000 HTTP/1.0\r\n\r\n")
    data = recv_all(s0)
    assert data.endswith(pattern_bytes(2000000))
    t.join(WAIT)
    assert served(spin_router, http_target.port)


def test_errors_in_every_callback(daemon_factory, tmp_path, http_target):
    rs = write(tmp_path, "errs.lua", """
        neosocksd.setinterval(0.05)
        local ticks = 0
        return {
            resolve = function() error("in resolve") end,
            route = function() error("in route") end,
            route6 = function() error("in route6") end,
            tick = function() ticks = ticks + 1 if ticks == 2 then neosocksd.setinterval(0) end error("in tick") end,
        }
    """)
    d = start(daemon_factory, rs)
    for host in ("name.test", "127.0.0.1", "::1"):
        s, rep = socks5_connect(d.socks, host, 80)
        s.close()
        assert rep == 0x01, host
    d.wait_log("in tick")
    # error lines are rate-limited (one a second per kind): the first
    # one is there, the others are counted
    d.wait_log("in resolve")
    assert d.proc.poll() is None
    # the access lines (outcome="ruleset error"), polled: the last one may
    # still be on its way through the parent's log pipe
    d.wait_log('outcome="ruleset error"', count=3)
    assert d.log().count('outcome="ruleset error"') == 3


def test_ruleset_killed_during_load(daemon_factory, tmp_path, http_target):
    """The parent respawns a ruleset process that dies while loading, with
    the same ruleset, and routing resumes."""
    rs = write(tmp_path, "slow.lua", f"""
        print("LOADING")
        local t0 = os.clock()
        while os.clock() - t0 < 0.6 do end
        return {{ resolve = function() return "127.0.0.1:{http_target.port}" end }}
    """)
    socks, = free_ports(1)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "-r", rs, "--loglevel", "5",
                       wait_ready=False)
    d.wait_log("LOADING")
    victim = d.child_by_title("neosocksd: ruleset")
    os.kill(victim, signal.SIGKILL)
    d.wait_notify("READY=1")
    d.wait_log("LOADING", count=2)  # (child log lines come through the parent)
    d.socks = socks
    assert served(d, http_target.port)


def test_forward_target_from_ruleset(daemon_factory, tmp_path, http_target):
    """-f ":" with a ruleset: the ruleset's resolve callback gets ":" and
    names the target of each forwarded connection."""
    rs = write(tmp_path, "fwd.lua", """
        local n = 0
        return { resolve = function(addr)
            n = n + 1
            if addr ~= ":" or n == 2 then return nil end
            return "127.0.0.1:%d"
        end }
    """ % http_target.port)
    port, = free_ports(1)
    daemon_factory("-l", f"127.0.0.1:{port}", "-f", ":", "-r", rs, "--loglevel", "5")
    rc, out, err = curl(f"http://127.0.0.1:{port}/size/300")
    assert rc == 0 and out == pattern_bytes(300), err
    # the second connection is refused by the ruleset: closed, no data
    rc, out, _ = curl(f"http://127.0.0.1:{port}/size/300")
    assert rc != 0 and out == b""
    rc, out, err = curl(f"http://127.0.0.1:{port}/size/300")
    assert rc == 0 and out == pattern_bytes(300), err




def rpcall(api_port, code):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", api_port, timeout=20)
    c.request("POST", "/ruleset/rpcall", body=code.encode(),
              headers={"Content-Type": RPC_MIME})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body.decode()


def test_execute_refused_without_flag(daemon_factory, tmp_path):
    rs = write(tmp_path, "rs.lua", "return {}")
    socks, api = free_ports(2)
    daemon_factory("-l", f"127.0.0.1:{socks}", "--api", f"127.0.0.1:{api}", "-r", rs)
    st, body = rpcall(api, "return pcall(await.execute, 'true')")
    assert st == 200
    assert body.startswith("return true,false,") and \
        "await.execute is disabled (start the daemon with --enable-execute)" in body, body


def test_execute_with_flag(daemon_factory, tmp_path):
    """--enable-execute: /bin/sh -c CMD run by the parent as the ruleset
    process's user, with os.execute-like results; the parent keeps every
    other layer of its sandbox (no seccomp filter: the commands would
    inherit it)."""
    import pathlib
    import shutil
    import tempfile
    rs = write(tmp_path, "rs.lua", "return {}")
    # a directory the ruleset's user can reach (pytest's tmp is private)
    out = pathlib.Path(tempfile.mkdtemp(prefix="nsd-exec-"))
    os.chmod(out, 0o777)
    socks, api = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--api", f"127.0.0.1:{api}", "-r", rs,
                       "--enable-execute")
    assert rpcall(api, "return await.execute('true')") == (200, 'return true,true,"exit",0')
    assert rpcall(api, "return await.execute('exit 3')") == (200, 'return true,nil,"exit",3')
    assert rpcall(api, "return await.execute('kill -9 $$')") == \
        (200, 'return true,nil,"signal",9')
    st, _ = rpcall(api, f"return await.execute('id -u > {out}/uid')")
    assert st == 200
    uid = int((out / "uid").read_text())
    ruleset_pid = d.child_by_title("neosocksd: ruleset")
    assert uid == os.stat(f"/proc/{ruleset_pid}").st_uid
    if os.geteuid() == 0:
        assert uid != 0, "a command never runs as root"
    shutil.rmtree(out)
    status = open(f"/proc/{d.pid}/status").read()
    assert "NoNewPrivs:\t1" in status
    assert "Seccomp:\t0" in status


def test_api_update_survives_respawn(daemon_factory, tmp_path, http_target):
    """An update made through the API is given again to a respawned ruleset
    process, after the base ruleset, even when the base requires a module
    while it loads (the replay waits behind the require)."""
    import http.client
    rs = write(tmp_path, "base.lua", """
        local ruleset = require("libruleset")
        _G.redirect_name = {}
        return ruleset
    """)
    socks, api = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--api", f"127.0.0.1:{api}", "-r", rs,
                       "--loglevel", "5")
    d.socks = socks
    update = """
        local ruleset = require("libruleset")
        _G.redirect_name = { { match.exact("upd.test:80"), rule.redirect("127.0.0.1:%d") } }
        return ruleset
    """ % http_target.port
    c = http.client.HTTPConnection("127.0.0.1", api, timeout=20)
    c.request("POST", "/ruleset/update", body=textwrap.dedent(update).encode())
    r = c.getresponse()
    assert r.status == 200, r.read()
    c.close()

    def upd_served():
        rep, data = http_get_via_socks5(socks, "upd.test", 80)
        return rep == 0 and data.endswith(pattern_bytes(1000))
    assert upd_served()
    victim = d.child_by_title("neosocksd: ruleset")
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: d.child_by_title("neosocksd: ruleset") not in (None, victim),
               what="ruleset process respawned")
    wait_until(upd_served, what="the update routes again")


def test_respawn_that_cannot_load_fails_closed(daemon_factory, tmp_path, http_target):
    """The last good ruleset no longer loads in a respawned ruleset process
    (here: it refuses to load after a moment in time): requests then fail,
    they never go direct. (The respawn loads the same files, so time is
    what can differ. A busy machine took longer than the 1-2 s the moment
    was away to start the daemon, which then stopped at its first load: such
    a start is made again with the moment further away.)"""
    for margin in (2, 8, 30):
        deadline = int(time.time()) + margin
        rs = write(tmp_path, "late.lua", """
            if os.time() >= %d then error("too late to load") end
            local function d(a) return a end
            return { resolve = d, route = d, route6 = d }
        """ % deadline)
        socks, http = free_ports(2)
        d = daemon_factory("-l", f"127.0.0.1:{socks}", "--http", f"127.0.0.1:{http}",
                           "-r", rs, "--loglevel", "5", wait_ready=False)
        d.socks = socks
        wait_until(lambda: d.proc.poll() is not None or "serving" in d.log())
        if d.proc.poll() is None or "too late to load" not in d.log():
            break
    d.wait_notify("READY=1")
    s, rep = socks5_connect(d.socks, "127.0.0.1", http_target.port)
    s.close()
    assert rep == 0
    wait_until(lambda: time.time() >= deadline + 0.1, margin + 5, "the deadline")
    victim = d.child_by_title("neosocksd: ruleset")
    os.kill(victim, signal.SIGKILL)
    d.wait_log("requests fail until a ruleset loads")
    s, rep = socks5_connect(d.socks, "127.0.0.1", http_target.port)
    s.close()
    assert rep == 0x01, "routed without its ruleset"


def _procs_with_cmdline(needle):
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if needle in f.read():
                    out.append(int(pid))
        except OSError:
            pass
    return out


def test_execute_killed_with_its_routine(daemon_factory, tmp_path):
    """A command whose routine goes away (here: a request handler whose
    request ends at the -t deadline) is killed, and so is every command
    when the daemon stops."""
    import socket as so
    marker = b"sleep 31.4159"
    rs = write(tmp_path, "rs.lua", """
        return { resolve = function(addr)
            await.execute("%s")
            return addr
        end }
    """ % marker.decode())
    socks, api = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--api", f"127.0.0.1:{api}", "-r", rs,
                       "--enable-execute", "-t", "5", "--loglevel", "5")
    s = so.create_connection(("127.0.0.1", socks), timeout=15)
    s.sendall(b"\x05\x01\x00" + b"\x05\x01\x00\x03\x09slow.test\x00\x50")
    wait_until(lambda: _procs_with_cmdline(marker), what="the command runs")
    reply = recv_all(s)
    s.close()
    assert reply[:2] == b"\x05\x00" and reply[3] == 0x06, "the request ends at -t"
    wait_until(lambda: not _procs_with_cmdline(marker), what="the command killed")
    d.wait_log("cancelled")
    # and at stop: a command started by an rpcall
    body = b"return await.execute('" + marker + b"')"
    c = so.create_connection(("127.0.0.1", api))
    c.sendall(b"POST /ruleset/rpcall HTTP/1.1\r\nContent-Type: " + RPC_MIME.encode() +
              b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    wait_until(lambda: _procs_with_cmdline(marker), what="the command runs")
    d.stop()
    c.close()
    wait_until(lambda: not _procs_with_cmdline(marker), what="the command killed at stop")


def test_sighup_reads_modules_again(daemon_factory, tmp_path, http_target):
    """After SIGHUP the ruleset's require() reads its modules from the files
    again; a reload that fails keeps the old ruleset and the old modules."""
    mod = tmp_path / "target.lua"
    mod.write_text('return "127.0.0.1:1"\n')
    rs = write(tmp_path, "rs.lua", """
        local target = require("target")
        return { resolve = function(addr) return target end }
    """)
    d = start(daemon_factory, rs)
    s, rep = socks5_connect(d.socks, "any.test", 80)
    s.close()
    assert rep != 0, "port 1 refuses"
    mod.write_text(f'return "127.0.0.1:{http_target.port}"\n')
    os.kill(d.pid, signal.SIGHUP)
    d.wait_notify("READY=1")
    wait_until(lambda: served(d, http_target.port), what="the new module routes")
    # a broken ruleset file: the old ruleset, with the module it loaded
    mod.write_text('return "127.0.0.1:1"\n')
    with open(rs, "a") as f:
        f.write("\nthis is not lua\n")
    os.kill(d.pid, signal.SIGHUP)
    d.wait_log("reload: ")
    d.wait_notify("READY=1")
    assert served(d, http_target.port)
