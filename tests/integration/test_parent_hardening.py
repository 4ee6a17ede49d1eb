"""The parent against hostile files and compromised children (issue 9,
defects 4, 5, 9, 10, 12): every file it opens is checked to be a regular
file without ever blocking; a failed respawn backs off; a child that stops
reading its channel, floods a request or its log is bounded; a child
outlives neither the parent nor its uid switch."""

import os
import signal
import socket
import struct
import subprocess

import pytest

from harness import (alive, BIN, Daemon, free_ports, getfd, IS_ROOT, socket_of, socks5_connect,
                     wait_until)

needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root (CI runs as root)")

ROUTE_DIRECT = """
local function d(a) return a end
return { resolve = d, route = d, route6 = d }
"""


def start(daemon_factory, *extra, **kw):
    socks, = free_ports(1)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--loglevel", "5", *extra, **kw)
    d.socks = socks
    return d


def served(d, port):
    s, rep = socks5_connect(d.socks, "127.0.0.1", port)
    s.close()
    return rep == 0


def front_pid(d):
    return d.child_by_title("neosocksd: front")


def ruleset_pid(d):
    return d.child_by_title("neosocksd: ruleset")


def run_to_exit(args, tmp_path, timeout=20):
    """Start the daemon expecting it to refuse: (exit status, log). A
    daemon still running after timeout fails the test (it is killed)."""
    d = Daemon(args, tmpdir=str(tmp_path))
    d.start(wait_ready=False)
    try:
        code = d.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        d.proc.kill()
        d.proc.wait(5)
        raise AssertionError(f"the daemon hung; log:\n{d.log()}")
    finally:
        d.close()
    return code, d.log()


# ---- defect 9: a FIFO (or any non-regular file) where a file is read ----


def test_fifo_module_does_not_block_the_parent(daemon_factory, tmp_path, http_target):
    """Regression (issue 9, defect 9): require() of a module whose file is
    a FIFO blocked the parent forever in open(). Now the module is refused
    as not a regular file and the daemon serves."""
    os.mkfifo(tmp_path / "fifomod.lua")
    os.mkdir(tmp_path / "dirmod.lua")
    rs = tmp_path / "rs.lua"
    rs.write_text("local ok1, e1 = pcall(require, 'fifomod')\n"
                  "local ok2, e2 = pcall(require, 'dirmod')\n"
                  "assert(not ok1 and not ok2)\n" + ROUTE_DIRECT)
    d = start(daemon_factory, "-r", str(rs))
    assert served(d, http_target.port)
    # (one line for both: the same error is rate-limited)
    d.wait_log("fifomod.lua: not a regular file")


@pytest.mark.parametrize("what", ["-r", "-c", "--api-token-file", "state"])
def test_fifo_given_as_a_file_is_refused(tmp_path, what):
    """Regression (issue 9, defect 9): a FIFO named as the ruleset, the
    config file, a token file or the saved state hung the daemon at start;
    now it refuses to start and says why."""
    socks, api = free_ports(2)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    rs = tmp_path / "rs.lua"
    rs.write_text(ROUTE_DIRECT)
    args = ["-l", f"127.0.0.1:{socks}"]
    if what in ("-r", "-c"):
        args += [what, str(fifo)]
    elif what == "--api-token-file":
        args += ["--api", f"127.0.0.1:{api}", "--api-token-file", str(fifo)]
    else:
        state = tmp_path / "state"
        state.mkdir(mode=0o700)
        os.mkfifo(state / "updates")
        args += ["-r", str(rs), "--api", f"127.0.0.1:{api}", "--state-dir", str(state)]
    code, log = run_to_exit(args, tmp_path)
    assert code != 0
    assert "not a regular file" in log, log


