"""The benchmark's Markdown report: every figure as a median over the rounds
and as a ratio to the reference (both its variants) and to direct loopback,
with the per-round ratios, because this machine's noise is about +-30%."""
import statistics

from benchhttp import HTTP_CONCURRENCY, OBJECT_SIZE
from benchpeers import RULES_COUNT, SPECS
from benchscen import RATE_CONCURRENCY, SPREAD


class Metric:
    def __init__(self, scen, field, label, higher, fmt, scale=1.0):
        self.scen, self.field, self.label = scen, field, label
        self.higher, self.fmt, self.scale = higher, fmt, scale

    def show(self, v):
        return self.fmt.format(v)


HS_A = Metric("rate", "ops_per_sec", f"SOCKS5 handshakes/s, {RATE_CONCURRENCY} clients, set-up A",
              True, "{:,.0f}")
CPU_A = Metric("rate", "cpu_s_per_10k", "CPU s per 10k handshakes, all processes, set-up A",
               False, "{:.2f}")
HS_B = Metric("rate-local", "ops_per_sec",
              f"SOCKS5 handshakes/s, {RATE_CONCURRENCY} clients, set-up B", True, "{:,.0f}")
CPU_B = Metric("rate-local", "cpu_s_per_10k",
               "CPU s per 10k handshakes, all processes, set-up B", False, "{:.2f}")
BULK1 = Metric("bulk1", "gbps", "bulk relay, 1 stream (Gbit/s)", True, "{:.2f}")
CPUGB = Metric("bulk1", "cpu_s_per_gb", "CPU s per GB relayed, 1 stream", False, "{:.3f}")
BULK16 = Metric("bulk16", "gbps", "bulk relay, 16 streams (Gbit/s)", True, "{:.2f}")
CPUGB16 = Metric("bulk16", "cpu_s_per_gb", "CPU s per GB relayed, 16 streams", False, "{:.3f}")
RSS = Metric("idle", "rss_per_tunnel", "memory per idle tunnel, RSS summed over all processes (KiB)",
             False, "{:.2f}", 1 / 1024)
PSS = Metric("idle", "pss_per_tunnel", "memory per idle tunnel, PSS (KiB)", False, "{:.2f}",
             1 / 1024)
P50_A = Metric("rate", "p50_us", "handshake latency p50, set-up A (µs)", False, "{:,.0f}")
P99_A = Metric("rate", "p99_us", "handshake latency p99, set-up A (µs)", False, "{:,.0f}")
P50_B = Metric("rate-local", "p50_us", "handshake latency p50, set-up B (µs)", False, "{:,.0f}")
P99_B = Metric("rate-local", "p99_us", "handshake latency p99, set-up B (µs)", False, "{:,.0f}")

HTTP_RPS = Metric("http-rps", "rps", f"requests/s, {HTTP_CONCURRENCY} keep-alive clients, "
                  f"{OBJECT_SIZE // 1024} KiB objects", True, "{:,.0f}")
HTTP_RECONN = Metric("http-rps", "reconnects_per_s",
                     "reconnects/s (the proxy closed the client's connection)", False, "{:,.0f}")
HTTP_CPU = Metric("http-rps", "cpu_s_per_10k", "CPU s per 10k requests, all processes", False,
                  "{:.3f}")
HTTP_GBPS = Metric("http-download", "gbps", "download, one large GET (Gbit/s)", True, "{:.2f}")
HTTP_CPUGB = Metric("http-download", "cpu_s_per_gb", "CPU s per GB downloaded", False, "{:.3f}")
HTTP_TUN_GBPS = Metric("http-download", "connect_gbps", "the same download through CONNECT "
                       "(Gbit/s)", True, "{:.2f}")
HTTP_TUN_CPUGB = Metric("http-download", "connect_cpu_s_per_gb", "CPU s per GB through CONNECT",
                        False, "{:.3f}")
HTTP_VS_TUN = Metric("http-download", "cpu_vs_connect",
                     "CPU per GB, forwarded ÷ through CONNECT", False, "{:.2f}×")
