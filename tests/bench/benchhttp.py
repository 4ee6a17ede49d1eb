#!/usr/bin/env python3
"""The HTTP forward-proxy benchmark (issue 11), run by `make bench` after
the SOCKS scenarios.

Peers, each serving HTTP on a free 127.0.0.1 port:
  direct      no proxy: the physical limit
  neosocksd   this daemon's --http listener (splice on, the default)
  reference   ../shared/peers/neosocksd-ref --http (if it runs here)
  tinyproxy   Debian's tinyproxy
The origin is bin/httpload serve (1 KiB answers, /big/N for N bytes).

Scenarios, interleaved by round (for each round, for each peer) so that
the machine's drift hits every peer alike:
  rps        64 keep-alive clients fetching 1 KiB objects for --seconds
             (bin/httpload rps; a peer that closes connections makes its
             clients reconnect, as a real client must)
  download   one GET of --download bytes (1 GB): seconds and the CPU
             seconds of the peer's whole process tree per GB; for ours also
             the same download through a CONNECT tunnel, the yardstick
  idle       once, ours only: --idle-conns client connections each make
             one request and stay open (keep-alive, upstream kept): the
             RSS of the whole process tree per idle connection
Figures are medians over the rounds, each ratio with its per-round
values (this machine's noise is +-30%). Goals: rps at least 1.5x
tinyproxy's; forward-proxy CPU per GB within 10% of a CONNECT tunnel's.

A benchmark reports; it passes or fails nothing. Every process it starts
is stopped by pid; every run is bounded in time."""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HTTPLOAD = os.path.join(HERE, "bin", "httpload")
ROOT = os.path.dirname(os.path.dirname(HERE))
STARTED = []


def log(msg):
    print(f"[benchhttp] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(argv, **kw):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, **kw)
    STARTED.append(p)
    return p


def stop_all():
    for p in STARTED:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in STARTED:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def tree(pid):
    """pid and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo += [int(x) for x in f.read().split()]
        except FileNotFoundError:
            pass
    return out


def cpu_seconds(pid):
    tck = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / tck


def http_ok(port, target):
    """One forwarded GET through port answers 200."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(f"GET http://{target}/small HTTP/1.1\r\nHost: {target}\r\n"
                      "Connection: close\r\n\r\n".encode())
            return s.recv(64).startswith(b"HTTP/1.1 200") or False
    except OSError:
        return False


class Peer:
    def __init__(self, name, label):
        self.name, self.label = name, label
        self.proc, self.port, self.status = None, None, "not started"


def start_peer(peer, args, tmp, target):
    if peer.name == "direct":
        peer.status = "ok"
        return
    port, socks = free_port(), free_port()
    wdir = os.path.join(tmp, peer.name)
    os.makedirs(wdir, exist_ok=True)
    if peer.name == "neosocksd":
        argv = [args.daemon, "-l", f"127.0.0.1:{socks}", "--http", f"127.0.0.1:{port}",
                "--loglevel", "1"]
    elif peer.name == "reference":
        if not (os.path.isfile(args.reference) and os.access(args.reference, os.X_OK)):
            peer.status = f"unavailable: no executable at {args.reference}"
            return
        argv = [args.reference, "-l", f"127.0.0.1:{socks}", "--http", f"127.0.0.1:{port}",
                "--loglevel", "1"]
    else:
        if shutil.which("tinyproxy") is None:
            peer.status = "unavailable: tinyproxy is not installed (make deps-bench)"
            return
        conf = os.path.join(wdir, "tinyproxy.conf")
        with open(conf, "w") as f:
            f.write(f"Port {port}\nListen 127.0.0.1\nTimeout 600\nMaxClients 1024\n"
                    "LogLevel Critical\nAllow 127.0.0.1\n")
        argv = ["tinyproxy", "-d", "-c", conf]
    with open(os.path.join(wdir, "log"), "ab") as lf:
        peer.proc = start(argv, stdout=lf, stderr=lf, cwd=wdir)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if peer.proc.poll() is not None:
            peer.status = f"unavailable: exited with {peer.proc.returncode}"
            return
        if http_ok(port, target):
            peer.port, peer.status = port, "ok"
            return
        time.sleep(0.05)
    peer.status = "unavailable: not serving within 10 s"


def run_tool(argv, timeout):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        return {"error": (p.stderr or p.stdout).strip()[-300:]}
    return json.loads(lines[-1])