def test_fifo_on_reload_keeps_the_old_ruleset(daemon_factory, tmp_path, http_target):
    """Regression (issue 9, defect 9): SIGHUP with the ruleset replaced by
    a FIFO blocked the parent; now the reload fails and the old ruleset
    stays."""
    rs = tmp_path / "rs.lua"
    rs.write_text(ROUTE_DIRECT)
    d = start(daemon_factory, "-r", str(rs))
    rs.unlink()
    os.mkfifo(rs)
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log("not a regular file; the previous ruleset stays")
    d.wait_notify("READY=1")
    assert served(d, http_target.port)


# ---- defect 4: a respawn that fails, and repeating errors in the log ----


def test_failed_respawn_backs_off(daemon_factory, http_target):
    """Regression (issue 9, defect 4): when a respawn itself failed (the
    parent out of descriptors) after a child that had lived more than 10 s,
    the back-off was computed from that child's start: "respawning in 0 ms"
    forever, 100% CPU and a flood of log lines. Now every failed spawn
    doubles the back-off, and the failure is logged at a bounded rate."""
    import resource
    import time
    d = start(daemon_factory)
    f = front_pid(d)
    # the stimulus, not a synchronisation: a child that lived 10 s
    # (STABLE_MS) is respawned at once, which is where the loop began
    time.sleep(10.5)
    soft, hard = resource.prlimit(d.pid, resource.RLIMIT_NOFILE)
    # no new descriptor in the parent: the respawn's socketpair fails
    resource.prlimit(d.pid, resource.RLIMIT_NOFILE, (3, hard))
    try:
        os.kill(f, signal.SIGKILL)
        d.wait_log("respawning front in 1600 ms", timeout=30)
    finally:
        resource.prlimit(d.pid, resource.RLIMIT_NOFILE, (soft, hard))
    wait_until(lambda: front_pid(d) not in (None, f), 30, "the front did not come back")
    wait_until(lambda: served(d, http_target.port))
    log = d.log()
    assert log.count("respawning front in 0 ms") == 1, log
    for ms in (100, 200, 400, 800):
        assert log.count(f"respawning front in {ms} ms") == 1, log
    # the same error, once per back-off step, reaches the log once
    assert log.count("Too many open files") <= 2, log


def test_repeating_module_error_logged_at_a_bounded_rate(daemon_factory, tmp_path,
                                                         http_target):
    """Regression (issue 9, defect 4): an error a child can repeat at will
    (here require() of a module that is a directory, 300 times) was logged
    by the parent every time; now the same line is rate-limited and the
    suppressed ones are counted."""
    os.mkdir(tmp_path / "dirmod.lua")
    rs = tmp_path / "rs.lua"
    rs.write_text("for i = 1, 300 do assert(not pcall(require, 'dirmod')) end\n"
                  + ROUTE_DIRECT)
    d = start(daemon_factory, "-r", str(rs))
    assert served(d, http_target.port)
    assert d.log().count("require 'dirmod'") == 1, d.log()
    assert "dirmod.lua: Is a directory" in d.log()


# ---- defect 5: a child that makes requests and never reads the answers ----

MSG_PRIV_SOCKET = 35
MSG_R_MODULE_REQ = 99
MSG_R_PEER_FAULT = 104
CAP_FDS = 4096 + 16  # MSG_PRIV_PENDING_MAX plus the fds the parent sends unasked


def frame(mtype, payload=b"", mid=0):
    return struct.pack("=HHIII", 1, mtype, len(payload), mid, 0) + payload


def nfds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except FileNotFoundError:
        return 0


class FdPeak:
    """The most descriptors pid held while the block ran (polled)."""

    def __init__(self, pid):
        import threading
        self.pid, self.peak, self.done = pid, nfds(pid), False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.done:
            self.peak = max(self.peak, nfds(self.pid))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done = True
        self.thread.join(10)


def flood(pid, data):
    """Write data into pid's end of its parent channel, as if pid sent it,
    with pid stopped so that it reads none of the answers. Returns pid's
    channel (the caller closes it)."""
    ch = socket_of(pid, 3)
    ch.settimeout(30)
    try:
        ch.sendall(data)
    except OSError:
        pass  # the parent killed the sender and closed its end
    return ch


