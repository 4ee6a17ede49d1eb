"""Origin servers for the forward-proxy tests: a small threaded HTTP/1.1
server (keep-alive, chunked request and response bodies, 100-continue,
interim and bodiless responses, misbehaving answers on purpose) that
records every connection and request it sees, and helpers for raw HTTP
exchanges through the proxy."""

import hashlib
import json
import os
import socket
import subprocess
import threading

from harness import pattern_bytes, recv_all, recv_exact


def read_head(sock, buf=b""):
    """Read one head; returns (head bytes without the final CRLFCRLF, rest)
    or (None, buf) on EOF."""
    while b"\r\n\r\n" not in buf:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            return None, buf
        if not chunk:
            return None, buf
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def parse_head(head):
    """(start line, [(lower-case name, value)])"""
    lines = head.decode("latin-1").split("\r\n")
    fields = []
    for ln in lines[1:]:
        name, _, value = ln.partition(":")
        fields.append((name.strip().lower(), value.strip()))
    return lines[0], fields


def field(fields, name):
    vals = [v for n, v in fields if n == name]
    return vals[0] if vals else None


class BufferedSock:
    """A socket with a read buffer, for parsing messages by hand."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("peer closed")
        self.buf += chunk

    def head(self):
        while b"\r\n\r\n" not in self.buf:
            self.fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        return head

    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        out, _, self.buf = self.buf.partition(b"\r\n")
        return out

    def chunked(self):
        """A chunked body; returns (payload, [chunk sizes])."""
        out, sizes = b"", []
        while True:
            size = int(self.line().split(b";")[0], 16)
            if size == 0:
                while self.line() != b"":
                    pass
                return out, sizes
            sizes.append(size)
            out += self.exact(size)
            assert self.exact(2) == b"\r\n"

    def until_eof(self):
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                out, self.buf = self.buf, b""
                return out
            self.buf += chunk


def read_response(bs, head_request=False):
    """One response from a BufferedSock: (status, fields, body, raw head).
    1xx interim responses are returned too (call again for the next)."""
    head = bs.head()
    start, fields = parse_head(head)
    status = int(start.split(" ")[1])
    if status < 200 or status in (204, 304) or head_request:
        return status, fields, b"", head
    te = field(fields, "transfer-encoding")
    cl = field(fields, "content-length")
    if te is not None and te.lower() == "chunked":
        body, _ = bs.chunked()
    elif cl is not None:
        body = bs.exact(int(cl))
    else:
        body = bs.until_eof()
    return status, fields, body, head


STREAM_BLOCK = bytes(range(256)) * 256  # 64 KiB


def stream_digest(total):
    """SHA-256 of /stream/total's body."""
    h = hashlib.sha256()
    left = total
    while left > 0:
        k = min(left, len(STREAM_BLOCK))
        h.update(STREAM_BLOCK[:k])
        left -= k
    return h.hexdigest()


