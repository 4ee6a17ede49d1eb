"""Real programs through the HTTP forward proxy (issue 11), each the way its
users set a proxy, against local origins, with what they fetched compared
by checksum: wget (http_proxy), git clone over smart HTTP (http.proxy,
git http-backend), apt-get against an apt-ftparchive repository
(Acquire::http::Proxy; apt pipelines its requests), Python's urllib,
headless Chromium loading a page whose parts come from two origins, and a
WebSocket echo (python3-websockets) through an Upgrade."""

import asyncio
import hashlib
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

from harness import access_line, access_outcome, access_status, free_ports, pattern_bytes, wait_until
from origin import BufferedSock, GitOrigin, Origin, field, read_response


@pytest.fixture
def fwd(daemon_factory):
    socks, http = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--http", f"127.0.0.1:{http}",
                       "--loglevel", "5")
    d.http = http
    d.proxy = f"http://127.0.0.1:{http}"
    return d


def run(argv, timeout=120, **kw):
    p = subprocess.run(argv, capture_output=True, timeout=timeout, **kw)
    assert p.returncode == 0, (argv, p.returncode, p.stdout[-2000:], p.stderr[-4000:])
    return p


def env_with_proxy(proxy):
    env = dict(os.environ)
    for k in ("http_proxy", "HTTP_PROXY", "https_proxy", "no_proxy", "NO_PROXY"):
        env.pop(k, None)
    env["http_proxy"] = proxy
    return env


# ---- wget ----

def test_wget(fwd, tmp_path):
    o = Origin(root=str(tmp_path / "www"))
    try:
        os.makedirs(tmp_path / "www")
        data = os.urandom(2 * 1024 * 1024 + 17)
        (tmp_path / "www" / "f.bin").write_bytes(data)
        out = tmp_path / "got"
        run(["wget", "-q", "-O", str(out), f"{o.base}/files/f.bin"],
            env=env_with_proxy(fwd.proxy))
        assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()
        # a POST, and a chunked answer
        post = tmp_path / "post.bin"
        post.write_bytes(os.urandom(100000))
        run(["wget", "-q", "-O", str(out), f"--post-file={post}", f"{o.base}/echo"],
            env=env_with_proxy(fwd.proxy))
        assert hashlib.sha256(post.read_bytes()).hexdigest() in out.read_text()
        run(["wget", "-q", "-O", str(out), f"{o.base}/chunked/300000"],
            env=env_with_proxy(fwd.proxy))
        assert out.read_bytes() == pattern_bytes(300000)
        line = access_line(fwd, f"method=GET url={o.base}/files/f.bin ")
        assert access_status(line) == (200, "ok"), line
        assert all(("via", "1.1 neosocksd") in r[3] for r in o.requests())
    finally:
        o.close()


# ---- git over smart HTTP ----

def test_git_clone_smart_http(fwd, tmp_path):
    src = tmp_path / "src"
    root = tmp_path / "srv"
    os.makedirs(src)
    os.makedirs(root)
    genv = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid",
                GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid",
                GIT_CONFIG_NOSYSTEM="1", HOME=str(tmp_path))
    run(["git", "init", "-q", "-b", "main", str(src)], env=genv)
    blob = os.urandom(3 * 1024 * 1024)  # incompressible: a pack of some size
    (src / "blob.bin").write_bytes(blob)
    (src / "README").write_text("through the forward proxy\n")
    run(["git", "-C", str(src), "add", "."], env=genv)
    run(["git", "-C", str(src), "commit", "-q", "-m", "one"], env=genv)
    (src / "README").write_text("second commit\n")
    run(["git", "-C", str(src), "commit", "-q", "-am", "two"], env=genv)
    run(["git", "clone", "-q", "--bare", str(src), str(root / "repo.git")], env=genv)
    head = run(["git", "-C", str(src), "rev-parse", "HEAD"], env=genv).stdout.strip()
    o = GitOrigin(str(root))
    try:
        dst = tmp_path / "clone"
        run(["git", "-c", f"http.proxy={fwd.proxy}", "-c", "protocol.version=2",
             "clone", "-q", f"{o.base}/repo.git", str(dst)], env=genv, timeout=180)
        assert run(["git", "-C", str(dst), "rev-parse", "HEAD"], env=genv).stdout.strip() == head
        assert hashlib.sha256((dst / "blob.bin").read_bytes()).digest() == \
            hashlib.sha256(blob).digest()
        assert (dst / "README").read_text() == "second commit\n"
        # smart HTTP: the upload-pack POST went through the proxy
        reqs = o.requests()
        assert any(r[1] == "POST" and r[2].endswith("/git-upload-pack") for r in reqs), reqs
        assert all(("via", "1.1 neosocksd") in r[3] for r in reqs)
        access_line(fwd, f"method=POST url={o.base}/repo.git/git-upload-pack ")
    finally:
        o.close()