@needs_root
def test_front_that_never_reads_brokered_sockets_is_killed(daemon_factory, http_target):
    """Regression (issue 9, defect 5): a front that asks for brokered
    sockets (--mark) and never reads the answers filled the parent's fd
    table within seconds. Now queued fds are capped per channel and the
    front is killed over the cap; the parent stays small and serves on."""
    d = start(daemon_factory, "--mark", "42")
    f = front_pid(d)
    base = nfds(d.pid)
    req = frame(MSG_PRIV_SOCKET, struct.pack("=II", socket.AF_INET, socket.SOCK_STREAM))
    os.kill(f, signal.SIGSTOP)
    try:
        with FdPeak(d.pid) as fp:
            ch = flood(f, req * 20000)
            d.wait_log(f"killing front (pid {f}): it does not read its channel")
        ch.close()
    finally:
        if alive(f):
            os.kill(f, signal.SIGCONT)
    assert fp.peak <= base + CAP_FDS + 32, (base, fp.peak)
    wait_until(lambda: front_pid(d) not in (None, f), what="no new front")
    wait_until(lambda: served(d, http_target.port))
    assert nfds(d.pid) <= base + 4


@needs_root
def test_ruleset_that_never_reads_module_answers_is_killed(daemon_factory, http_target):
    """Regression (issue 9, defect 5): require() requests from a ruleset
    process that never reads the answers grew the parent's queue without a
    bound but the byte limit. Now pending answers are capped per channel
    and the sender is killed over the cap."""
    d = start(daemon_factory)
    r = ruleset_pid(d)
    os.kill(r, signal.SIGSTOP)
    try:
        ch = flood(r, b"".join(frame(MSG_R_MODULE_REQ, b"x", i) for i in range(30000)))
        d.wait_log(f"killing ruleset (pid {r}): it does not read its channel")
        ch.close()
    finally:
        if alive(r):
            os.kill(r, signal.SIGCONT)
    wait_until(lambda: ruleset_pid(d) not in (None, r), what="no new ruleset process")
    assert served(d, http_target.port)


@needs_root
def test_peer_fault_flood_is_rate_limited(daemon_factory, http_target):
    """Regression (issue 9, defect 5): every R_PEER_FAULT made the parent
    hand both children a new channel; a ruleset process that sent them in
    a loop (and read nothing) filled the parent's fd table. Now new channels
    after a fault come at most once a second, faults in between are merged,
    and the report is logged at a bounded rate."""
    d = start(daemon_factory)
    r, f = ruleset_pid(d), front_pid(d)
    base = nfds(d.pid)
    os.kill(r, signal.SIGSTOP)
    try:
        with FdPeak(d.pid) as fp:
            ch = flood(r, frame(MSG_R_PEER_FAULT, struct.pack("=I", 0)) * 10000)
            d.wait_log("reports a protocol violation by the front")
        ch.close()
    finally:
        os.kill(r, signal.SIGCONT)
    assert fp.peak <= base + 16, (base, fp.peak)
    assert d.log().count("reports a protocol violation by the front") == 1
    wait_until(lambda: served(d, http_target.port))
    assert (front_pid(d), ruleset_pid(d)) == (f, r)


# ---- defect 10: the parent-death signal after the uid switch ----


@needs_root
def test_children_die_with_the_parent_after_the_uid_switch(daemon_factory):
    """Regression (issue 9, defect 10): PR_SET_PDEATHSIG is cleared by the
    children's uid switch, so a child that ignored the EOF on its channel (a
    compromised one; here a stopped one, which cannot see it) outlived a
    parent killed with SIGKILL. Now both are killed by the kernel."""
    d = start(daemon_factory)
    kids = [front_pid(d), ruleset_pid(d)]
    for k in kids:
        with open(f"/proc/{k}/status") as fh:
            uid = [ln for ln in fh if ln.startswith("Uid:")][0].split()[1]
        assert uid != "0"
        os.kill(k, signal.SIGSTOP)
    try:
        os.kill(d.pid, signal.SIGKILL)
        d.proc.wait(10)
        wait_until(lambda: not any(alive(k) for k in kids), what="children outlived the parent")
    finally:
        for k in kids:
            if alive(k):
                os.kill(k, signal.SIGKILL)


