"""Rulesets written for the reference run unchanged (issue 12): a ruleset
tree laid out the usual Lua way (dotted require, init.lua, loadfile,
dofile), the stdlib calls the reference's own libruleset.lua, agent.lua and
test harness use (debug.getinfo for log/logf, os.getenv, print/printf,
os.time/os.date, os.exit, neosocksd.stats()), -r - / -c -, and what
stays refused (.., absolute names, symlinks out, FIFOs, devices, bytecode).
Every file is still read by the parent, beneath the directories named."""

import os
import re
import signal
import subprocess
import textwrap

import pytest

from harness import Api, BIN, curl, Daemon, free_ports, socks5_connect, wait_until


def write(path, text, mode="w"):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(path, mode) as f:
        f.write(textwrap.dedent(text) if isinstance(text, str) else text)
    return str(path)


def ruleset_tree(root, target_port):
    """A ruleset project laid out the usual Lua way, written against the
    reference's documentation (our own text; the same calls its
    libruleset.lua, agent.lua and tests/main.lua make)."""
    write(root / "rules" / "office" / "init.lua", """
        -- rules.office: a package (init.lua)
        local M = { hosts = require("rules.office.hosts") }
        function M.match(host) return M.hosts[host] ~= nil end
        return M
    """)
    write(root / "rules" / "office" / "hosts.lua", """
        return { ["printer.office.lan"] = true, ["wiki.office.lan"] = true }
    """)
    write(root / "agent.lua", """
        -- loaded with loadfile, as the reference's harness loads agent.lua
        local agent = { peername = ... or "self" }
        function agent.health()
            -- the dial-failure counts the reference's agent watches
            local st = neosocksd.stats()
            return (st.num_reject_upstream or 0) + (st.num_reject_timeout or 0)
        end
        return agent
    """)
    write(root / "settings.lua", "TARGET_PORT = %d\n" % target_port)
    write(root / "main.lua", """
        _G.libruleset = require("libruleset")
        local office = require("rules.office")
        dofile("settings.lua")
        local chunk = assert(loadfile("agent.lua"))
        local agent = chunk("peer0")
        -- the reference's log helpers read the caller's file and line
        local info = debug.getinfo(1, "Sl")
        local t2020 = os.time({ year = 2020, month = 1, day = 1, hour = 0 })
        printf("COMPAT tree loaded: %s:%d agent=%s env=%s t2020=%s date=%s",
            info.short_src, info.currentline, agent.peername,
            tostring(os.getenv("COMPAT_SITE")), tostring(math.type(t2020)),
            os.date("!%Y-%m-%d", 0))
        logf("COMPAT logf from the tree")
        _G.secrets["alice"] = "pw" -- libruleset starts it as {}
        _G.redirect_name = {
            { function(addr)
                local host = neosocksd.splithostport(addr)
                return office.match(host)
              end, rule.redirect("127.0.0.1:" .. TARGET_PORT), "office" },
        }
        _G.route_default = { rule.reject(), "default" }
        local ruleset = setmetatable({}, { __index = function(_, k)
            return _G.libruleset[k]
        end })
        function ruleset.stats()
            return "COMPAT health " .. agent.health()
        end
        return ruleset
    """)
    return str(root / "main.lua")


def test_reference_style_tree_loads_and_routes(daemon_factory, tmp_path, http_target):
    """Nested modules, init.lua, loadfile, dofile, os.getenv, print/printf
    at notice level (the default --loglevel 4 shows it), debug.getinfo
    (libruleset's logf at --loglevel 6), os.time{...} inside the sandbox,
    and the tree routes a request."""
    rs = ruleset_tree(tmp_path / "tree", http_target.port)
    socks, api = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--api", f"127.0.0.1:{api}",
                       "-r", rs, env={"COMPAT_SITE": "lab-7"})
    d.wait_log("COMPAT tree loaded")
    line = re.search(r"COMPAT tree loaded: .*", d.log()).group(0)
    assert line == ("COMPAT tree loaded: main.lua:8 agent=peer0 env=lab-7 "
                    "t2020=integer date=1970-01-01"), line
    assert "ruleset[" in d.log().split("COMPAT tree loaded")[0].rsplit("\n", 1)[-1]
    # routed by the nested module's table; anything else is rejected
    s, rep = socks5_connect(socks, "wiki.office.lan", 80)
    s.close()
    assert rep == 0
    s, rep = socks5_connect(socks, "www.example.com", 80)
    s.close()
    assert rep != 0
    # the module loaded with loadfile reads neosocksd.stats() when called
    r = Api(port=api).curl("/stats?nobanner=1", "-X", "POST")
    assert r.status == 200 and b"COMPAT health 0" in r.body, r.body