HTTP_IDLE = Metric("http-idle", "bytes_per_conn", "memory per idle keep-alive connection (bytes)",
                   False, "{:,.0f}")
HTTP_MAIN = [HTTP_RPS, HTTP_RECONN, HTTP_CPU, HTTP_GBPS, HTTP_CPUGB, HTTP_TUN_GBPS,
             HTTP_TUN_CPUGB]
HTTP_RATIO = {HTTP_RPS, HTTP_CPU, HTTP_GBPS, HTTP_CPUGB}

HS_P = Metric("rate-pinned", "ops_per_sec",
              "SOCKS5 handshakes/s, set-up B, load generator and proxy on one CPU each",
              True, "{:,.0f}")
CPU_P = Metric("rate-pinned", "cpu_s_per_10k",
               "CPU s per 10k handshakes, set-up B, the proxy on a CPU of its own", False,
               "{:.2f}")
MAIN = [HS_A, CPU_A, HS_B, CPU_B, HS_P, CPU_P, BULK1, CPUGB, BULK16, CPUGB16, RSS, PSS]
LATENCY = [P50_A, P99_A, P50_B, P99_B]
RULES_METRICS = [HS_A, CPU_A, HS_B, CPU_B]
DIRECT_RATIO = {HS_A, HS_B, BULK1, BULK16}
REF, REF_PIPE = "ref", "ref-pipe"

# Issue 14's goals: (metric, ours, against, at least / at most, ratio).
# "reference" is the better of its two variants in this run.
GOALS = [
    (HS_A, "neosocksd", "reference", ">=", 1.3),
    (HS_B, "neosocksd", "reference", ">=", 1.3),
    (HS_A, "neosocksd-rules", "ref-rules", ">=", 1.2),
    (HS_B, "neosocksd-rules", "ref-rules", ">=", 1.2),
    (BULK1, "neosocksd", REF_PIPE, ">=", 1.2),
    (CPUGB, "neosocksd", REF_PIPE, "<=", 0.8),
]
MEMORY_GOAL_KIB = 1.0
# Issue 11's: requests/s against tinyproxy; a forwarded download's CPU per
# GB against the same download through a CONNECT tunnel of ours.
HTTP_RPS_GOAL = 1.5
HTTP_VS_TUN_GOAL = 1.10


class Results:
    """results[peer][scenario] = [result dict with "round"], and helpers."""

    def __init__(self, results):
        self.r = results

    def by_round(self, peer, m):
        out = {}
        for res in self.r.get(peer, {}).get(m.scen, []):
            v = res.get(m.field)
            if isinstance(v, (int, float)):
                out[res.get("round", 0)] = v * m.scale
        return out

    def median(self, peer, m):
        vals = list(self.by_round(peer, m).values())
        return statistics.median(vals) if vals else None

    def ran(self, m):
        return any(self.r.get(p, {}).get(m.scen) for p in self.r)

    def best_ref(self, m):
        """The better of the reference's variants for m, by median."""
        cand = [(self.median(p, m), p) for p in (REF, REF_PIPE)]
        cand = [(v, p) for v, p in cand if v is not None]
        if not cand:
            return None
        return (max if m.higher else min)(cand)[1]

    def ratio(self, a, b, m):
        """(median ratio, [per-round ratios]) of peer a to peer b, or None."""
        va, vb = self.median(a, m), self.median(b, m)
        if va is None or not vb:
            return None
        ra, rb = self.by_round(a, m), self.by_round(b, m)
        rounds = [ra[k] / rb[k] for k in sorted(ra) if k in rb and rb[k]]
        return va / vb, rounds

    def ratio_cell(self, a, b, m, rounds=True):
        got = self.ratio(a, b, m)
        if got is None:
            return "—"
        med, per = got
        cell = f"{med:.2f}×"
        if rounds and len(per) > 1:
            cell += " (rounds " + ", ".join(f"{x:.2f}" for x in per) + ")"
        return cell

    def value_cell(self, peer, m, status):
        v = self.median(peer, m)
        if v is not None:
            return m.show(v)
        runs = self.r.get(peer, {}).get(m.scen, [])
        if not status.get(peer) or not status[peer].available and not runs:
            return "unavailable"
        if any("error" in x for x in runs):
            return "failed"
        return "skipped" if runs else "—"


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out + [""]


