"""The peers the benchmark measures, as one table (PEERS), and how each is
started and checked.

A peer is a program serving SOCKS5 on a free 127.0.0.1 port (or "direct":
no proxy, the physical limit). Its group says where the report puts it:
  direct     the no-proxy path
  ours       this daemon (build/neosocksd), with or without a ruleset
  reference  the reference neosocksd (../shared/peers/neosocksd-ref)
  other      microsocks, dante (Debian packages)
`protocols` lists what a peer serves, so that a scenario can pick the peers
it applies to: the SOCKS scenarios take those with "socks5", the HTTP
forward-proxy ones those with "http" (ours and the reference with an
`--http` listener beside their SOCKS one, and tinyproxy); a later UDP
scenario would take those with "udp".

`neosocksd` runs with the default --workers (one front per CPU the daemon
may use: 2 on this machine); `neosocksd-w1` with one, the daemon of before
the workers. Another variant is a row like it: PeerSpec("neosocksd-w4",
"ours", "neosocksd --workers 4", daemon_args=["--workers", "4"]).
"""
import os
import shlex
import shutil
import socket
import time

from benchproc import PROCS

RULES_COUNT = 1000
READY_TIMEOUT = 10.0


class PeerSpec:
    def __init__(self, name, group, label, daemon_args=(), rules=None,
                 protocols=("socks5",)):
        self.name = name
        self.group = group
        self.label = label
        self.daemon_args = list(daemon_args)
        self.rules = rules            # None, "indexed" or "linear"
        self.protocols = set(protocols)


PEERS = [
    PeerSpec("direct", "direct", "direct", protocols=()),
    PeerSpec("neosocksd", "ours", "neosocksd", protocols=("socks5", "http")),
    PeerSpec("neosocksd-w1", "ours", "neosocksd --workers 1", daemon_args=["--workers", "1"]),
    PeerSpec("neosocksd-rules", "ours", "neosocksd, 1,000 rules (indexed)", rules="indexed"),
    PeerSpec("neosocksd-linear", "ours", "neosocksd, 1,000 rules (linear)", rules="linear"),
    PeerSpec("ref", "reference", "reference", protocols=("socks5", "http")),
    PeerSpec("ref-pipe", "reference", "reference --pipe", daemon_args=["--pipe"]),
    PeerSpec("ref-rules", "reference", "reference, 1,000 rules (indexed)", rules="indexed"),
    PeerSpec("ref-linear", "reference", "reference, 1,000 rules (linear)", rules="linear"),
    PeerSpec("microsocks", "other", "microsocks"),
    PeerSpec("dante", "other", "dante"),
    PeerSpec("tinyproxy", "other", "tinyproxy", protocols=("http",)),
]
SPECS = {p.name: p for p in PEERS}


class Peer:
    """A peer of this run: its spec, process, port and status."""

    def __init__(self, spec):
        self.spec = spec
        self.name = spec.name
        self.proc = None
        self.port = None        # SOCKS5
        self.http_port = None   # HTTP proxy
        self.status = "not started"
        self.available = False

    @property
    def is_proxy(self):
        return self.spec.group != "direct"

    def serves(self, protocol):
        """direct (no proxy) is the baseline of every scenario."""
        return not self.is_proxy or protocol in self.spec.protocols


# ---------------------------------------------------------------- probes

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("EOF")
        buf += chunk
    return buf


