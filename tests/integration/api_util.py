"""Helpers for the REST API tests (test_api_*.py): a raw HTTP/1.1 client
that shows the wire, the daemon with the API, a strict Prometheus text
parser, and small builders (compressed bodies, deflate bombs)."""

import gzip
import math
import os
import re
import socket
import struct
import textwrap
import threading
import time
import zlib

from helpers import connect, curl, free_ports, recv_all, socks5_connect
from privsep_util import comm, status


RPC_MIME = "application/x-neosocksd-rpc; version=1"


LIMIT = 4 << 20  # request bodies, before and after inflating


MIB = 1 << 20


# The ruleset the tests route with. @NAME@ is the one host it sends to the
# HTTP target (so which ruleset is active shows in a SOCKS reply); a module
# "names" may add hosts; /ruleset/invoke may set _G.INVOKED.
RULESET = """
    local target = "127.0.0.1:@PORT@"
    local rs = {}
    function rs.resolve(addr)
        local host = neosocksd.splithostport(addr)
        if host == "@NAME@" then return target end
        local names = package.loaded["names"]
        if type(names) == "table" and names[host] then return target end
        if host == "invoked.test" and rawget(_G, "INVOKED") then return target end
        return nil
    end
    function rs.route(addr) return addr end
    function rs.route6(addr) return addr end
    function rs.healthy() return rawget(_G, "UNHEALTHY") end
    function rs.stats(dt, q)
        return string.format("custom stats: dt is %s, q=%s\\n", type(dt), tostring(q))
    end
    return rs
"""


def ruleset_text(name, port):
    return textwrap.dedent(RULESET).replace("@NAME@", name).replace("@PORT@", str(port))


def write_ruleset(tmp_path, name, port, fname=None):
    p = tmp_path / (fname or f"{name}.lua")
    p.write_text(ruleset_text(name, port))
    return str(p)


# ---- an HTTP/1.1 client that shows the wire ----


class Resp:
    def __init__(self, status, headers, body, raw_head=b""):
        self.status, self.headers, self.body, self.raw_head = status, headers, body, raw_head

    @property
    def text(self):
        return self.body.decode(errors="replace")

    def __repr__(self):
        return f"<{self.status} {self.headers} {self.body[:200]!r}>"


def parse_head(head):
    lines = head.split(b"\r\n")
    assert lines[0].startswith(b"HTTP/1.1 "), head
    st = int(lines[0].split(b" ")[1])
    headers = {}
    for ln in lines[1:]:
        if not ln:
            continue
        k, _, v = ln.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    return st, headers