def section_main(R, status, names):
    refs = [p for p in (REF, REF_PIPE) if p in names]
    cols = [p for p in ("direct", "neosocksd") if p in names] + refs
    head = ["measure"] + [SPECS[p].label for p in cols]
    head += [f"neosocksd ÷ {SPECS[p].label}" for p in refs] + ["÷ direct"]
    rows = []
    for m in MAIN:
        if not R.ran(m):
            continue
        row = [m.label] + [("n/a" if p == "direct" and m not in DIRECT_RATIO
                            else R.value_cell(p, m, status)) for p in cols]
        row += [R.ratio_cell("neosocksd", p, m) for p in refs]
        if m in DIRECT_RATIO:
            row.append(", ".join(f"{SPECS[p].label} {R.ratio_cell(p, 'direct', m, False)}"
                                 for p in ["neosocksd"] + refs if p in names))
        else:
            row.append("n/a")
        rows.append(row)
    return table(head, rows)


def section_workers(R, status, names):
    """The default front workers against one, and one against the reference."""
    if "neosocksd-w1" not in names or "neosocksd" not in names:
        return []
    refs = [p for p in (REF, REF_PIPE) if p in names]
    head = ["measure", SPECS["neosocksd"].label + " (default workers)",
            SPECS["neosocksd-w1"].label, "default ÷ 1 worker"]
    head += [f"1 worker ÷ {SPECS[p].label}" for p in refs]
    rows = []
    for m in MAIN:
        if not R.by_round("neosocksd-w1", m):
            continue
        row = [m.label, R.value_cell("neosocksd", m, status),
               R.value_cell("neosocksd-w1", m, status),
               R.ratio_cell("neosocksd", "neosocksd-w1", m)]
        row += [R.ratio_cell("neosocksd-w1", p, m) for p in refs]
        rows.append(row)
    return table(head, rows) if rows else []


def section_rules(R, status, names):
    rows = []
    for m in RULES_METRICS:
        if not R.ran(m):
            continue
        for kind in ("rules", "linear"):
            ours, ref = f"neosocksd-{kind}", f"ref-{kind}"
            if ours not in names and ref not in names:
                continue
            row = [m.label, "indexed" if kind == "rules" else "linear",
                   R.value_cell(ours, m, status), R.value_cell(ref, m, status),
                   R.ratio_cell(ours, ref, m), R.ratio_cell(ours, "neosocksd", m),
                   R.ratio_cell(ref, REF, m)]
            rows.append(row)
    if not rows:
        return []
    head = ["measure", f"{RULES_COUNT:,} rules", "neosocksd", "reference",
            "neosocksd ÷ reference", "neosocksd ÷ no ruleset", "reference ÷ no ruleset"]
    return table(head, rows)


def section_goals(R, names, args):
    rows = []
    for m, ours, against, op, goal in GOALS:
        if not R.ran(m) or ours not in names:
            continue
        vs = R.best_ref(m) if against == "reference" else against
        got = R.ratio(ours, vs, m) if vs in names else None
        if got is None:
            continue
        med = got[0]
        met = med >= goal if op == ">=" else med <= goal
        rows.append([f"{m.label}: {SPECS[ours].label} vs {SPECS[vs].label}",
                     f"{'≥' if op == '>=' else '≤'} {goal}×", R.ratio_cell(ours, vs, m),
                     "met" if met else "**not met**"])
    v = R.median("neosocksd", RSS)
    if v is not None:
        rows.append([f"memory per idle tunnel at {args.idle_conns}, neosocksd",
                     f"≤ {MEMORY_GOAL_KIB:g} KiB", f"{v:.2f} KiB",
                     "met" if v <= MEMORY_GOAL_KIB else "**not met**"])
    if not rows:
        return []
    return table(["goal (issue 14)", "target", "this run", ""], rows)