def socks5_request(port, ip, dport, timeout=1.0):
    """SOCKS5 CONNECT through 127.0.0.1:port to ip:dport. Returns (socket,
    REP); the socket is None unless REP is 0."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(b"\x05\x01\x00")
        if recv_exact(s, 2) != b"\x05\x00":
            raise ConnectionError("greeting refused")
        s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(ip) + dport.to_bytes(2, "big"))
        head = recv_exact(s, 4)
        rest = {1: 6, 4: 18}.get(head[3])
        if rest is None and head[3] == 3:
            rest = recv_exact(s, 1)[0] + 2
        if rest is None:
            raise ConnectionError(f"bad ATYP {head[3]}")
        recv_exact(s, rest)
        if head[1] != 0:
            s.close()
            return None, head[1]
        return s, 0
    except BaseException:
        s.close()
        raise


def socks_probe(port, echo_port, timeout=1.0):
    """A real SOCKS5 CONNECT to the echo server and a 1-byte echo."""
    s, rep = socks5_request(port, "127.0.0.1", echo_port, timeout)
    if s is None:
        raise ConnectionError(f"CONNECT failed, REP={rep}")
    with s:
        s.sendall(b"x")
        if recv_exact(s, 1) != b"x":
            raise ConnectionError("echo mismatch")


def socks5_echo_once(port, echo_port, timeout=1.0):
    """True when a CONNECT and a 1-byte echo are served, False otherwise."""
    try:
        socks_probe(port, echo_port, timeout)
        return True
    except OSError:
        return False


def http_probe(port, origin_port, timeout=1.0):
    """A real forwarded GET (absolute form) to the origin, answered 200."""
    target = f"127.0.0.1:{origin_port}"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET http://{target}/small HTTP/1.1\r\nHost: {target}\r\n"
                  "Connection: close\r\n\r\n".encode())
        head = s.recv(64)
        if not head.startswith(b"HTTP/1.1 200"):
            raise ConnectionError(f"answered {head[:20]!r}")


def rules_check(port):
    """The ruleset is in force: a destination one of the rules rejects
    (10.0.0.1, in the first /24, action reject) is refused at once."""
    try:
        s, rep = socks5_request(port, "10.0.0.1", 80, timeout=5.0)
    except OSError as e:
        return f"the rejecting rule was not applied ({e or type(e).__name__})"
    if s is not None:
        s.close()
        return "the rejecting rule was not applied (10.0.0.1 was dialled)"
    return None


def wait_ready(p, probes, timeout):
    """Poll with real requests (each probe: a callable that raises OSError
    until the proxy serves) until all pass or the deadline."""
    end = time.monotonic() + timeout
    last = "no attempt"
    while time.monotonic() < end:
        if p.poll() is not None:
            return f"exited with status {p.returncode}"
        try:
            for probe in probes:
                probe()
            return None
        except OSError as e:
            last = str(e) or type(e).__name__
        time.sleep(0.05)
    return f"not ready within {timeout:.0f} s ({last})"


def tail(path, n=5):
    try:
        with open(path, errors="replace") as f:
            return " | ".join(line.strip() for line in f.readlines()[-n:])
    except OSError:
        return ""


# ---------------------------------------------------------------- configs

def tinyproxy_conf(port):
    return (f"# minimal tinyproxy.conf written by tests/bench/bench.py\n"
            f"Port {port}\nListen 127.0.0.1\nTimeout 600\nMaxClients 1024\n"
            "LogLevel Critical\nAllow 127.0.0.1\n")


def dante_conf(port, commands=None):
    """danted.conf for a SOCKS server on 127.0.0.1:port; commands, if given,
    is the socks rule's command list (e.g. "udpassociate udpreply")."""
    command = f"\tcommand: {commands}\n" if commands else ""
    return f"""# minimal danted.conf written by tests/bench
logoutput: stderr
internal: 127.0.0.1 port = {port}
external: 127.0.0.1
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {{
\tfrom: 127.0.0.0/8 to: 0.0.0.0/0
}}
socks pass {{
\tfrom: 127.0.0.0/8 to: 0.0.0.0/0
{command}}}
"""


def write_rules(path, linear, n=RULES_COUNT):
    """A libruleset ruleset of n rules for IPv4 destinations, the same file
    for both daemons (libruleset's public API: _G.route, inet.subnet,
    rule.*, _G.route_default). The benchmark CONNECTs to IPv4 addresses, so
    every request goes through ruleset.route; no rule matches its targets,
    so every request walks them all and ends at the default route (direct).
    Each rule is a 10.x.y.0/24 with an action: refuse, or through one of
    four proxies; 10.0.0.0/24 is refused (rules_check() relies on it).

    indexed: written the way libruleset is meant to be used for big lists:
    the rules grouped by action into table-form matchers (inet.subnet({...})
    indexes its subnets by prefix length), five entries in _G.route in all.
    linear: one entry in _G.route per rule, tried in order (the worst case:
    n closure calls per request)."""
    actions = ['rule.reject()'] + [f'rule.proxy("socks5://127.0.3.{k}:1080")'
                                   for k in range(1, 5)]
    cidrs = [f"10.{i // 256 % 256}.{i % 256}.0/24" for i in range(n)]
    if linear:
        rows = [f'    {{ inet.subnet("{c}"), {actions[i % len(actions)]} }},'
                for i, c in enumerate(cidrs)]
    else:
        rows = []
        for a, act in enumerate(actions):
            group = ", ".join(f'"{c}"' for i, c in enumerate(cidrs) if i % len(actions) == a)
            rows.append(f"    {{ inet.subnet({{ {group} }}), {act} }},")
    with open(path, "w") as f:
        f.write("-- generated by tests/bench/bench.py (%d rules, %s)\n"
                "local ruleset = require(\"libruleset\")\n"
                "_G.route = {\n%s\n}\n"
                "_G.route_default = { rule.direct() }\n"
                "return ruleset\n" % (n, "linear" if linear else "indexed",
                                       "\n".join(rows)))


