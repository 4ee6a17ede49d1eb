#!/usr/bin/env python3
"""The REST API over TLS against plain HTTP (issue 16), run by `make bench`.

Two daemons, alike but for the API's transport:
  plain   --api on 127.0.0.1 over HTTP
  tls     --api on 127.0.0.1 over TLS with client certificates (mutual TLS:
          --api-tls-cert, --api-tls-key, --api-tls-client-ca), an ECDSA
          P-256 certificate made by the openssl command for this run
bin/apiload drives each with GET /healthy (the transport's cost, not a
handler's) from --conns concurrent clients for --seconds:
  keep-alive  each connection sends one request after another
  new         one request per connection (Connection: close): every request
              pays the TCP set-up and, over TLS, a full handshake with the
              client's certificate checked (the API resumes no session)
Runs are interleaved by round (for each round, for each mode, each daemon),
so that the machine's drift hits both alike. Reported: requests/s (median),
the daemon's CPU seconds (its whole process tree) per 10k requests, and
the ratio TLS / plain with its per-round values (this machine's noise is
+-30%; other processes share its two cores, the load generator too).

A benchmark reports; it passes or fails nothing. Every process it starts
is stopped by pid; every run is bounded in time. Only the Python standard
library and the openssl command are used."""

import argparse
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

from benchpeers import free_port
from benchproc import PROCS, run_tool, tree_cpu_seconds

HERE = os.path.dirname(os.path.abspath(__file__))
APILOAD = os.path.join(HERE, "bin", "apiload")
ROOT = os.path.dirname(os.path.dirname(HERE))
MODES = ("keep-alive", "new")


def log(msg):
    print(f"[benchapi] {msg}", file=sys.stderr, flush=True)


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_pki(d):
    """ca.crt; server.crt/key for localhost; client.crt/key."""
    p = lambda n: os.path.join(d, n)  # noqa: E731
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", p("ca.key"), "-out", p("ca.crt"), "-days", "2",
            "-subj", "/CN=bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign")
    for name, ext in (("server", "extendedKeyUsage=serverAuth\n"
                                 "subjectAltName=DNS:localhost,IP:127.0.0.1\n"),
                      ("client", "extendedKeyUsage=clientAuth\n")):
        with open(p(name + ".ext"), "w") as f:
            f.write("basicConstraints=CA:FALSE\n" + ext)
        openssl("req", "-new", *ec, "-keyout", p(name + ".key"), "-out", p(name + ".csr"),
                "-subj", f"/CN=bench {name}")
        openssl("x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.crt"), "-CAkey",
                p("ca.key"), "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
                "-days", "2", "-extfile", p(name + ".ext"), "-out", p(name + ".crt"))
        os.chmod(p(name + ".key"), 0o600)


class Api:
    def __init__(self, name):
        self.name, self.proc, self.port, self.status = name, None, None, "not started"


