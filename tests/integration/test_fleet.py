"""A fleet of daemons (issue 15): each one tells which code it runs (the
sha256 of the ruleset and of each module, and when it was applied) in
/stats, /metrics and /healthy; examples/fleet-push.sh pushes an update to
several daemons and checks that they all run it."""

import hashlib
import os
import re
import subprocess

from harness import (ADMIN_TOKEN, parse_prometheus, RO_TOKEN, ruleset_text, start_api,
                     token_files, write_ruleset)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PUSH = os.path.join(ROOT, "examples", "fleet-push.sh")
INFO = re.compile(r'^neosocksd_ruleset_info\{module="([^"]+)",sha256="([0-9a-f]{64})"\} 1$', re.M)


def info_lines(d):
    """{module: sha256} from /metrics."""
    r = d.api.curl("/metrics", token=ADMIN_TOKEN)
    assert r.status == 200, r
    parse_prometheus(r.text)  # still well-formed
    return dict(INFO.findall(r.text))


def sha(data):
    return hashlib.sha256(data).hexdigest()


def push(tmp_path, *args):
    a, _ = token_files(tmp_path)
    env = dict(os.environ, NEOSOCKSD_TOKEN_FILE=str(a))
    return subprocess.run([PUSH] + [str(x) for x in args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_ruleset_info_everywhere(daemon_factory, tmp_path, http_target):
    """/metrics, /stats and /healthy name the ruleset's sha256 (that of the
    file as given), then each module's, with the time it was applied."""
    a, ro = token_files(tmp_path)
    d = start_api(daemon_factory, tmp_path, http_target.port, "--api-token-file", a,
                  "--api-readonly-token-file", ro, token=ADMIN_TOKEN)
    rs = (tmp_path / "v1.test.lua").read_bytes()
    assert info_lines(d) == {"(ruleset)": sha(rs)}
    mod = b'return { answer = 42 }\n'
    r = d.api.curl("/ruleset/update?module=answers", "--data-binary", mod)
    assert r.status == 200, r
    assert info_lines(d) == {"(ruleset)": sha(rs), "answers": sha(mod)}
    stats = d.api.curl("/stats").text
    got = re.findall(r"^Ruleset Info +: module=(\S+) sha256=([0-9a-f]{64}) "
                     r"applied=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", stats, re.M)
    assert got == [("(ruleset)", sha(rs)), ("answers", sha(mod))], stats
    r = d.api.curl("/healthy", token=RO_TOKEN)
    assert r.status == 200 and r.body == b"", r
    hdrs = [ln for ln in r.raw_head.decode().split("\r\n")
            if ln.lower().startswith("neosocksd-ruleset-info:")]
    assert len(hdrs) == 2 and sha(rs) in hdrs[0] and sha(mod) in hdrs[1], r.raw_head
    # a failed update changes nothing
    assert d.api.curl("/ruleset/update", "--data-binary", "return 1").status == 500
    assert info_lines(d) == {"(ruleset)": sha(rs), "answers": sha(mod)}
    # a SIGHUP reload reads the files again: the module pushed is gone
    d.proc.send_signal(1)
    d.wait_notify("READY=1")
    assert info_lines(d) == {"(ruleset)": sha(rs)}


def test_two_daemons_push_and_verify(daemon_factory, tmp_path, http_target):
    """Two daemons, one update pushed to both with the example script:
    their ruleset_info lines agree, and name the file pushed. A daemon
    that missed an update is reported, and the script fails."""
    a, ro = token_files(tmp_path)
    one = start_api(daemon_factory, tmp_path, http_target.port, "--api-token-file", a,
                    token=ADMIN_TOKEN)
    two = start_api(daemon_factory, tmp_path, http_target.port, "--api-token-file", a,
                    token=ADMIN_TOKEN)
    urls = [f"http://127.0.0.1:{d.api.port}" for d in (one, two)]
    new = tmp_path / "v2.lua"
    new.write_text(ruleset_text("v2.test", http_target.port))
    p = push(tmp_path, new, *urls)
    assert p.returncode == 0, (p.stdout, p.stderr)
    want = sha(new.read_bytes())
    assert p.stdout.splitlines() == [f"{u}: ok (ruleset) {want}" for u in urls], p.stdout
    assert info_lines(one) == info_lines(two) == {"(ruleset)": want}
    # a module too
    mod = tmp_path / "names.lua"
    mod.write_text('return { ["mod.test"] = true }\n')
    p = push(tmp_path, "-m", "names", mod, *urls)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert info_lines(one) == info_lines(two)
    assert info_lines(one)["names"] == sha(mod.read_bytes())
    # one daemon gets another version: checking (-n) names it and fails
    other = write_ruleset(tmp_path, "v3.test", http_target.port, fname="v3.lua")
    p = push(tmp_path, other, urls[0])
    assert p.returncode == 0, p.stderr
    p = push(tmp_path, "-n", other, *urls)
    assert p.returncode == 1, p
    assert f"{urls[0]}: ok" in p.stdout and urls[1] in p.stderr, (p.stdout, p.stderr)
    # the token never reached a command line or the output
    assert ADMIN_TOKEN not in p.stdout + p.stderr
