#!/usr/bin/env python3
"""Side-by-side benchmark: neosocksd vs microsocks vs dante vs no proxy.

Usage (normally through `make bench`):
    python3 tests/bench/bench.py --daemon build/neosocksd [options]

Everything runs on loopback. One run starts benchsrv (sink + echo target
server), the peers (each on a free 127.0.0.1 port, with a minimal config in a
temp dir), then runs the scenarios with tests/bench/bin/loadgen:

  idle    resident memory per idle established tunnel (--idle-conns, default
          9000), once per peer: sum of Rss (and Pss) over the peer's process
          tree before opening the tunnels and while they are held.
  bulk1   bulk throughput, 1 stream to the sink (--seconds each), and the
          peer's CPU seconds (utime+stime of its process tree) per GB relayed.
  bulk16  the same with 16 streams.
  rate    connect + SOCKS5 handshake + 1-byte echo + close, 64 concurrent
          clients: operations/s, p50 and p99 latency.
  respawn neosocksd with the 1,000-rule ruleset only: kill -9 its ruleset
          process (then its front) and time until a SOCKS5 CONNECT is
          decided and served again.

bulk1, bulk16 and rate are interleaved: for each round, for each scenario,
for each peer; the median over --rounds is reported. The whole run stays
within --budget seconds (default 570): a run that would not fit is skipped
and marked so. Results: a Markdown table on stdout and in --out (default
build/bench.md), raw results in the same place with a .json suffix.
Only the Python standard library is used.
"""
import argparse
import json
import os
import platform
import resource
import selectors
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.join(HERE, "bin")
LOADGEN = os.path.join(BIN, "loadgen")
BENCHSRV = os.path.join(BIN, "benchsrv")

ALL_PEERS = ["direct", "neosocksd", "neosocksd-rules", "neosocksd-linear",
             "microsocks", "dante"]
# neosocksd with a 1,000-rule ruleset (indexed, and as 1,000 rules tried in
# order): measured in the rate scenario only
RULES_PEER = "neosocksd-rules"
LINEAR_PEER = "neosocksd-linear"
RULE_PEERS = (RULES_PEER, LINEAR_PEER)
RULES_COUNT = 1000
ALL_SCENARIOS = ["idle", "bulk1", "bulk16", "rate", "respawn"]
RATE_CONCURRENCY = 64
SPREAD = 16          # loopback address pairs for connection churn (see loadgen.c)
READY_TIMEOUT = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
T0 = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


class Interrupted(Exception):
    pass


def on_sigterm(signum, frame):
    raise Interrupted(f"signal {signum}")


# ---------------------------------------------------------------- budget

class Budget:
    """Wall-clock budget for the whole run, with a reserve for clean-up."""

    def __init__(self, seconds, reserve=15.0):
        self.deadline = T0 + seconds
        self.reserve = reserve

    def left(self):
        return self.deadline - self.reserve - time.monotonic()

    def fits(self, need):
        return self.left() >= need

    def timeout(self, want):
        return max(1.0, min(want, self.left()))


# ---------------------------------------------------------------- processes

