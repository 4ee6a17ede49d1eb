"""RPC between two of our daemons (await.invoke, await.rpcall,
neosocksd.invoke, neosocksd.sendmsg): A's ruleset process asks its front to
dial B's API through B's SOCKS listener (the convention: B's ruleset maps
api.neosocksd.internal:80 to its own --api address), with B's admin token
taken from A's _G.rpc_tokens.

The calls are started through A's own /ruleset/rpcall, whose answer is the
marshalled results, so each test sees exactly what the Lua caller got."""

import os
import textwrap
import zlib

import pytest

from harness import free_ports, read_head, recv_exact, RPC_MIME, TcpServer, WAIT, wait_until

TOKEN = "b-admin-token-0123456789abcdef"

B_RULESET = """
    local libruleset = require("libruleset")
    _G.api_addr = %r
    function rpc.add(a, b) return a + b end
    function rpc.fail() error("deliberate failure", 0) end
    function rpc.big(n) return string.rep("z", n) end
    function rpc.slow(x) await.sleep(0.05) return x end
    function rpc.get(k) return _G[k] end
    function msgh.remember(k, v) _G[k] = v end
    redirect_name = { { match.exact("api.neosocksd.internal:80"), rule.redirect(_G.api_addr) } }
    return libruleset
"""

A_RULESET = """
    local libruleset = require("libruleset")
    -- the token for a peer reached through B's SOCKS listener
    _G.b_socks = %r
    function _G.rpc_tokens(addr, ...)
        local hops = { ... }
        if addr == "api.neosocksd.internal:80" and hops[#hops] == _G.b_socks then
            return %r
        end
        return nil
    end
    return libruleset
"""


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


class Pair:
    pass


@pytest.fixture
def pair(daemon_factory, tmp_path):
    b_socks, b_api, a_socks, a_api = free_ports(4)
    tok = tmp_path / "b.token"
    tok.write_text(TOKEN + "\n")
    os.chmod(tok, 0o600)
    rb = write(tmp_path, "b.lua", B_RULESET % f"127.0.0.1:{b_api}")
    ra = write(tmp_path, "a.lua", A_RULESET % (f"socks5://127.0.0.1:{b_socks}", TOKEN))
    p = Pair()
    # B's ruleset routes api.neosocksd.internal to B's own API: the
    # overlay use that --allow-self-dial exists for
    p.b = daemon_factory("-l", f"127.0.0.1:{b_socks}", "--api", f"127.0.0.1:{b_api}",
                         "--api-token-file", str(tok), "-r", rb, "--loglevel", "5",
                         "--allow-self-dial")
    p.a = daemon_factory("-l", f"127.0.0.1:{a_socks}", "--api", f"127.0.0.1:{a_api}",
                         "-r", ra, "--loglevel", "5")
    p.a_api, p.b_api, p.b_socks = a_api, b_api, b_socks
    p.target = ("api.neosocksd.internal:80", f"socks5://127.0.0.1:{b_socks}")
    return p


