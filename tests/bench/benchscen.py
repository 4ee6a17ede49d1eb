"""The scenarios the benchmark runs, as one table (SCENARIOS).

Each scenario has a name, whether it runs once or in every round, the peers
it applies to, and a run(ctx, peer) that returns a result dict (figures, or
"error"/"skipped" with the reason). ctx carries the options, the budget and
the target's ports.

Set-ups for the handshake scenario (issue 14 names both):
  rate        A: the target is benchsrv, a separate process; loadgen and
              the proxy spread their connections over 16 loopback source
              and target addresses (source rotation).
  rate-local  B: the target is inside the load generator (loadgen
              --echo-here), one address pair, no rotation: one process
              fewer competing for the two cores.

The HTTP forward-proxy scenarios (benchhttp.py) apply to the peers whose
protocols include "http". Later scenarios go here as rows: UDP datagrams
to the peers with "udp" (dante), the API over TLS to the peers of group
"ours"; a `--workers N` variant is a row in benchpeers.PEERS, not a
scenario.
"""
import json
import os
import signal
import subprocess
import time

import benchhttp
from benchpeers import socks5_echo_once
from benchproc import last_json, pids_by_comm, run_tool, tree, tree_cpu_seconds, tree_memory

HERE = os.path.dirname(os.path.abspath(__file__))
LOADGEN = os.path.join(HERE, "bin", "loadgen")
RATE_CONCURRENCY = 64
SPREAD = 16          # loopback address pairs for connection churn (see loadgen.c)


def target_args(peer, port, here=False):
    via = ["--socks5", f"127.0.0.1:{peer.port}"] if peer.is_proxy else ["--direct"]
    return via + (["--echo-here"] if here else ["--target", f"127.0.0.1:{port}"])


def cpu_before(peer):
    return tree_cpu_seconds(peer.proc.pid) if peer.is_proxy else None


def cpu_after(peer, before):
    return tree_cpu_seconds(peer.proc.pid) - before if peer.is_proxy else None


# ---------------------------------------------------------------- runs

def run_bulk(ctx, peer, streams):
    args, budget = ctx.args, ctx.budget
    if not budget.fits(args.seconds + 3):
        return {"skipped": "time budget"}
    cmd = [LOADGEN, "bulk", *target_args(peer, ctx.sink_port), "--streams", str(streams),
           "--seconds", str(args.seconds)]
    before = cpu_before(peer)
    res, err = run_tool(cmd, budget.timeout(args.seconds + 20))
    if res is None:
        return {"error": err}
    if peer.is_proxy:
        cpu = cpu_after(peer, before)
        res["cpu_seconds"] = cpu
        gb = res["bytes"] / 1e9
        res["cpu_s_per_gb"] = cpu / gb if gb > 0 else None
    res["gbps"] = res["mbps"] / 1000.0
    if res.get("established", streams) < streams or res.get("errors"):
        res["warning"] = f"{res.get('errors')} stream errors"
    return res


def run_rate(ctx, peer, local, pin=None):
    args, budget = ctx.args, ctx.budget
    if not budget.fits(args.seconds + 3):
        return {"skipped": "time budget"}
    cmd = ["taskset", "-c", str(pin)] if pin is not None else []
    cmd += [LOADGEN, "rate", *target_args(peer, ctx.echo_port, here=local),
           "--concurrency", str(RATE_CONCURRENCY), "--seconds", str(args.seconds),
           "--max-ops", "2000000"]
    if not local:
        cmd += ["--spread", str(SPREAD)]
    before = cpu_before(peer)
    res, err = run_tool(cmd, budget.timeout(args.seconds + 20))
    if res is None:
        return {"error": err}
    if peer.is_proxy and res.get("ops"):
        cpu = cpu_after(peer, before)
        res["cpu_seconds"] = cpu
        res["cpu_s_per_10k"] = cpu / res["ops"] * 1e4
    return res


def _pin(pids, cpus):
    """Set the CPU affinity of every thread of these processes; returns
    what it was, to give back."""
    saved = {}
    for pid in pids:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for tid in tids:
            try:
                saved[tid] = os.sched_getaffinity(tid)
                os.sched_setaffinity(tid, cpus)
            except OSError:
                pass
    return saved


