"""Loading rulesets and configuration: -r sources (gzip, UTF-8 BOM, #!
line; bytecode refused), require() inside the jail (the parent reads the
file; names checked), -c config files evaluated in the ruleset process and
checked by the parent before anything is bound, and --check."""

import gzip
import socket
import subprocess
import textwrap

from harness import BIN, free_ports, socks5_connect

ROUTE_TO = """
local function to(addr) return "127.0.0.1:%d" end
return { resolve = to, route = to, route6 = to }
"""


def write(path, text, mode="w"):
    with open(path, mode) as f:
        f.write(text)
    return str(path)


def routed_to_target(d, target_port):
    """A name nobody can resolve reaches the target only if the ruleset
    redirected it."""
    s, rep = socks5_connect(d.socks, "nowhere.invalid", 80)
    s.close()
    return rep == 0


def start(daemon_factory, *args):
    socks, = free_ports(1)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--loglevel", "5", *args)
    d.socks = socks
    return d


def run(*args, timeout=30):
    return subprocess.run([BIN, *args], capture_output=True, timeout=timeout)


def test_gzip_bom_and_shebang_sources(daemon_factory, tmp_path, http_target):
    src = ROUTE_TO % http_target.port
    gz = write(tmp_path / "rs.lua.gz", gzip.compress(src.encode()), "wb")
    d = start(daemon_factory, "-r", gz)
    assert routed_to_target(d, http_target.port)
    bom = write(tmp_path / "bom.lua", b"\xef\xbb\xbf#!/usr/bin/env neosocksd\n" + src.encode(),
                "wb")
    d2 = start(daemon_factory, "-r", bom)
    assert routed_to_target(d2, http_target.port)


def test_bytecode_refused(tmp_path):
    # a precompiled chunk (the header is what matters: ESC "Lua")
    rs = write(tmp_path / "bin.lua", b"\x1bLuaT\x00\x19\x93\r\n\x1a\n", "wb")
    socks, = free_ports(1)
    p = run("-l", f"127.0.0.1:{socks}", "-r", rs, "--check")
    assert p.returncode != 0
    assert b"binary chunks are not accepted" in p.stderr, p.stderr


def test_require_reads_through_the_parent(daemon_factory, tmp_path, http_target):
    """Modules come from the ruleset's directory, then --lua-path; the
    ruleset process itself has no file system."""
    libdir = tmp_path / "lib"
    libdir.mkdir()
    write(tmp_path / "near.lua", 'return { port = %d }\n' % http_target.port)
    write(libdir / "far.lua", 'return "127.0.0.1"\n')
    rs = write(tmp_path / "rs.lua", """
        local near = require("near")
        local far = require("far")
        local function to() return far .. ":" .. near.port end
        assert(select(2, pcall(require, "../etc/passwd")):find("invalid name"))
        assert(select(2, pcall(require, "nosuchmodule")):find("not found"))
        return { resolve = to, route = to, route6 = to }
    """)
    d = start(daemon_factory, "-r", rs, "--lua-path", f"/nonexistent:{libdir}")
    assert routed_to_target(d, http_target.port)


def test_config_file(daemon_factory, tmp_path, http_target):
    """-c: the file's settings, with a ruleset table, after the parent
    checked them."""
    socks, = free_ports(1)
    conf = write(tmp_path / "conf.lua", textwrap.dedent("""
        local mode = ...
        assert(mode == "config")
        local function to() return "127.0.0.1:%d" end
        return {
            listen = "127.0.0.1:%d",
            timeout = 12.5,
            loglevel = 5,
            ruleset = { resolve = to, route = to, route6 = to },
        }
    """) % (http_target.port, socks))
    d = daemon_factory("-c", conf)
    d.socks = socks
    assert routed_to_target(d, http_target.port)
    p = run("-c", conf, "--dump-config")
    assert p.returncode == 0, p.stderr
    assert f'listen = "127.0.0.1:{socks}",'.encode() in p.stdout
    assert b"timeout = 12.5," in p.stdout


def test_config_file_refusals(tmp_path):
    socks, = free_ports(1)
    cases = [
        ('return { listen = "127.0.0.1:%d", user_name = "root" }',
         "config: user_name cannot be set in a config file"),
        ('return { listen = "127.0.0.1:%d", colour = "blue" }', "config: unknown key 'colour'"),
        ('return { listen = "127.0.0.1:%d", timeout = "soon" }',
         "config: timeout: expected number, got string"),
        ('return { listen = "127.0.0.1:%d", timeout = 1 }', "-t: timeout 1 is out of range"),
        ('return { listen = "127.0.0.1:%d", ruleset = "file.lua" }',
         "config: ruleset must be a table"),
        ('return 42', "config: expected table, got number"),
        ('return {', "conf.lua:1:"),
    ]
    for src, want in cases:
        conf = write(tmp_path / "conf.lua", src % socks if "%d" in src else src)
        p = run("-c", conf, "--check")
        assert p.returncode != 0, src
        assert want.encode() in p.stderr, (src, p.stderr)
        # without --check: refused at start, nothing bound
        p = run("-c", conf, timeout=30)
        assert p.returncode != 0, src


def test_check_mode(tmp_path, http_target):
    socks, = free_ports(1)
    good = write(tmp_path / "good.lua", ROUTE_TO % http_target.port)
    p = run("-l", f"127.0.0.1:{socks}", "-r", good, "-C")
    assert p.returncode == 0 and b"configuration OK" in p.stdout, p
    # nothing was left listening
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", socks)) != 0
    bad = write(tmp_path / "bad.lua", "local x = \nreturn {}\n")
    p = run("-l", f"127.0.0.1:{socks}", "-r", bad, "--check")
    assert p.returncode != 0
    assert b"bad.lua:2:" in p.stderr, p.stderr
    runtime = write(tmp_path / "rt.lua", "error('nope')\n")
    p = run("-l", f"127.0.0.1:{socks}", "-r", runtime, "--check")
    assert p.returncode != 0 and b"rt.lua:1: nope" in p.stderr, p.stderr
    p = run("-l", f"127.0.0.1:{socks}", "-r", str(tmp_path / "missing.lua"), "--check")
    assert p.returncode != 0 and b"missing.lua" in p.stderr


def test_no_ruleset_goes_direct(daemon_factory, http_target):
    """Without -r or -c requests go direct, as in the reference."""
    d = start(daemon_factory)
    s, rep = socks5_connect(d.socks, "127.0.0.1", http_target.port)
    s.close()
    assert rep == 0
    s, rep = socks5_connect(d.socks, "nowhere.invalid", 80)
    s.close()
    assert rep == 0x04  # host unreachable: tried, not refused by a policy