# ---------------------------------------------------------------- start

def executable(path):
    return bool(path) and os.path.isfile(path) and os.access(path, os.X_OK)


def peer_command(peer, args, port, http_port, wdir):
    """(argv, extra env) to start peer on port (SOCKS) and http_port (HTTP)
    with working directory wdir, or (None, why) when it cannot run here."""
    spec = peer.spec
    env = {}
    if spec.group in ("ours", "reference"):
        binary = args.daemon if spec.group == "ours" else args.reference
        if not executable(binary):
            return None, f"no executable at {binary!r}"
        argv = [binary, "-l", f"127.0.0.1:{port}", "--loglevel", "1"] + spec.daemon_args
        if http_port:
            argv += ["--http", f"127.0.0.1:{http_port}"]
        if spec.group == "ours":
            argv += shlex.split(args.daemon_args or "")
        if spec.rules:
            rules = os.path.join(wdir, "rules.lua")
            write_rules(rules, linear=spec.rules == "linear")
            argv += ["-r", rules]
            if spec.group == "reference":
                # The reference loads libruleset.lua from its working
                # directory (package.path "?.lua"); it embeds none.
                if not os.path.isfile(args.ref_libruleset):
                    return None, f"no libruleset.lua at {args.ref_libruleset!r}"
                shutil.copyfile(args.ref_libruleset, os.path.join(wdir, "libruleset.lua"))
        return argv, env
    if spec.name == "microsocks":
        return ["microsocks", "-i", "127.0.0.1", "-p", str(port)], env
    if spec.name == "dante":
        conf = os.path.join(wdir, "danted.conf")
        with open(conf, "w") as f:
            f.write(dante_conf(port))
        env["TMPDIR"] = wdir  # its lock files and memory-mapped files
        return ["danted", "-f", conf], env
    if spec.name == "tinyproxy":
        if shutil.which("tinyproxy") is None:
            return None, "tinyproxy is not installed (make deps-bench)"
        conf = os.path.join(wdir, "tinyproxy.conf")
        with open(conf, "w") as f:
            f.write(tinyproxy_conf(http_port))
        return ["tinyproxy", "-d", "-c", conf], env
    return None, f"unknown peer {spec.name!r}"


def start_peer(peer, args, tmp, echo_port, origin_port):
    """Start peer and wait until it serves a real SOCKS5 CONNECT and a
    forwarded HTTP GET, those of the two it serves; a ruleset peer must also
    refuse what its rules refuse. Sets peer.status."""
    if peer.spec.group == "direct":
        peer.status, peer.available = "ok", True
        return
    peer.available, peer.proc, peer.port, peer.http_port = False, None, None, None
    wdir = os.path.join(tmp, peer.name)
    os.makedirs(wdir, exist_ok=True)
    os.chmod(wdir, 0o755)  # dante drops to nobody
    logf = os.path.join(wdir, "log")
    for _ in range(2):
        port = free_port() if "socks5" in peer.spec.protocols else None
        http_port = free_port() if "http" in peer.spec.protocols else None
        argv, env_or_why = peer_command(peer, args, port, http_port, wdir)
        if argv is None:
            peer.status = f"unavailable: {env_or_why}"
            return
        env = dict(os.environ)
        env.update(env_or_why)
        try:
            with open(logf, "ab") as lf:
                p = PROCS.start(peer.name, argv, stdout=lf, stderr=lf, env=env, cwd=wdir)
        except OSError as e:
            peer.status = f"unavailable: cannot start: {e}"
            return
        probes = []
        if port:
            probes.append(lambda: socks_probe(port, echo_port))
        if http_port:
            probes.append(lambda: http_probe(http_port, origin_port))
        why = wait_ready(p, probes, READY_TIMEOUT)
        if why is None and peer.spec.rules:
            why = rules_check(port)
        if why is None:
            peer.proc, peer.port, peer.http_port = p, port, http_port
            peer.status, peer.available = "ok", True
            return
        PROCS.stop(p)
        peer.status = f"unavailable: {why}; log: {tail(logf)}"
        if "exited" not in why:
            return  # retry only a start that failed at once (port race)


def peer_log(peer, tmp):
    return os.path.join(tmp, peer.name, "log")
