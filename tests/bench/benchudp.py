#!/usr/bin/env python3
"""The SOCKS5 UDP benchmark (issue 13), run by `make bench` after the
other scenarios.

Peers, each a SOCKS5 server with UDP ASSOCIATE on a free 127.0.0.1 port:
  direct      no proxy: the client talks to the echo server itself
  neosocksd   this daemon, --enable-socks5-udp
  reference   ../shared/peers/neosocksd-ref --enable-socks5-udp (if it
              runs here)
  dante       Debian's dante-server (danted), which relays UDP too
(microsocks has no UDP.) The echo server and the client are bin/udpload.

Scenario, interleaved by round (for each round, for each size, for each
peer) so that the machine's drift hits every peer alike: for --seconds,
one association carries round trips of N-byte payloads to the echo
server with 64 datagrams in flight (each echo lets another go; a window
with nothing back for 50 ms counts as lost). Reported per peer: echoed
datagrams per second, their payload in Mbit/s one way, datagrams lost,
and the CPU seconds of the peer's whole process tree per million round
trips. Sizes: 1,200 bytes (a QUIC or game datagram; the goal: at least
0.5x direct) and 64 bytes (DNS-sized: the per-datagram cost). Figures are
medians over the rounds, each ratio with its per-round values (this
machine's noise is +-30%).

--also LABEL=PATH adds another build of this daemon as one more peer,
interleaved with the rest: the A/B of a change, in one run (for example
`--also before=/tmp/neosocksd-main --only direct`).

A benchmark reports; it passes or fails nothing. Every process it starts
is stopped by pid; every run is bounded in time."""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchpeers import dante_conf, free_port
from benchproc import PROCS, run_tool, tree_cpu_seconds

HERE = os.path.dirname(os.path.abspath(__file__))
UDPLOAD = os.path.join(HERE, "bin", "udpload")
ROOT = os.path.dirname(os.path.dirname(HERE))
SIZES = (1200, 64)


def log(msg):
    print(f"[benchudp] {msg}", file=sys.stderr, flush=True)


def tool(argv, timeout):
    """A short-lived udpload run: its JSON result, or {"error": why}."""
    res, err = run_tool(argv, timeout)
    return res if res is not None else {"error": err}


class Peer:
    def __init__(self, name, label, binary=None):
        self.name, self.label, self.binary = name, label, binary
        self.proc, self.port, self.status = None, None, "not started"


def start_peer(peer, args, tmp, echo_port):
    if peer.name == "direct":
        peer.status = "ok"
        return
    port = free_port()
    wdir = os.path.join(tmp, peer.name)
    os.makedirs(wdir, exist_ok=True)
    os.chmod(wdir, 0o755)  # dante drops to nobody
    env = dict(os.environ)
    if peer.binary is not None:  # this daemon, or another build of it (--also)
        if not os.access(peer.binary, os.X_OK):
            peer.status = f"unavailable: no executable at {peer.binary}"
            return
        argv = [peer.binary, "-l", f"127.0.0.1:{port}", "--enable-socks5-udp",
                "--loglevel", "1"]
    elif peer.name == "reference":
        if not (os.path.isfile(args.reference) and os.access(args.reference, os.X_OK)):
            peer.status = f"unavailable: no executable at {args.reference}"
            return
        argv = [args.reference, "-l", f"127.0.0.1:{port}", "--enable-socks5-udp",
                "--loglevel", "1"]
    else:
        if shutil.which("danted") is None:
            peer.status = "unavailable: danted is not installed (make deps-bench)"
            return
        conf = os.path.join(wdir, "danted.conf")
        with open(conf, "w") as f:
            f.write(dante_conf(port, "udpassociate udpreply"))
        env["TMPDIR"] = wdir
        argv = ["danted", "-f", conf]
    with open(os.path.join(wdir, "log"), "ab") as lf:
        peer.proc = PROCS.start(peer.name, argv, stdout=lf, stderr=lf, cwd=wdir,
                                env=env)
    deadline = time.monotonic() + 10
    last = ""
    while time.monotonic() < deadline:
        if peer.proc.poll() is not None:
            peer.status = f"unavailable: exited with {peer.proc.returncode}"
            return
        # a short real association: the peer serves UDP
        res = tool([UDPLOAD, "run", "--socks5", f"127.0.0.1:{port}", "--target",
                        f"127.0.0.1:{echo_port}", "--seconds", "0.2", "--size", "64"], 10)
        if res.get("received", 0) > 0:
            peer.port, peer.status = port, "ok"
            return
        last = res.get("error", "no echo came back")
        time.sleep(0.1)
    peer.status = f"unavailable: not serving UDP within 10 s ({last})"


