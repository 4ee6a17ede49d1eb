"""Who may use the REST API: bearer tokens (admin and read-only), token
files and their rotation, --api-allow, Origin and Host checks, the refusal
to serve a non-loopback address unprotected, the unix socket listener, an
IPv6 listener, and --state-dir."""

import os
import signal
import stat
import subprocess

import pytest

from harness import (ADMIN_TOKEN, Api, BIN, curl, free_ports, PortForward, request, RO_TOKEN,
                     routed, RPC_MIME,
                     ruleset_pid, ruleset_text, sample, start_api, token_files, wait_until,
                     write_ruleset)


def test_tokens(daemon_factory, tmp_path, http_target):
    a, ro = token_files(tmp_path)
    d = start_api(daemon_factory, tmp_path, http_target.port, "--api-token-file", a,
                  "--api-readonly-token-file", ro, "--loglevel", "8")
    api = d.api
    rpc = ("-H", f"Content-Type: {RPC_MIME}", "--data-binary", "return 1")
    cases = [  # (path, curl args, needs admin)
        ("/healthy", (), False),
        ("/stats", (), False),
        ("/metrics", (), False),
        ("/stats", ("-X", "POST"), True),  # stateful: an admin's
        ("/ruleset/invoke", ("--data-binary", "local x = 1"), True),
        ("/ruleset/update?module=m", ("--data-binary", "return {}"), True),
        ("/ruleset/gc", ("-X", "POST"), True),
        ("/ruleset/rpcall", rpc, True),
    ]
    for path, args, admin in cases:
        r = api.curl(path, *args, token=None)
        assert r.status == 401, (path, r)
        assert r.headers["www-authenticate"].startswith("Bearer"), r
        r = api.curl(path, *args, token="wrong-token-0123456789")
        assert r.status == 401, (path, r)
        r = api.curl(path, *args, token=ADMIN_TOKEN[:-1])  # a prefix is wrong too
        assert r.status == 401, (path, r)
        r = api.curl(path, *args, token=RO_TOKEN)
        assert r.status == (403 if admin else 200), (path, r)
        r = api.curl(path, *args, token=ADMIN_TOKEN)
        assert r.status == 200, (path, r)
    # other schemes are not accepted
    r = api.curl("/stats", "-H", f"Authorization: Basic {ADMIN_TOKEN}", token=None)
    assert r.status == 401
    # the tokens are nowhere to be read: not in /stats, /metrics,
    # neosocksd.config(), nor in the log (at the most verbose level)
    texts = [api.curl("/stats?runtime=1", token=ADMIN_TOKEN).text,
             api.curl("/stats?runtime=1", "-X", "POST", token=ADMIN_TOKEN).text,
             api.curl("/metrics", token=ADMIN_TOKEN).text]
    r = api.curl("/ruleset/rpcall", "-H", f"Content-Type: {RPC_MIME}", "--data-binary",
                 "return neosocksd.config()", token=ADMIN_TOKEN)
    assert r.status == 200 and "restapi" in r.text, r
    texts.append(r.text)
    texts.append(d.log())
    d.stop()
    texts.append(d.log())
    for text in texts:
        for tok in (ADMIN_TOKEN, RO_TOKEN):
            assert tok not in text
            assert tok[:12] not in text


def test_readonly_needs_admin_token_file(tmp_path):
    _, ro = token_files(tmp_path)
    api, = free_ports(1)
    p = subprocess.run([BIN, "-l", f"127.0.0.1:{free_ports(1)[0]}", "--api", f"127.0.0.1:{api}",
                        "--api-readonly-token-file", ro], capture_output=True, timeout=20)
    assert p.returncode != 0
    assert b"--api-token-file" in p.stderr


def test_bad_token_file_refused(tmp_path):
    short = tmp_path / "short.token"
    short.write_text("tooshort\n")
    api, = free_ports(1)
    p = subprocess.run([BIN, "-l", f"127.0.0.1:{free_ports(1)[0]}", "--api", f"127.0.0.1:{api}",
                        "--api-token-file", str(short)], capture_output=True, timeout=20)
    assert p.returncode != 0
    assert b"16 to 256" in p.stderr and b"tooshort" not in p.stderr


