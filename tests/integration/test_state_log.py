"""--state-dir as an append-only log (issue 9, defect 6): an update that
changes nothing writes nothing, a small update appends a record instead of
rewriting everything, saves are rate-limited, superseded records are
compacted away at a bounded rate, and a log cut short by a crash loses only
its torn tail. Updates survive restarts, in order."""

import os

from harness import Api, free_ports, routed, wait_until, write_ruleset

MIB = 1 << 20


def start(daemon_factory, rs, state):
    socks, api = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--api", f"127.0.0.1:{api}", "-r", rs,
                       "--state-dir", str(state), "--loglevel", "5")
    d.socks, d.api = socks, Api(port=api)
    return d


def update(d, module, body, tmp_path):
    """POST /ruleset/update?module=...; body from a file (it may be MiBs)."""
    f = tmp_path / "body.lua"
    f.write_bytes(body if isinstance(body, bytes) else body.encode())
    r = d.api.curl(f"/ruleset/update?module={module}", "--data-binary", f"@{f}")
    assert r.status == 200, r


def names(*hosts):
    return "return { " + ", ".join(f'["{h}"] = true' for h in hosts) + " }"


def big_module(tag, size=MIB):
    """A module of about size bytes (a long string) that routes nothing;
    it ends in "<tag>end" (seen in the file: the whole record was)."""
    return f'return "{tag}' + "x" * size + f'{tag}end"'


def written(pid):
    """Bytes pid has written with write(2) and friends (its log lines too)."""
    with open(f"/proc/{pid}/io") as f:
        return int([ln for ln in f if ln.startswith("wchar:")][0].split()[1])


def saved(state):
    p = state / "updates"
    return p.read_bytes() if p.exists() else b""


def test_unchanged_update_writes_nothing(daemon_factory, tmp_path, http_target):
    """Regression (issue 9, defect 6): every R_PERSIST rewrote and fsynced
    the whole state file, even for an update identical to the one before.
    Now an update that changes nothing writes nothing."""
    state = tmp_path / "state"
    d = start(daemon_factory, write_ruleset(tmp_path, "v1.test", http_target.port), state)
    big = big_module("same")
    update(d, "big", big, tmp_path)
    wait_until(lambda: b"sameend" in saved(state), what="the first update was not saved")
    before = written(d.pid)
    for _ in range(10):
        update(d, "big", big, tmp_path)
    update(d, "names", names("after.test"), tmp_path)
    wait_until(lambda: b"after.test" in saved(state))
    assert written(d.pid) - before < MIB // 4, written(d.pid) - before
    assert saved(state).count(b"samexxx") == 1
    assert routed(d, "after.test")


def test_small_update_appends(daemon_factory, tmp_path, http_target):
    """Regression (issue 9, defect 6): with 8 MiB saved, each small update
    made the parent write all 8 MiB again. Now it appends one record to the
    same file (rate-limited saves; no rename)."""
    state = tmp_path / "state"
    d = start(daemon_factory, write_ruleset(tmp_path, "v1.test", http_target.port), state)
    for i in range(8):
        update(d, f"big{i}", big_module(f"big{i}-"), tmp_path)
    wait_until(lambda: b"big7-end" in saved(state), what="the big updates were not saved")
    ino = (state / "updates").stat().st_ino
    before = written(d.pid)
    for i in range(20):
        update(d, "names", names(f"n{i}.test"), tmp_path)
    wait_until(lambda: b"n19.test" in saved(state))
    assert written(d.pid) - before < MIB, written(d.pid) - before
    assert (state / "updates").stat().st_ino == ino, "the log was rewritten"
    assert routed(d, "n19.test") and not routed(d, "n18.test")
    # a clean stop compacts: the superseded records are gone from the file
    assert d.stop() == 0
    assert b"n18.test" not in saved(state) and saved(state).count(b"n19.test") == 1
    d = start(daemon_factory, write_ruleset(tmp_path, "v1.test", http_target.port), state)
    assert routed(d, "n19.test") and not routed(d, "n18.test")
    assert d.log().count("replayed a saved update") == 9


