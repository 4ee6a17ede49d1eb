"""What a new operator meets first (issue 15): start-up errors said once,
-C printing only its verdict, usage errors of -u exiting 2, --http's bare
port, '--', make run's ports, and the journald priority prefixes."""

import os
import re
import signal
import socket
import subprocess

import pytest

from harness import BIN, Daemon, free_ports, make_env, wait_port, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# a line the daemon logged at warning level or worse
FAULT = re.compile(r"^(<\d>)?[FEW] ", re.M)


def run(*args, timeout=30, **kw):
    return subprocess.run([BIN] + list(args), capture_output=True, timeout=timeout, **kw)


def faults(text):
    return [ln for ln in text.splitlines() if FAULT.match(ln)]


def test_http_bare_port_gets_the_listen_hint():
    """Issue 15: '--http 41792' was refused as an invalid address without
    the format hint that -l gives."""
    socks, = free_ports(1)
    p = run("-l", f"127.0.0.1:{socks}", "--http", "41792")
    assert p.returncode == 2, p
    err = p.stderr.decode()
    assert ("--http: invalid listen address '41792' (want host:port, [v6]:port or :port: "
            "'127.0.0.1:41792' for loopback, ':41792' for every address)") in err, err


def test_double_dash_ends_the_options():
    """Issue 15: '--' was an error even at the end of the options."""
    socks, = free_ports(1)
    p = run("-l", f"127.0.0.1:{socks}", "--http", "--", "--check")
    assert p.returncode == 2 and b"unexpected argument '--check'" in p.stderr, p
    p = run("--check", "-l", f"127.0.0.1:{socks}", "--http", "--")
    assert p.returncode == 0 and p.stdout == b"neosocksd: configuration OK\n", p


@pytest.mark.skipif(os.geteuid() != 0, reason="-u needs root")
@pytest.mark.parametrize("args", [["-u", "no-such-user-xyz"], ["-u", "root"],
                                  ["--ruleset-user", "root"], ["-u", "nobody:no-such-group-xyz"]])
def test_user_errors_exit_2(args):
    """Issue 15: -u errors exited 2 or 1 depending on where they were
    found (a user that is root was 1); every one is a usage error: 2, said
    once."""
    socks, = free_ports(1)
    for check in ([], ["--check"]):
        p = run("-l", f"127.0.0.1:{socks}", *args, *check)
        err = p.stderr.decode()
        assert p.returncode == 2, (args, check, p)
        said = [ln for ln in err.splitlines() if "root" in ln or "no such" in ln]
        assert len(said) == 1, err


def test_startup_ruleset_error_is_one_line(tmp_path):
    """Issue 15: a ruleset with a syntax error at start logged four lines
    (the ruleset process's warning and error, the parent's error and its
    fatal line) and two 'killing ...' errors after them. Now: one line,
    naming file:line."""
    socks, = free_ports(1)
    bad = tmp_path / "bad.lua"
    bad.write_text("local r = {}\nfunction r.route( return nil end\nreturn r\n")
    p = run("-l", f"127.0.0.1:{socks}", "-r", str(bad))
    assert p.returncode == 1, p
    err = p.stderr.decode()
    assert len(faults(err)) == 1, err
    assert "bad.lua:2:" in faults(err)[0], err
    assert "killing" not in err, err