def test_logf_names_the_callers_file_and_line(daemon_factory, tmp_path):
    """libruleset's logf (debug.getinfo) at --loglevel 6, as the reference
    prints it: D <time> <file>:<line> <msg>."""
    rs = write(tmp_path / "rs" / "r.lua", """
        _G.libruleset = require("libruleset")
        local function helper() logf("COMPAT from %s", "helper") end
        helper()
        return _G.libruleset
    """)
    socks, = free_ports(1)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "-r", rs, "--loglevel", "6")
    d.wait_log("COMPAT from helper")
    assert re.search(r" r\.lua:3 COMPAT from helper", d.log()), d.log()


def refusal_tree(root, outside):
    write(root / "ok.lua", "return 'ok'\n")
    write(outside / "secret.lua", "return 'outside'\n")
    os.symlink(str(outside / "secret.lua"), str(root / "linked.lua"))
    os.symlink(str(outside), str(root / "linkdir"))
    os.mkfifo(str(root / "fifo.lua"))
    os.mkdir(str(root / "devs"))
    os.mknod(str(root / "devs" / "zero.lua"), 0o600 | 0o020000, os.makedev(1, 5))
    # a precompiled chunk (the header is what matters: ESC "Lua")
    write(root / "bin.lua", b"\x1bLuaT\x00\x19\x93\r\n\x1a\n", "wb")
    return write(root / "main.lua", """
        local function req(name)
            local ok, err = pcall(require, name)
            return ok and "LOADED" or err
        end
        local function lf(name, mode)
            local f, err = loadfile(name, mode)
            return f and "LOADED" or err
        end
        local lines = {
            "ok " .. tostring(require("ok")) .. " " .. tostring(loadfile("ok.lua")()),
            "dotdot-req " .. req("..secret"),
            "dotdot-lf " .. lf("../outside/secret.lua"),
            "abs-lf " .. lf("/etc/passwd"),
            "link-req " .. req("linked"),
            "linkdir-req " .. req("linkdir.secret"),
            "link-lf " .. lf("linked.lua"),
            "fifo-req " .. req("fifo"),
            "fifo-lf " .. lf("fifo.lua"),
            "dev-req " .. req("devs.zero"),
            "bin-req " .. req("bin"),
            "bin-lf " .. lf("bin.lua"),
            "nul-lf " .. lf("ok.lua\\0x"),
            "mode-lf " .. lf("ok.lua", "b") ,
        }
        for _, l in ipairs(lines) do print("REFUSAL " .. l:gsub("\\n", " ")) end
        print("REFUSAL done")
        return {}
    """)


def test_loading_refusals(daemon_factory, tmp_path):
    """What stays refused: '..', absolute names, NUL, symlinks (out of the
    directory, or a directory on the way), a FIFO (the parent must not
    block on it), a device, and bytecode. Each is a clear error, the
    daemon keeps serving."""
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    rs = refusal_tree(tmp_path / "rs", tmp_path / "outside")
    socks, = free_ports(1)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "-r", rs)
    d.wait_log("REFUSAL done")
    got = dict(re.findall(r"REFUSAL (\S+) (.*)", d.log()))
    assert got["ok"] == "ok ok"
    assert "invalid name" in got["dotdot-req"]
    assert "cannot open ../outside/secret.lua" in got["dotdot-lf"]
    assert "cannot open /etc/passwd" in got["abs-lf"]
    assert "linked.lua: a symbolic link (not followed)" in got["link-req"]
    assert "linkdir/secret.lua: a symbolic link (not followed)" in got["linkdir-req"]
    assert "linked.lua: a symbolic link (not followed)" in got["link-lf"]
    assert "fifo.lua: not a regular file" in got["fifo-req"]
    assert "fifo.lua: not a regular file" in got["fifo-lf"]
    assert "zero.lua: not a regular file" in got["dev-req"]
    assert "binary chunks are not accepted" in got["bin-req"]
    assert "binary chunks are not accepted" in got["bin-lf"]
    assert "bad argument" in got["nul-lf"] or "cannot open" in got["nul-lf"]
    assert "attempt to load a text chunk" in got["mode-lf"]
    assert not [k for k, v in got.items() if "LOADED" in v], got
    # the parent did not hang on the FIFO: the daemon still answers
    s, rep = socks5_connect(socks, "127.0.0.1", 9)
    s.close()