def proc_stat_all():
    """pid -> (ppid, starttime, cpu ticks incl. reaped children)."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rfind(")") + 2:].split()
        # rest[0] is field 3 (state): ppid=4, utime=14 .. cstime=17, starttime=22
        try:
            ppid = int(rest[1])
            ticks = int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])
            out[int(name)] = (ppid, int(rest[19]), ticks)
        except (IndexError, ValueError):
            continue
    return out


def tree(root, table=None):
    """The process tree rooted at pid `root`: {pid: (ppid, starttime, ticks)}."""
    table = table if table is not None else proc_stat_all()
    if root not in table:
        return {}
    kids = {}
    for pid, (ppid, _, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in found or pid not in table:
            continue
        found[pid] = table[pid]
        todo.extend(kids.get(pid, ()))
    return found


def tree_cpu_ticks(root):
    return sum(t for (_, _, t) in tree(root).values())


def tree_memory(root):
    """Sum of Rss and Pss (bytes) over the tree, and its process count."""
    rss = pss = 0
    pids = tree(root)
    for pid in pids:
        got = {}
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in ("Rss", "Pss"):
                        got[k] = int(v.split()[0]) * 1024
        except OSError:
            pass
        if "Rss" not in got:  # no smaps_rollup: fall back to VmRSS
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            got["Rss"] = int(line.split()[1]) * 1024
            except OSError:
                pass
        rss += got.get("Rss", 0)
        pss += got.get("Pss", got.get("Rss", 0))
    return {"rss": rss, "pss": pss, "procs": len(pids)}


class Procs:
    """Every long-running process this script starts; stopped by pid."""

    def __init__(self):
        self.items = []  # (name, Popen)

    def start(self, name, argv, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(argv, start_new_session=True, **kw)
        self.items.append((name, p))
        return p

    def stop(self, p, grace=3.0):
        """SIGTERM the tree rooted at p (root first), then SIGKILL leftovers.
        Only pids seen in the tree are signalled, and a pid is signalled only
        while its start time still matches (no pid reuse)."""
        snap = tree(p.pid) if p.poll() is None else {}
        self._signal(p.pid, snap, signal.SIGTERM)
        end = time.monotonic() + grace
        while p.poll() is None and time.monotonic() < end:
            time.sleep(0.02)
        for pid in snap:
            if pid != p.pid:
                self._signal(pid, snap, signal.SIGTERM)
        end = time.monotonic() + grace
        while time.monotonic() < end and self._alive(snap):
            time.sleep(0.02)
        for pid in self._alive(snap):
            self._signal(pid, snap, signal.SIGKILL)
        if p.poll() is None:
            try:
                p.kill()
            except OSError:
                pass
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        self.items = [(n, q) for (n, q) in self.items if q is not p]

    @staticmethod
    def _alive(snap):
        now = proc_stat_all()
        return [pid for pid, v in snap.items()
                if pid in now and now[pid][1] == v[1]]

    @staticmethod
    def _signal(pid, snap, sig):
        try:
            with open(f"/proc/{pid}/stat") as f:
                data = f.read()
            start = int(data[data.rfind(")") + 2:].split()[19])
            if pid in snap and start != snap[pid][1]:
                return
            os.kill(pid, sig)
        except (OSError, ValueError, IndexError):
            pass

    def stop_all(self):
        for _, p in reversed(list(self.items)):
            self.stop(p)


PROCS = Procs()


def run_tool(argv, timeout):
    """Run a short-lived tool (loadgen); kill it by pid on timeout/interrupt."""
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return None, f"timed out after {timeout:.0f} s; stderr: {err.strip()[-300:]}"
    except BaseException:
        p.kill()
        p.wait()
        raise
    res = last_json(out)
    if res is None:
        return None, f"exit {p.returncode}; stderr: {err.strip()[-300:]}"
    if err.strip():
        res["stderr"] = err.strip()[-300:]
    return res, None


def last_json(text):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


# ---------------------------------------------------------------- helpers

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


def socks_probe(port, echo_port, timeout=1.0):
    """A real SOCKS5 CONNECT through 127.0.0.1:port to the echo server."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"\x05\x01\x00")
        if recv_exact(s, 2) != b"\x05\x00":
            raise ConnectionError("greeting refused")
        s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1")
                  + echo_port.to_bytes(2, "big"))
        head = recv_exact(s, 4)
        if head[1] != 0:
            raise ConnectionError(f"CONNECT failed, REP={head[1]}")
        atyp = head[3]
        if atyp == 1:
            recv_exact(s, 6)
        elif atyp == 4:
            recv_exact(s, 18)
        elif atyp == 3:
            recv_exact(s, recv_exact(s, 1)[0] + 2)
        else:
            raise ConnectionError(f"bad ATYP {atyp}")
        s.sendall(b"x")
        if recv_exact(s, 1) != b"x":
            raise ConnectionError("echo mismatch")


def wait_ready(p, port, echo_port, timeout):
    """Poll with real handshakes until the proxy works or the deadline."""
    end = time.monotonic() + timeout
    last = "no attempt"
    while time.monotonic() < end:
        if p.poll() is not None:
            return f"exited with status {p.returncode}"
        try:
            socks_probe(port, echo_port)
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


# ---------------------------------------------------------------- peers

class Peer:
    def __init__(self, name):
        self.name = name
        self.proc = None
        self.port = None
        self.status = "not started"
        self.available = False

    @property
    def is_proxy(self):
        return self.name != "direct"


