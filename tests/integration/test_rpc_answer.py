"""The RPC client reads a peer's answer as data, never as code (issue 9,
defect 7): a malicious peer that answers await.rpcall with a chunk that
would spend its time inside one C call (a pathological string.find reached
through the string metatable, where no CPU budget fires) no longer hangs
the ruleset process until the heartbeat kills it. The call fails with a
clear reason, the process is the same one, and it goes on answering."""

import textwrap
import zlib

from harness import RPC_MIME, TcpServer, free_ports, ruleset_pid

# Lua's matcher backtracks through every way of taking each "a?": 2^40
# steps, all inside string.find.
SPIN = b'return true,("a"):rep(40):find(("a?"):rep(40)..("a"):rep(40))'


class AnsweringPeer(TcpServer):
    """A stand-in for a peer's API: reads one request, answers `body` as a
    200 RPC answer (deflated when asked) and closes."""

    def __init__(self, body, deflate=False):
        self.body, self.deflate, self.served = body, deflate, 0
        super().__init__()

    def _serve(self, c):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = c.recv(65536)
            if not chunk:
                return
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        clen = [int(ln.split(b":")[1]) for ln in head.split(b"\r\n")
                if ln.lower().startswith(b"content-length:")][0]
        while len(body) < clen:
            body += c.recv(65536)
        out, extra = self.body, b""
        if self.deflate:
            out, extra = zlib.compress(out), b"Content-Encoding: deflate\r\n"
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: " + RPC_MIME.encode() + b"\r\n" +
                  extra + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(out) + out)
        self.served += 1


def post(port, path, body, headers=None):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", path, body=body, headers=dict(headers or {}))
    r = c.getresponse()
    out = r.status, r.read()
    c.close()
    return out


def start(daemon_factory, tmp_path):
    socks, api = free_ports(2)
    rs = tmp_path / "a.lua"
    rs.write_text(textwrap.dedent("""
        local libruleset = require("libruleset")
        return libruleset
    """))
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--api", f"127.0.0.1:{api}",
                       "-r", str(rs), "--loglevel", "5")
    d.api_port = api
    return d


def rpcall(d, peer_port, extra=""):
    """await.rpcall to the peer from a routine of d; the marshalled
    results as text."""
    code = (f"local r = table.pack(await.rpcall({{'127.0.0.1:{peer_port}'}}, 'f'))"
            f" {extra} return table.unpack(r, 1, r.n)")
    st, body = post(d.api_port, "/ruleset/rpcall", code.encode(), {"Content-Type": RPC_MIME})
    assert st == 200, (st, body)
    assert body.startswith(b"return true,"), body
    return body[len(b"return true,"):].decode()


def test_answer_that_spins_in_c_is_not_run(daemon_factory, tmp_path):
    d = start(daemon_factory, tmp_path)
    pid = ruleset_pid(d)
    assert pid is not None
    peer = AnsweringPeer(SPIN)
    try:
        out = rpcall(d, peer.port)
        assert out.startswith('false,"bad RPC answer: '), out
        assert "at byte" in out, out
        assert peer.served == 1
        # the same process, and it answers
        assert ruleset_pid(d) == pid
        import urllib.request
        assert urllib.request.urlopen(f"http://127.0.0.1:{d.api_port}/healthy",
                                      timeout=30).status == 200
        assert "respawning" not in d.log()
    finally:
        peer.close()


def test_answers_that_are_code_fail_clearly(daemon_factory, tmp_path):
    """Calls, globals and operators are not data; neither is a comment. The
    reason names what was found and where."""
    d = start(daemon_factory, tmp_path)
    cases = {
        b"return true, os.exit()": "unexpected name 'os' at byte 13",
        b"return true, _G": "unexpected name '_G' at byte 13",
        b"return true, 1 + 1": "unexpected '+' at byte 15",
        b"return true --\n": "comments are not data at byte 13",
        b"return true, [[x]]": "long strings are not data at byte 14",
        b"print(1)": "an answer begins with 'return'",
        b"return true, {": "unexpected end of input",
    }
    for body, why in cases.items():
        peer = AnsweringPeer(body)
        try:
            out = rpcall(d, peer.port)
            assert out.startswith(f'false,"bad RPC answer: {why}'), (body, out)
            assert " at byte " in out, out
        finally:
            peer.close()


def test_data_answers_still_round_trip(daemon_factory, tmp_path):
    """What our marshal and the reference's write, and Lua's own spellings
    of the same values, come back as values (deflated or not); calling the
    function twice gives the same values."""
    d = start(daemon_factory, tmp_path)
    body = (b'return true,1,-0x8000000000000000,0x1.cp+1,1/0,-1/0,-0.0,"a\\\nb\\0\\u{41}",'
            b"{1,2,[\"x\"]={y=false},[3.5]=nil,},nil,'q'")
    for deflate in (False, True):
        peer = AnsweringPeer(body, deflate)
        try:
            out = rpcall(d, peer.port)
            assert out == ('true,1,0x8000000000000000,0x1.cp+1,1/0,-1/0,-0.0,"a\\\nb\\000A",'
                           '{1,2,["x"]={["y"]=false,},},nil,"q"'), out
        finally:
            peer.close()
    # await.invoke's function, called twice: the same values
    peer = AnsweringPeer(b"return true,7,{8}")
    try:
        code = (f"local ok, f = await.invoke('return 1', '127.0.0.1:{peer.port}')"
                " local a = table.pack(f()) local b = table.pack(f())"
                " return ok, a.n, a[1], a[2], a[3][1], b[2], b[3][1]")
        st, out = post(d.api_port, "/ruleset/rpcall", code.encode(), {"Content-Type": RPC_MIME})
        assert st == 200 and out == b"return true,true,3,true,7,8,7,8", out
    finally:
        peer.close()


def test_an_answer_over_the_bound_fails_clearly(daemon_factory, tmp_path):
    """An answer larger than the 4 MiB a body may have (as the API bounds
    its own) is not buffered on: the call fails with the reason, and the
    same process goes on answering calls."""
    d = start(daemon_factory, tmp_path)
    pid = ruleset_pid(d)
    big = AnsweringPeer(b"return true,'" + b"a" * (5 << 20) + b"'")
    try:
        out = rpcall(d, big.port)
        assert out == 'false,"response too large"', out[:200]
    finally:
        big.close()
    small = AnsweringPeer(b"return true,'" + b"a" * (1 << 20) + b"'")
    try:
        out = rpcall(d, small.port, "r = {r[1], #r[2]}")
        assert out == "true,1048576", out[:200]
    finally:
        small.close()
    assert ruleset_pid(d) == pid