def test_os_exit_stops_the_whole_daemon(daemon_factory, tmp_path):
    """os.exit(code) from a routine the ruleset started (as the reference's
    test harness ends) stops the daemon with that status, draining as
    SIGTERM does; the ruleset process is not just respawned."""
    rs = write(tmp_path / "rs.lua", """
        neosocksd.async(nil, function()
            await.sleep(0.05)
            print("COMPAT exiting")
            os.exit(7)
            print("COMPAT not reached")
        end)
        return {}
    """)
    socks, = free_ports(1)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "-r", rs)
    wait_until(lambda: d.proc.poll() is not None, 30, lambda: d.log())
    assert d.proc.returncode == 7, d.log()
    log = d.log()
    assert "os.exit(7) from the ruleset: stopping (draining" in log
    assert "COMPAT not reached" not in log
    assert "respawning" not in log


def test_os_exit_status_forms(daemon_factory, tmp_path):
    """os.exit(true) is 0, os.exit(false) 1; an out-of-range status is an
    error and nothing stops."""
    rs = write(tmp_path / "rs.lua", """
        print("COMPAT range " .. tostring(select(2, pcall(os.exit, 256))))
        neosocksd.async(nil, function() await.sleep(0.05); os.exit(false) end)
        return {}
    """)
    socks, = free_ports(1)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "-r", rs)
    wait_until(lambda: d.proc.poll() is not None, 30, lambda: d.log())
    assert d.proc.returncode == 1, d.log()
    assert "exit status must be 0 to 255" in d.log()


class StdinDaemon(Daemon):
    """A daemon whose standard input is a file (for -r - and -c -)."""

    def __init__(self, args, stdin_path, tmpdir):
        super().__init__(args, tmpdir=tmpdir)
        self.stdin_path = stdin_path

    def start(self, wait_ready=True, timeout=15.0):
        import socket
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.env["NOTIFY_SOCKET"] = self.notify_path
        self.logf = open(self.logpath, "wb")
        with open(self.stdin_path, "rb") as stdin:
            self.proc = subprocess.Popen([self.binary] + self.args, stdin=stdin,
                                         stdout=self.logf, stderr=self.logf,
                                         env=self.env)
        if wait_ready:
            self.wait_notify("READY=1", timeout)
        return self


@pytest.mark.parametrize("flag", ["-r", "-c"])
def test_source_from_standard_input(tmp_path, http_target, flag):
    """-r - and -c - read the ruleset or config from standard input, as
    the reference does; modules come from the working directory; a SIGHUP
    loads the same text again."""
    write(tmp_path / "mod.lua", "return %d\n" % http_target.port)
    src = """
        local port = require("mod")
        local function to() return "127.0.0.1:" .. port end
        print("COMPAT stdin loaded")
        return %s
    """ % ("{ ruleset = { resolve = to, route = to, route6 = to } }" if flag == "-c"
           else "{ resolve = to, route = to, route6 = to }")
    stdin = write(tmp_path / "in.lua", src)
    socks, = free_ports(1)
    cwd = os.getcwd()
    os.chdir(str(tmp_path))
    try:
        d = StdinDaemon(["-l", f"127.0.0.1:{socks}", flag, "-"], stdin, str(tmp_path))
        d.start()
    finally:
        os.chdir(cwd)
    try:
        s, rep = socks5_connect(socks, "nowhere.invalid", 80)
        s.close()
        assert rep == 0, d.log()
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log("COMPAT stdin loaded", count=2)
        assert "stdin" in d.log()
    finally:
        d.close()


