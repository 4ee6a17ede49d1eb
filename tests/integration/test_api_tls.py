"""The REST API over TLS (--api-tls-cert, --api-tls-key, --api-tls-client-ca,
--api-tls-readonly-subject) and the RPC client's TLS (https:// peers,
--rpc-tls-ca, --rpc-tls-cert, --rpc-tls-key), with certificates the openssl
command makes for this module: the role a client certificate gives, the
refusals in the handshake (no certificate, another CA, expired), tokens on
top, a certificate rotated by SIGHUP while a keep-alive connection stays up,
two daemons calling each other over TLS, handshakes that cannot hold slots,
and the files: their checks, -c keys and systemd credentials."""

import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

from harness import (
    ADMIN_TOKEN, BIN, Daemon, Pki, RO_TOKEN, RPC_MIME, connect, curl, free_ports, ruleset_pid,
    ruleset_text, tls_context, token_files, unit_exec_argv, wait_until, watch_closes,
)

RULESET = """
local libruleset = require("libruleset")
function rpc.add(a, b) return a + b end
function rpc.big(n) return string.rep("z", n) end
return libruleset
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.ca("ca", "/O=neosocksd test/CN=test CA")
    p.ca("other_ca", "/O=elsewhere/CN=other CA")
    p.leaf("server", "ca", "/O=neosocksd test/CN=localhost", server=True)
    p.leaf("server2", "ca", "/O=neosocksd test/CN=localhost rotated", server=True)
    p.leaf("admin", "ca", "/O=ops/CN=admin")
    p.leaf("reader", "ca", "/O=ops/OU=readers/CN=dashboard")
    p.leaf("stranger", "other_ca", "/O=ops/CN=admin")
    p.leaf("expired", "ca", "/O=ops/CN=admin", days=-1)
    p.leaf("peer_a", "ca", "/O=fleet/CN=daemon-a")
    return p


def tls_args(pki, cert="server", client_ca=True):
    args = ["--api-tls-cert", pki.path(cert), "--api-tls-key", pki.path(cert, "key")]
    if client_ca:
        args += ["--api-tls-client-ca", pki.path("ca")]
    return args


def ruleset_file(tmp_path):
    p = tmp_path / "rules.lua"
    p.write_text(RULESET)
    return str(p)


def start_tls_api(daemon_factory, pki, tmp_path, *extra, cert="server", client_ca=True):
    """A daemon with a TLS API on loopback; (daemon, api port)."""
    socks, api = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--api", f"127.0.0.1:{api}",
                       "-r", ruleset_file(tmp_path), "--loglevel", "6",
                       *tls_args(pki, cert, client_ca), *extra)
    return d, api


def tcurl(pki, port, path, cert=None, data=None, token=None, ca="ca"):
    """curl over TLS, checking the server against ca; (curl's exit
    status, HTTP status or 0, body)."""
    args = ["--cacert", pki.path(ca), "-o", "-", "-w", "\n%{http_code}"]
    if cert is not None:
        args += ["--cert", pki.path(cert), "--key", pki.path(cert, "key")]
    if data is not None:
        args += ["--data-binary", data]
    if token is not None:
        args += ["-H", f"Authorization: Bearer {token}"]
    rc, out, err = curl(*args, f"https://localhost:{port}{path}")
    body, _, code = out.rpartition(b"\n")
    return rc, int(code or 0), body


def peer_cn(conn):
    """The commonName of the certificate the server showed on conn."""
    for rdn in conn.sock.getpeercert()["subject"]:
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


# ---- roles and refusals ----


def test_client_certificates_give_roles(daemon_factory, pki, tmp_path):
    d, port = start_tls_api(daemon_factory, pki, tmp_path,
                            "--api-tls-readonly-subject", "*OU=readers,*")
    rules = ruleset_pid(d)
    # the admin's certificate: everything
    rc, st, body = tcurl(pki, port, "/stats", cert="admin")
    assert (rc, st) == (0, 200) and body.startswith(b"neosocksd"), body
    assert tcurl(pki, port, "/ruleset/invoke", cert="admin", data="_G.x = 41")[1] == 200
    # a certificate whose subject matches the pattern: reading only
    assert tcurl(pki, port, "/healthy", cert="reader")[1] == 200
    assert tcurl(pki, port, "/metrics", cert="reader")[1] == 200
    rc, st, body = tcurl(pki, port, "/ruleset/invoke", cert="reader", data="_G.x = 0")
    assert st == 403, body
    # no certificate, or one from another CA: refused in the handshake
    # (the reasons: test_refused_in_the_handshake)
    assert tcurl(pki, port, "/healthy")[:2] == (56, 0)
    rc, st, _ = tcurl(pki, port, "/healthy", cert="stranger")
    assert rc != 0 and st == 0
    # the client checks the server in turn: a client trusting another CA
    # does not talk to it
    rc, st, _ = tcurl(pki, port, "/healthy", cert="admin", ca="other_ca")
    assert rc == 60 and st == 0
    assert ruleset_pid(d) == rules, "the ruleset process was replaced"


@pytest.mark.parametrize("cert,why", [
    (None, "peer did not return a certificate"),
    ("stranger", "certificate verify failed: unable to get local issuer certificate"),
    ("expired", "certificate verify failed: certificate has expired"),
])
def test_refused_in_the_handshake(daemon_factory, pki, tmp_path, cert, why):
    """No client certificate, one from another CA, an expired one: the
    handshake fails, and the log says why."""
    d, port = start_tls_api(daemon_factory, pki, tmp_path)
    rc, st, _ = tcurl(pki, port, "/healthy", cert=cert)
    assert rc != 0 and st == 0
    d.wait_log(why)
    assert tcurl(pki, port, "/healthy", cert="admin")[1] == 200


def test_tokens_on_top_of_client_certificates(daemon_factory, pki, tmp_path):
    a, ro = token_files(tmp_path)
    d, port = start_tls_api(daemon_factory, pki, tmp_path,
                            "--api-tls-readonly-subject", "*OU=readers,*",
                            "--api-token-file", a, "--api-readonly-token-file", ro)
    # a certificate is not enough when a token is asked for
    assert tcurl(pki, port, "/stats", cert="admin")[1] == 401
    assert tcurl(pki, port, "/stats", cert="admin", token=ADMIN_TOKEN)[1] == 200
    assert tcurl(pki, port, "/ruleset/invoke", cert="admin", data="_G.y = 1",
                 token=ADMIN_TOKEN)[1] == 200
    # the lower of the two levels counts
    assert tcurl(pki, port, "/ruleset/invoke", cert="reader", data="_G.y = 2",
                 token=ADMIN_TOKEN)[1] == 403
    assert tcurl(pki, port, "/ruleset/invoke", cert="admin", data="_G.y = 3",
                 token=RO_TOKEN)[1] == 403
    assert tcurl(pki, port, "/stats", cert="reader", token=RO_TOKEN)[1] == 200
    assert ADMIN_TOKEN not in d.log()


def test_server_only_tls_with_a_token(daemon_factory, pki, tmp_path):
    """Without --api-tls-client-ca no certificate is asked for: TLS only
    hides the token, which still decides."""
    a, _ = token_files(tmp_path)
    d, port = start_tls_api(daemon_factory, pki, tmp_path, "--api-token-file", a,
                            client_ca=False)
    assert tcurl(pki, port, "/stats")[1] == 401
    assert tcurl(pki, port, "/stats", token=ADMIN_TOKEN)[1] == 200


def test_reached_by_name(daemon_factory, pki, tmp_path):
    """An admin reaching the API by a name its certificate bears (here
    api.test, resolved by curl to 127.0.0.1) is served: over TLS the Host
    header is not checked, since a page that rebinds its own name to the
    API could not get a browser to accept the API's certificate for it. A
    cross-site Origin is still refused."""
    d, port = start_tls_api(daemon_factory, pki, tmp_path)
    base = ["--cacert", pki.path("ca"), "--cert", pki.path("admin"), "--key",
            pki.path("admin", "key"), "--resolve", f"api.test:{port}:127.0.0.1",
            "-o", "/dev/null", "-w", "%{http_code}"]
    rc, out, err = curl(*base, f"https://api.test:{port}/stats")
    assert (rc, out) == (0, b"200"), err
    rc, out, err = curl(*base, "-H", "Origin: https://evil.test",
                        f"https://api.test:{port}/stats")
    assert out == b"403", err


def test_plain_http_on_the_tls_port(daemon_factory, pki, tmp_path):
    d, port = start_tls_api(daemon_factory, pki, tmp_path)
    rc, out, err = curl("-w", "\n%{http_code}", f"http://127.0.0.1:{port}/stats")
    assert out.endswith(b"\n400"), out
    assert b"use https://" in out
    d.wait_log("plain HTTP on the TLS API")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_old_protocol_versions_refused(daemon_factory, pki, tmp_path):
    d, port = start_tls_api(daemon_factory, pki, tmp_path)
    ctx = tls_context(pki, "admin")
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with ctx.wrap_socket(connect(port), server_hostname="localhost") as s:
        assert s.version() == "TLSv1.2"
    # a client that offers TLS 1.1 at most is refused by the server
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        with ctx.wrap_socket(connect(port), server_hostname="localhost") as s:
            s.do_handshake()
    d.wait_log("unsupported protocol")


# ---- rotation ----


def test_sighup_rotation_keeps_a_keepalive_connection(daemon_factory, pki, tmp_path):
    cert, key = tmp_path / "api.crt", tmp_path / "api.key"
    shutil.copyfile(pki.path("server"), cert)
    shutil.copyfile(pki.path("server", "key"), key)
    os.chmod(key, 0o600)
    socks, port = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--api", f"127.0.0.1:{port}",
                       "--api-tls-cert", str(cert), "--api-tls-key", str(key),
                       "--api-tls-client-ca", pki.path("ca"), "--loglevel", "6")
    ctx = tls_context(pki, "admin")

    def get(conn, path="/healthy"):
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        return r.status

    old = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=20)
    assert get(old) == 200 and peer_cn(old) == "localhost"
    sock = old.sock
    # the files replaced, then SIGHUP
    shutil.copyfile(pki.path("server2"), cert)
    shutil.copyfile(pki.path("server2", "key"), key)
    d.proc.send_signal(signal.SIGHUP)
    d.wait_notify("READY=1")

    def new_cn():
        c = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=20)
        try:
            assert get(c) == 200
            return peer_cn(c)
        finally:
            c.close()
    wait_until(lambda: new_cn() == "localhost rotated", 10,
               "new connections do not get the new certificate")
    # the connection made before is still up, on its own certificate
    assert get(old, "/stats") == 200
    assert old.sock is sock and peer_cn(old) == "localhost"
    # a bad file on reload: the previous certificate stays, the log says why
    cert.write_text("not a certificate\n")
    d.proc.send_signal(signal.SIGHUP)
    d.wait_notify("READY=1")
    d.wait_log("the previous API TLS files stay")
    assert new_cn() == "localhost rotated"
    # a key readable by others on reload: refused the same way
    shutil.copyfile(pki.path("server"), cert)
    shutil.copyfile(pki.path("server", "key"), key)
    os.chmod(key, 0o644)
    d.proc.send_signal(signal.SIGHUP)
    d.wait_notify("READY=1")
    d.wait_log("readable by group or others", count=1)
    assert new_cn() == "localhost rotated"
    assert get(old) == 200 and old.sock is sock
    old.close()
    log = d.log()
    with open(pki.path("server", "key")) as f:
        assert f.read().splitlines()[1] not in log  # no key material logged


def test_respawned_ruleset_process_serves_tls_at_once(daemon_factory, pki, tmp_path):
    """A ruleset process that dies is respawned with the TLS files the
    parent kept (R_TLS before the API listener): the API is TLS again at
    once, never plain HTTP in between."""
    d, port = start_tls_api(daemon_factory, pki, tmp_path)
    assert tcurl(pki, port, "/healthy", cert="admin")[1] == 200
    old = ruleset_pid(d)
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: ruleset_pid(d) not in (None, old), 30, "no new ruleset process")
    # until the new process serves, a client may be refused; once it
    # serves, only over TLS, with the same certificate and client CA
    wait_until(lambda: tcurl(pki, port, "/healthy", cert="admin")[1] == 200, 30,
               lambda: f"the respawned process does not serve TLS:\n{d.log()}")
    assert tcurl(pki, port, "/healthy")[:2] == (56, 0)
    rc, out, err = curl("-w", "\n%{http_code}", f"http://127.0.0.1:{port}/healthy")
    assert out.endswith(b"\n400") and b"use https://" in out, out


# ---- two daemons ----


def rpc_on(port, code):
    """Run code in a routine of a daemon's plain loopback API; the
    marshalled results as text."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/ruleset/rpcall", body=code.encode(),
              headers={"Content-Type": RPC_MIME})
    r = c.getresponse()
    body = r.read()
    c.close()
    assert r.status == 200, (r.status, body)
    text = body.decode()
    assert text.startswith("return true"), text
    return text[len("return true"):].lstrip(",")