def test_api_allow(daemon_factory, tmp_path, http_target):
    d = start_api(daemon_factory, tmp_path, http_target.port, "--api-allow", "10.0.0.0/8,192.0.2.1")
    c = d.api.conn()
    try:
        c.send(request("GET", "/healthy", host=d.api.host))
    except OSError:
        pass
    assert c.closed_by_peer(), "a client outside --api-allow got an answer"
    c.close()
    d.wait_log("not in --api-allow")
    d2 = start_api(daemon_factory, tmp_path, http_target.port, "--api-allow", "10.0.0.0/8,127.0.0.0/8")
    assert d2.api.one("GET", "/healthy").status == 200


def test_origin_and_host(daemon_factory, tmp_path, http_target):
    d = start_api(daemon_factory, tmp_path, http_target.port)
    r = d.api.curl("/stats", "-H", "Origin: http://evil.example")
    assert r.status == 403 and "Origin" in r.text, r
    r = d.api.curl("/ruleset/invoke", "-H", "Origin: null", "--data-binary", "_G.INVOKED = true")
    assert r.status == 403, r
    assert not routed(d, "invoked.test")
    for host in ("evil.example", "evil.example:%d" % d.api.port, "127.0.0.2:%d" % d.api.port,
                 "localhost.evil.example:%d" % d.api.port):
        r = d.api.curl("/healthy", "-H", f"Host: {host}")
        assert r.status == 403, (host, r)
        # the body names the options that would let it in
        assert "--api-host" in r.text and "--api-token-file" in r.text, r
    for host in (f"127.0.0.1:{d.api.port}", f"localhost:{d.api.port}", "api.neosocksd.internal",
                 f"LOCALHOST:{d.api.port}", "127.0.0.1:1", "[::1]:19080"):
        r = d.api.curl("/healthy", "-H", f"Host: {host}")
        assert r.status == 200, (host, r)
    # no Host at all (what await.invoke sends)
    c = d.api.conn()
    c.send(b"GET /healthy HTTP/1.1\r\n\r\n")
    assert c.response().status == 200
    c.close()


def test_api_by_dns_name_and_ssh_tunnel(daemon_factory, tmp_path, http_target):
    """Issue 15: an admin who reaches the API by a DNS name
    (http://proxy1.corp:PORT/) or through an SSH tunnel
    (http://localhost:19080/) was refused with 403 because Host was not the
    --api address. With a token, Host does not matter; without one the
    tunnel's localhost and the names of --api-host are accepted."""
    a, ro = token_files(tmp_path)
    d = start_api(daemon_factory, tmp_path, http_target.port, "--api-token-file", a,
                  "--api-readonly-token-file", ro)
    port = d.api.port
    byname = ("--resolve", f"proxy1.corp:{port}:127.0.0.1")
    url = f"http://proxy1.corp:{port}/stats"
    for tok in (ADMIN_TOKEN, RO_TOKEN):
        rc, out, err = curl("-w", "\n%{http_code}", "-H", f"Authorization: Bearer {tok}",
                            *byname, url)
        assert rc == 0 and out.endswith(b"\n200") and out.startswith(b"neosocksd"), (out, err)
    # without credentials: 401, whatever the name (nothing learnt about names)
    for extra in (byname, ()):
        target = url if extra else f"http://127.0.0.1:{port}/stats"
        rc, out, err = curl("-o", "/dev/null", "-w", "%{http_code}", *extra, target)
        assert out == b"401", (target, out, err)
    fw = PortForward(port)
    try:
        rc, out, err = curl("-H", f"Authorization: Bearer {ADMIN_TOKEN}",
                            "--data-binary", ruleset_text("v2.test", http_target.port),
                            f"http://localhost:{fw.lport}/ruleset/update")
        assert rc == 0, err
        assert routed(d, "v2.test")
    finally:
        fw.close()
    d.stop()

    # no token: the tunnel's localhost:ANY and --api-host's names only
    d = start_api(daemon_factory, tmp_path, http_target.port, "--api-host", "proxy1.corp")
    port = d.api.port
    fw = PortForward(port)
    try:
        rc, out, err = curl("-o", "/dev/null", "-w", "%{http_code}",
                            f"http://localhost:{fw.lport}/stats")
        assert out == b"200", (out, err)
    finally:
        fw.close()
    rc, out, err = curl("-o", "/dev/null", "-w", "%{http_code}",
                        "--resolve", f"proxy1.corp:{port}:127.0.0.1",
                        f"http://proxy1.corp:{port}/stats")
    assert out == b"200", (out, err)
    bodyf = tmp_path / "body"
    rc, out, err = curl("-o", str(bodyf), "-w", "%{http_code}",
                        "--resolve", f"proxy2.corp:{port}:127.0.0.1",
                        f"http://proxy2.corp:{port}/stats")
    assert out == b"403", (out, err)
    assert "--api-host" in bodyf.read_text()