def section_http(R, status, names):
    """The HTTP forward proxy against the reference's --http and tinyproxy."""
    if not any(R.ran(m) for m in HTTP_MAIN):
        return []
    cols = [p for p in names if p == "direct" or "http" in SPECS[p].protocols]
    vs = [p for p in cols if p not in ("direct", "neosocksd")]
    head = ["measure"] + [SPECS[p].label for p in cols]
    head += [f"neosocksd ÷ {SPECS[p].label}" for p in vs] + ["neosocksd ÷ direct"]
    rows = []
    for m in HTTP_MAIN:
        if not R.ran(m) or not any(R.by_round(p, m) for p in cols):
            continue
        row = [m.label] + [R.value_cell(p, m, status) if R.by_round(p, m) or p == "neosocksd"
                           or not status[p].available else "n/a" for p in cols]
        ratio = m in HTTP_RATIO
        row += [R.ratio_cell("neosocksd", p, m) if ratio else "" for p in vs]
        row.append(R.ratio_cell("neosocksd", "direct", m)
                   if ratio and m in (HTTP_RPS, HTTP_GBPS) else "")
        rows.append(row)
    out = table(head, rows)
    goals = []
    if "tinyproxy" in names and R.ratio("neosocksd", "tinyproxy", HTTP_RPS):
        med = R.ratio("neosocksd", "tinyproxy", HTTP_RPS)[0]
        goals.append(["requests/s, neosocksd vs tinyproxy", f"≥ {HTTP_RPS_GOAL}×",
                      R.ratio_cell("neosocksd", "tinyproxy", HTTP_RPS),
                      "met" if med >= HTTP_RPS_GOAL else "**not met**"])
    per = R.by_round("neosocksd", HTTP_VS_TUN)
    if per:
        med = statistics.median(per.values())
        goals.append([HTTP_VS_TUN.label + ", neosocksd", f"≤ {HTTP_VS_TUN_GOAL}×",
                      f"{med:.2f}× (rounds " + ", ".join(f"{per[k]:.2f}" for k in sorted(per))
                      + ")", "met" if med <= HTTP_VS_TUN_GOAL else "**not met**"])
    v = R.median("neosocksd", HTTP_IDLE)
    if v is not None:
        goals.append([HTTP_IDLE.label + ", neosocksd (an idle tunnel's goal, issue 14)",
                      f"≤ {MEMORY_GOAL_KIB * 1024:,.0f}",
                      f"{v:,.0f}", "met" if v <= MEMORY_GOAL_KIB * 1024 else "**not met**"])
    if goals:
        out += table(["goal (issue 11)", "target", "this run", ""], goals)
    return out


def section_others(R, status, names):
    others = [p for p in names if SPECS[p].group == "other" and "socks5" in SPECS[p].protocols]
    if not others:
        return []
    ref = REF if REF in names else None
    head = ["measure"] + [SPECS[p].label for p in others]
    head += [f"{SPECS[p].label} ÷ reference" for p in others if ref]
    head += [f"neosocksd ÷ {SPECS[p].label}" for p in others]
    rows = []
    for m in MAIN:
        if not R.ran(m) or not any(R.r.get(p, {}).get(m.scen) for p in others):
            continue
        row = [m.label] + [R.value_cell(p, m, status) for p in others]
        row += [R.ratio_cell(p, ref, m, False) for p in others if ref]
        row += [R.ratio_cell("neosocksd", p, m, False) for p in others]
        rows.append(row)
    return table(head, rows)


def section_latency(R, status, names):
    names = [p for p in names if p == "direct" or "socks5" in SPECS[p].protocols]
    rows = []
    for m in LATENCY:
        if R.ran(m):
            rows.append([m.label] + [R.value_cell(p, m, status) for p in names])
    return table(["measure"] + [SPECS[p].label for p in names], rows) if rows else []