# ---- defect 12: what a child writes into its log pipe ----


def log_pipe_of(pid):
    """pid's stderr (the write end of its log pipe), as a raw fd."""
    return getfd(pid, 2)


@needs_root
def test_child_log_lines_are_attributed_and_escaped(daemon_factory):
    """Regression (issue 9, defect 12): the parent forwarded a child's log
    lines raw, so a compromised child could write lines that claim to come
    from the parent and put terminal control sequences into the log. Now
    every line is prefixed with the child's role and pid by the parent and
    control bytes are escaped."""
    d = start(daemon_factory)
    f = front_pid(d)
    fd = log_pipe_of(f)
    try:
        os.write(fd, b"E 2026-01-01T00:00:00+00:00 main[1] parent.c:1 forged-by-front"
                     b"\x1b[2J\x07 \\ \xff\n"
                     b"I 2026-01-01T00:00:00+00:00 front[%d] x.c:1 well-formed-line\n" % f)
    finally:
        os.close(fd)
    d.wait_log("well-formed-line")
    d.wait_log("forged-by-front")
    raw = open(d.logpath, "rb").read()
    assert b"\x1b" not in raw and b"\x07" not in raw and b"\xff" not in raw
    lines = raw.decode().splitlines()
    forged = [ln for ln in lines if "forged-by-front" in ln]
    assert len(forged) == 1
    # the parent's own prefix names the front; the forged one is content
    assert forged[0].split()[2] == f"front[{f}]", forged
    assert "main[1] parent.c:1 forged-by-front\\x1b[2J\\x07 \\\\ \\xff" in forged[0], forged
    good = [ln for ln in lines if "well-formed-line" in ln]
    assert good[0].split()[0] == "I" and good[0].split()[2:4] == [f"front[{f}]", "x.c:1"], good
    # the child's own prefix is not repeated
    assert good[0].count(f"front[{f}]") == 1, good


