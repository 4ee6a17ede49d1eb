"""Regression: an upstream proxy whose reply arrives in pieces.

Bug guarded: the dialer peeked an incomplete reply and waited for more with a
level-triggered event; the peeked bytes kept the socket readable, so the
front spun at 100% CPU until the rest arrived."""

import os
import socket
import struct
import threading

import pytest

from harness import cpu_ticks, curl, free_port, pattern_bytes, read_head, WAIT


class SplitReplyProxy:
    """A CONNECT-style upstream (SOCKS5 or HTTP) that sends every reply in
    pieces, waiting for a go-ahead (an Event) between pieces, then tunnels."""

    def __init__(self, kind):
        self.kind = kind
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.step = threading.Semaphore(0)
        self.waiting = threading.Semaphore(0)
        threading.Thread(target=self._serve, daemon=True).start()

    def _piece(self, c, data):
        self.waiting.release()   # tell the test a pause has begun
        self.step.acquire()      # wait for the test to let us go on
        c.sendall(data)

    def _serve(self):
        c, _ = self.sock.accept()
        if self.kind == "socks5":
            c.recv(3)
            for b in (b"\x05", b"\x00"):
                self._piece(c, b)
            req = c.recv(262)
            host = socket.inet_ntoa(req[4:8])
            port = struct.unpack(">H", req[8:10])[0]
            reply = b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x00"
            pieces = [reply[:1], reply[1:4], reply[4:]]
        else:
            head = read_head(c)
            host, port = head.split(b" ")[1].decode().rsplit(":", 1)
            port = int(port)
            pieces = [b"HTTP/1.1 200 Connection established\r\n", b"Via: x\r\n", b"\r\n"]
        u = socket.create_connection((host, port))
        for p in pieces:
            self._piece(c, p)
        self.done = True

        def pump(a, b):
            try:
                while True:
                    d = a.recv(65536)
                    if not d:
                        b.shutdown(socket.SHUT_WR)
                        return
                    b.sendall(d)
            except OSError:
                pass

        threading.Thread(target=pump, args=(c, u), daemon=True).start()
        pump(u, c)

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("kind", ["socks5", "http"])
def test_split_reply_no_spin(daemon_factory, http_target, kind):
    up = SplitReplyProxy(kind)
    port = free_port()
    d = daemon_factory("-l", f"127.0.0.1:{port}", "-x", f"{kind}://127.0.0.1:{up.port}")
    front = d.child_by_title("neosocksd: front")
    result = {}

    def fetch():
        result["r"] = curl("--socks5", f"127.0.0.1:{port}",
                           f"http://127.0.0.1:{http_target.port}/size/5000")

    t = threading.Thread(target=fetch)
    t.start()
    npieces = 5 if kind == "socks5" else 3
    spent = 0
    for _ in range(npieces):
        assert up.waiting.acquire(timeout=WAIT), "upstream never got to its next piece"
        # the front now holds a partial reply: it must sleep, not spin.
        # Observe it across a fixed number of scheduler ticks.
        t0 = cpu_ticks([front])
        for _ in range(20):
            os.sched_yield()
            threading.Event().wait(0.01)
        spent += cpu_ticks([front]) - t0
        up.step.release()
    t.join(30)
    rc, out, err = result["r"]
    assert rc == 0, err
    assert out == pattern_bytes(5000)
    # a spinning front would use ~all of the ~1 s of pauses (100 ticks)
    assert spent < os.sysconf("SC_CLK_TCK") * 0.3, f"front used {spent} ticks while waiting"
    up.close()