def round_value(scen, r):
    if "error" in r:
        return "error"
    if "skipped" in r:
        return "skipped"
    if scen in ("rate", "rate-local", "rate-pinned"):
        v = f"{r['ops_per_sec']:,.0f}/s"
        if r.get("cpu_s_per_10k") is not None:
            v += f" {r['cpu_s_per_10k']:.2f} CPU-s/10k"
        v += f" p50 {r['p50_us']} p99 {r['p99_us']} µs"
        if r.get("core_busy") is not None:
            v += f", its CPU {r['core_busy'] * 100:.0f}% busy"
        return v + (f" ({r['errors']} errors)" if r.get("errors") else "")
    if scen == "respawn":
        return f"ruleset {r['ruleset_s'] * 1000:.0f} ms, front {r['front_s'] * 1000:.0f} ms"
    if scen == "http-rps":
        v = f"{r['rps']:,.0f}/s"
        if r.get("cpu_s_per_10k") is not None:
            v += f" {r['cpu_s_per_10k']:.3f} CPU-s/10k"
        v += f", {r.get('reconnects_per_s', 0):,.0f} reconnects/s"
        return v + (f" ({r['errors']} errors)" if r.get("errors") else "")
    if scen == "http-idle":
        if "bytes_per_conn" not in r:
            return "no figure"
        return (f"{r['conns']} connections; RSS {r['before']['rss'] / 2**20:.1f} → "
                f"{r['after']['rss'] / 2**20:.1f} MiB, {r['bytes_per_conn']:,.0f} bytes each")
    if scen == "idle":
        if "rss_per_tunnel" not in r:
            return "no figure"
        return (f"{r.get('established')}/{r['requested']} established in "
                f"{r.get('setup_seconds', 0):.1f} s; RSS {r['before']['rss'] / 2**20:.1f}"
                f" → {r['after']['rss'] / 2**20:.1f} MiB, PSS "
                f"{r['before']['pss'] / 2**20:.1f} → {r['after']['pss'] / 2**20:.1f} MiB, "
                f"processes {r['before']['procs']} → {r['after']['procs']}")
    v = f"{r['gbps']:.2f} Gbit/s"
    if r.get("cpu_s_per_gb") is not None:
        v += f" {r['cpu_s_per_gb']:.3f} CPU-s/GB"
    if r.get("connect_gbps") is not None:
        v += f"; CONNECT {r['connect_gbps']:.2f} Gbit/s"
        if r.get("connect_cpu_s_per_gb") is not None:
            v += f" {r['connect_cpu_s_per_gb']:.3f} CPU-s/GB"
    if not r.get("drained", True):
        v += " (close not relayed in time)"
    if r.get("warning"):
        v += f" ({r['warning']})"
    return v


def notes_of(name, scen, r):
    notes = []
    if "error" in r:
        notes.append(f"{name} {scen}: {r['error']}")
    if r.get("errors") and scen in ("rate", "rate-local", "http-rps"):
        notes.append(f"{name} {scen}: {r['errors']} failed operations in a round"
                     + (f" ({r['stderr'].splitlines()[0]})" if r.get("stderr") else ""))
    if r.get("warning"):
        notes.append(f"{name} {scen}: {r['warning']}")
    if scen == "idle" and "requested" in r:
        if r.get("established", 0) < r["requested"] or r.get("errors"):
            notes.append(f"{name} idle: reached {r.get('established', 0)} of "
                         f"{r['requested']} tunnels ({r.get('errors', '?')} errors)"
                         + (f": {r['stderr'].splitlines()[0]}" if r.get("stderr") else ""))
        if r.get("dropped"):
            notes.append(f"{name} idle: {r['dropped']} tunnels dropped while held")
    return notes