def via(peer, connect=False):
    if peer.name == "direct":
        return ["--direct"]
    return ["--proxy", f"127.0.0.1:{peer.port}"] + (["--connect"] if connect else [])


def run_rps(peer, args, target):
    before = cpu_seconds(peer.proc.pid) if peer.proc else None
    res = run_tool([HTTPLOAD, "rps", *via(peer), "--target", target, "--conns", "64",
                    "--seconds", str(args.seconds)], args.seconds + 30)
    if before is not None and "requests" in res:
        res["cpu_s_per_10k"] = (cpu_seconds(peer.proc.pid) - before) / res["requests"] * 1e4 \
            if res["requests"] else None
    return res


def run_download(peer, args, target, connect=False):
    before = cpu_seconds(peer.proc.pid) if peer.proc else None
    res = run_tool([HTTPLOAD, "get", *via(peer, connect), "--target", target,
                    "--path", f"/big/{args.download}"], 300)
    if before is not None and "bytes" in res:
        res["cpu_s_per_gb"] = (cpu_seconds(peer.proc.pid) - before) / (res["bytes"] / 1e9)
    return res


def rss_kib(pid):
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for ln in f:
                    if ln.startswith("VmRSS:"):
                        total += int(ln.split()[1])
        except FileNotFoundError:
            pass
    return total