@needs_root
def test_child_log_flood_is_rate_limited(daemon_factory, http_target):
    """Regression (issue 9, defect 12): a child could flood the log through
    the parent. Now each child's lines are rate-limited (1,000 a second,
    bursts of 10,000); what is dropped is counted and reported."""
    import fcntl
    d = start(daemon_factory)
    f = front_pid(d)
    fd = log_pipe_of(f)
    n = 0
    try:
        size = fcntl.fcntl(fd, 1031, 1 << 20)  # F_SETPIPE_SZ, as root
        os.kill(d.pid, signal.SIGSTOP)  # the pipe fills; the parent reads it at once
        try:
            line = b"flood-line-%06d\n"
            buf = b"".join(line % i for i in range(size // len(line % 0)))
            off = 0
            while off < len(buf):
                try:
                    off += os.write(fd, buf[off:])
                except BlockingIOError:
                    break
            n = off // len(line % 0)
        finally:
            os.kill(d.pid, signal.SIGCONT)
    finally:
        os.close(fd)
    assert n >= 50000
    d.wait_log("lines dropped (more than 1000 a second)")
    assert served(d, http_target.port)
    forwarded = d.log().count("flood-line-")
    assert 10000 <= forwarded <= n // 2, (forwarded, n)
    # the lines that did come are the first ones, in order
    assert "flood-line-000000" in d.log() and "flood-line-009999" in d.log()


# ---- defect 13: the descriptor limit and the admission defaults ----


def test_nofile_raised_and_admission_defaults_follow(tmp_path):
    """Regression (issue 9, defect 13): -m and --max-startups had no
    default, so nothing bounded half-open connections. Now the soft
    RLIMIT_NOFILE is raised to the hard one and the defaults follow it:
    -m (NOFILE-128)/2, --max-startups M/4:30:M/2."""
    import resource
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 1024 and not IS_ROOT:
        pytest.skip("needs a hard descriptor limit of 1024")
    socks, = free_ports(1)
    p = subprocess.run(["prlimit", "--nofile=256:1024", BIN, "-l", f"127.0.0.1:{socks}",
                        "--dump-config"], capture_output=True, timeout=20, text=True)
    assert p.returncode == 0, p.stderr
    for want in ("max_sessions = 448,", "startup_limit_start = 112,",
                 "startup_limit_rate = 30,", "startup_limit_full = 224,"):
        assert want in p.stdout, p.stdout
    # given explicitly, they stay
    p = subprocess.run(["prlimit", "--nofile=256:1024", BIN, "-l", f"127.0.0.1:{socks}",
                        "-m", "0", "--max-startups", "10:50:20", "--dump-config"],
                       capture_output=True, timeout=20, text=True)
    assert "max_sessions = 0," in p.stdout and "startup_limit_full = 20," in p.stdout


def listen_backlog(port):
    """Connections waiting in the accept queue of 127.0.0.1:port."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, st, queues = fields[1], fields[3], fields[4]
            if st == "0A" and local == "0100007F:%04X" % port:
                return int(queues.split(":")[1], 16)
    raise AssertionError(f"no listener on {port}")


def test_idle_connections_do_not_exhaust_the_front(daemon_factory, hash_server):
    """Regression (issue 9, defect 13): 1,100 idle connections exhausted a
    front whose descriptor limit was low, so a client that had already
    greeted could not be served (its dial found no descriptor) and new
    connections waited in the kernel. Now, with a soft limit of 256 and a
    hard one of 1,024, the limit is raised and the derived --max-startups
    drops the excess at once: the front keeps accepting and serves. (The
    idle clients each send the first byte of a greeting: the listener
    defers accepting silent ones, TCP_DEFER_ACCEPT, so those would wait in
    the kernel instead, for a second.)"""
    import resource
    from harness import recv_exact, socks5_read_reply, socks5_target, exchange
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:  # this test holds 1,100 sockets itself
        if hard < 2048 and not IS_ROOT:
            pytest.skip("needs a descriptor limit of 2048 for the test itself")
        resource.setrlimit(resource.RLIMIT_NOFILE, (2048, max(hard, 2048)))
    socks, = free_ports(1)
    d = daemon_factory("--nofile=256:1024", "--", BIN, "-l", f"127.0.0.1:{socks}",
                       binary="/usr/bin/prlimit")
    a = socket.create_connection(("127.0.0.1", socks), timeout=30)
    a.sendall(b"\x05\x01\x00")
    assert recv_exact(a, 2) == b"\x05\x00"
    idle = []
    try:
        for _ in range(1100):
            s = socket.create_connection(("127.0.0.1", socks), timeout=30)
            s.sendall(b"\x05")
            idle.append(s)
        # every connection was taken from the kernel's queue (kept or dropped)
        wait_until(lambda: listen_backlog(socks) == 0, 30,
                   lambda: f"{listen_backlog(socks)} connections never accepted")
        a.sendall(b"\x05\x01\x00" + socks5_target("127.0.0.1", hash_server.port))
        rep, _ = socks5_read_reply(a)
        assert rep == 0, "the greeted client was not served"
        exchange(a, 1 << 16, 1 << 16)
        dropped = 0
        for s in idle:
            s.setblocking(False)
            try:
                dropped += s.recv(1) == b""
            except BlockingIOError:
                pass
            except OSError:
                dropped += 1
        assert dropped >= 1100 - 224, dropped
    finally:
        a.close()
        for s in idle:
            s.close()
    assert "Too many open files" not in d.log()


# ---- defect 11: the children's users ----


def uid_of(pid):
    with open(f"/proc/{pid}/status") as fh:
        return int([ln for ln in fh if ln.startswith("Uid:")][0].split()[1])


@needs_root
def test_children_run_as_two_dedicated_users(daemon_factory):
    """Regression (issue 9, defect 11): both children ran as one uid
    (nobody when no 'neosocksd' user existed), so any other nobody process
    could signal them, and they could signal each other. Now the front runs
    as 'neosocksd' and the ruleset process as 'neosocksd-rules'."""
    import pwd
    d = start(daemon_factory)
    assert uid_of(front_pid(d)) == pwd.getpwnam("neosocksd").pw_uid
    assert uid_of(ruleset_pid(d)) == pwd.getpwnam("neosocksd-rules").pw_uid
    assert uid_of(front_pid(d)) != uid_of(ruleset_pid(d))
    assert "nobody" not in d.log()


def without_our_users(tmp_path, args):
    """The daemon's command line run where /etc/passwd has no 'neosocksd'
    nor 'neosocksd-rules' (a private mount namespace of the test's own)."""
    passwd = tmp_path / "passwd"
    with open("/etc/passwd") as src:
        passwd.write_text("".join(ln for ln in src
                                  if not ln.startswith(("neosocksd:", "neosocksd-rules:"))))
    return ["--mount", "--propagation", "private", "sh", "-c",
            f'mount --bind {passwd} /etc/passwd && exec "$0" "$@"', BIN] + args


@needs_root
def test_missing_default_users_are_refused_not_nobody(tmp_path):
    """Regression (issue 9, defect 11): without a 'neosocksd' user the
    children ran as 'nobody'. Now the daemon refuses to start and says
    which user to create; 'nobody' is used only when named, with a
    warning."""
    socks, = free_ports(1)
    d = Daemon(without_our_users(tmp_path, ["-l", f"127.0.0.1:{socks}"]),
               binary="/usr/bin/unshare", tmpdir=str(tmp_path))
    d.start(wait_ready=False)
    try:
        assert d.proc.wait(20) == 2  # a usage error of -u (issue 15)
    finally:
        d.close()
    assert "no user 'neosocksd' to run the front as" in d.log(), d.log()
    assert "sandbox/neosocksd.sysusers" in d.log()
    # the ruleset's default is checked too
    d = Daemon(without_our_users(tmp_path, ["-l", f"127.0.0.1:{socks}", "-u", "nobody"]),
               binary="/usr/bin/unshare", tmpdir=str(tmp_path))
    d.start(wait_ready=False)
    try:
        assert d.proc.wait(20) == 2
    finally:
        d.close()
    assert "no user 'neosocksd-rules' to run the ruleset process as" in d.log(), d.log()
    # named on purpose: it runs, and says what that means
    d = Daemon(without_our_users(tmp_path, ["-l", f"127.0.0.1:{socks}", "-u", "nobody",
                                            "--ruleset-user", "nobody"]),
               binary="/usr/bin/unshare", tmpdir=str(tmp_path))
    try:
        d.start()
        d.socks = socks
        assert uid_of(front_pid(d)) == 65534 == uid_of(ruleset_pid(d))
        assert "'nobody' is shared with other services" in d.log()
        assert "they can signal each other" in d.log()
    finally:
        d.close()


@needs_root
def test_one_user_for_both_children_needs_both_named(tmp_path):
    """The front and the ruleset process on one uid only when both -u and
    --ruleset-user name it; -u alone is not enough when the ruleset's
    default user has that uid too... here: -u neosocksd-rules."""
    socks, = free_ports(1)
    code, log = run_to_exit(["-l", f"127.0.0.1:{socks}", "-u", "neosocksd-rules"], tmp_path)
    assert code == 2  # a usage error of -u (issue 15)
    assert "would both run as uid" in log and "--ruleset-user" in log, log
