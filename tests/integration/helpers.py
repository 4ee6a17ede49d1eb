"""Small helpers shared by the integration tests: ports, polling, raw SOCKS
and HTTP CONNECT clients, curl, and the data-integrity exchange."""

import hashlib
import os
import socket
import struct
import subprocess
import threading
import time


def free_port(host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(cond, timeout=10.0, what=None, interval=0.02):
    """Poll cond() until true; fail with what() (or a generic text)."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return
        if time.monotonic() > deadline:
            raise AssertionError(what() if callable(what) else (what or "condition not met in time"))
        time.sleep(interval)


def connect(port, host="127.0.0.1", timeout=10.0):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, port))
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def recv_all(s):
    """Read until EOF (or reset)."""
    buf = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return buf
        if not chunk:
            return buf
        buf += chunk


def is_closed(s, timeout=5.0):
    """True when the peer closes within timeout (EOF or reset)."""
    s.settimeout(timeout)
    try:
        while True:
            data = s.recv(4096)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


# ---- SOCKS clients (raw bytes, so tests can also send bad ones) ----

def socks5_target(host, port):
    try:
        return b"\x01" + socket.inet_pton(socket.AF_INET, host) + struct.pack(">H", port)
    except OSError:
        pass
    try:
        return b"\x04" + socket.inet_pton(socket.AF_INET6, host) + struct.pack(">H", port)
    except OSError:
        pass
    name = host.encode()
    return b"\x03" + bytes([len(name)]) + name + struct.pack(">H", port)


def socks5_read_reply(s):
    head = recv_exact(s, 4)
    atyp = head[3]
    if atyp == 1:
        rest = recv_exact(s, 6)
    elif atyp == 4:
        rest = recv_exact(s, 18)
    elif atyp == 3:
        ln = recv_exact(s, 1)
        rest = ln + recv_exact(s, ln[0] + 2)
    else:
        raise AssertionError(f"bad ATYP in reply {head!r}")
    return head[1], head + rest


def socks5_connect(proxy_port, host, port, user=None, password=None, timeout=10.0):
    """Open a SOCKS5 tunnel; returns (socket, REP). The socket is open only
    when REP == 0."""
    s = connect(proxy_port, timeout=timeout)
    if user is None:
        s.sendall(b"\x05\x01\x00")
    else:
        s.sendall(b"\x05\x01\x02")
    m = recv_exact(s, 2)
    assert m[0] == 5
    if m[1] == 0x02:
        u, p = user.encode(), (password or "").encode()
        s.sendall(b"\x01" + bytes([len(u)]) + u + bytes([len(p)]) + p)
        a = recv_exact(s, 2)
        if a[1] != 0:
            return s, -1
    elif m[1] != 0:
        return s, -1
    s.sendall(b"\x05\x01\x00" + socks5_target(host, port))
    rep, _ = socks5_read_reply(s)
    return s, rep


def socks4_connect(proxy_port, host, port, userid=b"", timeout=10.0):
    """SOCKS4 (IPv4 host) or SOCKS4A (name); returns (socket, CD)."""
    s = connect(proxy_port, timeout=timeout)
    try:
        ip = socket.inet_pton(socket.AF_INET, host)
        req = b"\x04\x01" + struct.pack(">H", port) + ip + userid + b"\0"
    except OSError:
        req = (b"\x04\x01" + struct.pack(">H", port) + b"\0\0\0\x01" + userid + b"\0"
               + host.encode() + b"\0")
    s.sendall(req)
    r = recv_exact(s, 8)
    assert r[0] == 0, r
    return s, r[1]


def http_connect(proxy_port, target, headers=b"", timeout=10.0):
    """CONNECT through the HTTP listener; returns (socket, status, head)."""
    s = connect(proxy_port, timeout=timeout)
    s.sendall(b"CONNECT " + target.encode() + b" HTTP/1.1\r\nHost: " + target.encode()
              + b"\r\n" + headers + b"\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        ch = s.recv(1)
        if not ch:
            break
        head += ch
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.") else None
    return s, status, head


def exchange(s, up_bytes, down_bytes):
    """Data-integrity exchange with HashServer over an open tunnel: send
    up_bytes random bytes while receiving down_bytes, half-close, and check
    both SHA-256 digests. Returns nothing; raises on mismatch."""
    from conftest import pattern_bytes

    s.settimeout(60)
    payload = os.urandom(up_bytes)
    s.sendall(f"{down_bytes}\n".encode())
    err = []

    def send():
        try:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:  # pragma: no cover - reported below
            err.append(e)

    t = threading.Thread(target=send)
    t.start()
    got = recv_exact(s, down_bytes + 32)
    t.join()
    assert not err, err
    assert got[:down_bytes] == pattern_bytes(down_bytes, b"srv"), "downstream bytes corrupted"
    assert got[down_bytes:] == hashlib.sha256(payload).digest(), "upstream bytes corrupted"
    assert recv_all(s) == b"", "bytes after the digest"


def curl(*args, timeout=30):
    """Run curl; returns (returncode, stdout bytes, stderr text)."""
    p = subprocess.run(["curl", "-sS", "--max-time", str(timeout - 5)] + list(args),
                       capture_output=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


# ---- helpers for the chain, failure, bad-input and client tests ----

def wait_port(port, host="127.0.0.1", timeout=10.0):
    """Poll until something accepts TCP connections on host:port."""
    def accepting():
        try:
            with connect(port, host, timeout=1.0):
                return True
        except OSError:
            return False
    wait_until(accepting, timeout, f"nothing accepts on {host}:{port}")


def read_head(s, limit=65536):
    """Read an HTTP head byte by byte until CRLFCRLF or EOF (or limit)."""
    head = b""
    while b"\r\n\r\n" not in head and len(head) < limit:
        try:
            ch = s.recv(1)
        except ConnectionResetError:
            break
        if not ch:
            break
        head += ch
    return head


def head_status(head):
    """The status code of an HTTP response head, or None."""
    if not head.startswith(b"HTTP/1."):
        return None
    return int(head.split(b" ")[1])


def reply_then_close(s, timeout=3.0):
    """Everything the peer sends until it closes; fails if it does not close
    within timeout (the "answers or closes at once" check)."""
    s.settimeout(timeout)
    buf = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return buf
            buf += chunk
    except ConnectionResetError:
        return buf
    except socket.timeout:
        raise AssertionError(f"peer did not close within {timeout}s (got {buf!r})")


def watch_closes(socks, timeout):
    """socks: {name: socket}. Wait (bounded by timeout) until every socket is
    closed by its peer; returns {name: (seconds until EOF or None, bytes)}.
    Time is measured from the call."""
    import selectors

    t0 = time.monotonic()
    sel = selectors.DefaultSelector()
    out = {}
    data = {}
    for name, s in socks.items():
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, name)
        data[name] = b""
    try:
        while len(out) < len(socks):
            left = t0 + timeout - time.monotonic()
            if left <= 0:
                break
            for key, _ in sel.select(left):
                name = key.data
                try:
                    chunk = key.fileobj.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except ConnectionResetError:
                    chunk = b""
                if chunk:
                    data[name] += chunk
                    continue
                out[name] = time.monotonic() - t0
                sel.unregister(key.fileobj)
    finally:
        sel.close()
        for s in socks.values():
            s.setblocking(True)
    return {name: (out.get(name), data[name]) for name in socks}


def http_get_over(s, host, port, path):
    """HTTP/1.1 GET over an open tunnel (to HTTPFiles); returns the body."""
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
              f"Connection: close\r\n\r\n".encode())
    head = read_head(s)
    assert head.startswith(b"HTTP/1.1 200"), head
    length = None
    for line in head.split(b"\r\n")[1:]:
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    assert length is not None, head
    return recv_exact(s, length)


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never sends a byte. Counts
    connections accepted and connections the peer has closed."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.accepted = 0
        self.peer_closed = 0
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.conns.append(c)
            threading.Thread(target=self._drain, args=(c,), daemon=True).start()

    def _drain(self, c):
        try:
            while c.recv(4096):
                pass
        except OSError:
            pass
        with self.lock:
            self.peer_closed += 1

    def close(self):
        self.sock.close()
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()


class AuthConnectProxy:
    """A small threaded HTTP CONNECT proxy on 127.0.0.1 that requires
    "Proxy-Authorization: Basic b64(user:password)" (407 otherwise) and
    tunnels only to loopback targets (403 otherwise, 502 if the dial fails).
    .auth_seen lists the decoded credentials of every request."""

    def __init__(self, user, password):
        import base64

        self.expected = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.auth_seen = []
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        import base64

        up = None
        try:
            c.settimeout(30)
            head = read_head(c)
            if b"\r\n\r\n" not in head:
                return
            lines = head.split(b"\r\n")
            method, target, _ = lines[0].decode().split(" ", 2)
            auth = None
            for line in lines[1:]:
                if line.lower().startswith(b"proxy-authorization:"):
                    auth = line.split(b":", 1)[1].strip().decode()
            if auth is not None and auth.startswith("Basic "):
                try:
                    decoded = base64.b64decode(auth[6:]).decode()
                except ValueError:
                    decoded = None
                with self.lock:
                    self.auth_seen.append(decoded)
            if method != "CONNECT":
                c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            if auth != "Basic " + self.expected:
                c.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                          b"Proxy-Authenticate: Basic realm=\"test\"\r\n"
                          b"Content-Length: 0\r\n\r\n")
                return
            host, _, port = target.rpartition(":")
            host = host.strip("[]")
            if host not in ("127.0.0.1", "::1", "localhost"):
                c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            try:
                up = socket.create_connection((host, int(port)), timeout=10)
            except OSError:
                c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            up.settimeout(None)
            c.settimeout(None)
            c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            t = threading.Thread(target=_pump, args=(up, c), daemon=True)
            t.start()
            _pump(c, up)
            t.join(60)
        except (OSError, ValueError):
            pass
        finally:
            if up is not None:
                up.close()
            c.close()

    def close(self):
        self.sock.close()
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _pump(src, dst):
    """Copy src to dst until EOF, then half-close dst."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def assert_socks5_served(proxy_port, target_port, host="127.0.0.1"):
    """A fresh SOCKS5 client gets a tunnel to a HashServer and moves data
    both ways intact."""
    s, rep = socks5_connect(proxy_port, host, target_port)
    try:
        assert rep == 0, f"fresh SOCKS5 client got REP {rep}"
        exchange(s, 20000, 20000)
    finally:
        s.close()


def assert_http_served(proxy_port, target_port, host="127.0.0.1"):
    """A fresh HTTP CONNECT client gets a tunnel to a HashServer and moves
    data both ways intact."""
    s, status, head = http_connect(proxy_port, f"{host}:{target_port}")
    try:
        assert status == 200, f"fresh HTTP client got {head!r}"
        exchange(s, 20000, 20000)
    finally:
        s.close()


def access_line(d, needle, timeout=10.0):
    """Wait for the daemon's access-log line containing needle; returns the
    last such line (without the log prefix up to the "[#id]")."""
    found = []

    def present():
        found[:] = [ln for ln in d.log().splitlines() if needle in ln and "[#" in ln]
        return bool(found)

    wait_until(present, timeout, lambda: f"no access line with {needle!r}:\n{d.log()}")
    line = found[-1]
    return line[line.index("[#"):]


def cpu_seconds(pids):
    """User + system CPU time (s) used so far by the given processes."""
    tck = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tck


class TcpServer:
    """Base: a threaded TCP server (default 127.0.0.1, any port) calling
    self._serve(conn) for each connection."""

    def __init__(self, host="127.0.0.1", port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(c)
            threading.Thread(target=self._serve_wrap, args=(c,), daemon=True).start()

    def _serve_wrap(self, c):
        try:
            c.settimeout(30)
            self._serve(c)
        except (OSError, ValueError, EOFError):
            pass
        finally:
            c.close()

    def close(self):
        self.sock.close()
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class ScriptedServer(TcpServer):
    """Reads the first chunk a client sends, answers with fixed bytes, then
    closes: a misbehaving upstream proxy."""

    def __init__(self, reply):
        self.reply = reply
        super().__init__()

    def _serve(self, c):
        c.recv(4096)
        if self.reply:
            c.sendall(self.reply)


def _socks5_read_target(c):
    head = recv_exact(c, 4)
    atyp = head[3]
    if atyp == 1:
        host = socket.inet_ntop(socket.AF_INET, recv_exact(c, 4))
    elif atyp == 4:
        host = socket.inet_ntop(socket.AF_INET6, recv_exact(c, 16))
    else:
        host = recv_exact(c, recv_exact(c, 1)[0]).decode()
    port = int.from_bytes(recv_exact(c, 2), "big")
    return host, port


class SplitReplyProxy(TcpServer):
    """A one-hop proxy ("socks5" or "http", no auth) that sends the first
    bytes of its CONNECT reply, sets .first_sent, waits for .release, then
    sends the rest and tunnels to the (loopback) target."""

    def __init__(self, scheme):
        self.scheme = scheme
        self.first_sent = threading.Event()
        self.release = threading.Event()
        super().__init__()

    def _serve(self, c):
        if self.scheme == "socks5":
            n = recv_exact(c, 2)[1]
            recv_exact(c, n)
            c.sendall(b"\x05\x00")
            host, port = _socks5_read_target(c)
            reply = b"\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38"
            cut = 5
        else:
            head = read_head(c)
            host, _, port = head.split(b" ")[1].decode().rpartition(":")
            host, port = host.strip("[]"), int(port)
            reply = b"HTTP/1.1 200 Connection established\r\nVia: test\r\n\r\n"
            cut = 12
        if host not in ("127.0.0.1", "::1", "localhost"):
            return
        up = socket.create_connection((host, port), timeout=10)
        try:
            c.sendall(reply[:cut])
            self.first_sent.set()
            if not self.release.wait(30):
                return
            c.sendall(reply[cut:])
            up.settimeout(None)
            c.settimeout(None)
            t = threading.Thread(target=_pump, args=(up, c), daemon=True)
            t.start()
            _pump(c, up)
            t.join(60)
        finally:
            up.close()


def free_ports(n, host="127.0.0.1"):
    """n distinct free ports (all bound at once, so no two are equal)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks = [socket.socket(fam, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class StartedProxy:
    """A daemon with SOCKS on .socks and HTTP on .http; unpacks as
    (daemon, socks, http)."""

    def __init__(self, d, socks, http):
        self.d, self.socks, self.http = d, socks, http

    def __iter__(self):
        return iter((self.d, self.socks, self.http))


def start_proxy(daemon_factory, *extra):
    """Start a daemon with SOCKS and HTTP listeners on two distinct free
    loopback ports and the access log on; extra arguments are appended."""
    socks, http = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--http", f"127.0.0.1:{http}",
                       "--loglevel", "5", *extra)
    return StartedProxy(d, socks, http)