def run_round_trips(peer, args, echo_port, size):
    via = ["--direct"] if peer.name == "direct" else ["--socks5", f"127.0.0.1:{peer.port}"]
    before = tree_cpu_seconds(peer.proc.pid) if peer.proc else None
    res = tool([UDPLOAD, "run", *via, "--target", f"127.0.0.1:{echo_port}",
                    "--size", str(size), "--seconds", str(args.seconds)], args.seconds + 30)
    if before is not None and res.get("received"):
        res["cpu_s_per_m"] = (tree_cpu_seconds(peer.proc.pid) - before) / res["received"] * 1e6
    return res


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def report(results, peers, args):
    names = [p.name for p in peers if p.status == "ok"]

    def series(name, size, field):
        return [r.get(field) for r in results.get((name, size), [])]

    def ratio(a, b, size, field):
        ra, rb = series(a, size, field), series(b, size, field)
        per = [x / y for x, y in zip(ra, rb) if x and y]
        if not per:
            return "-"
        return f"{statistics.median(per):.2f}x ({', '.join(f'{v:.2f}' for v in per)})"

    def f(v, fmt):
        return fmt.format(v) if v is not None else "-"

    out = [f"SOCKS5 UDP, {args.rounds} rounds, {args.seconds:g} s per run, one association, "
           "64 datagrams in flight; medians", ""]
    out += ["| peer | payload | round trips/s | Mbit/s (one way) | lost per run | "
            "CPU s per 10^6 round trips |", "|---|---|---|---|---|---|"]
    for size in SIZES:
        for p in peers:
            if p.status != "ok":
                if size == SIZES[0]:
                    out.append(f"| {p.label} | | {p.status} | | | |")
                continue
            pps = median(series(p.name, size, "pps"))
            mbps = median(series(p.name, size, "mbps"))
            lost = median(series(p.name, size, "lost"))
            cpu = median(series(p.name, size, "cpu_s_per_m"))
            out.append(f"| {p.label} | {size} B | {f(pps, '{:,.0f}')} | {f(mbps, '{:,.1f}')} "
                       f"| {f(lost, '{:,.0f}')} | {f(cpu, '{:.2f}')} |")
    out += ["", "| ratio (median, per round) | value |", "|---|---|"]
    if "neosocksd" in names:
        for size in SIZES:
            goal = " (goal >= 0.5)" if size == 1200 else ""
            out.append(f"| {size} B round trips/s, neosocksd / direct{goal} | "
                       f"{ratio('neosocksd', 'direct', size, 'pps')} |")
            for p in peers:
                if p.name.startswith("build:") and p.name in names:
                    out.append(f"| {size} B round trips/s, {p.label} / direct | "
                               f"{ratio(p.name, 'direct', size, 'pps')} |")
                    out.append(f"| {size} B round trips/s, neosocksd / {p.label} | "
                               f"{ratio('neosocksd', p.name, size, 'pps')} |")
                    out.append(f"| {size} B CPU per round trip, neosocksd / {p.label} | "
                               f"{ratio('neosocksd', p.name, size, 'cpu_s_per_m')} |")
            for other in ("reference", "dante"):
                if other in names:
                    out.append(f"| {size} B round trips/s, neosocksd / {other} | "
                               f"{ratio('neosocksd', other, size, 'pps')} |")
                    out.append(f"| {size} B CPU per round trip, neosocksd / {other} | "
                               f"{ratio('neosocksd', other, size, 'cpu_s_per_m')} |")
    errs = [(k, r["error"]) for k, rs in results.items() for r in rs if "error" in r]
    if errs:
        out += ["", "Errors: " + "; ".join(f"{k[0]} {k[1]} B: {e}" for k, e in errs[:5])]
    return "\n".join(out)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--daemon", default=os.path.join(ROOT, "build", "neosocksd"))
    ap.add_argument("--reference", default=os.path.join(os.path.dirname(ROOT), "shared",
                                                         "peers", "neosocksd-ref"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--also", action="append", default=[], metavar="LABEL=PATH",
                    help="another build of this daemon to run as one more peer, "
                         "interleaved with the others (an A/B of a change)")
    ap.add_argument("--only", help="comma-separated peers to run (direct, neosocksd, "
                                   "reference, dante; --also builds always run)")
    ap.add_argument("--json", help="also write the raw results here")
    args = ap.parse_args(argv)
    if not os.access(UDPLOAD, os.X_OK):
        sys.exit(f"{UDPLOAD} is missing: make -C tests/bench")
    tmp = tempfile.mkdtemp(prefix="neosocksd-benchudp-")
    os.chmod(tmp, 0o755)
    results = {}
    try:
        echo = PROCS.start("echo", [UDPLOAD, "echo"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        line = echo.stdout.readline().split("=")
        if len(line) != 2 or line[0] != "ready port":
            sys.exit("the echo server did not start")
        echo_port = int(line[1])
        peers = [Peer("direct", "direct (no proxy)"),
                 Peer("neosocksd", "neosocksd", args.daemon),
                 Peer("reference", "reference"), Peer("dante", "dante")]
        if args.only:
            keep = set(args.only.split(",")) | {"direct", "neosocksd"}
            peers = [p for p in peers if p.name in keep]
        for spec in args.also:
            label, sep, path = spec.partition("=")
            if not sep or not label or not path:
                sys.exit(f"--also {spec!r}: want LABEL=PATH")
            peers.append(Peer(f"build:{label}", label, os.path.abspath(path)))
        for p in peers:
            start_peer(p, args, tmp, echo_port)
            log(f"{p.name}: {p.status}")
        live = [p for p in peers if p.status == "ok"]
        for rnd in range(args.rounds):
            for size in SIZES:
                for p in live:
                    log(f"round {rnd + 1}: {p.name} {size} B")
                    results.setdefault((p.name, size), []).append(
                        run_round_trips(p, args, echo_port, size))
        print(report(results, peers, args))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({f"{k[0]}/{k[1]}": v for k, v in results.items()}, f, indent=1)
    finally:
        PROCS.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
