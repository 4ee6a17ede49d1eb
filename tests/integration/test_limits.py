"""Admission limits and descriptor exhaustion."""

import os
import time

from harness import (Api, AT_ONCE, BIN, connect, cpu_ticks, Daemon, free_port, free_ports,
                     head_status, is_closed, read_head, recv_all, recv_exact, sample,
                     socks5_connect, socks5_read_reply, socks5_target, wait_until)


def _served(port, target_port):
    """Poll until a SOCKS5 client gets a tunnel (closes are processed
    asynchronously by the daemon); returns the open socket."""
    got = []

    def ok():
        s, rep = socks5_connect(port, "127.0.0.1", target_port)
        if rep == 0:
            got.append(s)
            return True
        s.close()
        return False

    wait_until(ok, what="not served after the limit cleared")
    return got[0]


def test_max_startups_drops_beyond_start_at_full_rate(daemon_factory, http_target):
    port = free_port()
    daemon_factory("-l", f"127.0.0.1:{port}", "--max-startups", "2:100:3")
    # the listener defers accepting a connection until its first bytes are
    # in (TCP_DEFER_ACCEPT): each client starts its greeting, one after the
    # other, which queues them in that order (on loopback a segment is
    # processed inside the sender's send). The first two are pending
    # handshakes when the third is accepted, and with rate 100% it is
    # dropped at once
    held = []
    for _ in range(2):
        s = connect(port)
        s.sendall(b"\x05")
        held.append(s)
    extra = connect(port)
    extra.sendall(b"\x05")
    assert is_closed(extra, timeout=AT_ONCE)
    for s in held:
        assert not is_closed(s, timeout=0.2)  # still admitted
        s.close()
    _served(port, http_target.port).close()


def test_emfile_pauses_accepting_without_spinning(http_target, tmp_path):
    """With a tiny descriptor limit the front runs out of fds: it must pause
    accepting (no busy loop, a rate-limited log line) and serve again once
    sessions close."""
    port = free_port()
    limit = 40
    # no admission limits (the defaults derived from the descriptor limit
    # would drop the extra clients before the front runs out)
    d = Daemon(["--nofile=%d" % limit, BIN, "-l", f"127.0.0.1:{port}",
                "-m", "0", "--max-startups", "0:30:0"],
               binary="/usr/bin/prlimit", tmpdir=str(tmp_path))
    try:
        d.start()
        front = d.child_by_title("neosocksd: front")
        assert front
        began = time.monotonic()
        clients = [connect(port) for _ in range(limit + 20)]
        d.wait_log("pausing for a while")
        # observe the saturated front for 1.5 s of wall time: a spinning
        # accept loop would burn CPU and a flood of log lines
        t0 = cpu_ticks([front])
        time.sleep(1.5)
        used = cpu_ticks([front]) - t0
        assert used < os.sysconf("SC_CLK_TCK") * 0.5, f"front used {used} ticks while paused"
        # the line is rate-limited to one per 10 s (however long a slow
        # machine took to get here)
        assert d.log().count("pausing for a while") <= 2 + (time.monotonic() - began) // 10
        for s in clients:
            s.close()
        s = _served(port, http_target.port)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert b"hello from the target" in recv_all(s)
        s.close()
    finally:
        d.close()
    assert d.sanitizer_report() is None, d.log()[-3000:]


def test_silent_client_is_accepted_after_the_deferral_and_served(daemon_factory, http_target):
    """SOCKS and HTTP listeners defer accepting a connection until its
    first bytes are in (TCP_DEFER_ACCEPT), and the front reads them as it
    accepts. A client that says nothing is handed over by the kernel after
    about a second anyway: it is then a half-open session like any other
    (the read at accept finds nothing and the front waits for it), and is
    served once it speaks."""
    socks, http, api = free_ports(3)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--http", f"127.0.0.1:{http}",
                       "--api", f"127.0.0.1:{api}")
    d.api = Api(port=api)
    quiet = [connect(socks), connect(http)]
    wait_until(lambda: sample(d.api.metrics(), "neosocksd_halfopen_connections") == 2, 30,
               "the silent clients were never accepted")
    s, c = quiet
    s.sendall(b"\x05\x01\x00")
    assert recv_exact(s, 2) == b"\x05\x00"
    s.sendall(b"\x05\x01\x00" + socks5_target("127.0.0.1", http_target.port))
    assert socks5_read_reply(s)[0] == 0
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    assert b"hello from the target" in recv_all(s)
    c.sendall(f"CONNECT 127.0.0.1:{http_target.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert head_status(read_head(c)) == 200
    c.sendall(b"GET / HTTP/1.0\r\n\r\n")
    assert b"hello from the target" in recv_all(c)
    for x in quiet:
        x.close()