def test_port_in_use_is_one_line():
    """Issue 15: a port in use at start was followed by 'killing front
    (pid N): stopping' errors that read like other faults."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        busy = s.getsockname()[1]
        http, = free_ports(1)
        for args in (["-l", f"127.0.0.1:{busy}"],
                     ["-l", f"127.0.0.1:{http}", "--http", f"127.0.0.1:{busy}"]):
            p = run(*args)
            assert p.returncode == 1, p
            err = p.stderr.decode()
            assert len(faults(err)) == 1, err
            assert f"127.0.0.1:{busy}" in err and "in use" in err, err


def test_check_prints_only_its_verdict(tmp_path):
    """Issue 15: -C printed the start-up log (and a failure twice: as the
    verdict and as a log line). Now only the verdict."""
    socks, = free_ports(1)
    good = tmp_path / "good.lua"
    good.write_text("return {}\n")
    p = run("-l", f"127.0.0.1:{socks}", "-r", str(good), "-C", "--loglevel", "8")
    assert p.returncode == 0, p
    assert p.stdout == b"neosocksd: configuration OK\n" and p.stderr == b"", p
    bad = tmp_path / "bad.lua"
    bad.write_text("local x = \nreturn {}\n")
    p = run("-l", f"127.0.0.1:{socks}", "-r", str(bad), "-C")
    assert p.returncode == 1 and p.stdout == b"", p
    lines = p.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("neosocksd: ") and "bad.lua:2:" in lines[0], lines
    conf = tmp_path / "conf.lua"
    conf.write_text('return { listen = "127.0.0.1:%d", timeout = 1 }\n' % socks)
    p = run("-c", str(conf), "-C")
    assert p.returncode == 1 and p.stdout == b"", p
    assert p.stderr.decode().splitlines() == [
        f"neosocksd: {conf}: -t: timeout 1 is out of range (5 - 86400)"], p.stderr


def test_check_verdict_writes_no_control_bytes(tmp_path):
    """Regression: -C printed its verdict as it was formatted, so a value
    from the file it checks (an ESC sequence in a listen address, a Lua
    error's text) reached the terminal raw, where the log (log_write)
    writes '?' for such bytes. The verdict now does the same."""
    conf = tmp_path / "conf.lua"
    conf.write_text('return { listen = "\\27[2J\\27]0;owned\\7" }\n')
    p = run("-c", str(conf), "-C")
    assert p.returncode == 1 and p.stdout == b"", p
    assert b"\x1b" not in p.stderr and b"\x07" not in p.stderr, p.stderr
    assert "invalid listen address '?[2J?]0;owned?'" in p.stderr.decode(), p.stderr
    rs = tmp_path / "rs.lua"
    rs.write_text('error("a\\27[31mred\\rline")\n')
    p = run("-l", "127.0.0.1:1", "-r", str(rs), "-C")
    assert p.returncode == 1, p
    lines = p.stderr.decode().splitlines()
    assert len(lines) == 1 and "a?[31mred?line" in lines[0], p.stderr


def test_journald_priority_prefixes(tmp_path):
    """Issue 15: under systemd (stderr is the journal, $JOURNAL_STREAM
    names it) every line starts with its syslog priority, so that
    journalctl -p filters, and carries no timestamp of its own; the
    children's lines too."""
    socks, = free_ports(1)
    d = Daemon(["-l", f"127.0.0.1:{socks}", "--loglevel", "6"], tmpdir=str(tmp_path))
    open(d.logpath, "wb").close()  # start() truncates this same inode
    st = os.stat(d.logpath)
    d.env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    try:
        d.start()
        with socket.create_connection(("127.0.0.1", socks)) as c:
            c.sendall(b"\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x01")
            c.recv(100)
        wait_until(lambda: "<6>I front[" in d.log(), 10, d.log)
    finally:
        d.close()
    lines = d.log().splitlines()
    prefixed = [ln for ln in lines if re.match(r"^<[2-7]>[FEWNID] (main|front|ruleset)\[\d+\] ", ln)]
    assert prefixed == lines, [ln for ln in lines if ln not in prefixed]
    assert any(ln.startswith("<5>N main[") and " starting" in ln for ln in lines), lines
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", d.log()), lines
    # the same daemon on another stderr: the plain format with the time
    d = Daemon(["-l", f"127.0.0.1:{socks}"], env={"JOURNAL_STREAM": "1:2"}, tmpdir=str(tmp_path))
    try:
        d.start()
    finally:
        d.close()
    assert re.match(r"^N \d{4}-\d\d-\d\dT", d.log()), d.log()


def make_run(*variables, timeout=60):
    return subprocess.Popen(["make", "--no-print-directory", "-C", ROOT, "run"] + list(variables),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, env=make_env())


@pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "build", "neosocksd")),
                    reason="make run runs build/neosocksd")
def test_make_run_ports_from_variables():
    """Issue 15: make run had its ports fixed (1080, 8080, 9080); they come
    from SOCKS=, HTTP= and API=. A port in use is said in one line."""
    socks, http, api = free_ports(3)
    p = make_run(f"SOCKS=127.0.0.1:{socks}", f"HTTP=127.0.0.1:{http}", f"API=127.0.0.1:{api}")
    try:
        for port in (socks, http, api):
            wait_port(port, timeout=60)
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        out, _ = p.communicate(timeout=60)
    assert b"listen: 127.0.0.1:%d (socks)" % socks in out, out
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        busy = s.getsockname()[1]
        p = make_run(f"SOCKS=127.0.0.1:{socks}", f"HTTP=127.0.0.1:{busy}",
                     f"API=127.0.0.1:{api}")
        out, _ = p.communicate(timeout=120)
    text = out.decode()
    assert p.returncode != 0
    assert len(faults(text)) == 1 and "in use" in faults(text)[0], text
    assert f"127.0.0.1:{busy}" in faults(text)[0], text
