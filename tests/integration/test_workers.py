"""--workers N: N front processes, each with its own copy of the listeners
(SO_REUSEPORT) and its own channels to the parent and to the one ruleset
process; each respawned alone; /stats, /metrics and neosocksd.stats()
summed over them, /metrics also per worker; --workers 1 is the daemon as
it was. The other test files run one worker (harness.Daemon)."""

import hashlib
import os
import signal
import socket
import struct
import subprocess
import threading

import pytest

from harness import (Api, BIN, comm, connect, exchange, free_ports, IS_ROOT, recv_all,
                     recv_exact, sample, socks5_connect, socks5_read_reply, socks5_target,
                     status, udp_associate, udp_client, udp_roundtrip, wait_until)
from udppeers import UdpEcho

WAIT = 30


def start(daemon_factory, n, *extra):
    socks, http, api = free_ports(3)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--http", f"127.0.0.1:{http}",
                       "--api", f"127.0.0.1:{api}", "--loglevel", "5", *extra, workers=n)
    d.socks, d.http, d.api = socks, http, Api(port=api)
    return d


def title(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[0].decode()
    except FileNotFoundError:
        return None


def fronts(d):
    """{title: pid} of the daemon's front workers."""
    out = {}
    for pid in d.children():
        t = title(pid)
        if t and t.startswith("neosocksd: front"):
            out[t] = pid
    return out


def _tcp_table():
    rows = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            for line in f.readlines()[1:]:
                p = line.split()
                rows.append((p[1], p[2], p[3], p[9]))
    return rows


def _port_of(hexaddr):
    return int(hexaddr.rsplit(":", 1)[1], 16)


def socket_inodes(pid):
    out = set()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return out
    for name in names:
        try:
            t = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if t.startswith("socket:["):
            out.add(t[8:-1])
    return out


def listening_inodes(port):
    return {ino for local, _, st, ino in _tcp_table() if st == "0A" and _port_of(local) == port}


def worker_of(d, client):
    """The title of the worker holding the far end of a client socket."""
    cport = client.getsockname()[1]
    inodes = {ino for local, remote, st, ino in _tcp_table()
              if _port_of(local) == d.socks and _port_of(remote) == cport and st == "01"}
    for t, pid in fronts(d).items():
        if socket_inodes(pid) & inodes:
            return t
    return None


def served(d, port):
    s, rep = socks5_connect(d.socks, "127.0.0.1", port)
    try:
        if rep != 0:
            return False
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        return b"hello from the target" in recv_all(s)
    finally:
        s.close()


def test_workers_run_sandboxed_each_accepting_on_its_own_listeners(daemon_factory, http_target):
    d = start(daemon_factory, 3)
    f = fronts(d)
    assert sorted(f) == ["neosocksd: front 1", "neosocksd: front 2", "neosocksd: front 3"], f
    users = set()
    for t, pid in f.items():
        assert comm(pid) == "neosocksd-front"
        st = status(pid)
        assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2", (t, st)
        for k in ("CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(st[k], 16) == 0, (t, k, st[k])
        users.add(st["Uid"])
        if IS_ROOT:
            assert "0" not in st["Uid"].split(), (t, st["Uid"])
    assert len(users) == 1  # one user for every worker
    # one listening socket per worker and per address (a SO_REUSEPORT
    # group on the same port), each worker holding its own
    for port in (d.socks, d.http):
        ls = listening_inodes(port)
        assert len(ls) == 3, (port, ls)
        held = [socket_inodes(pid) & ls for pid in f.values()]
        assert all(len(h) == 1 for h in held), held
        assert len(set().union(*held)) == 3, held
    # the kernel spreads connections over the three: every worker serves
    for _ in range(60):
        assert served(d, http_target.port)
    fams = d.api.metrics()
    per = [sample(fams, "neosocksd_worker_connections_accepted_total", worker=str(i))
           for i in (1, 2, 3)]
    assert sum(per) == 60 and all(n > 0 for n in per), per


def test_default_is_one_worker_per_cpu_the_daemon_may_use(daemon_factory, http_target):
    cpus = sorted(os.sched_getaffinity(0))
    want = min(len(cpus), 64)
    socks, = free_ports(1)
    p = subprocess.run([BIN, "-l", f"127.0.0.1:{socks}", "--dump-config"],
                       capture_output=True, timeout=30, text=True)
    assert p.returncode == 0, p.stderr
    assert f"    workers = {want},\n" in p.stdout, p.stdout
    d = daemon_factory("-l", f"127.0.0.1:{socks}", workers=None)
    assert len(fronts(d)) == want, fronts(d)
    d.socks = socks
    assert served(d, http_target.port)
    # confined to one CPU (taskset), it runs one worker, titled as before
    socks2, = free_ports(1)
    d2 = daemon_factory("-c", str(cpus[0]), BIN, "-l", f"127.0.0.1:{socks2}",
                        binary="/usr/bin/taskset", workers=None)
    assert list(fronts(d2)) == ["neosocksd: front"]


def test_config_file_sets_workers(daemon_factory, tmp_path, http_target):
    socks, = free_ports(1)
    conf = tmp_path / "conf.lua"
    conf.write_text(f'return {{ listen = "127.0.0.1:{socks}", workers = 2 }}\n')
    d = daemon_factory("-c", str(conf), workers=None)
    assert sorted(fronts(d)) == ["neosocksd: front 1", "neosocksd: front 2"]
    d.socks = socks
    assert served(d, http_target.port)


@pytest.mark.parametrize("bad", ["0", "65", "x"])
def test_workers_out_of_range_is_refused(bad):
    p = subprocess.run([BIN, "-l", "127.0.0.1:1080", "--workers", bad, "--check"],
                       capture_output=True, timeout=30, text=True)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "--workers" in p.stderr


def test_killed_worker_is_respawned_alone_while_the_others_carry_traffic(
        daemon_factory, tmp_path, hash_server):
    """A worker killed with SIGKILL loses its own tunnels only: the other
    worker's tunnels keep flowing while it is down and after, the parent
    respawns that one worker (a new pid under the same title, the other
    untouched), and the new one is served by the ruleset process on a
    channel of its own."""
    rs = tmp_path / "rs.lua"
    rs.write_text("local function to(addr)\n"
                  "    if addr:find('%%.test:') then return '127.0.0.1:%d' end\n"
                  "    return addr\n"
                  "end\n"
                  "return { resolve = to, route = to, route6 = to }\n" % hash_server.port)
    d = start(daemon_factory, 2, "-r", str(rs))
    before = fronts(d)
    tunnels = {}  # worker title -> an open tunnel through it
    for _ in range(80):
        s, rep = socks5_connect(d.socks, "a.test", 80)
        assert rep == 0
        s.sendall(b"0\n")
        t = worker_of(d, s)
        if t in tunnels or t is None:
            s.close()
        else:
            tunnels[t] = s
        if len(tunnels) == 2:
            break
    assert len(tunnels) == 2, "no tunnel landed on one of the workers"
    victim, other = "neosocksd: front 1", "neosocksd: front 2"
    keep = tunnels[other]
    keep.settimeout(WAIT)
    keep.sendall(b"x" * 1000)
    os.kill(before[victim], signal.SIGKILL)
    lost = tunnels[victim]
    lost.settimeout(WAIT)
    try:
        assert lost.recv(1) == b""
    except ConnectionResetError:
        pass
    lost.close()
    keep.sendall(b"y" * 1000)  # the other worker relays on, unaffected
    wait_until(lambda: fronts(d).get(victim) not in (None, before[victim]), WAIT,
               lambda: f"{victim} not respawned: {fronts(d)}\n{d.log()[-2000:]}")
    assert fronts(d)[other] == before[other]
    d.wait_log("respawning front 1 in", timeout=WAIT)
    assert "respawning front 2" not in d.log()
    keep.shutdown(socket.SHUT_WR)
    assert recv_all(keep) == hashlib.sha256(b"x" * 1000 + b"y" * 1000).digest()
    keep.close()
    # the respawned worker gets decisions from the ruleset on its new
    # channel: a request that lands on it is routed by the ruleset
    respawned = False
    for _ in range(80):
        s, rep = socks5_connect(d.socks, "b.test", 80)
        assert rep == 0
        s.sendall(b"0\n")
        respawned = worker_of(d, s) == victim
        s.shutdown(socket.SHUT_WR)
        assert len(recv_all(s)) == 32
        s.close()
        if respawned:
            break
    assert respawned, "no request reached the respawned worker"
    fams = d.api.metrics()
    assert sample(fams, "neosocksd_worker_restarts_total", worker="1") == 1
    assert sample(fams, "neosocksd_worker_restarts_total", worker="2") == 0
    assert sample(fams, "neosocksd_process_restarts_total", role="front") == 1


def test_each_worker_gets_its_own_decisions(daemon_factory, tmp_path):
    """Every worker numbers its sessions from 1, so requests of several
    workers waiting for the ruleset at once carry the same ids: each
    decision must go back on the channel its request came from (a client
    reaches the target named in its own request)."""
    class Named:
        def __init__(self, name):
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
            self.sock.listen(64)
            self.port = self.sock.getsockname()[1]
            self.name = name
            threading.Thread(target=self.run, daemon=True).start()

        def run(self):
            while True:
                try:
                    c, _ = self.sock.accept()
                except OSError:
                    return
                c.sendall(self.name)
                c.close()

    targets = [Named(b"target-%d" % i) for i in range(6)]
    table = ", ".join(f'["t{i}.test"] = "127.0.0.1:{t.port}"' for i, t in enumerate(targets))
    rs = tmp_path / "rs.lua"
    rs.write_text("local to = { %s }\n"
                  "local function route(addr)\n"
                  "    await.sleep(0.3) -- the requests of all workers wait together\n"
                  "    return to[addr:match('^[^:]+')]\n"
                  "end\n"
                  "return { resolve = route, route = route, route6 = route }\n" % table)
    d = start(daemon_factory, 3, "-r", str(rs))
    results, errors = {}, []

    def client(k):
        i = k % len(targets)
        try:
            s, rep = socks5_connect(d.socks, f"t{i}.test", 80, timeout=WAIT)
            with s:
                if rep != 0:
                    errors.append((k, rep))
                    return
                s.settimeout(WAIT)
                results[k] = (i, recv_all(s))
        except OSError as e:
            errors.append((k, e))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 2)
    assert not errors, errors
    assert len(results) == 24
    for k, (i, got) in results.items():
        assert got == b"target-%d" % i, (k, i, got)
    for t in targets:
        t.sock.close()


def test_stats_are_summed_over_workers(daemon_factory, tmp_path, hash_server):
    rs = tmp_path / "rs.lua"
    rs.write_text("local function to(addr) return addr end\n"
                  "return { resolve = to, route = to, route6 = to }\n")
    d = start(daemon_factory, 3, "-r", str(rs))
    n, up = 30, 1000
    for _ in range(n):
        s, rep = socks5_connect(d.socks, "127.0.0.1", hash_server.port)
        assert rep == 0
        s.sendall(b"0\n" + b"u" * up)
        s.shutdown(socket.SHUT_WR)
        assert len(recv_all(s)) == 32
        s.close()
    # the sessions close asynchronously: wait until every one is counted
    wait_until(lambda: sample(d.api.metrics(), "neosocksd_sessions_active") == 0, WAIT)
    fams = d.api.metrics()

    def per_worker(name):
        return [sample(fams, "neosocksd_worker_" + name, worker=str(i)) for i in (1, 2, 3)]

    assert sample(fams, "neosocksd_connections_accepted_total") == n
    assert sum(per_worker("connections_accepted_total")) == n
    assert sample(fams, "neosocksd_requests_success_total") == n
    assert sum(per_worker("requests_success_total")) == n
    assert sample(fams, "neosocksd_uplink_bytes_total") == n * (up + 2)
    assert sum(per_worker("uplink_bytes_total")) == n * (up + 2)
    assert sample(fams, "neosocksd_downlink_bytes_total") == n * 32
    # the latency summary counts every worker's dials
    assert sample(fams, "neosocksd_connect_latency_seconds_count") == n
    # a layer is in place for the front when every worker has it
    assert sample(fams, "neosocksd_sandbox_layer", role="front", layer="seccomp") == 1
    text = d.api.one("GET", "/stats").text
    assert f"Conn Accepts        : {n} (+0)" in text, text
    # neosocksd.stats() in Lua: the same sums
    r = d.api.invoke("print('WORKERS ' .. neosocksd.stats().num_accept .. ' ' .. "
                     "neosocksd.stats().byt_up)")
    assert r.status == 200, r
    d.wait_log(f"WORKERS {n} {n * (up + 2)}", timeout=WAIT)


def test_workers_1_is_the_daemon_as_it_was(daemon_factory, http_target):
    d = start(daemon_factory, 1)
    kids = {title(p) for p in d.children()}
    assert kids == {"neosocksd: front", "neosocksd: ruleset"}, kids
    # one listening socket per address, as before (no SO_REUSEPORT group)
    assert len(listening_inodes(d.socks)) == 1
    f = fronts(d)["neosocksd: front"]
    os.kill(f, signal.SIGKILL)
    d.wait_log("respawning front in", timeout=WAIT)
    assert f"front (pid {f}) killed by signal 9" in d.log()
    assert "front 1" not in d.log()
    wait_until(lambda: served(d, http_target.port), WAIT)
    fams = d.api.metrics()
    assert sample(fams, "neosocksd_worker_restarts_total", worker="1") == 1
    assert sample(fams, "neosocksd_process_restarts_total", role="front") == 1


def test_sigterm_drains_every_worker(daemon_factory, hash_server):
    """SIGTERM: every worker stops accepting and lets its tunnels finish;
    the daemon exits 0 once all are done."""
    d = start(daemon_factory, 2, "--drain", "20")
    tunnels = []
    seen = set()
    for _ in range(80):
        s, rep = socks5_connect(d.socks, "127.0.0.1", hash_server.port)
        assert rep == 0
        t = worker_of(d, s)
        if t in seen:
            s.close()
            continue
        seen.add(t)
        tunnels.append(s)
        if len(seen) == 2:
            break
    assert len(tunnels) == 2
    d.proc.send_signal(signal.SIGTERM)
    d.wait_log("stopped accepting", count=2, timeout=WAIT)
    for s in tunnels:  # both workers still relay while draining
        exchange(s, 1 << 14, 1 << 14)
        s.close()
    assert d.proc.wait(WAIT) == 0


def _udp_inode(port):
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        with open(name) as f:
            for line in f.readlines()[1:]:
                p = line.split()
                if _port_of(p[1]) == port:
                    return p[9]
    return None


def _listen_inode(port):
    found = [ino for local, _, st, ino in _tcp_table() if st == "0A" and _port_of(local) == port]
    return found[0] if found else None


def test_udp_and_bind_sockets_reach_the_worker_that_asked(daemon_factory):
    """With two workers, a SOCKS5 UDP ASSOCIATE and a BIND on each: the
    socket the parent brokers lands in the worker that holds the client's
    connection (its answer goes on that worker's channel), and relays; the
    UDP counters are summed over the workers. Then one worker is killed
    with its association open: only that association ends, the other
    worker's relays on, and the respawned worker brokers UDP again."""
    echo = UdpEcho()
    d = start(daemon_factory, 2, "--enable-socks5-udp", "--enable-socks5-bind")
    try:
        assocs = {}  # worker title -> (control, relay, client socket)
        for _ in range(80):
            c, rep, relay = udp_associate(d.socks)
            assert rep == 0
            t = worker_of(d, c)
            if t is None or t in assocs:
                c.close()
                continue
            assocs[t] = (c, relay, udp_client(relay))
            if len(assocs) == 2:
                break
        assert len(assocs) == 2, "no association landed on one of the workers"
        for t, (c, relay, u) in assocs.items():
            assert _udp_inode(relay[1]) in socket_inodes(fronts(d)[t]), t
            assert udp_roundtrip(u, relay, "127.0.0.1", echo.port, t.encode()) == \
                ("127.0.0.1", echo.port, b"echo:" + t.encode())
        fams = d.api.metrics()
        assert sample(fams, "neosocksd_udp_associations_active") == 2
        assert sample(fams, "neosocksd_udp_datagrams_total", direction="up") == 2
        assert sample(fams, "neosocksd_udp_datagrams_total", direction="down") == 2
        # BIND: the listening socket in the worker that asked
        binds = set()
        for _ in range(80):
            s = connect(d.socks, timeout=20)
            s.sendall(b"\x05\x01\x00")
            assert recv_exact(s, 2) == b"\x05\x00"
            s.sendall(b"\x05\x02\x00" + socks5_target("127.0.0.1", 9))
            rep, raw = socks5_read_reply(s)
            assert rep == 0, rep
            t = worker_of(d, s)
            port = struct.unpack(">H", raw[8:10])[0]
            if t is not None and t not in binds:
                assert _listen_inode(port) in socket_inodes(fronts(d)[t]), t
                binds.add(t)
            s.close()
            if len(binds) == 2:
                break
        assert len(binds) == 2, "no BIND landed on one of the workers"
        # one worker dies with its association open
        victim, other = "neosocksd: front 1", "neosocksd: front 2"
        before = fronts(d)
        os.kill(before[victim], signal.SIGKILL)
        c, relay, u = assocs[victim]
        c.settimeout(WAIT)
        try:
            assert c.recv(1) == b""
        except ConnectionResetError:
            pass
        c, relay, u = assocs[other]
        assert udp_roundtrip(u, relay, "127.0.0.1", echo.port, b"still") == \
            ("127.0.0.1", echo.port, b"echo:still")
        wait_until(lambda: fronts(d).get(victim) not in (None, before[victim]), WAIT,
                   lambda: f"{victim} not respawned: {fronts(d)}")
        wait_until(lambda: sample(d.api.metrics(), "neosocksd_worker_sessions_active",
                                  worker="1") == 0, WAIT)
        fams = d.api.metrics()
        assert sample(fams, "neosocksd_udp_associations_active") == 1
        # the respawned worker asks the parent for relays again
        for _ in range(80):
            c2, rep, relay2 = udp_associate(d.socks)
            assert rep == 0
            if worker_of(d, c2) == victim:
                u2 = udp_client(relay2)
                assert udp_roundtrip(u2, relay2, "127.0.0.1", echo.port, b"again") == \
                    ("127.0.0.1", echo.port, b"echo:again")
                u2.close()
                c2.close()
                break
            c2.close()
        else:
            pytest.fail("no association reached the respawned worker")
    finally:
        echo.close()
        for c, _, u in locals().get("assocs", {}).values():
            c.close()
            u.close()