def test_rpcall_between_two_daemons_over_tls(daemon_factory, pki, tmp_path):
    b, b_api = start_tls_api(daemon_factory, pki, tmp_path)
    ra = tmp_path / "a.lua"
    ra.write_text('return require("libruleset")\n')

    def start_a(*tls):
        socks, api = free_ports(2)
        daemon_factory("-l", f"127.0.0.1:{socks}", "--api", f"127.0.0.1:{api}",
                       "-r", str(ra), *tls)
        return api

    a = start_a("--rpc-tls-ca", pki.path("ca"), "--rpc-tls-cert", pki.path("peer_a"),
                "--rpc-tls-key", pki.path("peer_a", "key"))
    peer = f"{{'https://127.0.0.1:{b_api}'}}"
    assert rpc_on(a, f"return await.rpcall({peer}, 'add', 40, 2)") == "true,42"
    # by name: the certificate names localhost
    by_name = f"{{'https://localhost:{b_api}'}}"
    assert rpc_on(a, f"return await.rpcall({by_name}, 'add', 1, 2)") == "true,3"
    # a large answer, deflated by B inside TLS
    out = rpc_on(a, f"local ok, s = await.rpcall({peer}, 'big', 200000) return ok, #s")
    assert out == "true,200000"
    b.wait_log("client CN=daemon-a,O=fleet")
    # the same address without the scheme is plain HTTP: B answers that
    # it speaks TLS
    out = rpc_on(a, f"return await.rpcall({{'127.0.0.1:{b_api}'}}, 'add', 1, 2)")
    assert out == 'false,"HTTP/1.1 400 Bad Request"', out
    # a caller without a client certificate is refused by B
    a2 = start_a("--rpc-tls-ca", pki.path("ca"))
    out = rpc_on(a2, f"return await.rpcall({peer}, 'add', 1, 2)")
    assert out.startswith('false,"TLS: ') and "certificate required" in out, out
    # a caller trusting another CA refuses B
    a3 = start_a("--rpc-tls-ca", pki.path("other_ca"), "--rpc-tls-cert", pki.path("peer_a"),
                 "--rpc-tls-key", pki.path("peer_a", "key"))
    out = rpc_on(a3, f"return await.rpcall({peer}, 'add', 1, 2)")
    assert out.startswith('false,"TLS: certificate verify failed'), out
    # without --rpc-tls-ca an https:// peer is an error in the caller
    a4 = start_a()
    c = http.client.HTTPConnection("127.0.0.1", a4, timeout=30)
    c.request("POST", "/ruleset/rpcall", body=f"return await.rpcall({peer}, 'add')".encode(),
              headers={"Content-Type": RPC_MIME})
    r = c.getresponse()
    assert r.status == 500 and b"https:// peers need --rpc-tls-ca" in r.read()