# ---- apt-get against a local repository ----

def build_repo(tmp_path):
    pkg = tmp_path / "pkg"
    repo = tmp_path / "repo"
    os.makedirs(pkg / "DEBIAN")
    os.makedirs(pkg / "usr" / "share" / "nsd-fwd-test")
    os.makedirs(repo)
    (pkg / "usr" / "share" / "nsd-fwd-test" / "data.bin").write_bytes(os.urandom(300000))
    (pkg / "DEBIAN" / "control").write_text(
        "Package: nsd-fwd-test\nVersion: 1.0\nArchitecture: all\n"
        "Maintainer: test <test@example.invalid>\nDescription: forward proxy test\n")
    deb = repo / "nsd-fwd-test_1.0_all.deb"
    run(["dpkg-deb", "--build", "-Zgzip", str(pkg), str(deb)])
    packages = run(["apt-ftparchive", "packages", "."], cwd=str(repo)).stdout
    (repo / "Packages").write_bytes(packages)
    release = run(["apt-ftparchive", "release", "."], cwd=str(repo)).stdout
    (repo / "Release").write_bytes(release)
    return repo, deb


def test_apt_get_update_and_download(fwd, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("apt-get needs root")  # make check runs as root
    repo, deb = build_repo(tmp_path)
    o = Origin(root=str(repo))
    state = tmp_path / "apt"
    for d in ("lists/partial", "archives/partial", "cache", "etc/apt.conf.d",
              "etc/preferences.d", "etc/sources.list.d", "out"):
        os.makedirs(state / d)
    (state / "status").write_text("")
    (state / "etc" / "sources.list").write_text(f"deb [trusted=yes] {o.base}/files/ ./\n")
    opts = [
        "-o", f"Dir::Etc={state}/etc", "-o", f"Dir::State={state}",
        "-o", f"Dir::State::Lists={state}/lists", "-o", f"Dir::State::status={state}/status",
        "-o", f"Dir::Cache={state}/cache", "-o", f"Dir::Cache::Archives={state}/archives",
        "-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root",
        "-o", f"Acquire::http::Proxy={fwd.proxy}", "-o", "Acquire::Retries=0",
        "-o", "Acquire::Languages=none", "-o", "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false",
    ]
    (state / "apt.conf").write_text("")  # not the host's configuration
    env = dict(os.environ, APT_CONFIG=str(state / "apt.conf"))
    for k in ("http_proxy", "HTTP_PROXY"):
        env.pop(k, None)
    try:
        p = run(["apt-get", *opts, "update"], env=env, timeout=180)
        assert b"Err:" not in p.stdout and b"W:" not in p.stderr, (p.stdout, p.stderr)
        run(["apt-get", *opts, "download", "nsd-fwd-test"], env=env, cwd=str(state / "out"),
            timeout=180)
        got = (state / "out" / deb.name).read_bytes()
        assert hashlib.sha256(got).digest() == hashlib.sha256(deb.read_bytes()).digest()
        targets = [r[2] for r in o.requests()]
        assert "/files/./Release" in targets and f"/files/./{deb.name}" in targets, targets
        line = access_line(fwd, f"method=GET url={o.base}/files/./{deb.name} ")
        assert access_status(line) == (200, "ok"), line
    finally:
        o.close()


# ---- Python urllib ----

def test_python_urllib(fwd):
    o = Origin()
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": fwd.proxy}))
        with opener.open(f"{o.base}/size/1000000", timeout=30) as r:
            assert r.status == 200 and r.read() == pattern_bytes(1000000)
        body = os.urandom(500000)
        req = urllib.request.Request(f"{o.base}/echo", data=body, method="PUT")
        with opener.open(req, timeout=30) as r:
            assert hashlib.sha256(body).hexdigest() in r.read().decode()
        with opener.open(f"{o.base}/chunked/70000", timeout=30) as r:
            assert r.read() == pattern_bytes(70000)
        with pytest.raises(urllib.error.HTTPError) as e:
            opener.open(f"{o.base}/nothing-here", timeout=30)
        assert e.value.code == 404
        access_line(fwd, f"method=PUT url={o.base}/echo ")
    finally:
        o.close()


# ---- headless Chromium ----

PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63f8cfc0f01f0005000201a5b2b9c90000000049454e44ae426082")


def test_chromium_page_from_two_origins(fwd, tmp_path):
    """A page from one origin, its script from a second (another loopback
    address), an image from the first: what the browser ran is in its DOM,
    and both origins saw their requests come through the proxy."""
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed (mk/deps.sh test list)"
    a, b = Origin("127.0.0.1"), Origin("127.0.0.2")
    try:
        a.pages["index.html"] = ("text/html", (
            "<!doctype html><html><head><title>t</title>"
            f"<script src=\"{b.base}/page/app.js\"></script></head><body>"
            f"<img id=\"px\" src=\"{a.base}/page/pixel.png\" "
            "onload=\"document.getElementById('img').textContent='image-loaded'\">"
            "<p id=\"img\">image-pending</p><p id=\"js\">script-pending</p>"
            "<script>document.getElementById('js').textContent=window.fromB||'none'</script>"
            "</body></html>").encode())
        b.pages["app.js"] = ("application/javascript",
                             b"window.fromB = 'script-from-origin-b-ran';")
        a.pages["pixel.png"] = ("image/png", PIXEL)
        # the image loads on its own schedule: poll the page until both
        # markers are in the DOM (each run is bounded)
        dom = ""
        for attempt in range(3):
            p = subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / f'profile{attempt}'}",
                 f"--proxy-server={fwd.proxy}", "--proxy-bypass-list=<-loopback>",
                 "--virtual-time-budget=10000", "--dump-dom", f"{a.base}/page/index.html"],
                capture_output=True, timeout=120)
            dom = p.stdout.decode(errors="replace")
            if "script-from-origin-b-ran" in dom and "image-loaded" in dom:
                break
        assert "script-from-origin-b-ran" in dom, (dom, p.stderr[-3000:])
        assert "image-loaded" in dom, (dom, p.stderr[-3000:])
        got_a = [r[2] for r in a.requests()]
        got_b = [r[2] for r in b.requests()]
        assert "/page/index.html" in got_a and "/page/pixel.png" in got_a, got_a
        assert "/page/app.js" in got_b, got_b
        for r in a.requests() + b.requests():
            assert ("via", "1.1 neosocksd") in r[3], r
        access_line(fwd, f"method=GET url={b.base}/page/app.js ")
    finally:
        a.close()
        b.close()


