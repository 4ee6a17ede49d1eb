"""Installing on a hardened host (issue 15): make install/uninstall with
DESTDIR and PREFIX, the man pages (every --help option in neosocksd(8)),
the shipped units' systemd-analyze exposure, and the unit's command line
run as systemd would run it (credentials, state directory, the API
reached by name with the tokens, reload)."""

import os
import re
import shlex
import shutil
import signal
import subprocess

import pytest

from harness import (ADMIN_TOKEN, BIN, curl, Daemon, free_ports, make_env, RO_TOKEN, ruleset_text,
                     routed, unit_exec_argv, wait_until)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNITS = ["neosocksd.service", "neosocksd-unix-api.service"]


def make(*args, timeout=300):
    p = subprocess.run(["make", "--no-print-directory", "-C", ROOT] + list(args),
                       capture_output=True, text=True, timeout=timeout, env=make_env())
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def rendered(page):
    """A roff page as plain text."""
    p = subprocess.run(f"nroff -man -Tascii {shlex.quote(page)} | col -bx", shell=True,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout


def help_labels():
    """Each option line of --help: its label ("-l, --listen ADDR")."""
    out = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=10).stdout
    labels = []
    for m in re.finditer(r"^ {2,6}((?:-[^\s,]+(?:, )?)+)(?: (\S+))?", out, re.M):
        names, meta = m.group(1), m.group(2)
        labels.append(names + (" " + meta if meta else ""))
    assert len(labels) > 40, out
    return labels


def test_man_page_has_every_help_option():
    """neosocksd(8)'s OPTIONS come from the settings table: every option
    --help lists is there, with its value, and its text."""
    make("man")
    text = rendered(os.path.join(ROOT, "build", "man", "neosocksd.8"))
    opts = text[text.index("\nOPTIONS\n"):text.index("\nSIGNALS\n")]
    lines = [ln.strip() for ln in opts.splitlines()]
    for label in help_labels():
        assert label.strip() in lines, (label, opts)
    for section in ("SYNOPSIS", "SIGNALS", "FILES", "ENVIRONMENT", "EXIT STATUS", "EXAMPLES"):
        assert f"\n{section}\n" in text, section
    for page in ("neosocksd-ruleset.5", "neosocksd-api.7"):
        t = rendered(os.path.join(ROOT, "build", "man", page))
        assert "NAME" in t and "neosocksd(8)" in t, t[:500]


