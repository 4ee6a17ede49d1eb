"""--tproxy inside network namespaces the test makes (root), -d and
--pidfile, and the rules between the issue-13 options (issue 13)."""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import textwrap

import pytest

from harness import (access_fields, access_line, alive, assert_socks5_served, BIN, caps,
                     free_ports, IS_ROOT, WAIT, wait_until)

CAP_NET_ADMIN = 12


def run(*cmd, check=True, timeout=30):
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check,
                          timeout=timeout)


class Namespaces:
    """Two network namespaces joined by a veth pair: "cli" (10.200.0.2,
    default route to gw) and "gw" (10.200.0.1), where packets for
    10.200.9.0/24 port 80 go to a transparent listener: nft tproxy, a
    mark, and policy routing that delivers marked packets locally."""

    def __init__(self, listen_port):
        tag = os.getpid() % 100000
        self.gw, self.cli = f"nsd13gw{tag}", f"nsd13cli{tag}"
        self.made = []
        for ns in (self.gw, self.cli):
            run("ip", "netns", "add", ns)
            self.made.append(ns)
        run("ip", "link", "add", "g0", "netns", self.gw, "type", "veth", "peer", "name",
            "c0", "netns", self.cli)
        for ns, dev, addr in ((self.gw, "g0", "10.200.0.1/24"), (self.cli, "c0", "10.200.0.2/24")):
            run("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            run("ip", "-n", ns, "link", "set", dev, "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", self.cli, "route", "add", "default", "via", "10.200.0.1")
        run("ip", "-n", self.gw, "rule", "add", "fwmark", "1", "lookup", "100")
        run("ip", "-n", self.gw, "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "100")
        rules = textwrap.dedent(f"""
            table ip nsd13 {{
                chain pre {{
                    type filter hook prerouting priority mangle; policy accept;
                    iifname "g0" ip daddr 10.200.9.0/24 tcp dport 80 \\
                        tproxy to 10.200.0.1:{listen_port} meta mark set 1 accept
                }}
            }}
        """)
        subprocess.run(["ip", "netns", "exec", self.gw, "nft", "-f", "-"], input=rules,
                       text=True, check=True, capture_output=True, timeout=30)

    def exec(self, ns, *cmd):
        return ["ip", "netns", "exec", ns] + list(cmd)

    def close(self):
        for ns in self.made:
            run("ip", "netns", "del", ns, check=False)


def tproxy_missing():
    if not IS_ROOT:
        return "needs root: network namespaces, nft tproxy rules and policy routing"
    for tool in ("ip", "nft", "curl"):
        if shutil.which(tool) is None:
            return f"needs {tool} (mk/deps.sh test installs it)"
    return None


@pytest.mark.skipif(tproxy_missing() is not None, reason=tproxy_missing() or "")
@pytest.mark.parametrize("workers", [1, 2])
def test_tproxy_routes_the_original_destination(daemon_factory, tmp_path, workers):
    """A client in one namespace fetches http://10.200.9.9/ (an address
    that exists nowhere); nft tproxy hands the connection to the daemon's
    transparent listener in the other; its ruleset sees route("10.200.9.9:80")
    and sends it to a local HTTP server, which answers the client. With
    two workers each has its own transparent copy of the listener (all
    made before CAP_NET_ADMIN is dropped), and both serve."""
    lport, tport = free_ports(2)
    ns = Namespaces(lport)
    web = None
    try:
        (tmp_path / "www").mkdir()
        (tmp_path / "www" / "hello.txt").write_text("hello through tproxy\n")
        web = subprocess.Popen(ns.exec(ns.gw, "/usr/bin/python3", "-m", "http.server",
                                       "--bind", "127.0.0.1", "--directory",
                                       str(tmp_path / "www"), str(tport)),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rs = tmp_path / "tproxy.lua"
        rs.write_text(textwrap.dedent(f"""
            local rs = {{}}
            function rs.route(addr)
                if addr == "10.200.9.9:80" then return "127.0.0.1:{tport}" end
                return nil
            end
            return rs
        """))
        d = daemon_factory("netns", "exec", ns.gw, BIN, "-l", f"10.200.0.1:{lport}",
                           "--tproxy", "-r", str(rs), "--loglevel", "5",
                           "--workers", str(workers), binary="ip")
        wait_until(lambda: run(*ns.exec(ns.gw, "curl", "-s", "-o", "/dev/null",
                                        f"http://127.0.0.1:{tport}/"),
                               check=False).returncode == 0, 15, "no web server")
        r = run(*ns.exec(ns.cli, "curl", "-sS", "--max-time", "20",
                         "http://10.200.9.9/hello.txt"), check=False)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "hello through tproxy\n"
        # more fetches until every worker has served one (the kernel
        # spreads connections over the copies by their addresses)
        def serving():
            return set(re.findall(r"front\[(\d+)\] \S+ \[#\d+\] client=\S+ proto=tproxy",
                                  d.log()))
        for _ in range(60):
            if len(serving()) == workers:
                break
            r = run(*ns.exec(ns.cli, "curl", "-sS", "--max-time", "20",
                             "http://10.200.9.9/hello.txt"), check=False)
            assert r.returncode == 0 and r.stdout == "hello through tproxy\n", r.stderr
        assert len(serving()) == workers, d.log()
        f = access_fields(access_line(d, "proto=tproxy"))
        assert f["client"].startswith("10.200.0.2:"), f
        assert (f["target"], f["route"], f["to"], f["outcome"]) == \
            ("10.200.9.9:80", "direct", f"127.0.0.1:{tport}", "ok"), f
        # an address the ruleset refuses is closed, not routed direct
        r = run(*ns.exec(ns.cli, "curl", "-sS", "--max-time", "20",
                         "http://10.200.9.10/hello.txt"), check=False)
        assert r.returncode != 0
        assert access_fields(access_line(d, "target=10.200.9.10:80"))["route"] == "-"
        # IP_TRANSPARENT was set once, at bind: CAP_NET_ADMIN is not kept
        assert not caps(d.pid, "CapEff") & (1 << CAP_NET_ADMIN)
    finally:
        if web is not None:
            web.terminate()
            web.wait(10)
        ns.close()


@pytest.mark.parametrize("extra,message", [
    (["--tproxy", "--http", "127.0.0.1:1"], "--http is incompatible with --tproxy"),
    (["--tproxy", "-f", "127.0.0.1:1"], "-f is incompatible with --tproxy"),
    (["--tproxy", "--auth-required", "-r", "/dev/null"],
     "--auth-required is not supported with --tproxy"),
    (["--enable-socks5-bind", "-x", "socks5://127.0.0.1:1"],
     "--enable-socks5-bind is incompatible with -x"),
    (["--enable-socks5-udp", "-x", "socks5://127.0.0.1:1,http://127.0.0.1:2"],
     "--enable-socks5-udp: -x hop 2 is not socks5://"),
    (["--udp-idle", "0.5"], "--udp-idle: '0.5' is not a number of seconds"),
])
def test_issue13_option_rules(extra, message):
    r = run(BIN, "-l", "127.0.0.1:1", *extra, check=False)
    assert r.returncode == 2, r
    assert message in r.stderr, r.stderr


def test_udp_through_socks5_chain_is_accepted_with_udp():
    r = run(BIN, "-l", "127.0.0.1:1", "--enable-socks5-udp", "-x",
            "socks5://127.0.0.1:1", "--check", check=False)
    assert r.returncode == 0, r.stderr


def daemon_env():
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    for kv in os.environ.get("NEOSOCKSD_TEST_ENV", "").split():
        k, _, v = kv.partition("=")
        env[k] = v
    return env


def stop_daemon(pid, pidfile):
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not alive(pid), 30, "the daemon did not stop")
    assert not os.path.exists(pidfile), "pidfile left behind"


def test_daemonize_with_pidfile(tmp_path, hash_server):
    """-d: the command returns 0 once the daemon serves; the daemon is no
    session leader, runs in /, its stdio is /dev/null; --pidfile holds its
    pid while it runs and is removed when it stops. Relative paths (the
    ruleset, the pidfile) keep working after the chdir."""
    port = free_ports(1)[0]
    (tmp_path / "rs.lua").write_text("return { route = function(a) return a end }\n")
    r = subprocess.run([BIN, "-l", f"127.0.0.1:{port}", "-d", "--pidfile", "d.pid",
                        "-r", "rs.lua"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=60, env=daemon_env())
    assert r.returncode == 0, r.stderr
    pidfile = tmp_path / "d.pid"
    pid = int(pidfile.read_text())
    try:
        assert alive(pid)
        assert os.getsid(pid) != pid and os.getsid(pid) != os.getsid(0)
        assert os.readlink(f"/proc/{pid}/cwd") == "/"
        for fd in (0, 1, 2):
            assert os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/null"
        assert_socks5_served(port, hash_server.port)
        # SIGHUP reads rs.lua again, by the absolute path
        os.kill(pid, signal.SIGHUP)
        assert_socks5_served(port, hash_server.port)
    finally:
        stop_daemon(pid, str(pidfile))


def syslog_missing():
    if not IS_ROOT:
        return "needs root: a mount namespace whose /dev/log is the test's socket"
    for tool in ("unshare", "mount"):
        if shutil.which(tool) is None:
            return f"needs {tool} (util-linux)"
    return None


class DevLog:
    """The test's /dev/log: a datagram socket that a thread reads as the
    daemon writes, as syslogd would. Read only at the end, it would hold
    net.unix.max_dgram_qlen datagrams (10 by default) and then hold up the
    daemon's syslog() (seen with two front workers, whose lines are more:
    "the daemon did not stop")."""

    def __init__(self, path, reading=True):
        import socket
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.got, self.done, self.thread = [], False, None
        if reading:
            self.read()

    def read(self):
        """Start reading (a DevLog made with reading=False is a syslog
        daemon that stalled: its queue fills and stays full)."""
        import threading
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def empty(self):
        """Nothing queued: the reader took every datagram sent so far."""
        import fcntl
        import struct
        import termios
        got = fcntl.ioctl(self.sock.fileno(), termios.FIONREAD, b"\0" * 4)
        return struct.unpack("i", got)[0] == 0

    def has(self, text):
        return any(text in ln for ln in list(self.got))

    def _run(self):
        import socket
        while not self.done:
            try:
                self.got.append(self.sock.recv(65536).decode(errors="replace"))
            except socket.timeout:
                continue
            except OSError:
                return

    def lines(self):
        """Everything received, once the writer is gone."""
        self.done = True
        if self.thread is not None:
            self.thread.join(5)
        self.sock.setblocking(False)
        while True:
            try:
                self.got.append(self.sock.recv(65536).decode(errors="replace"))
            except (BlockingIOError, OSError):
                return list(self.got)

    def close(self):
        self.done = True
        if self.thread is not None:
            self.thread.join(5)
        self.sock.close()


def run_in_own_dev_log(tmp_path, *argv, reading=True, link=False):
    """Run argv in a mount namespace of its own whose /dev is a tmpfs
    holding the host's null, zero, random and urandom and, as /dev/log, a
    datagram socket the test reads (from the start unless reading is
    False). Returns (CompletedProcess, DevLog). link: /dev/log is a
    symbolic link to tmp_path/log instead, and no socket is made there:
    the test makes it (DevLog(path)) when its syslog daemon starts, and
    again when it restarts. Returns (CompletedProcess, None) then."""
    dev = None if link else DevLog(str(tmp_path / "log"), reading)
    old = tmp_path / "olddev"
    old.mkdir()
    devlog = (f"ln -s {tmp_path / 'log'} /dev/log" if link else
              f"touch /dev/log; mount --bind {tmp_path / 'log'} /dev/log")
    script = textwrap.dedent(f"""
        set -e
        mount --make-rprivate /
        mount --bind /dev {old}
        mount -t tmpfs -o mode=0755 tmpfs /dev
        for n in null zero random urandom; do
            touch /dev/$n; mount --bind {old}/$n /dev/$n
        done
        {devlog}
        exec "$@"
    """)
    r = subprocess.run(["unshare", "--mount", "sh", "-c", script, "sh", *argv],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60,
                       env=daemon_env())
    return r, dev


def syslog_lines(dev):
    return dev.lines()


@contextlib.contextmanager
def daemon_with_own_dev_log(tmp_path, *args, reading=True):
    """The daemon with -d --pidfile s.pid and args, in a mount namespace
    of its own whose /dev/log the test reads (run_in_own_dev_log). Yields
    (pid, DevLog); afterwards a daemon the test did not stop is stopped
    and the DevLog closed."""
    r, dev = run_in_own_dev_log(tmp_path, BIN, "-d", "--pidfile", "s.pid", *args,
                                reading=reading)
    pid = None
    try:
        assert r.returncode == 0, r.stderr
        pid = int((tmp_path / "s.pid").read_text())
        yield pid, dev
    finally:
        if pid is not None and alive(pid):
            os.kill(pid, signal.SIGTERM)
        dev.close()  # a daemon blocked on it goes on, and stops


@pytest.mark.skipif(syslog_missing() is not None, reason=syslog_missing() or "")
def test_daemonize_logs_to_syslog_unless_log_says(tmp_path, hash_server):
    """-d without --log: the daemon's lines go to syslog (here /dev/log is
    the test's socket); with --log stderr they go where stderr went, to
    /dev/null, and syslog gets none."""
    port = free_ports(1)[0]
    r, sock = run_in_own_dev_log(tmp_path, BIN, "-l", f"127.0.0.1:{port}", "-d",
                                 "--pidfile", "s.pid")
    try:
        assert r.returncode == 0, r.stderr
        pid = int((tmp_path / "s.pid").read_text())
        assert_socks5_served(port, hash_server.port)
        stop_daemon(pid, str(tmp_path / "s.pid"))
        lines = syslog_lines(sock)
        assert any(f"running in the background (pid {pid})" in ln for ln in lines), lines
        assert any("serving" in ln for ln in lines), lines
    finally:
        sock.close()
    (tmp_path / "log").unlink()
    (tmp_path / "olddev").rmdir()
    r, sock = run_in_own_dev_log(tmp_path, BIN, "-l", f"127.0.0.1:{port}", "-d",
                                 "--pidfile", "s.pid", "--log", "stderr")
    try:
        assert r.returncode == 0, r.stderr
        pid = int((tmp_path / "s.pid").read_text())
        stop_daemon(pid, str(tmp_path / "s.pid"))
        # its whole life is over: nothing went to syslog
        assert syslog_lines(sock) == []
    finally:
        sock.close()


def sessions_past_a_full_dev_log():
    """SOCKS5 sessions (one access line each) that overfill a /dev/log
    nobody reads: it queues net.unix.max_dgram_qlen datagrams."""
    try:
        with open("/proc/sys/net/unix/max_dgram_qlen") as f:
            qlen = int(f.read())
    except (OSError, ValueError):
        qlen = 10
    if qlen > 500:
        pytest.skip(f"net.unix.max_dgram_qlen is {qlen}: too many lines to fill it")
    return qlen + 20


@pytest.mark.skipif(syslog_missing() is not None, reason=syslog_missing() or "")
def test_a_stalled_syslog_never_blocks_the_daemon(tmp_path, hash_server):
    """Regression: syslog lines went out with glibc's blocking send(), so a
    syslog daemon that stops reading blocked the parent in the middle of a
    line: with -d (syslog by default) it stopped serving signals and did
    not stop. Here nobody ever reads the test's /dev/log (this test once
    ran with a DevLog that read all along, and so passed with the
    blocking send() too). Lines that do not fit now are dropped."""
    port = free_ports(1)[0]
    with daemon_with_own_dev_log(tmp_path, "-l", f"127.0.0.1:{port}", "--loglevel", "5",
                                 reading=False) as (pid, dev):
        for _ in range(sessions_past_a_full_dev_log()):
            assert_socks5_served(port, hash_server.port)
        stop_daemon(pid, str(tmp_path / "s.pid"))
        lines = dev.lines()
        assert any(f"running in the background (pid {pid})" in ln for ln in lines), lines


@pytest.mark.skipif(syslog_missing() is not None, reason=syslog_missing() or "")
def test_syslog_lines_dropped_are_counted_in_the_next_forwarded_line(tmp_path, hash_server):
    """Regression: the parent counted the lines /dev/log refused but told
    the count only before a line of its own, never before one it forwards
    from a child: access lines, nearly all a busy daemon writes. Once the
    syslog daemon read again, it got access lines and no word of the lost
    ones until the parent's next line of its own (at stop)."""
    port = free_ports(1)[0]
    with daemon_with_own_dev_log(tmp_path, "-l", f"127.0.0.1:{port}", "--loglevel", "5",
                                 reading=False) as (pid, dev):
        for _ in range(sessions_past_a_full_dev_log()):
            assert_socks5_served(port, hash_server.port)
        dev.read()  # the syslog daemon reads again
        wait_until(dev.empty, WAIT, lambda: "the test's /dev/log was not read")
        assert_socks5_served(port, hash_server.port)
        wait_until(lambda: dev.has("log lines dropped)"), WAIT,
                   lambda: f"no count of the dropped lines: {dev.got[-4:]}")
        stop_daemon(pid, str(tmp_path / "s.pid"))


@pytest.mark.skipif(syslog_missing() is not None, reason=syslog_missing() or "")
def test_a_line_cut_for_syslog_ends_on_a_whole_escape(tmp_path, hash_server):
    """Regression: a line longer than syslog's 2,200 bytes is cut, as
    syslog(3) cuts it; the cut could fall inside an escape the parent wrote
    (a child's '\\' is forwarded as '\\\\', a stray byte as \\xNN), leaving
    half an escape at the end that reads as something else. Two lines of
    backslashes, the second shifted by one letter, put the cut at both
    offsets of a doubled backslash."""
    rs = tmp_path / "rs.lua"
    rs.write_text('for k = 0, 1 do print(string.rep("a", k) .. string.rep("\\\\", 1500)) end\n'
                  "return { route = function(a) return a end }\n")
    port = free_ports(1)[0]
    with daemon_with_own_dev_log(tmp_path, "-l", f"127.0.0.1:{port}",
                                 "-r", str(rs)) as (pid, dev):
        assert_socks5_served(port, hash_server.port)
        stop_daemon(pid, str(tmp_path / "s.pid"))
        cut = [ln for ln in dev.lines() if "\\" * 16 in ln]
    assert len(cut) == 2, [ln[:100] for ln in dev.got]
    for ln in cut:
        assert 2100 < len(ln) < 3000, ln[:100]  # it was cut
        tail = len(ln) - len(ln.rstrip("\\"))
        assert tail % 2 == 0, f"ends in half an escape: ...{ln[-8:]}"


@pytest.mark.skipif(syslog_missing() is not None, reason=syslog_missing() or "")
def test_syslog_that_starts_late_or_restarts_gets_the_lines(tmp_path, hash_server):
    """No /dev/log when the daemon starts: its lines are dropped and
    counted, and once a syslog daemon listens there the next lines and the
    count reach it; when that syslog daemon restarts (a new socket at the
    same path), the lines reach the new one."""
    port = free_ports(1)[0]
    r, _ = run_in_own_dev_log(tmp_path, BIN, "-l", f"127.0.0.1:{port}", "-d",
                              "--pidfile", "s.pid", "--loglevel", "5", link=True)
    pid, devs = None, []
    try:
        assert r.returncode == 0, r.stderr
        pid = int((tmp_path / "s.pid").read_text())
        assert_socks5_served(port, hash_server.port)  # nobody listens yet
        for round in range(2):  # the syslog daemon starts, then restarts
            if devs:
                devs[-1].close()
                (tmp_path / "log").unlink()
            devs.append(DevLog(str(tmp_path / "log")))
            assert_socks5_served(port, hash_server.port)
            wait_until(lambda: devs[-1].has("proto=socks5"), WAIT,
                       lambda: f"round {round}: no access line: {devs[-1].got}")
        assert devs[0].has("log lines dropped)"), devs[0].got
        stop_daemon(pid, str(tmp_path / "s.pid"))
    finally:
        if pid is not None and alive(pid):
            os.kill(pid, signal.SIGTERM)
        for dev in devs:
            dev.close()


def test_daemonize_from_a_config_file(tmp_path, hash_server):
    """daemonize = true in a -c file: the same, with the ruleset process
    that read the file replaced by the daemon's own."""
    port = free_ports(1)[0]
    (tmp_path / "conf.lua").write_text(
        f'return {{ listen = "127.0.0.1:{port}", daemonize = true, pidfile = "c.pid" }}\n')
    r = subprocess.run([BIN, "-c", "conf.lua"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60, env=daemon_env())
    assert r.returncode == 0, r.stderr
    pidfile = tmp_path / "c.pid"
    pid = int(pidfile.read_text())
    try:
        assert os.readlink(f"/proc/{pid}/cwd") == "/"
        assert_socks5_served(port, hash_server.port)
    finally:
        stop_daemon(pid, str(pidfile))


def test_daemonize_reports_a_failed_start(tmp_path):
    """-d with a listener that cannot be bound: the command exits 1 and
    says so, instead of 0 for a daemon that died (the reference's quirk)."""
    import socket
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        r = subprocess.run([BIN, "-l", f"127.0.0.1:{busy.getsockname()[1]}", "-d",
                            "--log", "discard"], capture_output=True, text=True,
                           timeout=60, env=daemon_env())
    finally:
        busy.close()
    assert r.returncode == 1
    assert "the daemon stopped before it was serving" in r.stderr


def test_pidfile_locked_by_a_running_daemon(daemon_factory, tmp_path):
    a, b = free_ports(2)
    pidfile = str(tmp_path / "x.pid")
    d = daemon_factory("-l", f"127.0.0.1:{a}", "--pidfile", pidfile)
    wait_until(lambda: os.path.exists(pidfile) and open(pidfile).read().strip() == str(d.pid),
               10, "no pid in the pidfile")
    r = subprocess.run([BIN, "-l", f"127.0.0.1:{b}", "--pidfile", pidfile],
                       capture_output=True, text=True, timeout=60, env=daemon_env())
    assert r.returncode == 1
    assert "locked by another running daemon" in r.stderr
    assert open(pidfile).read().strip() == str(d.pid)


@pytest.mark.skipif(not IS_ROOT, reason="needs root: mknod of a character device")
def test_pidfile_that_is_not_a_regular_file_is_left_alone(tmp_path):
    """Regression: --pidfile naming a device (as root, say /dev/null) was
    refused as not a regular file, but its descriptor stayed recorded and
    the exit path unlinked the device node. The start fails and the node
    stays."""
    import stat
    node = tmp_path / "nul"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    port = free_ports(1)[0]
    r = subprocess.run([BIN, "-l", f"127.0.0.1:{port}", "--pidfile", str(node)],
                       capture_output=True, text=True, timeout=60, env=daemon_env())
    assert r.returncode == 1
    assert "not a regular file" in r.stderr, r.stderr
    assert stat.S_ISCHR(os.lstat(node).st_mode), "the device node was removed"
