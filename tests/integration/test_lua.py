"""Lua tests run inside the daemon's ruleset process (jailed, with the real
VM, libraries and libruleset): one daemon per tests/lua/test_*.lua file."""

import glob
import os
import re

import pytest

from harness import free_ports, ROOT, WAIT

LUA_DIR = os.path.join(ROOT, "tests", "lua")
FILES = sorted(os.path.basename(f)[:-4] for f in glob.glob(os.path.join(LUA_DIR, "test_*.lua")))


@pytest.mark.parametrize("mod", FILES)
def test_lua(daemon_factory, tmp_path, mod):
    rs = tmp_path / "rs.lua"
    rs.write_text(f'return require("runner").run("{mod}")\n')
    port, = free_ports(1)
    d = daemon_factory("-l", f"127.0.0.1:{port}", "-r", str(rs), "--lua-path", LUA_DIR,
                       "--loglevel", "5")
    d.wait_log(f"LUATEST DONE {mod} ", timeout=4 * WAIT)
    log = d.log()
    fails = re.findall(r"LUATEST FAIL (.*)", log)
    done = re.search(rf"LUATEST DONE {mod} pass=(\d+) fail=(\d+)", log)
    assert not fails, "\n".join(fails)
    assert done and int(done.group(2)) == 0
    assert int(done.group(1)) > 0, "no tests ran"