def test_make_install_and_uninstall(tmp_path):
    """make install DESTDIR=... PREFIX=/usr lays out the binary, the three
    man pages, the unit (ExecStart at PREFIX/sbin) in lib/systemd/system,
    the sysusers.d file, the examples and the docs; make uninstall takes
    them away again."""
    dest = tmp_path / "root"
    make("install", f"DESTDIR={dest}", "PREFIX=/usr")
    usr = dest / "usr"
    files = {str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()}
    for want in ("usr/sbin/neosocksd", "usr/share/man/man8/neosocksd.8",
                 "usr/share/man/man5/neosocksd-ruleset.5", "usr/share/man/man7/neosocksd-api.7",
                 "usr/lib/systemd/system/neosocksd.service", "usr/lib/sysusers.d/neosocksd.conf",
                 "usr/share/doc/neosocksd/examples/ruleset_simple.lua",
                 "usr/share/doc/neosocksd/examples/fleet-push.sh",
                 "usr/share/doc/neosocksd/examples/neosocksd-unix-api.service",
                 "usr/share/doc/neosocksd/examples/neosocksd.env",
                 "usr/share/doc/neosocksd/examples/api-tls.conf",
                 "usr/share/doc/neosocksd/README.md", "usr/share/doc/neosocksd/sandbox.md"):
        assert want in files, (want, sorted(files))
    assert os.access(usr / "sbin" / "neosocksd", os.X_OK)
    assert oct((usr / "lib/systemd/system/neosocksd.service").stat().st_mode & 0o777) == "0o644"
    unit = (usr / "lib/systemd/system/neosocksd.service").read_text()
    assert "ExecStart=/usr/sbin/neosocksd " in unit and "/usr/local" not in unit
    drop = (usr / "share/doc/neosocksd/examples/api-tls.conf").read_text()
    assert "ExecStart=/usr/sbin/neosocksd " in drop and "/usr/local" not in drop
    page = (usr / "share/man/man8/neosocksd.8").read_text()
    assert "/usr/share/doc/neosocksd" in page and "/usr/local" not in page
    # the installed binary runs
    p = subprocess.run([str(usr / "sbin/neosocksd"), "--version"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 0 and p.stdout.startswith("neosocksd "), p
    # systemd-analyze verifies the installed unit against the installed binary
    if shutil.which("systemd-analyze"):
        text = unit.replace("/usr/sbin/neosocksd", str(usr / "sbin/neosocksd"))
        (tmp_path / "neosocksd.service").write_text(text)
        p = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "neosocksd.service")],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
    make("uninstall", f"DESTDIR={dest}", "PREFIX=/usr")
    left = [str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()]
    assert left == [], left


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze (Debian systemd)")
@pytest.mark.parametrize("unit", UNITS)
def test_unit_exposure(unit):
    """systemd-analyze security, offline (no systemd running needed): the
    shipped units stay at exposure 2.3 or lower."""
    path = os.path.join(ROOT, "sandbox", unit)
    p = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", path],
                       capture_output=True, text=True, timeout=120)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", p.stdout)
    assert m, p.stdout + p.stderr
    assert float(m.group(1)) <= 2.3, p.stdout
    p = subprocess.run(["systemd-analyze", "security", "--offline=true", "--threshold=23",
                        "--no-pager", path], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout


def unit_command(unit, env):
    """The unit's ExecStart, expanded as systemd does (harness.py)."""
    with open(os.path.join(ROOT, "sandbox", unit)) as f:
        return unit_exec_argv(f.read(), env)


def test_unit_command_line_runs(tmp_path, http_target):
    """The shipped unit's ExecStart, run with what systemd would give it:
    the tokens as credentials ($CREDENTIALS_DIRECTORY), the state directory,
    the ruleset from /etc/neosocksd (here, a copy of it), the API on an
    address from the environment file. An admin reaches the API by name
    with the token, an update survives a restart, SIGHUP reloads."""
    etc, state, creds = tmp_path / "etc", tmp_path / "state", tmp_path / "creds"
    for d in (etc, creds):
        d.mkdir()
    state.mkdir(mode=0o700)
    (etc / "ruleset.lua").write_text(ruleset_text("v1.test", http_target.port))
    (creds / "api-admin.token").write_text(ADMIN_TOKEN + "\n")
    (creds / "api-readonly.token").write_text(RO_TOKEN + "\n")
    for f in creds.iterdir():
        f.chmod(0o400)
    socks, http, api = free_ports(3)
    env = {"NEOSOCKSD_SOCKS": f"127.0.0.1:{socks}", "NEOSOCKSD_HTTP": f"127.0.0.1:{http}",
           "NEOSOCKSD_API": f"127.0.0.1:{api}", "NEOSOCKSD_OPTS": "--loglevel 5"}
    argv = unit_command("neosocksd.service", env)
    assert argv[0] == "/usr/local/sbin/neosocksd", argv
    argv = [a.replace("/etc/neosocksd/", f"{etc}/").replace("/var/lib/neosocksd", str(state))
            for a in argv[1:]]
    assert "--loglevel" in argv and "api-admin.token" in argv, argv

    def start():
        d = Daemon(argv, env={"CREDENTIALS_DIRECTORY": str(creds)}, tmpdir=str(tmp_path))
        d.start()
        d.socks = socks
        return d

    d = start()
    try:
        url = f"http://proxy1.corp:{api}"
        resolve = ("--resolve", f"proxy1.corp:{api}:127.0.0.1")
        rc, out, err = curl(*resolve, "-o", "/dev/null", "-w", "%{http_code}", url + "/stats")
        assert out == b"401", (out, err)
        rc, out, err = curl(*resolve, "-H", f"Authorization: Bearer {RO_TOKEN}", url + "/stats")
        assert rc == 0 and out.startswith(b"neosocksd"), err
        rc, out, err = curl(*resolve, "-H", f"Authorization: Bearer {ADMIN_TOKEN}", "-f",
                            "--data-binary", ruleset_text("v2.test", http_target.port),
                            url + "/ruleset/update")
        assert rc == 0, err
        assert routed(d, "v2.test")
        d.wait_log(" client=127.0.0.1:")  # the access log (--loglevel 5 from the env file)
        d.stop()
        d.close()
        d = start()  # the update was saved in the state directory
        assert routed(d, "v2.test")
        d.proc.send_signal(signal.SIGHUP)  # ExecReload
        d.wait_notify("READY=1")
        wait_until(lambda: routed(d, "v1.test"), 10, "the reload did not read the file again")
    finally:
        d.close()
    assert ADMIN_TOKEN not in d.log() and RO_TOKEN not in d.log()