class Origin:
    """A threaded HTTP/1.1 origin on host (default 127.0.0.1), any port.

    GET /size/N       N bytes of pattern_bytes(N), Content-Length
    GET /chunked/N    the same bytes, chunked (chunks of 1, 7, 4096, 65536...)
    GET /close/N      the same bytes, no framing: the end is the close
    GET /headers      JSON: the request line and fields as received
    *   /echo         JSON: method, body length and SHA-256 (Content-Length
                      or chunked bodies), the fields received
    *   /status/NNN   that status, no body
    GET /hints        103 Early Hints, then 200
    *   /early-413    413 at once without reading the body, then close
    GET /silent       never answers
    GET /bighead/N    200 with a field of N bytes
    GET /cl-te        a response with Content-Length and chunked (broken)
    GET /badchunk     a chunked response whose second chunk size is bad
    GET /close-after  200 with Connection: close, then the close
    GET /page/NAME    a file given to pages[NAME] = (content type, bytes)
    GET /files/PATH   the file root/PATH (404 when missing), HEAD too
    GET /drop-next    200, then the next request on that connection is
                      read and the connection closed without an answer
                      (the race every keep-alive client meets)
    GET /stream/N     N bytes of STREAM_BLOCK repeated, sent as the client
                      takes them (.sent[connection] counts them)
    PUT /slow-sink    reads the head, waits for .release, then the body
                      (.received counts it), answers its SHA-256
    Expect: 100-continue gets "100 Continue" before the body is read.

    .conns counts connections accepted; .log lists (connection number,
    method, target, fields) per request."""

    def __init__(self, host="127.0.0.1", root=None):
        self.root = root
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.conns = 0
        self.log = []
        self.pages = {}
        self.open = []
        self.sent = {}
        self.drop_next = set()
        self.received = 0
        self.release = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def base(self):
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{h}:{self.port}"

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns += 1
                n = self.conns
                self.open.append(c)
            threading.Thread(target=self._serve, args=(c, n), daemon=True).start()

    def requests(self):
        with self.lock:
            return list(self.log)

    def close(self):
        self.sock.close()
        with self.lock:
            conns, self.open = self.open, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # ---- serving ----

    def _serve(self, c, n):
        bs = BufferedSock(c)
        c.settimeout(60)
        try:
            while self._one(bs, n):
                pass
        except (OSError, EOFError, ValueError):
            pass
        finally:
            c.close()

    def _body(self, bs, fields):
        te = field(fields, "transfer-encoding")
        if te is not None and te.lower() == "chunked":
            body, _ = bs.chunked()
            return body
        cl = field(fields, "content-length")
        return bs.exact(int(cl)) if cl else b""

    def _send(self, bs, status, body=b"", extra=(), reason="OK"):
        lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
        lines += list(extra)
        bs.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def _stream(self, bs, n, total):
        bs.sock.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n".encode())
        left = total
        while left > 0:
            k = bs.sock.send(STREAM_BLOCK[:min(left, len(STREAM_BLOCK))])
            left -= k
            with self.lock:
                self.sent[n] = total - left

    def _slow_sink(self, bs, fields):
        if not self.release.wait(120):
            return
        total = int(field(fields, "content-length"))
        h = hashlib.sha256()
        while total > 0:
            if not bs.buf:
                bs.fill()
            part, bs.buf = bs.buf[:total], bs.buf[total:]
            h.update(part)
            total -= len(part)
            with self.lock:
                self.received += len(part)
        self._send(bs, 200, h.hexdigest().encode())

    def _file(self, bs, method, rel):
        full = os.path.realpath(os.path.join(self.root, rel))
        if not full.startswith(os.path.realpath(self.root) + "/") or not os.path.isfile(full):
            self._send(bs, 404, b"not found\n", reason="Not Found")
            return
        with open(full, "rb") as f:
            data = f.read()
        if method == "HEAD":
            bs.sock.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(data)}\r\n\r\n".encode())
        else:
            self._send(bs, 200, data, ["Content-Type: application/octet-stream"])

    def _one(self, bs, n):
        try:
            head = bs.head()
        except EOFError:
            return False
        start, fields = parse_head(head)
        method, target, version = start.split(" ")
        with self.lock:
            self.log.append((n, method, target, fields))
            if n in self.drop_next:
                self.drop_next.discard(n)
                return False
        path = target.partition("?")[0]
        if path == "/drop-next":
            with self.lock:
                self.drop_next.add(n)
        keep = version == "HTTP/1.1" and (field(fields, "connection") or "").lower() != "close"
        expect = (field(fields, "expect") or "").lower() == "100-continue"
        if path == "/early-413":
            self._send(bs, 413, b"too large\n", ["Connection: close"], "Content Too Large")
            return False
        if expect:
            bs.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if path == "/slow-sink":
            body = b""
        else:
            body = self._body(bs, fields)
        if path.startswith("/size/"):
            data = pattern_bytes(int(path[6:]))
            if method == "HEAD":
                bs.sock.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(data)}\r\n\r\n".encode())
            else:
                self._send(bs, 200, data)
        elif path.startswith("/chunked/"):
            data = pattern_bytes(int(path[9:]))
            out = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Chunked: yes\r\n\r\n"]
            sizes, i, k = [1, 7, 4096, 65536, 100000], 0, 0
            while i < len(data):
                part = data[i:i + sizes[k % len(sizes)]]
                out.append(b"%x;ext=1\r\n" % len(part) + part + b"\r\n")
                i += len(part)
                k += 1
            out.append(b"0\r\nX-Trailer: t\r\n\r\n")
            bs.sock.sendall(b"".join(out))
        elif path.startswith("/close/"):
            data = pattern_bytes(int(path[7:]))
            bs.sock.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + data)
            return False
        elif path == "/headers":
            self._send(bs, 200, json.dumps({"start": start, "fields": fields}).encode(),
                       ["Content-Type: application/json"])
        elif path == "/echo":
            doc = {"method": method, "length": len(body),
                   "sha256": hashlib.sha256(body).hexdigest(), "fields": fields}
            self._send(bs, 200, json.dumps(doc).encode(), ["Content-Type: application/json"])
        elif path.startswith("/status/"):
            code = int(path[8:])
            bs.sock.sendall(f"HTTP/1.1 {code} Status\r\n\r\n".encode())
        elif path == "/hints":
            bs.sock.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
            self._send(bs, 200, b"after hints\n")
        elif path == "/silent":
            bs.until_eof()
            return False
        elif path.startswith("/bighead/"):
            self._send(bs, 200, b"big head\n", ["X-Big: " + "b" * int(path[9:])])
        elif path == "/cl-te":
            bs.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        elif path == "/badchunk":
            bs.sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n")
            bs.until_eof()
            return False
        elif path == "/close-after":
            self._send(bs, 200, b"bye\n", ["Connection: close"])
            return False
        elif path == "/drop-next":
            self._send(bs, 200, b"kept\n")
        elif path.startswith("/stream/"):
            self._stream(bs, n, int(path[8:]))
        elif path == "/slow-sink":
            self._slow_sink(bs, fields)
        elif path.startswith("/files/") and self.root is not None:
            self._file(bs, method, path[7:])
        elif path.startswith("/page/") and path[6:] in self.pages:
            ctype, data = self.pages[path[6:]]
            self._send(bs, 200, data, [f"Content-Type: {ctype}", "Cache-Control: no-store"])
        else:
            self._send(bs, 404, b"not found\n", reason="Not Found")
        return keep