def section_rounds(R, args, names):
    rows, notes = [], []
    for scen in args.only:
        for n in names:
            runs = R.r.get(n, {}).get(scen, [])
            if not runs:
                continue
            rows.append([scen, n, "; ".join(round_value(scen, r) for r in runs)])
            for r in runs:
                notes += notes_of(n, scen, r)
    out = table(["scenario", "peer", "values, round by round"], rows)
    if notes:
        out += ["### Notes", ""] + [f"- {x}" for x in dict.fromkeys(notes)] + [""]
    return out


def build(args, peers, results, facts, elapsed):
    R = Results(results)
    names = [p.name for p in peers]
    status = {p.name: p for p in peers}
    out = ["# neosocksd benchmark", ""]
    out.append(f"- machine: {facts['nproc']} CPUs ({facts['cpu']}), "
               f"{facts['mem_gib']:.0f} GiB, kernel {facts['kernel']}; load average at "
               f"start {facts.get('loadavg', '?')}, at end {facts.get('loadavg_end', '?')} "
               f"(other work on the machine skews figures)")
    out.append(f"- date: {facts['date']}; rounds: {args.rounds} (median shown, scenarios "
               f"and peers interleaved), {args.seconds:g} s per bulk/handshake run, "
               f"{args.idle_conns} idle tunnels, {RATE_CONCURRENCY} handshake clients")
    out.append(f"- set-up A: the target is benchsrv (a separate process), connections "
               f"spread over {SPREAD} loopback source and target addresses; set-up B: "
               f"the target is inside the load generator, one address pair")
    if any(x.startswith("http") for x in args.only):
        out.append(f"- HTTP forward proxy: origin and clients are bin/httpload, "
                   f"{HTTP_CONCURRENCY} keep-alive clients for {args.seconds:g} s, a "
                   f"{getattr(args, 'http_download', 1e9) / 1e9:g} GB download, "
                   f"{getattr(args, 'http_idle_conns', 2000)} idle keep-alive connections")
    for p in peers:
        ver = facts["versions"].get(p.name, "")
        if p.spec.group == "reference":
            ver = args.reference
            if p.spec.rules:
                ver += f", with libruleset.lua from {args.ref_libruleset}"
        out.append(f"- {p.name} ({p.spec.label}): {p.status}" + (f" ({ver})" if ver else ""))
    out.append("")
    out += ["## Against the reference", ""] + section_main(R, status, names)
    for title, lines in (
            ("Front workers", section_workers(R, status, names)),
            (f"With {RULES_COUNT:,} libruleset rules (the same rules file on both daemons)",
             section_rules(R, status, names)),
            ("Goals", section_goals(R, names, args)),
            ("Other proxies", section_others(R, status, names)),
            ("HTTP forward proxy", section_http(R, status, names)),
            ("Latency", section_latency(R, status, names))):
        if lines:
            out += [f"## {title}", ""] + lines
    resp = R.r.get("neosocksd-rules", {}).get("respawn", [])
    ok = [r for r in resp if "front_s" in r]
    if ok:
        rs = sorted(r["ruleset_s"] for r in ok)
        fr = sorted(r["front_s"] for r in ok)
        out += ["## Respawn", "",
                f"After kill -9, until a request is decided and served again: ruleset "
                f"process {statistics.median(rs) * 1000:.0f} ms (max {rs[-1] * 1000:.0f}), "
                f"front {statistics.median(fr) * 1000:.0f} ms (max {fr[-1] * 1000:.0f}).", ""]
    out += ["## Per-round values", ""] + section_rounds(R, args, names)
    out.append("Ratios: the median of a peer's figure divided by the other's; the "
               "per-round ratios divide the figures of the same round. CPU = utime+stime "
               "of every process of the peer (reaped children included) during the run. "
               "Memory per tunnel = (total while the tunnels are held − before) / tunnels "
               "established. A handshake = connect + SOCKS5 greeting + CONNECT + 1-byte "
               "echo + close (direct: connect + echo + close).")
    out.append("")
    out.append(f"Total run time: {elapsed:.1f} s")
    return "\n".join(out) + "\n"
