-- Every documented os, time and string function, run inside the ruleset
-- process's sandbox (chroot, seccomp): a call that needs a forbidden
-- system call kills the process and this file never reports DONE.
-- Regression (issue 12): os.time{year=2020, month=1, day=1} made glibc's
-- mktime open /etc/localtime inside the jail and the filter killed the
-- ruleset process.
local t = require("testlib")
local T = {}

function T.test_os_time_table()
    local a = os.time({ year = 2020, month = 1, day = 1, hour = 12 })
    local b = os.time({ year = 2020, month = 1, day = 2, hour = 12 })
    t.eq(math.type(a), "integer")
    t.eq(b - a, 86400, "one day apart (no DST change on those dates)")
    -- normalisation, as mktime does it
    t.eq(os.time({ year = 2020, month = 1, day = 32, hour = 12 }),
        os.time({ year = 2020, month = 2, day = 1, hour = 12 }))
    t.ok(os.time() > 1577836800, "now is after 2020")
    local ok, err = pcall(os.time, { year = 2020 })
    t.ok(not ok and err:find("missing"), "missing field: " .. tostring(err))
end

function T.test_os_date()
    t.eq(os.date("!%Y-%m-%d %H:%M:%S", 0), "1970-01-01 00:00:00")
    local u = os.date("!*t", 86400 + 3661)
    t.eq(u.year, 1970)
    t.eq(u.day, 2)
    t.eq(u.hour, 1)
    t.eq(u.min, 1)
    t.eq(u.sec, 1)
    t.eq(type(u.isdst), "boolean")
    -- local time round-trips through os.time
    local now = os.time()
    t.eq(os.time(os.date("*t", now)), now)
    t.eq(type(os.date()), "string")
    t.ok(os.date("%z"):match("^[+-]%d%d%d%d$"), "a numeric zone")
    t.eq(os.date("!%Y-%m-%dT%T%z", 0):sub(1, 19), "1970-01-01T00:00:00")
end

function T.test_os_clock_difftime()
    local c = os.clock()
    t.eq(math.type(c), "float")
    t.ok(c >= 0)
    t.eq(os.difftime(10, 4), 6.0)
end

function T.test_os_getenv_snapshot()
    -- the snapshot holds the daemon's environment; the process itself
    -- keeps none (only TZ, for the time zone it loaded)
    t.eq(os.getenv("NEOSOCKSD_NO_SUCH_VARIABLE"), nil)
    t.eq(os.getenv(""), nil)
    t.eq(type(os.getenv("PATH")), "string", "PATH from the daemon's environment")
    t.eq(os.getenv("NEOSOCKSD_ROLE"), nil, "the role marker is not shown")
end

function T.test_time_library()
    for _, name in ipairs({ "monotonic", "process", "thread", "unix", "wall" }) do
        t.ok(time[name]() > 0, name)
    end
    local d, r = time.measure(function(x) return x * 2 end, 21)
    t.ok(d >= 0)
    t.eq(r, 42)
end

function T.test_string_library()
    t.eq(string.format("%5.2f|%-3s|%q|%x", 3.14159, "a", "b\n", 255),
        " 3.14|a  |\"b\\\n\"|ff")
    t.eq(("hello"):rep(2, "-"), "hello-hello")
    t.eq(("abc"):byte(1, -1), 97)
    t.eq(string.char(72, 105), "Hi")
    t.eq(("Hello World"):find("o W"), 5)
    t.eq(("key=val"):match("(%w+)=(%w+)"), "key")
    t.eq(select(2, ("a,b,c"):gsub(",", ";")), 2)
    local n = 0
    for _ in ("a b c"):gmatch("%a") do n = n + 1 end
    t.eq(n, 3)
    t.eq(("AbC"):lower() .. ("AbC"):upper(), "abcABC")
    t.eq(("abc"):reverse(), "cba")
    t.eq(("abc"):sub(-2), "bc")
    t.eq(#("x"):rep(10), 10)
    t.eq(string.len("\0\0"), 2)
    local packed = string.pack(">I4s1", 258, "hi")
    t.eq(packed, "\0\0\1\2\2hi")
    t.eq(string.unpack(">I4", packed), 258)
    t.eq(string.packsize("i4i8"), 12) -- no alignment unless "!" asks
    t.eq(type(string.dump(function() end)), "string")
end

function T.test_debug_read_only()
    t.eq(type(debug.getinfo), "function")
    t.eq(type(debug.traceback), "function")
    for _, name in ipairs({ "sethook", "gethook", "getlocal", "setlocal",
        "getupvalue", "setupvalue", "upvaluejoin", "upvalueid",
        "getregistry", "setmetatable", "getmetatable", "getuservalue",
        "setuservalue", "setcstacklimit", "debug" }) do
        t.eq(debug[name], nil, "debug." .. name)
    end
    local info = debug.getinfo(1, "Sl")
    t.eq(info.source, "@test_compat_stdlib.lua")
    t.eq(info.short_src, "test_compat_stdlib.lua")
    t.eq(math.type(info.currentline), "integer")
    t.ok(debug.traceback("x"):find("^x\nstack traceback:"))
end

function T.test_package_as_lua_expects()
    t.eq(type(package.loaded), "table")
    t.eq(package.loaded.string, string)
    t.eq(type(package.searchers), "table")
    t.eq(#package.searchers, 2)
    t.eq(type(package.preload), "table")
    t.ok(package.path:find("/?.lua", 1, true), package.path)
    t.ok(package.path:find("/?/init.lua", 1, true), package.path)
    local ok, err = pcall(function() package.path = "./?.lua" end)
    t.ok(not ok and err:find("read%-only"), tostring(err))
    t.eq(package.cpath, nil)
    t.eq(package.loadlib, nil)
    -- preload and a searcher of one's own work as in Lua
    package.preload["compat.pre"] = function(name, extra)
        return { name = name, extra = extra }
    end
    local m, extra = require("compat.pre")
    t.eq(m.name, "compat.pre")
    t.eq(extra, ":preload:")
    t.eq(package.loaded["compat.pre"], m)
    table.insert(package.searchers, function(name)
        if name == "compat.mine" then
            return function() return "mine" end, "here"
        end
        return "no compat.mine here"
    end)
    t.eq(require("compat.mine"), "mine")
    local ok2, err2 = pcall(require, "compat.absent")
    t.ok(not ok2 and err2:find("module 'compat.absent' not found")
        and err2:find("no compat.mine here", 1, true)
        and err2:find("no field package.preload['compat.absent']", 1, true),
        err2)
    table.remove(package.searchers)
end

return T