def test_api_host_option_checked(tmp_path):
    """--api-host takes names or addresses without ports; a bad one is a
    configuration error (exit status 2) naming it."""
    socks, api = free_ports(2)
    for bad in ("proxy1.corp:9080", "a,,b", "bad name"):
        p = subprocess.run([BIN, "-l", f"127.0.0.1:{socks}", "--api", f"127.0.0.1:{api}",
                            "--api-host", bad, "--check"], capture_output=True, timeout=20)
        assert p.returncode == 2, p
        assert b"--api-host" in p.stderr, p.stderr
    p = subprocess.run([BIN, "-l", f"127.0.0.1:{socks}", "--api", f"127.0.0.1:{api}",
                        "--api-host", "proxy1.corp,[2001:db8::1],192.0.2.1", "--check"],
                       capture_output=True, timeout=20)
    assert p.returncode == 0, p


@pytest.mark.parametrize("addr", ["0.0.0.0", "[::]"])
def test_non_loopback_without_protection_refused(tmp_path, addr):
    socks, api = free_ports(2)
    p = subprocess.run([BIN, "-l", f"127.0.0.1:{socks}", "--api", f"{addr}:{api}"],
                       capture_output=True, timeout=20)
    assert p.returncode == 2, p  # a configuration error (docs/usage.md)
    err = p.stderr.decode()
    assert "--api-token-file" in err and "--api-allow" in err, err
    assert "not a loopback address" in err
    # with either one it starts: check quickly
    p = subprocess.run([BIN, "-l", f"127.0.0.1:{socks}", "--api", f"{addr}:{api}",
                        "--api-allow", "127.0.0.1", "--check"], capture_output=True, timeout=20)
    assert p.returncode == 0, p


# ---- the unix socket listener ----


def test_unix_socket(daemon_factory, tmp_path, http_target):
    sock = str(tmp_path / "api.sock")
    socks, = free_ports(1)
    rs = write_ruleset(tmp_path, "v1.test", http_target.port)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--api", sock, "--api-mode", "0660", "-r", rs,
                       "--loglevel", "5")
    d.socks = socks
    st = os.stat(sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    api = Api(unix=sock)
    r = api.curl("/stats")
    assert r.status == 200 and r.text.startswith("neosocksd"), r
    r = api.curl("/ruleset/update", "--data-binary", ruleset_text("v2.test", http_target.port))
    assert r.status == 200, r
    assert routed(d, "v2.test")
    c = api.conn()
    c.send(b"GET /healthy HTTP/1.1\r\nHost: localhost\r\n\r\n" * 2)
    assert c.response().status == 200 and c.response().status == 200
    c.close()
    d.stop()
    # the default mode is 0600; --api-owner (as root) gives it away
    if os.geteuid() == 0:
        import pwd
        nobody = pwd.getpwnam("nobody")
        d = daemon_factory("-l", f"127.0.0.1:{socks}", "--api", sock, "--api-owner", "nobody")
        st = os.stat(sock)
        assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
        assert st.st_uid == nobody.pw_uid
        assert Api(unix=sock).curl("/healthy").status == 200
        d.stop()
    # a file that is not a socket is never replaced
    plain = tmp_path / "plain"
    plain.write_text("keep me")
    p = subprocess.run([BIN, "-l", f"127.0.0.1:{socks}", "--api", str(plain)],
                       capture_output=True, timeout=20)
    assert p.returncode != 0 and b"not a socket" in p.stderr
    assert plain.read_text() == "keep me"


# ---- --state-dir ----


def start_with_state(daemon_factory, rs, state):
    socks, api = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--api", f"127.0.0.1:{api}", "-r", rs,
                       "--state-dir", str(state), "--loglevel", "5")
    d.socks, d.api = socks, Api(port=api)
    return d


