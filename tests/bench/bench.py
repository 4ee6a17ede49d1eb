#!/usr/bin/env python3
"""Side-by-side benchmark: neosocksd against the reference neosocksd (with
and without --pipe), microsocks, dante, tinyproxy and no proxy at all.

Usage (normally through `make bench`):
    python3 tests/bench/bench.py --daemon build/neosocksd [options]

Everything runs on loopback. One run starts benchsrv (sink + echo target
server) and the peers (benchpeers.PEERS: each on a free 127.0.0.1 port, in
its own temporary directory), then runs the scenarios (benchscen.SCENARIOS)
with tests/bench/bin/loadgen, and the HTTP ones with bin/httpload (also
their origin):

  idle        memory per idle established tunnel, once per peer
  bulk1       1-stream bulk throughput and the peer's CPU per GB
  bulk16      the same with 16 streams (not in the default list)
  rate        connect + SOCKS5 handshake + 1-byte echo + close, 64 clients,
              set-up A: separate target, 16 source/target address pairs;
              handshakes/s, latency, the peer's CPU per 10k handshakes
  rate-local  the same, set-up B: target inside loadgen, one address pair
  respawn     neosocksd with the 1,000-rule ruleset only: kill -9 its
              ruleset process (then its front), time until served again
  http-idle, http-rps, http-download
              the HTTP forward proxy (benchhttp.py): memory per idle
              keep-alive connection, requests/s, a 1 GB download

Every scenario but idle and http-idle runs in every round; rounds interleave scenarios
and peers (for each round, for each scenario, for each peer) so that the
machine's drift hits every peer alike. Medians over --rounds are reported,
with every figure as a ratio to the reference and per-round ratios. The run
stays within --budget seconds: a run that would not fit is skipped and
marked so. Results: a Markdown report on stdout and in --out (default
build/bench.md), raw results next to it with a .json suffix.
Only the Python standard library is used.
"""
import argparse
import json
import os
import platform
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import benchreport
from benchhttp import HTTPLOAD, OBJECT_SIZE
from benchpeers import PEERS, SPECS, Peer, peer_log, start_peer, tail
from benchproc import PROCS
from benchscen import BY_NAME, HERE, LOADGEN, SCENARIOS, SPREAD

REPO = os.path.dirname(os.path.dirname(HERE))
BENCHSRV = os.path.join(HERE, "bin", "benchsrv")
T0 = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


class Interrupted(Exception):
    pass


def on_sigterm(signum, frame):
    raise Interrupted(f"signal {signum}")


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


class Context:
    """What a scenario needs: options, budget, the targets' ports."""

    def __init__(self, args, budget, sink_port, echo_port, origin_port):
        self.args, self.budget = args, budget
        self.sink_port, self.echo_port = sink_port, echo_port
        self.origin_port = origin_port


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


def start_origin():
    """bin/httpload serve: the HTTP scenarios' origin, on a free port."""
    for _ in range(3):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        p = PROCS.start("origin", [HTTPLOAD, "serve", "--port", str(port),
                                   "--size", str(OBJECT_SIZE)],
                        stdout=subprocess.PIPE, text=True)
        sel = selectors.DefaultSelector()
        sel.register(p.stdout, selectors.EVENT_READ)
        if sel.select(timeout=10) and p.stdout.readline().strip() == "ready":
            return port
        PROCS.stop(p)  # the port was taken meanwhile: another
    raise RuntimeError("the HTTP origin (httpload serve) did not start")


def summary(scen, res):
    """A run's progress line: the reason when it failed, else what the
    report's per-round table will show for it."""
    if "error" in res or "skipped" in res:
        return res.get("error") or res.get("skipped")
    return benchreport.round_value(scen, res)