# ---- slots ----


def client_hello():
    """The bytes a TLS client sends first (a ClientHello record)."""
    out = ssl.MemoryBIO()
    obj = ssl.create_default_context().wrap_bio(ssl.MemoryBIO(), out,
                                               server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def test_slow_handshakes_cannot_hold_slots(daemon_factory, pki, tmp_path):
    d, port = start_tls_api(daemon_factory, pki, tmp_path, "--api-max-conns", "4",
                            "--api-head-timeout", "1", "--api-timeout", "5")
    hello = client_hello()
    assert len(hello) > 100
    # every slot taken by a client that starts a handshake and stalls
    stalled = {}
    for i in range(4):
        s = connect(port)
        s.sendall(hello[:20])
        stalled[i] = s
    # ... each is cut off at the head deadline (the bound here only keeps
    # the test from hanging: it checks that they are closed, not when)
    closed = watch_closes(stalled, timeout=60)
    assert all(t is not None for t, _ in closed.values()), closed
    for s in stalled.values():
        s.close()
    # a client that sends its hello a byte at a time does not push the
    # deadline back: it is closed before its hello is out
    s = connect(port)
    s.settimeout(0.1)
    cut = False
    deadline = time.monotonic() + 120
    for byte in hello:
        try:
            s.sendall(bytes([byte]))
            if s.recv(1) == b"":
                cut = True
                break
        except socket.timeout:
            pass
        except OSError:
            cut = True
            break
        if time.monotonic() > deadline:
            break
    s.close()
    assert cut, "a trickled handshake outlived the head deadline"
    # and the slots are free for a client that completes its handshake
    wait_until(lambda: tcurl(pki, port, "/healthy", cert="admin")[1] == 200, 30,
               "the admin could not get in")


# ---- the files ----


def check(*args, env=None):
    socks, api = free_ports(2)
    return subprocess.run([BIN, "-l", f"127.0.0.1:{socks}", *args, "--check"],
                          capture_output=True, timeout=30, env=env)


def test_non_loopback_api_with_client_certificates(pki, tmp_path):
    # TLS with client certificates is enough protection on its own
    p = check("--api", "0.0.0.0:9", *tls_args(pki))
    assert p.returncode == 0, p.stderr
    # TLS without them is not: who connects would be an admin
    p = check("--api", "0.0.0.0:9", *tls_args(pki, client_ca=False))
    assert p.returncode == 2
    assert b"--api-tls-client-ca" in p.stderr and b"not a loopback address" in p.stderr
    # options that need others
    p = check("--api", "127.0.0.1:9", "--api-tls-cert", pki.path("server"))
    assert p.returncode == 2 and b"go together" in p.stderr
    p = check("--api", "127.0.0.1:9", *tls_args(pki, client_ca=False),
              "--api-tls-readonly-subject", "*")
    assert p.returncode == 2 and b"needs --api-tls-client-ca" in p.stderr
    p = check("--rpc-tls-cert", pki.path("peer_a"), "--rpc-tls-key", pki.path("peer_a", "key"))
    assert p.returncode == 2 and b"needs --rpc-tls-ca" in p.stderr


def test_plain_token_on_a_non_loopback_address_warns(daemon_factory, pki, tmp_path):
    a, _ = token_files(tmp_path)
    socks, api, socks2, api2 = free_ports(4)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--api", f"0.0.0.0:{api}",
                       "--api-token-file", a)
    d.wait_log("the bearer token crosses the network in the clear")
    d2 = daemon_factory("-l", f"127.0.0.1:{socks2}", "--api", f"0.0.0.0:{api2}",
                        "--api-token-file", a, *tls_args(pki, client_ca=False))
    assert tcurl(pki, api2, "/stats", token=ADMIN_TOKEN)[1] == 200
    assert "in the clear" not in d2.log()