class RawConn:
    """One connection to the API: send bytes, read whole responses (by
    Content-Length; every response of ours carries one)."""

    def __init__(self, api, timeout=10.0):
        if api.unix:
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.s.settimeout(timeout)
            self.s.connect(api.unix)
        else:
            self.s = connect(api.port, timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        if time.monotonic() > self.deadline:
            raise AssertionError(f"no whole response in time (buffered {self.buf[:200]!r})")
        chunk = self.s.recv(1 << 16)
        if not chunk:
            raise EOFError(f"EOF (buffered {self.buf[:200]!r})")
        self.buf += chunk

    def response(self, timeout=30.0):
        self.deadline = time.monotonic() + timeout
        for _ in range(10):  # interim (1xx) answers, then the final one
            while b"\r\n\r\n" not in self.buf:
                self._fill()
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            st, headers = parse_head(head)
            if 100 <= st < 200:
                continue
            assert "content-length" in headers, head
            n = int(headers["content-length"])
            while len(self.buf) < n:
                self._fill()
            body, self.buf = self.buf[:n], self.buf[n:]
            return Resp(st, headers, body, head)
        raise AssertionError("more than 9 interim responses")

    def closed_by_peer(self, timeout=5.0):
        """True if the server closes (EOF/reset) within timeout, with
        nothing more sent."""
        self.s.settimeout(timeout)
        try:
            data = self.s.recv(4096)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        assert data == b"", f"unexpected bytes {data!r}"
        return True

    def close(self):
        self.s.close()


def request(method, path, body=b"", headers=None, version="1.1", host=None):
    h = dict(headers or {})
    lines = [f"{method} {path} HTTP/{version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    if body or method == "POST":
        h.setdefault("Content-Length", str(len(body)))
    for k, v in h.items():
        if v is not None:
            lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Api:
    """Where the API of a daemon is and how to talk to it."""

    def __init__(self, port=None, unix=None, token=None):
        self.port, self.unix, self.token = port, unix, token

    @property
    def host(self):
        return "localhost" if self.unix else f"127.0.0.1:{self.port}"

    def url(self, path):
        return f"http://{self.host}{path}"

    def curl(self, path, *args, token="default"):
        """curl the API; returns a Resp (the last response's head)."""
        token = self.token if token == "default" else token
        extra = []
        if self.unix:
            extra += ["--unix-socket", self.unix]
        if token:
            extra += ["-H", f"Authorization: Bearer {token}"]
        bodyf = f"/tmp/nsd-api-body-{os.getpid()}-{threading.get_ident()}"
        try:
            rc, out, err = curl("-D", "-", "-o", bodyf, *extra, *args, self.url(path))
            assert rc == 0, f"curl {path}: rc={rc} {err}"
            with open(bodyf, "rb") as f:
                body = f.read()
        finally:
            if os.path.exists(bodyf):
                os.unlink(bodyf)
        blocks = [b for b in out.split(b"\r\n\r\n") if b.strip()]
        st, headers = parse_head(blocks[-1])
        return Resp(st, headers, body, blocks[-1])

    def conn(self):
        return RawConn(self)

    def one(self, method, path, body=b"", headers=None, version="1.1", token="default"):
        """One request on a fresh connection."""
        token = self.token if token == "default" else token
        h = dict(headers or {})
        if token:
            h.setdefault("Authorization", f"Bearer {token}")
        c = self.conn()
        try:
            c.send(request(method, path, body, h, version, host=self.host))
            return c.response()
        finally:
            c.close()

    def rpc(self, code, headers=None):
        h = {"Content-Type": RPC_MIME}
        h.update(headers or {})
        return self.one("POST", "/ruleset/rpcall", code.encode(), h)

    def invoke(self, code):
        return self.one("POST", "/ruleset/invoke", code.encode())

    def metrics(self):
        r = self.one("GET", "/metrics")
        assert r.status == 200, r
        return parse_prometheus(r.text)


def start_api(daemon_factory, tmp_path, port, *extra, name="v1.test", token=None):
    socks, api = free_ports(2)
    rs = write_ruleset(tmp_path, name, port)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--api", f"127.0.0.1:{api}", "-r", rs,
                       "--loglevel", "5", *extra)
    d.socks = socks
    d.api = Api(port=api, token=token)
    return d


def routed(d, host):
    """True if the ruleset sends host to the HTTP target (which answers a
    GET through the tunnel); False if the request is refused."""
    s, rep = socks5_connect(d.socks, host, 80)
    try:
        if rep != 0:
            assert rep == 0x01, f"{host}: REP {rep}"
            return False
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        data = recv_all(s)
        assert b"hello from the target" in data, data[:200]
        return True
    finally:
        s.close()


def ruleset_pid(d):
    for pid in d.children():
        try:
            if comm(pid) == "neosocksd-rules":
                return pid
        except FileNotFoundError:
            continue
    return None


def vm_hwm_kib(pid):
    return int(status(pid)["VmHWM"].split()[0])


# ---- a strict Prometheus text-format (0.0.4) parser ----


METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")


LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


TYPES = ("counter", "gauge", "summary", "histogram", "untyped")


def parse_float(s):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    assert re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", s), f"bad float {s!r}"
    return float(s)


def parse_labels(s):
    """'a="x",b="y\\"z"' -> dict; strict about quoting and escapes."""
    labels = {}
    i = 0
    while i < len(s):
        m = re.match(r"([a-zA-Z_][a-zA-Z0-9_]*)=\"", s[i:])
        assert m, f"bad label at {s[i:]!r}"
        name = m.group(1)
        i += m.end()
        val = ""
        while True:
            assert i < len(s), f"unterminated label value in {s!r}"
            ch = s[i]
            if ch == "\\":
                assert i + 1 < len(s) and s[i + 1] in '\\"n', f"bad escape in {s!r}"
                val += {"\\": "\\", '"': '"', "n": "\n"}[s[i + 1]]
                i += 2
            elif ch == '"':
                i += 1
                break
            else:
                assert ch != "\n"
                val += ch
                i += 1
        assert name not in labels, f"label {name} twice in {s!r}"
        labels[name] = val
        if i < len(s):
            assert s[i] == ",", f"expected ',' in {s!r}"
            i += 1
    return labels


def family_of(name, types):
    """The declared family a sample name belongs to."""
    if name in types:
        return name
    for suffix, kinds in (("_sum", ("summary", "histogram")), ("_count", ("summary", "histogram")),
                          ("_bucket", ("histogram",))):
        if name.endswith(suffix) and types.get(name[:-len(suffix)]) in kinds:
            return name[:-len(suffix)]
    return None


def parse_prometheus(text):
    """Returns {family: {"type":, "help":, "samples": [(name, labels, value)]}}.
    Fails on anything outside the text format: every sample's family must
    have been declared by a TYPE line before it, a family's samples must be
    contiguous, no series twice, HELP/TYPE at most once per family."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    fams = {}
    types = {}
    seen_series = set()
    closed = set()
    current = None
    for ln in text.split("\n")[:-1]:
        assert ln == ln.strip() or ln.startswith("# "), f"stray whitespace: {ln!r}"
        if ln.startswith("#"):
            parts = ln.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                assert METRIC_NAME.match(name), ln
                f = fams.setdefault(name, {"type": None, "help": None, "samples": []})
                if parts[1] == "TYPE":
                    assert len(parts) == 4 and parts[3] in TYPES, ln
                    assert f["type"] is None, f"TYPE twice for {name}"
                    assert not f["samples"], f"TYPE after samples for {name}"
                    f["type"] = types[name] = parts[3]
                else:
                    assert f["help"] is None, f"HELP twice for {name}"
                    f["help"] = parts[3] if len(parts) == 4 else ""
            continue
        assert ln, "empty line"
        m = re.fullmatch(r"([^{ ]+)(\{(.*)\})? ([^ ]+)( -?\d+)?", ln)
        assert m, f"not a sample line: {ln!r}"
        name, labels, value = m.group(1), parse_labels(m.group(3) or ""), parse_float(m.group(4))
        assert METRIC_NAME.match(name), ln
        for k in labels:
            assert LABEL_NAME.match(k) and not k.startswith("__"), ln
        fam = family_of(name, types)
        assert fam is not None, f"sample {name} has no TYPE declared before it"
        if current != fam:
            assert fam not in closed, f"samples of {fam} are not contiguous"
            if current is not None:
                closed.add(current)
            current = fam
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen_series, f"series twice: {ln}"
        seen_series.add(key)
        if types[fam] == "counter":
            assert value >= 0, ln
        if types[fam] == "summary" and name == fam:
            assert "quantile" in labels, ln
        fams[fam]["samples"].append((name, labels, value))
    return fams


def sample(fams, name, **labels):
    fam = family_of(name, {k: v["type"] for k, v in fams.items()})
    assert fam is not None, f"no family {name}"
    found = [v for n, lb, v in fams[fam]["samples"] if n == name and lb == labels]
    assert len(found) == 1, f"{name}{labels}: {found}"
    return found[0]


def stats_value(text, label):
    m = re.search(rf"^{re.escape(label)} *: (.*)$", text, re.M)
    assert m, f"no {label!r} in:\n{text}"
    return m.group(1)


def gzip_members(*parts):
    return b"".join(gzip.compress(p) for p in parts)


def server_socket_queues(api_port, client_port):
    """(tx_queue, rx_queue) of the server's side of a loopback connection
    (rx_queue 0: the server has read everything sent so far), or None."""
    want_local = "0100007F:%04X" % api_port
    want_remote = "0100007F:%04X" % client_port
    with open("/proc/net/tcp") as f:
        for ln in f.readlines()[1:]:
            parts = ln.split()
            if parts[1] == want_local and parts[2] == want_remote:
                tx, rx = parts[4].split(":")
                return int(tx, 16), int(rx, 16)
    return None  # gone (closed)


def server_socket_state(api_port, client_port):
    """The TCP state (as in /proc/net/tcp: 1 established, 4 FIN_WAIT1 ...)
    of the server's side of a loopback connection, or None if gone."""
    want_local = "0100007F:%04X" % api_port
    want_remote = "0100007F:%04X" % client_port
    with open("/proc/net/tcp") as f:
        for ln in f.readlines()[1:]:
            parts = ln.split()
            if parts[1] == want_local and parts[2] == want_remote:
                return int(parts[3], 16)
    return None


def lua_comment(n):
    """A Lua chunk of exactly n bytes that does nothing."""
    return b"--" + b"x" * (n - 2)


def zero_bomb(gz=False, total=1 << 30):
    """A valid zlib (or gzip) stream of `total` zero bytes, about total/1000
    bytes long, built without compressing it all: after a full flush the
    compressor's output for the same input repeats."""
    chunk = b"\0" * MIB
    c = zlib.compressobj(9, zlib.DEFLATED, 31 if gz else 15)
    first = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    rep = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    assert c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH) == rep
    end = c.flush(zlib.Z_FINISH)
    n = total // MIB
    if gz:
        crc = 0
        for _ in range(n):
            crc = zlib.crc32(chunk, crc)
        trailer = struct.pack("<II", crc, total & 0xFFFFFFFF)
        return first + rep * (n - 1) + end[:-8] + trailer
    adler = ((total % 65521) << 16) | 1  # adler32 of zeros
    return first + rep * (n - 1) + end[:-4] + struct.pack(">I", adler)