def run_rate_pinned(ctx, peer):
    """Set-up B with the load generator (and its echo target) on one CPU
    and every process of the peer on another, for the run: what the proxy
    does with one core of its own, the load generator no longer competing
    for it (issue 14 §3: the evidence of scaling a 2-CPU machine allows).
    core_busy is the share of that core the peer used: under 1, the load
    generator's core was the limit."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return {"skipped": "needs two CPUs"}
    saved = _pin(tree(peer.proc.pid), {cpus[1]})
    try:
        res = run_rate(ctx, peer, local=True, pin=cpus[0])
    finally:
        for tid, cpu_set in saved.items():
            try:
                os.sched_setaffinity(tid, cpu_set)
            except OSError:
                pass  # that thread is gone
    if res.get("cpu_s_per_10k") and res.get("ops_per_sec"):
        res["core_busy"] = res["cpu_s_per_10k"] * res["ops_per_sec"] / 1e4
    return res


def run_respawn(ctx, peer):
    """Kill -9 the ruleset process, then a front worker; seconds until the
    killed process is replaced (as many of its kind as before, itself not
    among them) and a request is decided and served again (polled every
    2 ms, each try bounded). With several workers the others serve
    meanwhile, so the replacement is what is timed."""
    if not ctx.budget.fits(15):
        return {"skipped": "time budget"}
    out = {}
    for comm, key in (("neosocksd-rules", "ruleset_s"), ("neosocksd-front", "front_s")):
        if not socks5_echo_once(peer.port, ctx.echo_port, 5):
            return {"error": "not serving before the kill"}
        before = pids_by_comm(peer.proc.pid, comm)
        if not before:
            return {"error": f"no {comm} process"}
        victim = before[0]

        def replaced():
            now = pids_by_comm(peer.proc.pid, comm)
            return victim not in now and len(now) >= len(before)

        t0 = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        while not (replaced() and socks5_echo_once(peer.port, ctx.echo_port, 1.0)):
            if time.monotonic() - t0 > 10:
                return {"error": f"{comm}: not replaced and serving 10 s after the kill"}
            time.sleep(0.002)
        out[key] = time.monotonic() - t0
    return out


def run_idle(ctx, peer):
    """Memory per idle established tunnel: RSS and PSS summed over the
    peer's process tree before and while --idle-conns tunnels are held."""
    n, budget = ctx.args.idle_conns, ctx.budget
    if not budget.fits(30):
        return {"skipped": "time budget"}
    timeout = budget.timeout(120)
    before = tree_memory(peer.proc.pid)
    cmd = [LOADGEN, "idle", *target_args(peer, ctx.echo_port), "--conns", str(n),
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


# ---------------------------------------------------------------- table

class Scenario:
    def __init__(self, name, title, run, applies, once=False, default=True):
        self.name = name
        self.title = title
        self.run = run
        self.applies = applies
        self.once = once          # measured once, before the rounds
        self.default = default    # in the default --only list


def _plain(p):
    """SOCKS proxies without a ruleset, and direct."""
    return p.serves("socks5") and p.spec.rules is None


def _http(p):
    """HTTP proxies without a ruleset, and direct."""
    return p.serves("http") and p.spec.rules is None


SCENARIOS = [
    Scenario("idle", "memory per idle tunnel", run_idle, once=True,
             applies=lambda p: p.is_proxy and _plain(p)),
    Scenario("bulk1", "bulk, 1 stream", lambda c, p: run_bulk(c, p, 1), applies=_plain),
    Scenario("bulk16", "bulk, 16 streams", lambda c, p: run_bulk(c, p, 16), applies=_plain,
             default=False),
    Scenario("rate", "handshakes, set-up A (separate target, source rotation)",
             lambda c, p: run_rate(c, p, local=False), applies=lambda p: p.serves("socks5")),
    Scenario("rate-local", "handshakes, set-up B (target in the load generator)",
             lambda c, p: run_rate(c, p, local=True),
             applies=lambda p: p.spec.group in ("direct", "ours", "reference")),
    Scenario("rate-pinned", "handshakes, set-up B, load generator and proxy on one CPU each",
             run_rate_pinned,
             applies=lambda p: p.spec.group in ("ours", "reference") and _plain(p)),
    Scenario("respawn", "respawn after kill -9", run_respawn,
             applies=lambda p: p.name == "neosocksd-rules"),
    Scenario("http-idle", "HTTP: memory per idle keep-alive connection", benchhttp.run_idle,
             once=True, applies=lambda p: p.name == "neosocksd"),
    Scenario("http-rps", "HTTP forward proxy: requests/s, 64 keep-alive clients",
             benchhttp.run_rps, applies=_http),
    Scenario("http-download", "HTTP forward proxy: 1 GB download", benchhttp.run_download,
             applies=_http),
]
BY_NAME = {s.name: s for s in SCENARIOS}