def run_all(args, ctx, peers, results, tmp):
    def record(peer, scen, rnd, res):
        res["round"] = rnd
        results.setdefault(peer.name, {}).setdefault(scen.name, []).append(res)
        log(f"round {rnd}/{args.rounds} {scen.name} {peer.name}: {summary(scen.name, res)}"
            if rnd else f"{scen.name} {peer.name}: {summary(scen.name, res)}")
        if peer.is_proxy and peer.proc.poll() is not None:
            peer.available = False
            peer.status = (f"died during the run (status {peer.proc.returncode}); "
                           f"log: {tail(peer_log(peer, tmp))}")
            log(f"{peer.name}: {peer.status}")

    chosen = [s for s in SCENARIOS if s.name in args.only]
    measured = set()
    for scen in (s for s in chosen if s.once):
        for peer in peers:
            if peer.available and scen.applies(peer):
                # Memory is measured on a fresh process: one that held
                # connections before keeps their freed memory for reuse.
                if peer.name in measured and peer.is_proxy:
                    log(f"{peer.name}: restarted for {scen.name}")
                    PROCS.stop(peer.proc)
                    start_peer(peer, args, tmp, ctx.echo_port, ctx.origin_port)
                    if not peer.available:
                        log(f"{peer.name}: {peer.status}")
                        continue
                measured.add(peer.name)
                record(peer, scen, 0, scen.run(ctx, peer))
    for rnd in range(1, args.rounds + 1):
        for scen in (s for s in chosen if not s.once):
            for peer in peers:
                if peer.available and scen.applies(peer):
                    record(peer, scen, rnd, scen.run(ctx, peer))


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
    for name, pkg in (("microsocks", "microsocks"), ("dante", "dante-server"),
                      ("tinyproxy", "tinyproxy")):
        try:
            v = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                               capture_output=True, text=True, timeout=10).stdout
            if v:
                facts["versions"][name] = f"Debian {pkg} {v}"
        except (OSError, subprocess.TimeoutExpired):
            pass
    return facts


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--daemon", default=os.path.join(REPO, "build", "neosocksd"),
                    help="neosocksd binary (default: build/neosocksd)")
    ap.add_argument("--daemon-args", default="",
                    help="extra arguments for our daemon, one shell-quoted string")
    ap.add_argument("--reference",
                    default=os.path.join(os.path.dirname(REPO), "shared", "peers",
                                         "neosocksd-ref"),
                    help="the reference neosocksd binary (default: ../shared/peers/neosocksd-ref)")
    ap.add_argument("--ref-libruleset",
                    default=os.path.join(REPO, "src", "ruleset", "libruleset.lua"),
                    help="libruleset.lua given to the reference's rules runs (it loads it "
                         "from its working directory; default: ours, src/ruleset/libruleset.lua)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=5.0,
                    help="length of each bulk and handshake run (default 5)")
    ap.add_argument("--idle-conns", type=int, default=9000)
    ap.add_argument("--http-download", type=int, default=1_000_000_000,
                    help="bytes of the http-download scenario's GET (default 1 GB)")
    ap.add_argument("--http-idle-conns", type=int, default=2000,
                    help="keep-alive connections of the http-idle scenario (default 2000)")
    ap.add_argument("--only", default=",".join(s.name for s in SCENARIOS if s.default),
                    help="scenarios: " + ",".join(s.name for s in SCENARIOS)
                         + " (bulk = bulk1,bulk16)")
    ap.add_argument("--peers", default=",".join(p.name for p in PEERS),
                    help="peers: " + ",".join(p.name for p in PEERS))
    ap.add_argument("--out", default=os.path.join(REPO, "build", "bench.md"),
                    help="Markdown report (raw JSON goes next to it)")
    ap.add_argument("--budget", type=float, default=1800.0,
                    help="wall-clock limit for the whole run in seconds (default 1800)")
    ap.add_argument("--from-json", metavar="FILE",
                    help="run nothing: print the report of an earlier run's raw results")
    args = ap.parse_args(argv)
    only = []
    for s in args.only.split(","):
        s = s.strip()
        if s == "bulk":
            only += ["bulk1", "bulk16"]
        elif s in BY_NAME:
            only.append(s)
        elif s:
            ap.error(f"unknown scenario {s!r}")
    args.only = [s.name for s in SCENARIOS if s.name in only]
    peers = []
    for p in args.peers.split(","):
        p = p.strip()
        if p in SPECS:
            peers.append(p)
        elif p:
            ap.error(f"unknown peer {p!r}")
    args.peers = [p.name for p in PEERS if p.name in peers]
    if min(args.rounds, args.idle_conns, args.http_download, args.http_idle_conns) < 1 \
            or args.seconds <= 0:
        ap.error("--rounds, --seconds, --idle-conns and the --http-* sizes must be positive")
    return args


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def report_from_json(args):
    """The report of an earlier run, from its raw results (the options of
    that run, not of this command line)."""
    with open(args.from_json) as f:
        raw = json.load(f)
    old = argparse.Namespace(**raw["args"])
    peers = []
    for name, st in raw["peers"].items():
        p = Peer(SPECS[name])
        p.status, p.available = st["status"], st["available"]
        peers.append(p)
    sys.stdout.write(benchreport.build(old, peers, raw["results"], raw["facts"],
                                       raw["elapsed_seconds"]))
    return 0


def main(argv):
    args = parse_args(argv)
    if args.from_json:
        return report_from_json(args)
    hard = raise_nofile()
    if hard != resource.RLIM_INFINITY and 2 * args.idle_conns + 200 > hard:
        log(f"warning: a proxy needs 2 fds per tunnel; {args.idle_conns} tunnels "
            f"need more than the RLIMIT_NOFILE hard limit {hard}")
    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGHUP, on_sigterm)
    budget = Budget(args.budget)
    if not all(os.access(b, os.X_OK) for b in (LOADGEN, BENCHSRV, HTTPLOAD)):
        log("building tests/bench/bin")
        subprocess.run(["make", "-s", "-C", HERE], check=True, timeout=120)
    facts = machine_facts()
    results = {}
    peers = [Peer(SPECS[n]) for n in args.peers]
    tmp = tempfile.mkdtemp(prefix="neosocksd-bench-")
    os.chmod(tmp, 0o755)  # dante drops to nobody
    report = None
    try:
        sink_port, echo_port = start_benchsrv()
        log(f"benchsrv: sink={sink_port} echo={echo_port} on 127.0.0.1-{SPREAD}")
        origin_port = start_origin()
        log(f"HTTP origin: 127.0.0.1:{origin_port}")
        for peer in peers:
            start_peer(peer, args, tmp, echo_port, origin_port)
            ports = ", ".join(f"{k} 127.0.0.1:{v}" for k, v in
                              (("SOCKS", peer.port), ("HTTP", peer.http_port)) if v)
            log(f"{peer.name}: {peer.status}" + (f" ({ports})" if ports else ""))
        run_all(args, Context(args, budget, sink_port, echo_port, origin_port), peers,
                results, tmp)
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
    text = benchreport.build(args, peers, results, facts, elapsed)
    if report:
        text = text.replace("# neosocksd benchmark",
                            f"# neosocksd benchmark ({report.upper()}, partial)", 1)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    raw = os.path.splitext(args.out)[0] + ".json"
    with open(raw, "w") as f:
        json.dump({"facts": facts, "args": vars(args),
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