ADMIN_TOKEN = "adm1n-T0ken-abcdefghijklmnop"


RO_TOKEN = "read0nly-T0ken-qrstuvwxyz0123"


def token_files(tmp_path):
    a = tmp_path / "admin.token"
    a.write_text(ADMIN_TOKEN + "\n")
    r = tmp_path / "ro.token"
    r.write_text(RO_TOKEN + "\n")
    os.chmod(a, 0o600)
    os.chmod(r, 0o600)
    return str(a), str(r)


IEC = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def iec(s):
    m = re.fullmatch(r"([\d.]+)(B|KiB|MiB|GiB)", s)
    assert m, s
    return float(m.group(1)) * IEC[m.group(2)]


def stats_numbers(text):
    out = {}
    m = re.fullmatch(r"(\d+) \(\+(\d+)\), Rx (\S+), Tx (\S+)", stats_value(text, "Requests"))
    out["ok"], out["failed"] = int(m.group(1)), int(m.group(2))
    m = re.fullmatch(r"(\d+) \(\+(\d+)\)", stats_value(text, "Conn Accepts"))
    out["accepts"] = int(m.group(1))
    m = re.fullmatch(r"ruleset=(\d+), timeout=(\d+), upstream=(\d+)", stats_value(text, "Num Rejected"))
    out["rej_ruleset"] = int(m.group(1))
    m = re.fullmatch(r"Up (\S+), Down (\S+)", stats_value(text, "Traffic"))
    out["up"], out["down"] = iec(m.group(1)), iec(m.group(2))
    m = re.fullmatch(r"(\d+) \(\+(\d+)\), Rx (\S+), Tx (\S+)", stats_value(text, "API Requests"))
    out["api"] = int(m.group(1)) + int(m.group(2))
    return out
