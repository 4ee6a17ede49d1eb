"""Unauthenticated clients cannot hold every API slot (issue 9, defect 8):
the first request's head has a short deadline (--api-head-timeout), once
less than a quarter of the slots are free one client address gets no more
than --api-max-conns-per-addr (IPv6: per /64), and the last --api-reserved
slots go only to trusted clients (on --api-allow; without it, loopback and
unix-socket clients).

The tests that need clients on addresses other than loopback run the daemon
in a network namespace of their own (root only), with test addresses
(192.0.2.0/24, 2001:db8::/32) on its loopback interface."""

import ctypes
import os
import select
import shutil
import socket
import threading
import time

import pytest

from harness import (ADMIN_TOKEN, Api, BIN, RawConn, free_ports, request, start_api,
                     token_files, wait_until)

CLONE_NEWNET = 0x40000000
NS_PORT = 9080


class SockConn(RawConn):
    """RawConn over a socket made elsewhere (a source address, a netns)."""

    def __init__(self, s):
        self.s, self.buf = s, b""


def tcp_from(src, dst, port, timeout=10.0):
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect((dst, port))
    return s


def healthy(c, token=ADMIN_TOKEN, host=None):
    c.send(request("GET", "/healthy", headers={"Authorization": f"Bearer {token}"},
                   host=host))
    return c.response()


def refused_line(d, src, why):
    """Wait for the log line of a refusal (it comes from the ruleset
    process through the parent, so it may arrive after the 503) and check it
    names the client's address."""
    d.wait_log(f"refused: {why}")
    lines = [ln for ln in d.log().splitlines() if f"refused: {why}" in ln]
    assert any(f" {src}:" in ln for ln in lines), lines
    return True


def refused_busy(c):
    """The server answered 503 (come back later) and closed."""
    r = c.response()
    assert r.status == 503 and r.headers["retry-after"] == "1", r
    assert c.closed_by_peer()
    return True


# ---- on loopback ----


def test_lockout_attack_does_not_lock_the_admin_out(daemon_factory, tmp_path, http_target):
    """Regression: 64 connections that each send one byte, and come back at
    once when cut, held every slot (--api-max-conns 64), so the admin got
    503 until the attack stopped. Now, once the slots run short, the
    attacker's address gets no more than its share, its connections are cut
    at the head deadline, and the admin (another address) is served all
    along."""
    a, _ = token_files(tmp_path)
    d = start_api(daemon_factory, tmp_path, http_target.port, "--api-token-file", a,
                  token=ADMIN_TOKEN)
    stop, filled = threading.Event(), threading.Event()
    stats = {"attempts": 0, "held": 0}

    def attack():
        held = []
        deadline = time.monotonic() + 120
        try:
            while not stop.is_set() and time.monotonic() < deadline \
                    and stats["attempts"] < 3000:
                while len(held) < 64 and stats["attempts"] < 3000:
                    stats["attempts"] += 1
                    try:
                        s = tcp_from("127.0.0.2", "127.0.0.1", d.api.port)
                        s.send(b"G")
                    except OSError:
                        continue
                    held.append(s)
                filled.set()
                # the ones the server answered or closed are replaced
                ready, _, _ = select.select(held, [], [], 0.5)
                for s in ready:
                    held.remove(s)
                    s.close()
                stats["held"] = max(stats["held"], len(held))
        finally:
            filled.set()
            for s in held:
                s.close()

    t = threading.Thread(target=attack)
    t.start()
    try:
        assert filled.wait(60)
        for _ in range(10):
            c = SockConn(tcp_from("127.0.0.1", "127.0.0.1", d.api.port))
            try:
                assert healthy(c, host=d.api.host).status == 200
            finally:
                c.close()
    finally:
        stop.set()
        t.join(60)
    assert stats["attempts"] >= 64
    assert refused_line(d, "127.0.0.2", "--api-max-conns-per-addr reached")