def start_benchsrv():
    p = PROCS.start("benchsrv", [BENCHSRV, "-a", str(SPREAD)],
                    stdout=subprocess.PIPE, text=True)
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    if not sel.select(timeout=10):
        raise RuntimeError("benchsrv did not report ready within 10 s")
    line = p.stdout.readline().split()
    if len(line) != 3 or line[0] != "ready":
        raise RuntimeError(f"benchsrv said {line!r}")
    return int(line[1].split("=")[1]), int(line[2].split("=")[1])


def dante_conf(port):
    return f"""# minimal danted.conf written by tests/bench/bench.py
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
}}
"""


def write_rules(path, linear, n=RULES_COUNT):
    """A libruleset ruleset of n rules for IPv4 destinations (the benchmark
    CONNECTs to IPv4 addresses, so every request goes through
    ruleset.route), none of which matches the benchmark's targets, then the
    default route (direct). Each rule is a /24 with an action: refuse, or
    through one of four proxies.

    indexed: written the way libruleset is meant to be used for big lists:
    the rules are grouped by action into table-form matchers
    (inet.subnet({...}) indexes its subnets by prefix length), five entries
    in _G.route in all.
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


def start_peer(peer, args, tmp, echo_port):
    if peer.name == "direct":
        peer.status, peer.available = "ok", True
        return
    logf = os.path.join(tmp, f"{peer.name}.log")
    for attempt in range(2):
        port = free_port()
        env = dict(os.environ)
        if peer.name in ("neosocksd",) + RULE_PEERS:
            if not args.daemon or not os.path.isfile(args.daemon) \
                    or not os.access(args.daemon, os.X_OK):
                peer.status = f"unavailable: no executable at {args.daemon!r}"
                return
            argv = [args.daemon, "-l", f"127.0.0.1:{port}", "--loglevel", "1"] \
                + shlex.split(args.daemon_args or "")
            if peer.name in RULE_PEERS:
                rules = os.path.join(tmp, peer.name + ".lua")
                write_rules(rules, linear=peer.name == LINEAR_PEER)
                argv += ["-r", rules]
        elif peer.name == "microsocks":
            argv = ["microsocks", "-i", "127.0.0.1", "-p", str(port)]
        elif peer.name == "dante":
            conf = os.path.join(tmp, "danted.conf")
            with open(conf, "w") as f:
                f.write(dante_conf(port))
            env["TMPDIR"] = tmp  # its lock files and memory-mapped files
            argv = ["danted", "-f", conf]
        try:
            with open(logf, "ab") as lf:
                p = PROCS.start(peer.name, argv, stdout=lf, stderr=lf, env=env,
                                cwd=tmp)
        except OSError as e:
            peer.status = f"unavailable: cannot start: {e}"
            return
        why = wait_ready(p, port, echo_port, READY_TIMEOUT)
        if why is None:
            peer.proc, peer.port = p, port
            peer.status, peer.available = "ok", True
            return
        PROCS.stop(p)
        peer.status = f"unavailable: {why}; log: {tail(logf)}"
        if "exited" not in why:
            return  # retry only a start that failed at once (port race)


def target_args(peer, port):
    if peer.is_proxy:
        return ["--socks5", f"127.0.0.1:{peer.port}", "--target", f"127.0.0.1:{port}"]
    return ["--direct", "--target", f"127.0.0.1:{port}"]


# ---------------------------------------------------------------- scenarios

def run_bulk(peer, streams, args, budget, sink_port):
    need = args.seconds + 20
    if not budget.fits(args.seconds + 3):
        return {"skipped": "time budget"}
    cmd = [LOADGEN, "bulk", *target_args(peer, sink_port), "--streams", str(streams),
           "--seconds", str(args.seconds)]
    before = tree_cpu_ticks(peer.proc.pid) if peer.is_proxy else None
    res, err = run_tool(cmd, budget.timeout(need))
    if res is None:
        return {"error": err}
    if peer.is_proxy:
        cpu = (tree_cpu_ticks(peer.proc.pid) - before) / CLK_TCK
        res["cpu_seconds"] = cpu
        gb = res["bytes"] / 1e9
        res["cpu_s_per_gb"] = cpu / gb if gb > 0 else None
    res["gbps"] = res["mbps"] / 1000.0
    if res.get("established", streams) < streams or res.get("errors"):
        res["warning"] = f"{res.get('errors')} stream errors"
    return res


def run_rate(peer, args, budget, echo_port):
    if not budget.fits(args.seconds + 3):
        return {"skipped": "time budget"}
    cmd = [LOADGEN, "rate", *target_args(peer, echo_port),
           "--concurrency", str(RATE_CONCURRENCY), "--seconds", str(args.seconds),
           "--spread", str(SPREAD), "--max-ops", "2000000"]
    res, err = run_tool(cmd, budget.timeout(args.seconds + 20))
    return res if res is not None else {"error": err}


def socks5_echo_once(port, echo_port, timeout=1.0):
    """One SOCKS5 CONNECT to the echo port and a 1-byte echo: True when
    served, False when refused or closed."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x01"
                      + echo_port.to_bytes(2, "big"))
            got = b""
            while len(got) < 12:
                b = s.recv(12 - len(got))
                if not b:
                    return False
                got += b
            if got[:2] != b"\x05\x00" or got[3] != 0:
                return False
            s.sendall(b"x")
            return s.recv(1) == b"x"
    except OSError:
        return False