def raw_request(proxy_port, requests, timeout=30):
    """Send the given request bytes on one connection (all at once:
    pipelined) and read as many final responses; returns
    [(status, fields, body)] and the socket (still open)."""
    s = socket.create_connection(("127.0.0.1", proxy_port), timeout=timeout)
    s.sendall(b"".join(requests))
    bs = BufferedSock(s)
    out = []
    for req in requests:
        is_head = req.startswith(b"HEAD ")
        while True:
            status, fields, body, _ = read_response(bs, is_head)
            if status >= 200 or status == 101:
                break
        out.append((status, fields, body))
    return out, bs


def get(url, host_header=None):
    """An absolute-form GET request's bytes."""
    h = host_header or url.split("/")[2]
    return f"GET {url} HTTP/1.1\r\nHost: {h}\r\nUser-Agent: t\r\n\r\n".encode()


def git_backend_env(root):
    env = dict(os.environ)
    env["GIT_PROJECT_ROOT"] = root
    env["GIT_HTTP_EXPORT_ALL"] = "1"
    return env


class GitOrigin(Origin):
    """Serves repositories under root with `git http-backend` (smart HTTP,
    as CGI: one process per request)."""

    def __init__(self, root, host="127.0.0.1"):
        super().__init__(host, root)

    def _one(self, bs, n):
        try:
            head = bs.head()
        except EOFError:
            return False
        start, fields = parse_head(head)
        method, target, version = start.split(" ")
        with self.lock:
            self.log.append((n, method, target, fields))
        if (field(fields, "expect") or "").lower() == "100-continue":
            bs.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = self._body(bs, fields)
        path, _, query = target.partition("?")
        env = git_backend_env(self.root)
        env.update({"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
                    "CONTENT_TYPE": field(fields, "content-type") or "",
                    "CONTENT_LENGTH": str(len(body)),
                    "GIT_PROTOCOL": field(fields, "git-protocol") or "",
                    "HTTP_CONTENT_ENCODING": field(fields, "content-encoding") or "",
                    "REMOTE_ADDR": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1"})
        p = subprocess.run(["git", "http-backend"], input=body, env=env,
                           capture_output=True, timeout=60)
        head, _, out = p.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, out = p.stdout.partition(b"\n\n")
        status, extra = 200, []
        for ln in head.decode("latin-1").replace("\r\n", "\n").split("\n"):
            name, _, value = ln.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split(" ")[0])
            elif name:
                extra.append(f"{name}: {value.strip()}")
        self._send(bs, status, out, extra, reason="Status")
        return version == "HTTP/1.1"


def recv_until_close(s, timeout=10):
    """Everything up to EOF (or a reset), waiting at most timeout per read."""
    s.settimeout(timeout)
    return recv_all(s)


__all__ = ["Origin", "GitOrigin", "BufferedSock", "read_response", "raw_request", "get",
           "parse_head", "field", "read_head", "recv_exact", "recv_until_close"]