# ---- WebSocket through an Upgrade ----

class EchoWS:
    """A python3-websockets echo server in its own thread and event loop."""

    def __init__(self):
        import websockets

        self.port = free_ports(1)[0]
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def echo(ws, path=None):
            async for msg in ws:
                await ws.send(msg)

        async def main():
            self.server = await websockets.serve(echo, "127.0.0.1", self.port)
            ready.set()
            await self.server.wait_closed()

        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(main(),),
                                       daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def close(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.thread.join(10)


def test_websocket_echo_through_upgrade(fwd):
    from websockets.client import ClientConnection
    from websockets.frames import Frame, Opcode
    from websockets.uri import parse_uri

    srv = EchoWS()
    try:
        uri = f"ws://127.0.0.1:{srv.port}/echo"
        conn = ClientConnection(parse_uri(uri))
        conn.send_request(conn.connect())
        handshake = b"".join(conn.data_to_send())
        # a proxy is asked in absolute form
        line, rest = handshake.split(b"\r\n", 1)
        method, path, version = line.split(b" ")
        handshake = b" ".join([method, f"http://127.0.0.1:{srv.port}".encode() + path,
                               version]) + b"\r\n" + rest
        s = socket.create_connection(("127.0.0.1", fwd.http), timeout=30)
        s.sendall(handshake)
        messages = ["hello", "x" * 200000, "through the proxy"]
        got = []
        deadline = time.monotonic() + 30
        sent = False
        while len(got) < len(messages) and time.monotonic() < deadline:
            data = s.recv(65536)
            assert data, "the proxy closed the tunnel"
            conn.receive_data(data)
            for ev in conn.events_received():
                if isinstance(ev, Frame) and ev.opcode == Opcode.TEXT:
                    got.append(ev.data.decode())
            assert conn.handshake_exc is None, conn.handshake_exc
            if not sent and conn.state.name == "OPEN":
                for m in messages:
                    conn.send_text(m.encode())
                sent = True
            for out in conn.data_to_send():
                if out:
                    s.sendall(out)
        assert got == messages
        conn.send_close()
        for out in conn.data_to_send():
            if out:
                s.sendall(out)
        s.close()
        # one line for the request, written when the tunnel ended
        line = access_line(fwd, f"method=GET url=http://127.0.0.1:{srv.port}/echo ")
        assert " status=101 " in line, line
    finally:
        srv.close()


def test_upgrade_refused_by_origin_stays_http(fwd):
    """An Upgrade the origin does not take is an ordinary answer and the
    connection goes on as HTTP."""
    o = Origin()
    try:
        s = socket.create_connection(("127.0.0.1", fwd.http), timeout=30)
        s.sendall((f"GET {o.base}/headers HTTP/1.1\r\nConnection: upgrade\r\n"
                   "Upgrade: websocket\r\n\r\n").encode())
        bs = BufferedSock(s)
        status, fields, body, _ = read_response(bs)
        assert status == 200 and b'"upgrade", "websocket"' in body, body
        s.sendall(f"GET {o.base}/size/10 HTTP/1.1\r\n\r\n".encode())
        status, fields, body, _ = read_response(bs)
        assert status == 200 and body == pattern_bytes(10)
        s.close()
    finally:
        o.close()


def test_websocket_server_never_answers_upgrade_deadline(daemon_factory):
    """Nothing is kept waiting on an upgrade nobody answers: 504 at -t."""
    socks, http = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--http", f"127.0.0.1:{http}",
                       "--loglevel", "5", "-t", "5")
    o = Origin()
    try:
        s = socket.create_connection(("127.0.0.1", http), timeout=60)
        s.sendall((f"GET {o.base}/silent HTTP/1.1\r\nConnection: upgrade\r\n"
                   "Upgrade: websocket\r\n\r\n").encode())
        wait_until(lambda: any(r[2] == "/silent" for r in o.requests()), 30)
        bs = BufferedSock(s)
        status, _, body, _ = read_response(bs)
        assert status == 504 and body == b"upstream did not answer within 5 s\n"
        s.close()
    finally:
        o.close()