def test_bad_files_stop_the_start(pki, tmp_path):
    key = tmp_path / "open.key"
    shutil.copyfile(pki.path("server", "key"), key)
    os.chmod(key, 0o644)
    p = check("--api", "127.0.0.1:9", "--api-tls-cert", pki.path("server"),
              "--api-tls-key", str(key))
    assert p.returncode == 1
    assert b"readable by group or others (mode 0644)" in p.stderr, p.stderr
    p = check("--api", "127.0.0.1:9", "--api-tls-cert", pki.path("server"),
              "--api-tls-key", pki.path("admin", "key"))
    assert p.returncode == 1 and b"not the key of the certificate" in p.stderr, p.stderr
    p = check("--api", "127.0.0.1:9", "--api-tls-cert", str(tmp_path / "nowhere.crt"),
              "--api-tls-key", pki.path("server", "key"))
    assert p.returncode == 1 and b"nowhere.crt" in p.stderr, p.stderr
    p = check("--api", "127.0.0.1:9", *tls_args(pki))
    assert p.returncode == 0, p.stderr
    # the key never shows, even when refused
    with open(pki.path("admin", "key")) as f:
        secret = f.read().splitlines()[1].encode()
    assert secret not in p.stderr + p.stdout


def ruleset_restarts(pki, port):
    """neosocksd_process_restarts_total{role="ruleset"} from /metrics, as
    the admin."""
    rc, st, body = tcurl(pki, port, "/metrics", cert="admin")
    assert st == 200, body
    for line in body.decode().splitlines():
        if line.startswith('neosocksd_process_restarts_total{role="ruleset"}'):
            return int(float(line.split()[-1]))
    raise AssertionError("no ruleset restarts in /metrics")


