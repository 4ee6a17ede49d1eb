"""Real client software through the daemon: proxychains4 (a strict chain of
two of our daemons, SOCKS5 then HTTP) and Python's PySocks in every mode."""

import os
import shutil
import socket
import subprocess
import threading

import pytest

from harness import (connect, free_port, http_get_over, pattern_bytes, recv_all, recv_exact,
                     socks5_read_reply, socks5_target, start_proxy, WAIT)


@pytest.fixture
def proxy(daemon_factory):
    """Like conftest's proxy, but with two ports that are surely distinct."""
    return start_proxy(daemon_factory)


PROXYCHAINS = "/usr/bin/proxychains4"


# ---- proxychains4 ----

@pytest.fixture
def proxychains_chain(daemon_factory, tmp_path):
    """Two daemons A (SOCKS5 hop) and B (HTTP hop) and a proxychains config
    that chains them strictly. Returns (run(args) -> CompletedProcess, A, B)."""
    if not (os.path.exists(PROXYCHAINS) and shutil.which("curl")):
        pytest.skip(f"{PROXYCHAINS} (Debian package proxychains4) or curl not installed")
    a, a_socks, _ = start_proxy(daemon_factory)
    b, _, b_http = start_proxy(daemon_factory)
    conf = tmp_path / "proxychains.conf"
    conf.write_text(
        "strict_chain\n"
        "proxy_dns\n"
        "quiet_mode\n"
        "tcp_read_time_out 15000\n"
        "tcp_connect_time_out 8000\n"
        "[ProxyList]\n"
        f"socks5 127.0.0.1 {a_socks}\n"
        f"http 127.0.0.1 {b_http}\n")

    def run(*args):
        return subprocess.run([PROXYCHAINS, "-f", str(conf)] + list(args),
                              capture_output=True, timeout=40,
                              stdin=subprocess.DEVNULL)

    return run, (a, a_socks), (b, b_http)


@pytest.mark.parametrize("size", [0, 1, 100000, 3 * 1024 * 1024])
def test_proxychains_curl(proxychains_chain, http_target, size):
    run, (a, a_socks), (b, b_http) = proxychains_chain
    url = f"http://127.0.0.1:{http_target.port}/size/{size}"
    p = run("curl", "-sS", "--max-time", "30", url)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    assert p.stdout == pattern_bytes(size)
    # the connection really went A (SOCKS5, asked for B) then B (CONNECT to
    # the target)
    a.wait_log(f"proto=socks5 target=127.0.0.1:{b_http} route=direct")
    b.wait_log(f"proto=http method=CONNECT target=127.0.0.1:{http_target.port} route=direct")


def test_proxychains_several_requests(proxychains_chain, http_target):
    """One curl process, several URLs: every connection goes through the
    chain and every body is right."""
    run, (a, a_socks), (b, b_http) = proxychains_chain
    sizes = [10, 70000, 123457]
    urls = [f"http://127.0.0.1:{http_target.port}/size/{n}" for n in sizes]
    args = ["curl", "-sS", "--max-time", "30", "-H", "Connection: close"]
    p = run(*args, *urls)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    assert p.stdout == b"".join(pattern_bytes(n) for n in sizes)
    b.wait_log(f"proto=http method=CONNECT target=127.0.0.1:{http_target.port} route=direct", count=len(sizes))


# ---- PySocks ----

socks = pytest.importorskip("socks", reason="python3-socks (PySocks) not installed")

PYSOCKS_MODES = [
    # id, proxy type name, listener, rdns, target host, log "proto -> target"
    ("socks4", "SOCKS4", "socks", False, "127.0.0.1", "proto=socks4 target=127.0.0.1"),
    ("socks4a", "SOCKS4", "socks", True, "localhost", "proto=socks4a target=localhost"),
    ("socks5", "SOCKS5", "socks", False, "127.0.0.1", "proto=socks5 target=127.0.0.1"),
    ("socks5-local-dns", "SOCKS5", "socks", False, "localhost", "proto=socks5 target=127.0.0.1"),
    ("socks5-remote-dns", "SOCKS5", "socks", True, "localhost", "proto=socks5 target=localhost"),
    ("socks5-ipv6", "SOCKS5", "socks", False, "::1", "proto=socks5 target=[::1]"),
    ("http", "HTTP", "http", False, "127.0.0.1", "proto=http method=CONNECT target=127.0.0.1"),
    ("http-remote-dns", "HTTP", "http", True, "localhost", "proto=http method=CONNECT target=localhost"),
]