def api_ok(api, pki):
    try:
        s = socket.create_connection(("127.0.0.1", api.port), timeout=2)
        if api.name == "tls":
            ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
            ctx.load_cert_chain(os.path.join(pki, "client.crt"),
                                os.path.join(pki, "client.key"))
            s = ctx.wrap_socket(s, server_hostname="localhost")
        with s:
            s.sendall(b"GET /healthy HTTP/1.1\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except (OSError, ssl.SSLError):
        return False


def start_api(api, args, pki, tmp):
    api.port, socks = free_port(), free_port()
    argv = [args.daemon, "-l", f"127.0.0.1:{socks}", "--api", f"127.0.0.1:{api.port}",
            "--api-max-conns", "1024", "--loglevel", "1"]
    if api.name == "tls":
        argv += ["--api-tls-cert", os.path.join(pki, "server.crt"),
                 "--api-tls-key", os.path.join(pki, "server.key"),
                 "--api-tls-client-ca", os.path.join(pki, "ca.crt")]
    with open(os.path.join(tmp, api.name + ".log"), "ab") as lf:
        api.proc = PROCS.start(api.name, argv, stdout=lf, stderr=lf)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if api.proc.poll() is not None:
            api.status = f"exited with {api.proc.returncode}"
            return
        if api_ok(api, pki):
            api.status = "ok"
            return
        time.sleep(0.05)
    api.status = "not serving within 15 s"


def run_load(api, mode, args, pki):
    argv = [APILOAD, "--target", f"127.0.0.1:{api.port}", "--conns", str(args.conns),
            "--seconds", str(args.seconds)]
    if mode == "new":
        argv.append("--new")
    if api.name == "tls":
        argv += ["--tls", "--ca", os.path.join(pki, "ca.crt"),
                 "--cert", os.path.join(pki, "client.crt"),
                 "--key", os.path.join(pki, "client.key")]
    before = tree_cpu_seconds(api.proc.pid)
    res, err = run_tool(argv, args.seconds + 30)
    if res is None:
        return {"error": err}
    if res.get("requests"):
        res["cpu_s_per_10k"] = ((tree_cpu_seconds(api.proc.pid) - before)
                                / res["requests"] * 1e4)
    return res


def report(results, args):
    def series(name, mode, field):
        return [r.get(field) for r in results.get((name, mode), [])]

    def med(vals):
        vals = [v for v in vals if v is not None]
        return statistics.median(vals) if vals else None

    def f(v, fmt):
        return fmt.format(v) if v is not None else "-"

    out = [f"REST API, TLS (mutual, ECDSA P-256) against plain HTTP: GET /healthy, "
           f"{args.conns} clients, {args.rounds} rounds of {args.seconds:g} s; medians", "",
           "| mode | plain requests/s | TLS requests/s | TLS / plain (per round) "
           "| plain CPU s per 10k | TLS CPU s per 10k |",
           "|---|---|---|---|---|---|"]
    for mode in MODES:
        rp, rt = series("plain", mode, "rps"), series("tls", mode, "rps")
        per = [t / p for t, p in zip(rt, rp) if t and p]
        ratio = (f"{statistics.median(per):.2f}x ({', '.join(f'{v:.2f}' for v in per)})"
                 if per else "-")
        out.append(f"| {mode} | {f(med(rp), '{:,.0f}')} | {f(med(rt), '{:,.0f}')} | {ratio} "
                   f"| {f(med(series('plain', mode, 'cpu_s_per_10k')), '{:.3f}')} "
                   f"| {f(med(series('tls', mode, 'cpu_s_per_10k')), '{:.3f}')} |")
    errs = [(k, r.get("error") or f"{r.get('errors')} failed requests")
            for k, rs in results.items() for r in rs if r.get("error") or r.get("errors")]
    if errs:
        out += ["", "Errors: " + "; ".join(f"{k[0]} {k[1]}: {e}" for k, e in errs[:5])]
    return "\n".join(out)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--daemon", default=os.path.join(ROOT, "build", "neosocksd"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--json", help="also write the raw results here")
    args = ap.parse_args(argv)
    if not os.access(APILOAD, os.X_OK):
        sys.exit(f"{APILOAD} is missing: make -C tests/bench")
    if shutil.which("openssl") is None:
        sys.exit("the openssl command is missing: make deps-bench")
    tmp = tempfile.mkdtemp(prefix="neosocksd-benchapi-")
    results = {}
    try:
        make_pki(tmp)
        apis = [Api("plain"), Api("tls")]
        for a in apis:
            start_api(a, args, tmp, tmp)
            log(f"{a.name}: {a.status}")
        if any(a.status != "ok" for a in apis):
            sys.exit("a daemon did not start; logs in " + tmp)
        for rnd in range(args.rounds):
            for mode in MODES:
                for a in apis:
                    log(f"round {rnd + 1}: {a.name} {mode}")
                    results.setdefault((a.name, mode), []).append(
                        run_load(a, mode, args, tmp))
        print(report(results, args))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({f"{k[0]}/{k[1]}": v for k, v in results.items()}, f, indent=1)
    finally:
        PROCS.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