def test_per_address_cap(daemon_factory, tmp_path, http_target):
    """One address may take what is free, but once less than a quarter of
    the slots are free it gets no more than --api-max-conns-per-addr; other
    addresses still get in."""
    d = start_api(daemon_factory, tmp_path, http_target.port, "--api-max-conns", "8",
                  "--api-max-conns-per-addr", "2")
    held = []

    def conn_from(src):
        c = SockConn(tcp_from(src, "127.0.0.1", d.api.port))
        held.append(c)
        return c
    try:
        for _ in range(7):  # 7 of 8: room enough, over its share
            assert healthy(conn_from("127.0.0.2")).status == 200
        assert refused_busy(conn_from("127.0.0.2"))  # 1 left: its share is used
        assert healthy(conn_from("127.0.0.3")).status == 200  # another address
        assert refused_busy(conn_from("127.0.0.4"))  # all 8 taken
        assert refused_line(d, "127.0.0.2", "--api-max-conns-per-addr reached")
        # two places given back: room again, even for 127.0.0.2
        for c in held[:2]:
            c.close()
        del held[:2]

        def room_again():
            c = SockConn(tcp_from("127.0.0.2", "127.0.0.1", d.api.port))
            try:
                return healthy(c).status == 200
            finally:
                c.close()
        wait_until(room_again, 10, "the freed places were not given back")
    finally:
        for c in held:
            c.close()


def test_rpc_bursts_from_one_address_are_served(daemon_factory, tmp_path, http_target):
    """RPC calls from peers all arrive from the local front's address: a
    burst over --api-max-conns-per-addr is served while there is room."""
    d = start_api(daemon_factory, tmp_path, http_target.port)
    conns = [SockConn(tcp_from("127.0.0.1", "127.0.0.1", d.api.port)) for _ in range(24)]
    try:
        for c in conns:
            assert healthy(c, host=d.api.host).status == 200
    finally:
        for c in conns:
            c.close()


def test_unix_socket_clients_are_not_capped_per_address(daemon_factory, tmp_path):
    """Unix-socket clients have no address: the socket's mode decides who
    connects, and the per-address cap does not count them as one."""
    path = str(tmp_path / "api.sock")
    socks, = free_ports(1)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--api", path,
                       "--api-max-conns-per-addr", "1")
    api = Api(unix=path)
    conns = [api.conn() for _ in range(3)]
    try:
        for c in conns:
            c.send(request("GET", "/healthy", host="localhost"))
            assert c.response().status == 200
    finally:
        for c in conns:
            c.close()
    assert d.log().count("refused") == 0


def test_head_deadline_cuts_a_silent_client(daemon_factory, tmp_path, http_target):
    """A connection that sends nothing, or part of a head, is closed after
    --api-head-timeout although --api-timeout is an hour; a client whose
    head arrived in time is then held to the ordinary deadlines only."""
    d = start_api(daemon_factory, tmp_path, http_target.port, "--api-head-timeout", "0.5",
                  "--api-timeout", "3600", "--api-idle", "3600")
    api = d.api
    silent, partial, slow_body = api.conn(), api.conn(), api.conn()
    try:
        partial.send(b"GET /healthy HTTP/1.1\r\nHost: " + api.host.encode())
        slow_body.send(request("POST", "/ruleset/invoke", headers={"Content-Length": "9"},
                               host=api.host))
        assert silent.closed_by_peer(timeout=60)
        assert partial.closed_by_peer(timeout=60)
        # both deadlines have passed for slow_body too: it is still served
        slow_body.send(b"local x=1")
        assert slow_body.response().status == 200
        # and, idle after it, it is not cut at the head deadline either
        probe = api.conn()
        assert probe.closed_by_peer(timeout=60)
        probe.close()
        slow_body.send(request("GET", "/healthy", host=api.host))
        assert slow_body.response().status == 200
    finally:
        for c in (silent, partial, slow_body):
            c.close()


def test_head_options_checked(daemon_factory):
    import subprocess
    for args, msg in ((("--api-head-timeout", "0"), "--api-head-timeout"),
                      (("--api-max-conns-per-addr", "0"), "--api-max-conns-per-addr"),
                      (("--api-reserved", "64"), "--api-reserved: 64 must be less than"),
                      (("--api-max-conns", "4", "--api-reserved", "4"), "--api-reserved")):
        p = subprocess.run([BIN, "-l", "127.0.0.1:1080", "--api", "127.0.0.1:9080", *args,
                            "--check"], capture_output=True, timeout=60)
        assert p.returncode != 0 and msg.encode() in p.stderr, (args, p.stderr)