@pytest.mark.parametrize("ptype,listener,rdns,host,logged", [m[1:] for m in PYSOCKS_MODES],
                         ids=[m[0] for m in PYSOCKS_MODES])
def test_pysocks(proxy, http_target, ptype, listener, rdns, host, logged):
    port = proxy.socks if listener == "socks" else proxy.http
    for size in (1, 250000):
        # the socket's family is the proxy's (IPv4); the target may be IPv6
        s = socks.socksocket()
        s.set_proxy(getattr(socks, ptype), "127.0.0.1", port, rdns=rdns)
        s.settimeout(WAIT)
        try:
            s.connect((host, http_target.port))
            body = http_get_over(s, host, http_target.port, f"/size/{size}")
        finally:
            s.close()
        assert body == pattern_bytes(size)
    proxy.d.wait_log(f"{logged}:{http_target.port} route=direct", count=2)


def test_pysocks_socks5_with_credentials(proxy, http_target):
    """A client that offers username/password is served too (no auth is
    configured, so either method is fine)."""
    s = socks.socksocket()
    s.set_proxy(socks.SOCKS5, "127.0.0.1", proxy.socks, rdns=True,
                username="user", password="secret")
    s.settimeout(WAIT)
    with s:
        s.connect(("localhost", http_target.port))
        assert http_get_over(s, "localhost", http_target.port, "/size/5000") == pattern_bytes(5000)


@pytest.mark.parametrize("ptype,listener", [("SOCKS4", "socks"), ("SOCKS5", "socks"),
                                            ("HTTP", "http")])
def test_pysocks_errors(proxy, ptype, listener):
    """PySocks sees the failure replies as the matching proxy errors."""
    port = proxy.socks if listener == "socks" else proxy.http
    dead = free_port()
    s = socks.socksocket()
    s.set_proxy(getattr(socks, ptype), "127.0.0.1", port)
    s.settimeout(WAIT)
    with s, pytest.raises(socks.ProxyError) as ei:
        s.connect(("127.0.0.1", dead))
    # PySocks wraps the protocol error; its text carries the code it got
    cause = str(ei.value.socket_err)
    if ptype == "SOCKS5":
        assert cause.startswith("0x05"), cause  # REP 05: connection refused
    elif ptype == "SOCKS4":
        assert cause.startswith("0x5b"), cause  # CD 91: rejected or failed
    else:
        assert cause.startswith("502"), cause


class PeerNameServer:
    """Tells each client the address it sees it connecting from."""

    def __init__(self, host):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, peer = self.sock.accept()
            except OSError:
                return
            with c:
                try:
                    c.sendall(f"{peer[0]} {peer[1]}\n".encode())
                except OSError:
                    pass

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_socks5_reply_names_the_outbound_address(proxy, host):
    """BND.ADDR/BND.PORT in the SOCKS5 reply are the address the target
    sees the connection coming from."""
    srv = PeerNameServer(host)
    try:
        s = connect(proxy.socks)
        with s:
            s.sendall(b"\x05\x01\x00\x05\x01\x00" + socks5_target(host, srv.port))
            assert recv_exact(s, 2) == b"\x05\x00"
            rep, raw = socks5_read_reply(s)
            assert rep == 0
            if raw[3] == 1:
                bnd = (socket.inet_ntop(socket.AF_INET, raw[4:8]), int.from_bytes(raw[8:10], "big"))
            else:
                bnd = (socket.inet_ntop(socket.AF_INET6, raw[4:20]),
                       int.from_bytes(raw[20:22], "big"))
            line = recv_all(s).decode().split()
            assert bnd == (line[0], int(line[1]))
    finally:
        srv.close()