def post(port, path, body, headers=None, token=None):
    """One HTTP/1.1 request; (status, headers dict, body bytes)."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    c.request("POST", path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    if r.getheader("Content-Encoding") == "deflate":
        data = zlib.decompress(data)
    out = (r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    c.close()
    return out


def on_a(p, code):
    """Run code in a routine of A; the marshalled results as text."""
    st, hd, body = post(p.a_api, "/ruleset/rpcall", code.encode(),
                        {"Content-Type": RPC_MIME})
    assert st == 200, (st, body)
    assert hd["content-type"] == RPC_MIME
    text = body.decode()
    assert text.startswith("return true"), text
    return text[len("return true"):].lstrip(",")


def target_lua(p):
    return "{%r, %r}" % p.target


def test_rpcall_round_trips(pair):
    t = target_lua(pair)
    # numbers and multiple returns
    assert on_a(pair, f"return await.rpcall({t}, 'add', 40, 2)") == "true,42"
    assert on_a(pair, f"return await.rpcall({t}, 'echo', 1, 'two', nil, true, 2.5)") == \
        'true,1,"two",nil,true,0x1.4p+1'
    # tables, nested, control bytes and big integers
    assert on_a(pair, f"return await.rpcall({t}, 'echo', {{1, 2, x = {{y = 'a\\nb'}}}})") == \
        'true,{1,2,["x"]={["y"]="a\\\nb",},}'
    assert on_a(pair, f"return await.rpcall({t}, 'echo', 999999999999, 1000000000000, "
                      "math.mininteger)") == "true,999999999999,0xe8d4a51000,0x8000000000000000"
    # a handler that waits (runs in a routine on B)
    assert on_a(pair, f"return await.rpcall({t}, 'slow', 'x')") == 'true,"x"'
    # no results
    assert on_a(pair, f"return await.rpcall({t}, 'get', 'nothing_here')") == "true,nil"


def test_rpcall_large_results_are_compressed_both_ways(pair):
    t = target_lua(pair)
    # 100 KiB answer (deflated by B, inflated by A) and a 5 KiB argument
    # (the request body is deflated from 256 bytes on)
    out = on_a(pair, f"local ok, s = await.rpcall({t}, 'big', 102400) return ok, #s")
    assert out == "true,102400"
    out = on_a(pair, f"local ok, s = await.rpcall({t}, 'echo', string.rep('q', 5000)) "
                     "return ok, #s")
    assert out == "true,5000"


class RecordingPeer(TcpServer):
    """A stand-in for a remote daemon's API: records the request exactly as
    it arrived and answers a fixed rpcall result, deflated."""

    def __init__(self, result):
        self.result, self.requests = result, []
        super().__init__()

    def _serve(self, c):
        head = read_head(c)[:-4]
        lines = head.decode().split("\r\n")
        hd = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
        body = recv_exact(c, int(hd["content-length"]))
        self.requests.append((lines[0], hd, body))
        out = zlib.compress(self.result)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: " + RPC_MIME.encode() +
                  b"\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n" % len(out) +
                  out)


def test_rpcall_compression_on_the_wire(daemon_factory, tmp_path):
    """What await.rpcall sends and accepts, seen by the peer: a request body
    of 256 bytes or more is deflated (Content-Encoding: deflate), smaller
    ones are sent as they are, Accept-Encoding: deflate is offered, and a
    deflated answer is inflated for the caller."""
    peer = RecordingPeer(b"return true," + b'"' + b"y" * 3000 + b'"')
    try:
        a_socks, a_api = free_ports(2)
        ra = write(tmp_path, "a.lua", 'local libruleset = require("libruleset")\n'
                   "return libruleset\n")
        daemon_factory("-l", f"127.0.0.1:{a_socks}", "--api", f"127.0.0.1:{a_api}", "-r", ra)

        class A:
            pass
        a = A()
        a.a_api = a_api
        t = f"{{'127.0.0.1:{peer.port}'}}"
        assert on_a(a, f"local ok, s = await.rpcall({t}, 'f', string.rep('q', 5000)) "
                       "return ok, #s") == "true,3000"
        assert on_a(a, f"local ok, s = await.rpcall({t}, 'f', 1) return ok, #s") == "true,3000"
        (line1, h1, b1), (line2, h2, b2) = peer.requests
        assert line1 == line2 == "POST /ruleset/rpcall HTTP/1.1"
        for h in (h1, h2):
            assert h["content-type"] == RPC_MIME and h["accept-encoding"] == "deflate"
        assert h1["content-encoding"] == "deflate"
        big = zlib.decompress(b1)
        assert b"q" * 5000 in big and len(b1) < 1000
        # the reference's request form: a chunk calling the handler
        assert "content-encoding" not in h2 and b2 == b'return rpc["f"](1)', (h2, b2)
        assert big.startswith(b'return rpc["f"]("qqq')
    finally:
        peer.close()


def test_rpcall_errors(pair):
    t = target_lua(pair)
    # the remote handler raises: false and the reason
    out = on_a(pair, f"return await.rpcall({t}, 'fail')")
    assert out.startswith("false,") and "deliberate failure" in out, out
    # an unknown handler
    out = on_a(pair, f"return await.rpcall({t}, 'nosuch')")
    assert out.startswith("false,"), out
    # no token for this path (B's API directly, not through its SOCKS hop)
    out = on_a(pair, f"return await.rpcall({{'127.0.0.1:{pair.b_api}'}}, 'add', 1, 2)")
    assert out == 'false,"HTTP/1.1 401 Unauthorized"'
    # nobody listening
    lo, = free_ports(1)
    out = on_a(pair, f"return await.rpcall({{'127.0.0.1:{lo}'}}, 'add', 1, 2)")
    assert out == 'false,"connection failed"'
    # arguments that cannot be marshalled never leave
    out = on_a(pair, f"return await.rpcall({t}, 'echo', print)")
    assert out.startswith("false,") and "not marshallable" in out
    # bad address: an error raised in the caller
    st, _, body = post(pair.a_api, "/ruleset/rpcall", b"return await.invoke('x', 'nohostport')",
                       {"Content-Type": RPC_MIME})
    assert st == 500 and b"invalid address" in body


def test_invoke_and_sendmsg_fire_and_forget(pair):
    t = target_lua(pair)
    on_a(pair, f"neosocksd.sendmsg({t}, 'remember', 'from_a', {{n = 7}}) return true")
    # B ran msgh.remember: ask it (with the token) until it has
    def b_has():
        st, _, body = post(pair.b_api, "/ruleset/rpcall", b"return _G.from_a and _G.from_a.n",
                           {"Content-Type": RPC_MIME}, token=TOKEN)
        return st == 200 and body == b"return true,7"
    wait_until(b_has, what="sendmsg reached B")
    on_a(pair, f"neosocksd.invoke('_G.direct = 5', {t[1:-1]}) return true")

    def b_direct():
        st, _, body = post(pair.b_api, "/ruleset/rpcall", b"return _G.direct",
                           {"Content-Type": RPC_MIME}, token=TOKEN)
        return st == 200 and body == b"return true,5"
    wait_until(b_direct, what="invoke reached B")


def test_api_client_counters(pair):
    t = target_lua(pair)
    for i in range(3):
        assert on_a(pair, f"return await.rpcall({t}, 'add', {i}, 1)") == f"true,{i + 1}"
    import urllib.request
    stats = urllib.request.urlopen(f"http://127.0.0.1:{pair.a_api}/stats", timeout=WAIT).read()
    line = [l for l in stats.decode().splitlines() if l.startswith("API Client")][0]
    assert int(line.split(":")[1].split()[0]) >= 3, line


def test_many_calls_at_once_are_bounded(pair):
    """More calls than may be in flight: the extra ones fail at once with a
    clear reason, the others complete; nothing hangs."""
    t = target_lua(pair)
    code = f"""
        local futures = {{}}
        for i = 1, 40 do
            futures[i] = async(await.rpcall, {t}, 'slow', i)
        end
        local ok, busy = 0, 0
        for i = 1, 40 do
            local r = {{ futures[i]:get() }}
            if r[1] and r[2] and r[3] == i then ok = ok + 1
            elseif r[1] and r[2] == false and r[3] == "too many RPC calls in flight" then
                busy = busy + 1
            end
        end
        return ok, busy
    """
    out = on_a(pair, code)
    ok, busy = (int(x) for x in out.split(","))
    assert ok + busy == 40, out
    assert ok >= 16 and busy > 0, out