def test_config_file_keys(daemon_factory, pki, tmp_path):
    """The TLS settings as -c keys. Regression: the file is evaluated in
    the sandboxed ruleset process, which set OpenSSL up only when the
    files arrived, and the library's first qsort() made a sysinfo() call
    the filter killed; the respawned process then served, so only the
    restart showed it."""
    socks, api = free_ports(2)
    conf = tmp_path / "conf.lua"
    conf.write_text(f"""return {{
        listen = "127.0.0.1:{socks}",
        restapi = "127.0.0.1:{api}",
        api_tls_cert = {pki.path("server")!r},
        api_tls_key = {pki.path("server", "key")!r},
        api_tls_client_ca = {pki.path("ca")!r},
        api_tls_readonly_subject = "*OU=readers,*",
    }}
    """)
    d = daemon_factory("-c", str(conf))
    assert tcurl(pki, api, "/ruleset/gc", cert="admin", data="")[1] in (200, 500)
    assert ruleset_restarts(pki, api) == 0, d.log()
    assert tcurl(pki, api, "/ruleset/gc", cert="reader", data="")[1] == 403
    assert tcurl(pki, api, "/healthy")[0] != 0


def test_systemd_credentials(daemon_factory, pki, tmp_path):
    """A TLS file named without a '/' is a systemd credential, read from
    $CREDENTIALS_DIRECTORY, as token files are."""
    creds = tmp_path / "creds"
    creds.mkdir()
    for name, src in (("api.crt", pki.path("server")), ("api.key", pki.path("server", "key")),
                      ("ca.crt", pki.path("ca"))):
        shutil.copyfile(src, creds / name)
        os.chmod(creds / name, 0o400)
    socks, api = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--api", f"127.0.0.1:{api}",
                       "--api-tls-cert", "api.crt", "--api-tls-key", "api.key",
                       "--api-tls-client-ca", "ca.crt",
                       env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert tcurl(pki, api, "/healthy", cert="admin")[1] == 200
    assert tcurl(pki, api, "/healthy")[0] != 0
    assert ruleset_restarts(pki, api) == 0, d.log()
    # without the directory, the bare name is a relative path: not found
    p = check("--api", "127.0.0.1:9", "--api-tls-cert", "api.crt", "--api-tls-key", "api.key")
    assert p.returncode == 1 and b"api.crt" in p.stderr, p.stderr