def child_by_comm(root, comm):
    for pid in tree(root):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == comm:
                    return pid
        except OSError:
            pass
    return None


def run_respawn(peer, args, budget, echo_port):
    """Kill -9 the ruleset process, then the front; seconds until a request
    is decided and served again (polled every 2 ms, each try bounded)."""
    if not budget.fits(15):
        return {"skipped": "time budget"}
    out = {}
    for comm, key in (("neosocksd-rules", "ruleset_s"), ("neosocksd-front", "front_s")):
        if not socks5_echo_once(peer.port, echo_port, 5):
            return {"error": "not serving before the kill"}
        victim = child_by_comm(peer.proc.pid, comm)
        if victim is None:
            return {"error": f"no {comm} process"}
        t0 = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        while not socks5_echo_once(peer.port, echo_port, 1.0):
            if time.monotonic() - t0 > 10:
                return {"error": f"{comm}: not serving 10 s after the kill"}
            time.sleep(0.002)
        out[key] = time.monotonic() - t0
        # the next kill must not land within the 10 s "lived long enough"
        # window: a quick second death is respawned after a back-off
    return out


def run_idle(peer, args, budget, echo_port):
    n = args.idle_conns
    if not budget.fits(30):
        return {"skipped": "time budget"}
    timeout = budget.timeout(120)
    before = tree_memory(peer.proc.pid)
    cmd = [LOADGEN, "idle", *target_args(peer, echo_port), "--conns", str(n),
           "--timeout", f"{timeout:.0f}", "--setup-timeout", f"{timeout / 2:.0f}",
           "--spread", str(SPREAD)]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    res = {"requested": n, "before": before}
    try:
        # Blocking reads are bounded: loadgen exits by itself at --timeout.
        lines = []
        for line in p.stdout:
            lines.append(line.strip())
            if lines[-1] == "holding":
                break
        setup = last_json("\n".join(lines))
        if setup:
            res.update(setup)
        if not lines or lines[-1] != "holding":
            res["error"] = "tunnels not established: " + (
                json.dumps(setup) if setup else "no report")
            return res
        res["after"] = tree_memory(peer.proc.pid)
        try:
            p.stdin.write("\n")
            p.stdin.close()
        except BrokenPipeError:
            pass
        out = p.stdout.read()  # EOF when loadgen exits (bounded by --timeout)
        err = p.stderr.read()
        p.wait(timeout=30)
        rel = last_json(out)
        if rel:
            res["dropped"] = rel.get("dropped")
        est = res.get("established", 0)
        if est > 0:
            res["rss_per_tunnel"] = (res["after"]["rss"] - before["rss"]) / est
            res["pss_per_tunnel"] = (res["after"]["pss"] - before["pss"]) / est
        if err.strip():
            res["stderr"] = err.strip()[-300:]
        return res
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()


# ---------------------------------------------------------------- report