# ---- in a network namespace: clients that are not loopback ----


def in_netns(pid, fn):
    """Run fn in a thread that joined pid's network namespace (sockets made
    there stay in it, usable from any thread)."""
    out = {}

    def run():
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)
        try:
            out["v"] = fn()
        except BaseException as e:  # handed to the caller
            out["e"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    if "e" in out:
        raise out["e"]
    return out["v"]


NS_ADDRS = ["192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32", "2001:db8::1/128",
            "2001:db8::2/128", "2001:db8::3/128", "2001:db8:0:1::1/128"]


def start_in_netns(daemon_factory, tmp_path, *args):
    a, _ = token_files(tmp_path)
    setup = " && ".join(["ip link set lo up"] +
                        [f"ip addr add {x} dev lo" for x in NS_ADDRS])
    cmd = " ".join([BIN, "-l", "127.0.0.1:1080", "--api", f":{NS_PORT}",
                    "--api-token-file", a, "--api-head-timeout", "3600", *args])
    return daemon_factory("-n", "sh", "-c", f"{setup} && exec {cmd}",
                          binary=shutil.which("unshare"))


def ns_conn(d, src, dst):
    return SockConn(in_netns(d.pid, lambda: tcp_from(src, dst, NS_PORT)))


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")


@needs_root
def test_reserved_slots(daemon_factory, tmp_path):
    """Without --api-allow, the reserved slots go to loopback clients: when
    others have taken the rest, a client on another address is refused and
    the admin on loopback is served."""
    d = start_in_netns(daemon_factory, tmp_path, "--api-max-conns", "6", "--api-reserved", "2",
                       "--api-max-conns-per-addr", "2")
    held = []
    try:
        for src in ("192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.2"):
            c = ns_conn(d, src, "192.0.2.1")
            held.append(c)
            assert healthy(c).status == 200
        outsider = ns_conn(d, "192.0.2.3", "192.0.2.1")
        assert refused_busy(outsider)
        outsider.close()
        for _ in range(2):  # the two reserved slots
            c = ns_conn(d, "127.0.0.1", "127.0.0.1")
            held.append(c)
            assert healthy(c).status == 200
        # all six taken: a trusted client is refused too
        extra = ns_conn(d, "127.0.0.2", "127.0.0.1")
        assert refused_busy(extra)
        extra.close()
        # the log says why (once: refusals are logged rate-limited)
        assert refused_line(d, "192.0.2.3", "only the --api-reserved slots are left")
    finally:
        for c in held:
            c.close()


@needs_root
def test_reserved_slots_serve_the_allow_list(daemon_factory, tmp_path):
    """With --api-allow, every client it admits may take a reserved slot;
    others never get past accept."""
    d = start_in_netns(daemon_factory, tmp_path, "--api-max-conns", "3", "--api-reserved", "1",
                       "--api-allow", "127.0.0.0/8,192.0.2.0/30")
    held = []
    try:
        for src in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
            c = ns_conn(d, src, "192.0.2.1")
            held.append(c)
            assert healthy(c).status == 200
        # 2001:db8::1 is not on the list: closed at accept, no answer
        c = ns_conn(d, "2001:db8::1", "2001:db8::1")
        assert c.closed_by_peer(timeout=30)
        c.close()
    finally:
        for c in held:
            c.close()


@needs_root
def test_ipv6_clients_counted_per_64(daemon_factory, tmp_path):
    """The per-address share of IPv6 clients is per /64."""
    d = start_in_netns(daemon_factory, tmp_path, "--api-max-conns", "5",
                       "--api-max-conns-per-addr", "1")
    held = []
    try:
        for src in ("2001:db8::1", "2001:db8::2", "2001:db8::1", "2001:db8::2"):
            c = ns_conn(d, src, "2001:db8::1")
            held.append(c)
            assert healthy(c).status == 200
        # one slot left: the /64 has had more than its share
        same64 = ns_conn(d, "2001:db8::3", "2001:db8::1")
        assert refused_busy(same64)
        same64.close()
        other64 = ns_conn(d, "2001:db8:0:1::1", "2001:db8::1")
        held.append(other64)
        assert healthy(other64).status == 200
    finally:
        for c in held:
            c.close()
