"""The HTTP forward-proxy scenarios (issue 11), rows of benchscen.SCENARIOS.

They apply to the peers that serve "http" (benchpeers.PEERS: ours and the
reference with an --http listener, tinyproxy) and to direct. The origin and
the load generator are bin/httpload: `httpload serve` answers 1 KiB with
keep-alive and "/big/N" with N bytes; bench.py starts it once per run.

  http-rps       64 keep-alive clients fetching 1 KiB objects for
                 --seconds (httpload rps; a peer that closes connections
                 makes its clients reconnect, as a real client must, and
                 the reconnects are counted); the CPU seconds of the peer's
                 whole process tree per 10k requests
  http-download  one GET of --http-download bytes (1 GB): Gbit/s and CPU
                 seconds per GB; for ours also the same download through a
                 CONNECT tunnel on the same listener, the yardstick of the
                 goal (forwarding within 10% of a tunnel's CPU per GB)
  http-idle      once, ours only: --http-idle-conns client connections each
                 make one request and stay open (keep-alive, the upstream
                 kept for the next request): RSS of the process tree per
                 idle connection
"""
import os
import resource
import socket
import time

from benchproc import run_tool, tree_cpu_seconds, tree_memory

HERE = os.path.dirname(os.path.abspath(__file__))
HTTPLOAD = os.path.join(HERE, "bin", "httpload")
HTTP_CONCURRENCY = 64
OBJECT_SIZE = 1024


def _via(peer, connect=False):
    if not peer.is_proxy:
        return ["--direct"]
    return ["--proxy", f"127.0.0.1:{peer.http_port}"] + (["--connect"] if connect else [])


def _target(ctx):
    return f"127.0.0.1:{ctx.origin_port}"


def run_rps(ctx, peer):
    args, budget = ctx.args, ctx.budget
    if not budget.fits(args.seconds + 3):
        return {"skipped": "time budget"}
    before = tree_cpu_seconds(peer.proc.pid) if peer.is_proxy else None
    res, err = run_tool([HTTPLOAD, "rps", *_via(peer), "--target", _target(ctx),
                         "--conns", str(HTTP_CONCURRENCY), "--seconds", str(args.seconds)],
                        budget.timeout(args.seconds + 30))
    if res is None:
        return {"error": err}
    if res.get("seconds"):
        res["reconnects_per_s"] = res.get("reconnects", 0) / res["seconds"]
    if before is not None and res.get("requests"):
        res["cpu_s_per_10k"] = (tree_cpu_seconds(peer.proc.pid) - before) / res["requests"] * 1e4
    return res


def _download(ctx, peer, connect):
    budget = ctx.budget
    before = tree_cpu_seconds(peer.proc.pid) if peer.is_proxy else None
    res, err = run_tool([HTTPLOAD, "get", *_via(peer, connect), "--target", _target(ctx),
                         "--path", f"/big/{ctx.args.http_download}"], budget.timeout(300))
    if res is None:
        return {"error": err}
    if before is not None and res.get("bytes"):
        res["cpu_s_per_gb"] = (tree_cpu_seconds(peer.proc.pid) - before) / (res["bytes"] / 1e9)
    return res


def run_download(ctx, peer):
    """The download forwarded; for ours also through CONNECT, and the ratio
    of the two CPU figures in the same round."""
    if not ctx.budget.fits(60):
        return {"skipped": "time budget"}
    res = _download(ctx, peer, connect=False)
    if "error" in res or peer.spec.group != "ours":
        return res
    tun = _download(ctx, peer, connect=True)
    if "error" in tun:
        res["warning"] = f"the CONNECT download failed: {tun['error']}"
        return res
    res["connect_gbps"] = tun["gbps"]
    res["connect_cpu_s_per_gb"] = tun.get("cpu_s_per_gb")
    if res.get("cpu_s_per_gb") and tun.get("cpu_s_per_gb"):
        res["cpu_vs_connect"] = res["cpu_s_per_gb"] / tun["cpu_s_per_gb"]
    return res


def _fetch_keep(peer, req):
    """One connection that made one request, read the whole answer and
    stays open; None if the peer closed it."""
    s = socket.create_connection(("127.0.0.1", peer.http_port), timeout=10)
    s.sendall(req)
    got = b""
    while True:
        head, sep, body = got.partition(b"\r\n\r\n")
        if sep and len(body) >= OBJECT_SIZE:
            return s
        chunk = s.recv(65536)
        if not chunk:
            s.close()
            return None
        got += chunk


def run_idle(ctx, peer):
    """RSS per idle keep-alive connection, its upstream kept too."""
    budget = ctx.budget
    if not budget.fits(60):
        return {"skipped": "time budget"}
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = min(ctx.args.http_idle_conns, hard - 200)
    target = _target(ctx)
    req = f"GET http://{target}/small HTTP/1.1\r\nHost: {target}\r\n\r\n".encode()
    before = tree_memory(peer.proc.pid)
    socks = []
    end = time.monotonic() + budget.timeout(120)
    try:
        while len(socks) < n:
            if time.monotonic() > end:
                return {"error": f"only {len(socks)} of {n} connections within the time"}
            try:
                s = _fetch_keep(peer, req)
            except OSError as e:
                return {"error": f"after {len(socks)} connections: {e}"}
            if s is None:
                return {"error": f"closed after {len(socks)} connections"}
            socks.append(s)
        # the last answers' relays go idle (a bound, not a synchronisation:
        # a late release only makes the figure larger)
        time.sleep(0.5)
        after = tree_memory(peer.proc.pid)
        return {"conns": n, "before": before, "after": after,
                "bytes_per_conn": (after["rss"] - before["rss"]) / n}
    finally:
        for s in socks:
            s.close()