METRICS = [
    # key, label, scenario, field, higher_is_better, ratio_to_direct, fmt
    ("bulk1", "Bulk throughput, 1 stream (Gbit/s)", "bulk1", "gbps", True, True, "{:.2f}"),
    ("bulk16", "Bulk throughput, 16 streams (Gbit/s)", "bulk16", "gbps", True, True, "{:.2f}"),
    ("rate", f"Handshakes/s, {RATE_CONCURRENCY} clients", "rate", "ops_per_sec", True, True, "{:,.0f}"),
    ("p50", "Handshake latency p50 (µs)", "rate", "p50_us", False, True, "{:,.0f}"),
    ("p99", "Handshake latency p99 (µs)", "rate", "p99_us", False, True, "{:,.0f}"),
    ("rss", "RSS per idle tunnel (KiB)", "idle", "rss_per_tunnel", False, False, "{:.1f}"),
    ("pss", "PSS per idle tunnel (KiB)", "idle", "pss_per_tunnel", False, False, "{:.1f}"),
    ("cpu1", "CPU s per GB relayed, 1 stream", "bulk1", "cpu_s_per_gb", False, False, "{:.3f}"),
    ("cpu16", "CPU s per GB relayed, 16 streams", "bulk16", "cpu_s_per_gb", False, False, "{:.3f}"),
]


def metric_value(results, peer, scenario, field):
    runs = results.get(peer, {}).get(scenario, [])
    vals = [r[field] for r in runs if isinstance(r.get(field), (int, float))]
    if not vals:
        return None, []
    if field.endswith("per_tunnel"):
        vals = [v / 1024.0 for v in vals]
    return statistics.median(vals), vals