def test_check_reads_standard_input(tmp_path):
    socks, = free_ports(1)
    p = subprocess.run([BIN, "-l", f"127.0.0.1:{socks}", "-r", "-", "--check"],
                       input=b"return {\n", capture_output=True, timeout=30)
    assert p.returncode == 1
    assert b"stdin:2:" in p.stderr, p.stderr
    p = subprocess.run([BIN, "-l", f"127.0.0.1:{socks}", "-r", "-", "--check"],
                       input=b"return {}\n", capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr


STATS_FIELDS = {
    "uptime", "num_halfopen", "num_sessions", "num_sessions_peak", "num_request",
    "num_success", "num_reject_ruleset", "num_reject_timeout", "num_reject_upstream",
    "byt_up", "byt_down", "num_accept", "num_serve", "num_api_request",
    "num_api_success", "num_dns_query", "num_dns_success", "bytes_allocated",
    "num_object", "num_thread_active", "num_thread_peak",
}


def test_stats_has_the_references_fields(daemon_factory, tmp_path, http_target):
    """neosocksd.stats(): the reference's 21 fields (and lasterror once a
    tick failed), with the front's counters fetched synchronously."""
    rs = write(tmp_path / "rs.lua", """
        function _G.dump_stats()
            local st = neosocksd.stats()
            local keys = {}
            for k, v in pairs(st) do keys[#keys + 1] = k .. "=" .. tostring(v) end
            table.sort(keys)
            print("COMPAT stats " .. table.concat(keys, " "))
        end
        local function to(addr)
            if addr:find("^refused") then return "127.0.0.1:1" end
            return "127.0.0.1:%d"
        end
        return { resolve = to, route = to, route6 = to }
    """ % http_target.port)
    socks, api = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{socks}", "--api", f"127.0.0.1:{api}", "-r", rs)
    rc, out, err = curl("-x", f"socks5h://127.0.0.1:{socks}", "http://served.test/")
    assert rc == 0, err
    s, rep = socks5_connect(socks, "refused.test", 80)
    s.close()
    assert rep != 0
    a = Api(port=api)
    assert a.curl("/ruleset/invoke", "--data-binary", "dump_stats()").status == 200
    d.wait_log("COMPAT stats")
    line = re.search(r"COMPAT stats (.*)", d.log()).group(1)
    st = dict(kv.split("=", 1) for kv in line.split())
    assert STATS_FIELDS <= set(st), STATS_FIELDS - set(st)
    assert float(st["uptime"]) > 1e6, "nanoseconds since the start"
    assert int(st["num_request"]) >= 2
    assert int(st["num_success"]) >= 1
    assert int(st["num_reject_upstream"]) >= 1
    assert int(st["num_accept"]) >= 2 and int(st["num_serve"]) >= 2
    assert int(st["byt_down"]) > 0
    assert int(st["num_api_request"]) >= 1


def test_overlay_example_three_daemons(daemon_factory, http_target, tmp_path):
    """examples/overlay.lua on three daemons: a knows only b, b only c;
    each learns the others through RPC (discovery), a routes web.c through
    c (c serves it), and when c goes away its names are refused while b's
    still work."""
    from harness import ROOT
    example = os.path.join(ROOT, "examples", "overlay.lua")
    ports = free_ports(6)
    socks = dict(zip("abc", ports[:3]))
    api = dict(zip("abc", ports[3:]))
    seeds = {"a": f"127.0.0.1:{api['b']}", "b": f"127.0.0.1:{api['c']}", "c": ""}
    d = {}
    for n in "cba":
        d[n] = daemon_factory(
            "-l", f"127.0.0.1:{socks[n]}", "--api", f"127.0.0.1:{api[n]}",
            "-r", example, "--loglevel", "5",
            env={"OVERLAY_NAME": n, "OVERLAY_SOCKS": f"127.0.0.1:{socks[n]}",
                 "OVERLAY_SERVICES": f"web=127.0.0.1:{http_target.port}",
                 "OVERLAY_SEEDS": seeds[n], "OVERLAY_INTERVAL": "0.2",
                 "OVERLAY_TTL": "5"})
    # discovery: a learns c through b, c learns a from its hello via b
    d["a"].wait_log('overlay: learned peer "c"', timeout=30)
    d["c"].wait_log('overlay: learned peer "a"', timeout=30)

    def get(via, host):
        return curl("-x", f"socks5h://127.0.0.1:{socks[via]}", f"http://{host}/")

    rc, out, err = get("a", "web.c")
    assert rc == 0 and b"hello from the target" in out, err
    d["c"].wait_log("web.c:80")  # c's access log: it served the request
    rc, out, err = get("a", "web.b")
    assert rc == 0, err
    rc, out, err = get("a", "web.nobody")
    assert rc != 0
    # c goes away: after the TTL a refuses its names, b's still work
    assert d["c"].stop() == 0
    d["a"].wait_log('overlay: peer "c" went away', timeout=30)
    rc, out, err = get("a", "web.c")
    assert rc != 0
    rc, out, err = get("a", "web.b")
    assert rc == 0, err


# The reference's libruleset builds futures and await.callback on bare
# coroutine.yield() / coroutine.resume, and its agent.lua probes its peers
# with them: the API of a peer "api.neosocksd.internal:80" reached through
# the peer's SOCKS listener, whose ruleset sends that name to its own API.
# This is that shape, in our own words.
REF_FUTURES = """
    local function ref_async(f, ...)
        local fut = { waiters = {} }
        local function finish(ok, ...)
            fut.result = table.pack(ok, ...)
            for co in pairs(fut.waiters) do
                fut.waiters[co] = nil
                coroutine.resume(co)
            end
        end
        neosocksd.async(finish, f, ...)
        function fut.get()
            if not fut.result then
                fut.waiters[coroutine.running()] = true
                coroutine.yield()
            end
            return table.unpack(fut.result, 1, fut.result.n)
        end
        return fut
    end
"""


def test_reference_style_futures_probe_and_route(daemon_factory, tmp_path, http_target):
    """Regression (the reference's agent.lua stopped at its first
    future:get()): a daemon waits on futures resolved by bare
    coroutine.yield() / coroutine.resume, in its own routines and in a
    request's, while it probes a peer's API through the peer's SOCKS
    listener (the peer runs --allow-self-dial); requests it then routes
    through that peer reach the target."""
    socks_a, api_a, socks_b, api_b = free_ports(4)
    peer = write(tmp_path / "b" / "peer.lua", """
        _G.libruleset = require("libruleset")
        function rpc.probe(from) return "b", from end
        _G.redirect_name = {
            { match.exact("api.neosocksd.internal:80"), rule.redirect("127.0.0.1:%d") },
            { match.host("web.b"), rule.redirect("127.0.0.1:%d"), "web" },
        }
        _G.route_default = { rule.reject() }
        return _G.libruleset
    """ % (api_b, http_target.port))
    daemon_factory("-l", f"127.0.0.1:{socks_b}", "--api", f"127.0.0.1:{api_b}",
                   "-r", peer, "--allow-self-dial")
    main = write(tmp_path / "a" / "main.lua", REF_FUTURES + """
        _G.libruleset = require("libruleset")
        local CONN = { "api.neosocksd.internal:80", "socks4a://127.0.0.1:%d" }
        local peers = {}
        local function probe()
            -- parallel probes, then wait for each (the agent's parallel_for)
            local tasks = {}
            for i = 1, 3 do
                tasks[i] = ref_async(await.rpcall, CONN, "probe", "a" .. i)
            end
            for i = 1, 3 do
                local ok, rok, name, from = tasks[i].get()
                assert(ok and rok, tostring(rok) .. " " .. tostring(name))
                assert(from == "a" .. i, tostring(from))
                peers[name] = true
            end
            return "probed"
        end
        function _G.probe_round() -- started through the API, once the front is up
            neosocksd.async(function(ok, rok, res)
                print("COMPAT probe round: " .. tostring(ok) .. " " .. tostring(rok)
                    .. " " .. tostring(res))
            end, function() return ref_async(probe).get() end)
        end
        local ruleset = {}
        function ruleset.resolve(addr)
            -- a request's routine waits on a future too
            local ok, known = ref_async(function()
                await.sleep(0.01)
                return peers.b
            end).get()
            if ok and known and addr == "web.b:80" then
                return addr, "socks5://127.0.0.1:%d"
            end
            return nil
        end
        return ruleset
    """ % (socks_b, socks_b))
    d = daemon_factory("-l", f"127.0.0.1:{socks_a}", "--api", f"127.0.0.1:{api_a}",
                       "-r", main)
    a = Api(port=api_a)
    assert a.curl("/ruleset/invoke", "--data-binary", "probe_round()").status == 200
    d.wait_log("COMPAT probe round:")
    assert "COMPAT probe round: true true probed" in d.log(), d.log()
    rc, out, err = curl("-x", f"socks5h://127.0.0.1:{socks_a}", "http://web.b/")
    assert rc == 0 and b"hello from the target" in out, (err, d.log())
    rc, out, err = curl("-x", f"socks5h://127.0.0.1:{socks_a}", "http://web.c/")
    assert rc != 0
    # no routine was left behind: every future's waiter ran to its end
    assert a.curl("/ruleset/invoke", "--data-binary",
                  "print('COMPAT active ' .. neosocksd.stats().num_thread_active)").status == 200
    d.wait_log("COMPAT active ")
    assert "COMPAT active 0" in d.log(), d.log()