def test_rapid_updates_survive_a_restart_in_order(daemon_factory, tmp_path, http_target):
    """Updates that come faster than saves are written together, in the
    order they were applied: after a restart the last of each wins, and a
    module that copied another while loading sees the same version."""
    state = tmp_path / "state"
    rs = write_ruleset(tmp_path, "v1.test", http_target.port)
    d = start(daemon_factory, rs, state)
    copy_base = ('local t = { ["own.test"] = true }\n'
                 'for k in pairs(package.loaded["base"] or {}) do t[k] = true end\n'
                 'return t\n')
    for i in range(10):
        update(d, "base", names(f"b{i}.test"), tmp_path)
        if i == 4:
            update(d, "names", copy_base, tmp_path)
    want = {"own.test": True, "b4.test": True, "b9.test": False, "b3.test": False}
    assert {h: routed(d, h) for h in want} == want
    assert d.stop() == 0
    d = start(daemon_factory, rs, state)
    assert {h: routed(d, h) for h in want} == want


def test_torn_tail_is_recovered(daemon_factory, tmp_path, http_target):
    """Regression (issue 9, defect 6): a state file cut short (a crash in
    the middle of a save) was refused whole, and every saved update lost.
    Now the records before the torn one are applied, the file as found is
    kept as updates.bad, and later updates append to the repaired log."""
    state = tmp_path / "state"
    rs = write_ruleset(tmp_path, "v1.test", http_target.port)
    d = start(daemon_factory, rs, state)
    update(d, "base", names("first.test"), tmp_path)
    update(d, "names", 'local t = { ["second.test"] = true }\n'
                       'for k in pairs(package.loaded["base"]) do t[k] = true end\n'
                       'return t\n', tmp_path)
    update(d, "base", names("third.test"), tmp_path)
    assert d.stop() == 0
    log = state / "updates"
    whole = log.read_bytes()
    assert b"third.test" in whole
    os.truncate(log, len(whole) - 5)  # the last record loses its end
    d = start(daemon_factory, rs, state)
    d.wait_log("updates: a torn or damaged record")
    assert routed(d, "second.test") and routed(d, "first.test")
    assert (state / "updates.bad").read_bytes() == whole[:-5]
    update(d, "names", names("fourth.test"), tmp_path)
    assert d.stop() == 0
    d = start(daemon_factory, rs, state)
    assert routed(d, "fourth.test")
    assert not routed(d, "second.test") and not routed(d, "third.test")
    assert d.log().count("replayed a saved update") == 2  # names replaced names
    assert "a torn or damaged record" not in d.log()


def test_damaged_record_keeps_the_records_before_it(daemon_factory, tmp_path, http_target):
    """A record whose checksum does not match (a bit flipped on disk) ends
    the log there: what came before it is applied, the rest is dropped."""
    state = tmp_path / "state"
    rs = write_ruleset(tmp_path, "v1.test", http_target.port)
    d = start(daemon_factory, rs, state)
    update(d, "names", names("kept.test"), tmp_path)
    update(d, "other", names("lost.test"), tmp_path)
    assert d.stop() == 0
    log = state / "updates"
    data = bytearray(log.read_bytes())
    i = data.index(b"lost.test")
    data[i] ^= 0x20
    log.write_bytes(bytes(data))
    d = start(daemon_factory, rs, state)
    d.wait_log("updates: a torn or damaged record")
    assert routed(d, "kept.test")
    assert d.log().count("replayed a saved update") == 1


def test_version_1_log_is_read_and_rewritten(daemon_factory, tmp_path, http_target):
    """A state file written by an earlier version (no checksums, always
    rewritten whole) still loads, and is rewritten in the current format."""
    import struct
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    src = names("old-format.test").encode()
    rec = struct.pack("=II65s128s3s", 2, len(src), b"names", b"=names", b"")  # UPDATE_MODULE
    (state / "updates").write_bytes(b"neosocksd-state 1\n" + rec + src)
    d = start(daemon_factory, write_ruleset(tmp_path, "v1.test", http_target.port), state)
    assert routed(d, "old-format.test")
    assert saved(state).startswith(b"neosocksd-state 2\n")
    assert d.log().count("replayed a saved update") == 1