def test_state_dir(daemon_factory, tmp_path, http_target):
    """Updates (the ruleset and the latest of each module) survive a
    respawn of the ruleset process and a restart of the daemon; invoke is
    not saved; SIGHUP reloads the files and drops the saved updates (on
    purpose: after a reload the files on disk are the truth)."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    rs = write_ruleset(tmp_path, "v1.test", http_target.port)

    def start():
        return start_with_state(daemon_factory, rs, state)

    d = start()
    api = d.api
    assert api.curl("/ruleset/update?chunkname=%40v2.lua", "--data-binary",
                    ruleset_text("v2.test", http_target.port)).status == 200
    assert api.curl("/ruleset/update?module=names", "--data-binary",
                    'return { ["mod.test"] = true }').status == 200
    assert api.curl("/ruleset/update?module=names", "--data-binary",
                    'return { ["mod2.test"] = true }').status == 200
    # a failed update is not saved
    assert api.curl("/ruleset/update", "--data-binary", "return 1").status == 500
    assert api.invoke("_G.INVOKED = true -- invoked-marker").status == 200
    assert routed(d, "v2.test") and routed(d, "mod2.test") and routed(d, "invoked.test")
    saved = state / "updates"
    wait_until(lambda: saved.exists() and b"mod2.test" in saved.read_bytes(),
               what="the updates were not saved")
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert b"invoked-marker" not in saved.read_bytes()

    # the ruleset process dies: the new one gets the saved updates
    old = ruleset_pid(d)
    os.kill(old, signal.SIGKILL)

    def api_back():
        if ruleset_pid(d) in (None, old):
            return False
        try:
            return api.one("GET", "/healthy").status == 200
        except (OSError, EOFError):
            return False

    wait_until(api_back, what="the API did not come back after the respawn")
    assert routed(d, "v2.test") and routed(d, "mod2.test")
    assert not routed(d, "v1.test") and not routed(d, "invoked.test")
    assert sample(api.metrics(), "neosocksd_process_restarts_total", role="ruleset") == 1

    # a restart of the whole daemon: the same
    assert d.stop() == 0
    # the log was compacted at the stop: only the latest per module
    assert b"mod.test" not in saved.read_bytes()
    d = start()
    assert routed(d, "v2.test") and routed(d, "mod2.test")
    assert not routed(d, "v1.test") and not routed(d, "mod.test")
    assert not routed(d, "invoked.test")
    d.wait_log("replayed a saved update (@v2.lua)")  # (the log goes through the parent)

    # SIGHUP: the file is loaded again and the saved updates are dropped
    d.proc.send_signal(signal.SIGHUP)
    d.wait_notify("READY=1")
    assert routed(d, "v1.test") and not routed(d, "v2.test")
    d.wait_log("saved updates dropped")
    assert d.stop() == 0
    d = start()
    assert routed(d, "v1.test")
    assert not routed(d, "v2.test") and not routed(d, "mod2.test")
    assert "replayed a saved update" not in d.log()


def test_state_dir_replays_in_order(daemon_factory, tmp_path, http_target):
    """Saved updates are applied again as they were made, in order: a module
    that copied another one while loading sees the same version of it after
    a restart, even when that one was updated again later."""
    state = tmp_path / "state"
    rs = write_ruleset(tmp_path, "v1.test", http_target.port)

    def start():
        return start_with_state(daemon_factory, rs, state)

    # "names" (what the ruleset consults) copies "base" when it loads; it
    # cannot load without it
    names = ('local base = assert(package.loaded["base"], "base first")\n'
             'local t = { ["own.test"] = true }\n'
             'for k in pairs(base) do t[k] = true end\n'
             'return t\n')
    d = start()
    r = d.api.curl("/ruleset/update?module=names", "--data-binary", names)
    assert r.status == 500 and "base first" in r.text, r
    for v in ("0", "1"):  # two in a row: only the last is kept
        assert d.api.curl("/ruleset/update?module=base", "--data-binary",
                          f'return {{ ["old{v}-base.test"] = true }}').status == 200
    assert d.api.curl("/ruleset/update?module=names", "--data-binary", names).status == 200
    # base changes again: "names" keeps the copy it made
    assert d.api.curl("/ruleset/update?module=base", "--data-binary",
                      'return { ["new-base.test"] = true }').status == 200
    want = {"own.test": True, "old1-base.test": True, "new-base.test": False,
            "old0-base.test": False}
    assert {h: routed(d, h) for h in want} == want
    saved = state / "updates"
    wait_until(lambda: saved.exists() and b"new-base.test" in saved.read_bytes())
    assert d.stop() == 0
    assert b"old0-base.test" not in saved.read_bytes()  # compacted at the stop
    d = start()
    assert {h: routed(d, h) for h in want} == want
    d.wait_log("replayed a saved update", count=3)
    assert d.log().count("replayed a saved update") == 3, d.log()
    # the ruleset process respawned: the same again
    old = ruleset_pid(d)
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: ruleset_pid(d) not in (None, old))
    wait_until(lambda: routed(d, "own.test"))
    assert {h: routed(d, h) for h in want} == want


def test_state_dir_checks(tmp_path):
    """A group-writable state directory, or one without a ruleset, is
    refused at start."""
    socks, api = free_ports(2)
    rs = write_ruleset(tmp_path, "v1.test", 1)
    loose = tmp_path / "loose"
    loose.mkdir()
    os.chmod(loose, 0o770)
    p = subprocess.run([BIN, "-l", f"127.0.0.1:{socks}", "--api", f"127.0.0.1:{api}", "-r", rs,
                        "--state-dir", str(loose)],
                       capture_output=True, timeout=20)
    assert p.returncode != 0 and b"not writable by group or others" in p.stderr, p
    p = subprocess.run([BIN, "-l", f"127.0.0.1:{socks}", "--api", f"127.0.0.1:{api}",
                        "--state-dir", str(tmp_path / "x")], capture_output=True, timeout=20)
    assert p.returncode == 2 and b"--state-dir needs a ruleset" in p.stderr, p


# ---- percentiles after many events (a sort that may not call sysinfo) ----


def test_token_rotation_on_sighup(daemon_factory, tmp_path, http_target):
    a, ro = token_files(tmp_path)
    d = start_api(daemon_factory, tmp_path, http_target.port, "--api-token-file", a)
    assert d.api.curl("/stats", token=ADMIN_TOKEN).status == 200
    new = "rotated-T0ken-0123456789abcdef"
    with open(a, "w") as f:
        f.write(new + "\n")
    d.proc.send_signal(signal.SIGHUP)
    d.wait_notify("READY=1")
    wait_until(lambda: d.api.curl("/stats", token=new).status == 200,
               what="the new token is not accepted after SIGHUP")
    assert d.api.curl("/stats", token=ADMIN_TOKEN).status == 401
    # a bad file on reload: the previous token stays
    with open(a, "w") as f:
        f.write("short\n")
    d.proc.send_signal(signal.SIGHUP)
    d.wait_notify("READY=1")
    d.wait_log("the previous API tokens stay")
    assert d.api.curl("/stats", token=new).status == 200
    assert new not in d.log() and "short" not in d.log().replace("shorter", "")


def test_ipv6_api(daemon_factory, tmp_path, http_target):
    port = free_ports(1, "::1")[0]
    socks, = free_ports(1)
    rs = write_ruleset(tmp_path, "v1.test", http_target.port)
    daemon_factory("-l", f"127.0.0.1:{socks}", "--api", f"[::1]:{port}", "-r", rs,
                   "--api-allow", "::1/128")
    url = f"http://[::1]:{port}/stats"
    rc, out, err = curl(url)
    assert rc == 0 and out.startswith(b"neosocksd"), err
    rc, out, err = curl("-w", "%{http_code}", "-o", "/dev/null", "-H", f"Host: localhost:{port}", url)
    assert out == b"200"
    rc, out, err = curl("-w", "%{http_code}", "-o", "/dev/null", "-H", f"Host: [::2]:{port}", url)
    assert out == b"403"
