"""curl through every proxy mode against a local HTTP server."""

import pytest

from harness import curl, pattern_bytes

MODES = [
    ("socks4", lambda p: ["--socks4", f"127.0.0.1:{p.socks}"], "127.0.0.1"),
    ("socks4a", lambda p: ["--socks4a", f"127.0.0.1:{p.socks}"], "localhost"),
    ("socks5", lambda p: ["--socks5", f"127.0.0.1:{p.socks}"], "127.0.0.1"),
    ("socks5-hostname", lambda p: ["--socks5-hostname", f"127.0.0.1:{p.socks}"], "localhost"),
    ("http-connect", lambda p: ["-p", "-x", f"http://127.0.0.1:{p.http}"], "localhost"),
]


@pytest.mark.parametrize("name,opts,host", MODES, ids=[m[0] for m in MODES])
def test_curl_mode(proxy, http_target, name, opts, host):
    rc, out, err = curl(*opts(proxy), f"http://{host}:{http_target.port}/size/300000")
    assert rc == 0, err
    assert out == pattern_bytes(300000)
    # one access line per session, naming the protocol and the target
    proxy.d.wait_log(f":{http_target.port} route=direct")


def test_ipv6_target(proxy, http_target):
    rc, out, err = curl("--socks5", f"127.0.0.1:{proxy.socks}",
                        f"http://[::1]:{http_target.port}/size/1000")
    assert rc == 0, err
    assert out == pattern_bytes(1000)
    rc, out, err = curl("-p", "-x", f"http://127.0.0.1:{proxy.http}",
                        f"http://[::1]:{http_target.port}/size/1000")
    assert rc == 0, err
    assert out == pattern_bytes(1000)
    # the access lines: written when the sessions end, through the parent
    proxy.d.wait_log(f"[::1]:{http_target.port}", count=2)