def build_report(args, peers, results, facts, elapsed):
    names = [p.name for p in peers]
    status = {p.name: p for p in peers}
    out = ["# neosocksd benchmark", ""]
    out.append(f"- machine: {facts['nproc']} CPUs ({facts['cpu']}), "
               f"{facts['mem_gib']:.0f} GiB, kernel {facts['kernel']}; "
               f"load average at start {facts.get('loadavg', '?')}, at end "
               f"{facts.get('loadavg_end', '?')} (other work on the machine skews figures)")
    out.append(f"- date: {facts['date']}; rounds: {args.rounds} (median shown), "
               f"{args.seconds:g} s per bulk/rate run, {args.idle_conns} idle tunnels, "
               f"{RATE_CONCURRENCY} handshake clients; connections spread over "
               f"{SPREAD} loopback address pairs")
    for p in peers:
        ver = facts["versions"].get(p.name, "")
        out.append(f"- {p.name}: {p.status}" + (f" ({ver})" if ver else ""))
    out.append("")
    head = ["Metric"] + names + ["neosocksd vs best of microsocks/dante"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for key, label, scen, field, higher, vs_direct, fmt in METRICS:
        if scen not in args.only:
            continue
        if scen == "idle":
            label = label.replace("idle tunnel", f"idle tunnel at {args.idle_conns}")
        row = [label]
        med = {}
        for n in names:
            peer = status[n]
            if not peer.available and not results.get(n):
                row.append("unavailable")
                continue
            if n == "direct" and not vs_direct:
                row.append("n/a")
                continue
            v, _ = metric_value(results, n, scen, field)
            if v is None:
                runs = results.get(n, {}).get(scen, [])
                row.append("failed" if any("error" in r for r in runs)
                           else "skipped" if runs else "—")
                continue
            med[n] = v
            cell = fmt.format(v)
            d, _ = metric_value(results, "direct", scen, field)
            if vs_direct and n != "direct" and d:
                cell += f" ({v / d:.2f}× direct)"
            row.append(cell)
        rivals = {n: med[n] for n in ("microsocks", "dante") if n in med}
        if "neosocksd" in med and rivals:
            pick = max if higher else min
            best = pick(rivals, key=rivals.get)
            ratio = med["neosocksd"] / rivals[best] if rivals[best] else float("inf")
            row.append(f"{ratio:.2f}× {best} ({'higher' if higher else 'lower'} is better)")
        else:
            row.append("n/a")
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    out.append("Ratios: a peer's figure divided by direct's, and neosocksd's divided by "
               "the better of microsocks and dante. RSS/PSS per tunnel = (process-tree "
               "total while the tunnels are held − before) / tunnels established; RSS "
               "counts pages shared between forked processes once per process, PSS splits "
               "them. CPU = utime+stime over the peer's process tree (reaped children "
               "included) during the bulk run, per 10⁹ bytes. Handshake = connect + SOCKS5 "
               "greeting + CONNECT + 1-byte echo + close (direct: connect + echo + close).")
    out.append("")
    r0, _ = metric_value(results, "neosocksd", "rate", "ops_per_sec")
    p990, _ = metric_value(results, "neosocksd", "rate", "p99_us")
    p500, _ = metric_value(results, "neosocksd", "rate", "p50_us")
    lines = []
    for name, what in ((RULES_PEER, "indexed (grouped by action, table-form matchers)"),
                       (LINEAR_PEER, "linear (one rule after another)")):
        rr, _ = metric_value(results, name, "rate", "ops_per_sec")
        p99r, _ = metric_value(results, name, "rate", "p99_us")
        p50r, _ = metric_value(results, name, "rate", "p50_us")
        if not (rr and r0):
            continue
        line = (f"- {RULES_COUNT} rules, {what}: {rr:,.0f} handshakes/s vs {r0:,.0f} "
                f"without a ruleset: **{rr / r0:.2f}×** (target ≥ 0.9)")
        if p99r is not None and p990 is not None:
            line += (f"; added latency p50 {p50r - p500:+,.0f} µs, p99 {p99r - p990:+,.0f} µs")
        lines.append(line)
    rs, rs_all = metric_value(results, RULES_PEER, "respawn", "ruleset_s")
    fr, fr_all = metric_value(results, RULES_PEER, "respawn", "front_s")
    if rs is not None and fr is not None:
        lines.append(f"- respawn after kill -9 (until a request is decided and served again): "
                     f"ruleset process {rs * 1000:.0f} ms (max {max(rs_all) * 1000:.0f}), "
                     f"front {fr * 1000:.0f} ms (max {max(fr_all) * 1000:.0f})")
    if lines:
        out.append("## Ruleset cost (libruleset, every request decided in Lua)")
        out.append("")
        out += lines
        out.append("")
    # per-round values and notes
    out.append("## Per-round values")
    out.append("")
    out.append("| Scenario | Peer | Values (all rounds) |")
    out.append("|---|---|---|")
    notes = []
    for scen in ALL_SCENARIOS:
        if scen not in args.only:
            continue
        for n in names:
            runs = results.get(n, {}).get(scen, [])
            if not runs:
                continue
            vals = []
            for r in runs:
                if "error" in r:
                    vals.append("error")
                    notes.append(f"{n} {scen}: {r['error']}")
                elif "skipped" in r:
                    vals.append("skipped")
                elif scen == "rate":
                    vals.append(f"{r['ops_per_sec']:,.0f}/s p50 {r['p50_us']} p99 {r['p99_us']} µs"
                                + (f" ({r['errors']} errors)" if r.get("errors") else ""))
                    if r.get("errors"):
                        notes.append(f"{n} rate: {r['errors']} failed operations in a round"
                                     + (f" ({r['stderr'].splitlines()[0]})" if r.get("stderr") else ""))
                elif scen == "respawn":
                    vals.append(f"ruleset {r['ruleset_s'] * 1000:.0f} ms, "
                                f"front {r['front_s'] * 1000:.0f} ms")
                elif scen == "idle":
                    if "rss_per_tunnel" in r:
                        vals.append(
                            f"{r.get('established')}/{r['requested']} established in "
                            f"{r.get('setup_seconds', 0):.1f} s; RSS {r['before']['rss'] / 2**20:.1f}"
                            f" → {r['after']['rss'] / 2**20:.1f} MiB, PSS "
                            f"{r['before']['pss'] / 2**20:.1f} → {r['after']['pss'] / 2**20:.1f} MiB, "
                            f"processes {r['before']['procs']} → {r['after']['procs']}")
                    if r.get("established", 0) < r["requested"] or r.get("errors"):
                        notes.append(f"{n} idle: reached {r.get('established', 0)} of "
                                     f"{r['requested']} tunnels ({r.get('errors', '?')} errors"
                                     + (f", {r.get('abandoned')} still in flight and "
                                        f"{r.get('not_attempted')} not tried when the "
                                        f"set-up time ran out" if r.get("setup_timed_out")
                                        else "") + ")"
                                     + (f": {r['stderr'].splitlines()[0]}" if r.get("stderr") else ""))
                    if r.get("dropped"):
                        notes.append(f"{n} idle: {r['dropped']} tunnels dropped while held")
                else:
                    v = f"{r['gbps']:.2f} Gbit/s"
                    if "cpu_s_per_gb" in r and r["cpu_s_per_gb"] is not None:
                        v += f" {r['cpu_s_per_gb']:.3f} CPU-s/GB"
                    if not r.get("drained", True):
                        v += " (close not relayed in time)"
                    if r.get("warning"):
                        v += f" ({r['warning']})"
                        notes.append(f"{n} {scen}: {r['warning']}")
                    vals.append(v)
            out.append(f"| {scen} | {n} | {'; '.join(vals)} |")
    out.append("")
    if notes:
        out.append("## Notes")
        out.append("")
        for note in dict.fromkeys(notes):
            out.append(f"- {note}")
        out.append("")
    out.append(f"Total run time: {elapsed:.1f} s")
    return "\n".join(out) + "\n"


def machine_facts():
    facts = {"nproc": os.cpu_count(), "kernel": platform.release(),
             "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cpu": "?", "mem_gib": 0,
             "versions": {}}
    try:
        with open("/proc/loadavg") as f:
            facts["loadavg"] = " ".join(f.read().split()[:3])
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    facts["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            facts["mem_gib"] = int(f.readline().split()[1]) / 2**20
    except OSError:
        pass
    for name, pkg in (("microsocks", "microsocks"), ("dante", "dante-server")):
        try:
            v = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                               capture_output=True, text=True, timeout=10).stdout
            if v:
                facts["versions"][name] = f"Debian {pkg} {v}"
        except (OSError, subprocess.TimeoutExpired):
            pass
    return facts


# ---------------------------------------------------------------- main

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--daemon", default=os.path.join(REPO, "build", "neosocksd"),
                    help="neosocksd binary (default: build/neosocksd)")
    ap.add_argument("--daemon-args", default="",
                    help="extra arguments for the daemon, one shell-quoted string")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0,
                    help="length of each bulk and rate run (default 5)")
    ap.add_argument("--idle-conns", type=int, default=9000)
    ap.add_argument("--only", default=",".join(ALL_SCENARIOS),
                    help="scenarios: idle,bulk1,bulk16,rate (bulk = bulk1,bulk16)")
    ap.add_argument("--peers", default=",".join(ALL_PEERS),
                    help="peers: " + ",".join(ALL_PEERS))
    ap.add_argument("--out", default=os.path.join(REPO, "build", "bench.md"),
                    help="Markdown report (raw JSON goes next to it)")
    ap.add_argument("--budget", type=float, default=570.0,
                    help="wall-clock limit for the whole run in seconds (default 570)")
    args = ap.parse_args(argv)
    only = []
    for s in args.only.split(","):
        s = s.strip()
        if s == "bulk":
            only += ["bulk1", "bulk16"]
        elif s in ALL_SCENARIOS:
            only.append(s)
        elif s:
            ap.error(f"unknown scenario {s!r}")
    args.only = only
    peers = []
    for p in args.peers.split(","):
        p = p.strip()
        if p in ALL_PEERS:
            peers.append(p)
        elif p:
            ap.error(f"unknown peer {p!r}")
    args.peers = peers
    if args.rounds < 1 or args.seconds <= 0 or args.idle_conns < 1:
        ap.error("--rounds, --seconds and --idle-conns must be positive")
    return args


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def main(argv):
    args = parse_args(argv)
    hard = raise_nofile()
    if hard != resource.RLIM_INFINITY and 2 * args.idle_conns + 200 > hard:
        log(f"warning: a proxy needs 2 fds per tunnel; {args.idle_conns} tunnels "
            f"need more than the RLIMIT_NOFILE hard limit {hard}")
    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGHUP, on_sigterm)
    budget = Budget(args.budget)
    if not (os.access(LOADGEN, os.X_OK) and os.access(BENCHSRV, os.X_OK)):
        log("building tests/bench/bin")
        subprocess.run(["make", "-s", "-C", HERE], check=True, timeout=120)
    facts = machine_facts()
    results = {}
    peers = [Peer(n) for n in args.peers]
    tmp = tempfile.mkdtemp(prefix="neosocksd-bench-")
    os.chmod(tmp, 0o755)  # dante drops to nobody
    report = None
    try:
        sink_port, echo_port = start_benchsrv()
        log(f"benchsrv: sink={sink_port} echo={echo_port} on 127.0.0.1-{SPREAD}")
        for peer in peers:
            start_peer(peer, args, tmp, echo_port)
            log(f"{peer.name}: {peer.status}"
                + (f" (127.0.0.1:{peer.port})" if peer.port else ""))
        live = [p for p in peers if p.available]

        def record(peer, scen, res):
            results.setdefault(peer.name, {}).setdefault(scen, []).append(res)

        if "idle" in args.only:
            for peer in live:
                if not peer.is_proxy or peer.name in RULE_PEERS:
                    continue
                res = run_idle(peer, args, budget, echo_port)
                record(peer, "idle", res)
                if "rss_per_tunnel" in res:
                    log(f"idle {peer.name}: {res['established']}/{res['requested']} tunnels, "
                        f"RSS {res['rss_per_tunnel'] / 1024:.1f} KiB/tunnel, "
                        f"PSS {res['pss_per_tunnel'] / 1024:.1f} KiB/tunnel")
                else:
                    log(f"idle {peer.name}: {res.get('error') or res.get('skipped')}")
        for rnd in range(args.rounds):
            for scen in ("bulk1", "bulk16", "rate", "respawn"):
                if scen not in args.only:
                    continue
                for peer in live:
                    if peer.name in RULE_PEERS and scen not in ("rate", "respawn"):
                        continue
                    if scen == "respawn":
                        if peer.name != RULES_PEER:
                            continue
                        res = run_respawn(peer, args, budget, echo_port)
                        msg = (f"ruleset back in {res['ruleset_s'] * 1000:.0f} ms, front in "
                               f"{res['front_s'] * 1000:.0f} ms" if "front_s" in res else None)
                    elif scen == "rate":
                        res = run_rate(peer, args, budget, echo_port)
                        msg = (f"{res['ops_per_sec']:,.0f} ops/s p50 {res['p50_us']} µs "
                               f"p99 {res['p99_us']} µs errors {res['errors']}"
                               if "ops" in res else None)
                    else:
                        n = 1 if scen == "bulk1" else 16
                        res = run_bulk(peer, n, args, budget, sink_port)
                        msg = (f"{res['gbps']:.2f} Gbit/s"
                               + (f", {res['cpu_s_per_gb']:.3f} CPU-s/GB"
                                  if res.get("cpu_s_per_gb") is not None else "")
                               if "gbps" in res else None)
                    record(peer, scen, res)
                    log(f"round {rnd + 1}/{args.rounds} {scen} {peer.name}: "
                        f"{msg or res.get('error') or res.get('skipped')}")
                    if peer.is_proxy and peer.proc.poll() is not None:
                        peer.available = False
                        peer.status = (f"died during the run (status {peer.proc.returncode}); "
                                       f"log: {tail(os.path.join(tmp, peer.name + '.log'))}")
                        log(f"{peer.name}: {peer.status}")
                live = [p for p in live if p.available]
    except (KeyboardInterrupt, Interrupted) as e:
        log(f"interrupted ({str(e) or 'SIGINT'}); stopping everything")
        report = "interrupted"
    except Exception:
        import traceback
        traceback.print_exc()
        log("bench failed; stopping everything, writing a partial report")
        report = "failed"
    finally:
        PROCS.stop_all()
    elapsed = time.monotonic() - T0
    try:
        with open("/proc/loadavg") as f:
            facts["loadavg_end"] = " ".join(f.read().split()[:3])
    except OSError:
        pass
    text = build_report(args, peers, results, facts, elapsed)
    if report:
        text = text.replace("# neosocksd benchmark",
                            f"# neosocksd benchmark ({report.upper()}, partial)", 1)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    raw = os.path.splitext(args.out)[0] + ".json"
    with open(raw, "w") as f:
        json.dump({"facts": facts, "args": {k: v for k, v in vars(args).items()},
                   "peers": {p.name: {"status": p.status, "available": p.available}
                             for p in peers},
                   "results": results, "elapsed_seconds": elapsed}, f, indent=1)
    sys.stdout.write(text)
    log(f"report: {args.out}, raw results: {raw}")
    log(f"total elapsed: {elapsed:.1f} s")
    shutil.rmtree(tmp, ignore_errors=True)
    return {"interrupted": 130, "failed": 1}.get(report, 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