# ---- the unit's TLS variant ----


def test_unit_drop_in(pki, tmp_path, http_target):
    """sandbox/neosocksd.service.d/api-tls.conf on the shipped unit: its
    ExecStart is the unit's with the TLS options added (nothing else
    drifts); run as systemd would (the tokens and the TLS files as
    credentials of the names it loads), an admin with a certificate and
    the token gets in by name, a read-only certificate only reads, a
    client without a certificate is refused; systemd reads unit and
    drop-in without a complaint."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "sandbox", "neosocksd.service")) as f:
        unit = f.read()
    with open(os.path.join(root, "sandbox", "neosocksd.service.d", "api-tls.conf")) as f:
        drop = f.read()
    tls_opts = ["--api-tls-cert", "api-tls.crt", "--api-tls-key", "api-tls.key",
                "--api-tls-client-ca", "api-clients-ca.crt",
                "--api-tls-readonly-subject", "*OU=readers,*"]
    socks, http, api = free_ports(3)
    env = {"NEOSOCKSD_SOCKS": f"127.0.0.1:{socks}", "NEOSOCKSD_HTTP": f"127.0.0.1:{http}",
           "NEOSOCKSD_API": f"127.0.0.1:{api}", "NEOSOCKSD_OPTS": "--loglevel 6"}
    base = unit_exec_argv(unit, env)
    argv = unit_exec_argv(unit + "\n" + drop, env)
    at = argv.index("--api-tls-cert")
    assert argv[at:at + len(tls_opts)] == tls_opts, argv
    assert argv[:at] + argv[at + len(tls_opts):] == base, (argv, base)
    creds = dict(re.findall(r"^LoadCredential=([\w.-]+):(\S+)$", unit + drop, re.M))
    assert {"api-tls.crt", "api-tls.key", "api-clients-ca.crt"} <= set(creds), creds
    # what systemd would give the daemon
    etc, state, cdir = tmp_path / "etc", tmp_path / "state", tmp_path / "creds"
    for d in (etc, cdir):
        d.mkdir()
    state.mkdir(mode=0o700)
    (etc / "ruleset.lua").write_text(ruleset_text("v1.test", http_target.port))
    files = {"api-admin.token": None, "api-readonly.token": None,
             "api-tls.crt": pki.path("server"), "api-tls.key": pki.path("server", "key"),
             "api-clients-ca.crt": pki.path("ca")}
    (cdir / "api-admin.token").write_text(ADMIN_TOKEN + "\n")
    (cdir / "api-readonly.token").write_text(RO_TOKEN + "\n")
    for name, src in files.items():
        assert name in creds, name
        if src is not None:
            shutil.copyfile(src, cdir / name)
    for f in cdir.iterdir():
        f.chmod(0o400)
    argv = [a.replace("/etc/neosocksd/", f"{etc}/").replace("/var/lib/neosocksd", str(state))
            for a in argv[1:]]
    d = Daemon(argv, env={"CREDENTIALS_DIRECTORY": str(cdir)}, tmpdir=str(tmp_path))
    d.start()
    try:
        resolve = ["--resolve", f"api.test:{api}:127.0.0.1", "--cacert", pki.path("ca"),
                   "-o", "/dev/null", "-w", "%{http_code}"]

        def as_(cert, token, *more):
            auth = ["-H", f"Authorization: Bearer {token}"] if token else []
            rc, out, err = curl(*resolve, "--cert", pki.path(cert), "--key",
                                pki.path(cert, "key"), *auth, *more,
                                f"https://api.test:{api}/ruleset/gc" if more
                                else f"https://api.test:{api}/stats")
            return out
        assert as_("admin", ADMIN_TOKEN) == b"200"
        assert as_("admin", None) == b"401"
        assert as_("admin", ADMIN_TOKEN, "--data", "") == b"200"
        assert as_("reader", ADMIN_TOKEN) == b"200"
        assert as_("reader", ADMIN_TOKEN, "--data", "") == b"403"
        rc, out, err = curl(*resolve, f"https://api.test:{api}/stats")
        assert rc != 0 and out == b"000"
    finally:
        d.close()
    assert ADMIN_TOKEN not in d.log()
    # systemd's own reading of the unit with the drop-in
    sa = shutil.which("systemd-analyze")
    if sa is None:
        pytest.skip("systemd-analyze is not installed")
    units = tmp_path / "units"
    (units / "neosocksd.service.d").mkdir(parents=True)
    (units / "neosocksd.service").write_text(unit.replace("/usr/local/sbin/neosocksd", BIN))
    (units / "neosocksd.service.d" / "api-tls.conf").write_text(
        drop.replace("/usr/local/sbin/neosocksd", BIN))
    p = subprocess.run([sa, "verify", "neosocksd.service"], capture_output=True,
                       timeout=60, env=dict(os.environ, SYSTEMD_UNIT_PATH=f"{units}:"))
    assert p.returncode == 0 and p.stdout + p.stderr == b"", p