def run_idle(peer, args, target):
    """RSS per idle keep-alive connection: each connection made one request
    (its upstream connection is kept too) and is left open."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = min(args.idle_conns, hard - 200)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, n + 200), hard))
    before = rss_kib(peer.proc.pid)
    socks = []
    req = f"GET http://{target}/small HTTP/1.1\r\nHost: {target}\r\n\r\n".encode()
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", peer.port), timeout=10)
            socks.append(s)
            s.sendall(req)
            got = b""
            while not got.endswith(b"\r\n\r\n") or len(got) < 1024:
                chunk = s.recv(65536)
                if not chunk:
                    return {"error": f"closed after {len(socks)} connections"}
                got += chunk
                if b"\r\n\r\n" in got and len(got.split(b"\r\n\r\n", 1)[1]) >= 1024:
                    break
        time.sleep(0.5)  # the last answers' relays go idle
        after = rss_kib(peer.proc.pid)
        return {"conns": n, "before_kib": before, "after_kib": after,
                "bytes_per_conn": (after - before) * 1024 / n}
    finally:
        for s in socks:
            s.close()


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def report(results, peers, args):
    """Markdown: medians, ratios with per-round values."""
    names = [p.name for p in peers if p.status == "ok"]

    def series(name, key, field):
        return [r.get(field) for r in results.get((name, key), [])]

    def ratio(a, b, key, field):
        ra, rb = series(a, key, field), series(b, key, field)
        per = [x / y for x, y in zip(ra, rb) if x and y]
        if not per:
            return "-"
        return f"{statistics.median(per):.2f}x ({', '.join(f'{v:.2f}' for v in per)})"

    out = [f"HTTP forward proxy, {args.rounds} rounds, {args.seconds:g} s per rps run, "
           f"{args.download / 1e9:g} GB download; medians", ""]
    out += ["| peer | requests/s (64 keep-alive clients, 1 KiB) | reconnects/s | CPU s per 10k requests | download Gbit/s | CPU s per GB |",
            "|---|---|---|---|---|---|"]
    for p in peers:
        if p.status != "ok":
            out.append(f"| {p.label} | {p.status} | | | | |")
            continue
        rps = median(series(p.name, "rps", "rps"))
        rec = median([r.get("reconnects", 0) / r["seconds"] for r in results.get((p.name, "rps"), [])
                      if "seconds" in r])
        cpu = median(series(p.name, "rps", "cpu_s_per_10k"))
        gb = median(series(p.name, "download", "gbps"))
        cgb = median(series(p.name, "download", "cpu_s_per_gb"))

        def f(v, fmt):
            return fmt.format(v) if v is not None else "-"
        out.append(f"| {p.label} | {f(rps, '{:,.0f}')} | {f(rec, '{:,.0f}')} | {f(cpu, '{:.3f}')} "
                   f"| {f(gb, '{:.2f}')} | {f(cgb, '{:.3f}')} |")
        if p.name == "neosocksd":
            gb = median(series("neosocksd-connect", "download", "gbps"))
            cgb = median(series("neosocksd-connect", "download", "cpu_s_per_gb"))
            out.append(f"| neosocksd, the same download through CONNECT | | | | {f(gb, '{:.2f}')} "
                       f"| {f(cgb, '{:.3f}')} |")
    out += ["", "| ratio (median, per round) | value |", "|---|---|"]
    if "neosocksd" in names:
        if "tinyproxy" in names:
            out.append(f"| requests/s, neosocksd / tinyproxy (goal >= 1.5) | "
                       f"{ratio('neosocksd', 'tinyproxy', 'rps', 'rps')} |")
        if "reference" in names:
            out.append(f"| requests/s, neosocksd / reference | "
                       f"{ratio('neosocksd', 'reference', 'rps', 'rps')} |")
            out.append(f"| download CPU per GB, neosocksd / reference | "
                       f"{ratio('neosocksd', 'reference', 'download', 'cpu_s_per_gb')} |")
        out.append(f"| requests/s, neosocksd / direct | "
                   f"{ratio('neosocksd', 'direct', 'rps', 'rps')} |")
        out.append(f"| download CPU per GB, forwarded / CONNECT tunnel (goal <= 1.10) | "
                   f"{ratio('neosocksd', 'neosocksd-connect', 'download', 'cpu_s_per_gb')} |")
        out.append(f"| download Gbit/s, forwarded / direct | "
                   f"{ratio('neosocksd', 'direct', 'download', 'gbps')} |")
    idle = results.get(("neosocksd", "idle"), [{}])[0]
    if "bytes_per_conn" in idle:
        out += ["", f"Memory per idle keep-alive connection (neosocksd, {idle['conns']} connections, "
                    f"each with its upstream connection kept; RSS of the whole process tree): "
                    f"{idle['bytes_per_conn']:.0f} bytes ({idle['before_kib']} KiB before, "
                    f"{idle['after_kib']} KiB with them)."]
    errs = [(k, r["error"]) for k, rs in results.items() for r in rs if "error" in r]
    if errs:
        out += ["", "Errors: " + "; ".join(f"{k[0]} {k[1]}: {e}" for k, e in errs[:5])]
    return "\n".join(out)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--daemon", default=os.path.join(ROOT, "build", "neosocksd"))
    ap.add_argument("--reference", default=os.path.join(os.path.dirname(ROOT), "shared",
                                                         "peers", "neosocksd-ref"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--download", type=int, default=1_000_000_000)
    ap.add_argument("--idle-conns", type=int, default=2000)
    ap.add_argument("--json", help="also write the raw results here")
    args = ap.parse_args(argv)
    if not os.access(HTTPLOAD, os.X_OK):
        sys.exit(f"{HTTPLOAD} is missing: make -C tests/bench")
    tmp = tempfile.mkdtemp(prefix="neosocksd-benchhttp-")
    results = {}
    try:
        oport = free_port()
        origin = start([HTTPLOAD, "serve", "--port", str(oport), "--size", "1024"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if origin.stdout.readline().strip() != "ready":
            sys.exit("the origin did not start")
        target = f"127.0.0.1:{oport}"
        peers = [Peer("direct", "direct (no proxy)"), Peer("neosocksd", "neosocksd --http"),
                 Peer("reference", "reference --http"), Peer("tinyproxy", "tinyproxy")]
        for p in peers:
            start_peer(p, args, tmp, target)
            log(f"{p.name}: {p.status}")
        live = [p for p in peers if p.status == "ok"]
        for p in live:
            if p.name == "neosocksd" and args.idle_conns > 0:
                log(f"{p.name}: {args.idle_conns} idle keep-alive connections")
                results[(p.name, "idle")] = [run_idle(p, args, target)]
        for rnd in range(args.rounds):
            for p in live:
                log(f"round {rnd + 1}: {p.name} rps")
                results.setdefault((p.name, "rps"), []).append(run_rps(p, args, target))
            for p in live:
                log(f"round {rnd + 1}: {p.name} download")
                results.setdefault((p.name, "download"), []).append(
                    run_download(p, args, target))
                if p.name == "neosocksd":
                    results.setdefault(("neosocksd-connect", "download"), []).append(
                        run_download(p, args, target, connect=True))
        print(report(results, peers, args))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({f"{k[0]}/{k[1]}": v for k, v in results.items()}, f, indent=1)
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
