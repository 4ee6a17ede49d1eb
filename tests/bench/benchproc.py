"""Processes for the benchmark: the process tree of a peer, its CPU time and
memory, starting and stopping long-running processes by pid, running a
short-lived tool with a deadline. Python standard library only."""
import json
import os
import signal
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


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


def tree_cpu_seconds(root):
    """utime+stime of every process in the tree, reaped children included."""
    return sum(t for (_, _, t) in tree(root).values()) / CLK_TCK


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


def pids_by_comm(root, comm):
    """The pids in root's tree whose /proc/PID/comm is comm."""
    out = []
    for pid in tree(root):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == comm:
                    out.append(pid)
        except OSError:
            pass
    return sorted(out)


class Procs:
    """Every long-running process the benchmark starts; stopped by pid."""

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


def last_json(text):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def run_tool(argv, timeout):
    """Run a short-lived tool (loadgen); kill it by pid on timeout or
    interrupt. Returns (its last JSON line as a dict, None) or (None, why)."""
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
