-- libruleset: load side effects, utilities, containers, logging, CIDR
-- parsing, marshal/unmarshal. Runs inside the daemon (tests/lua/runner.lua).
local ruleset = require("libruleset")
local t = {}

-- ---- helpers ----

local check = require("lrcheck")
local show, eq, same, raises = check.show, check.eq, check.same, check.raises

-- the results of a call, compared with a list of expected values

-- run f with print replaced; returns the printed lines
local function capture(f, ...)
    local lines, saved = {}, _G.print
    _G.print = function(...)
        local parts = {}
        for i = 1, select("#", ...) do
            parts[i] = tostring((select(i, ...)))
        end
        lines[#lines + 1] = table.concat(parts, "\t")
    end
    local ok, err = pcall(f, ...)
    _G.print = saved
    if not ok then
        error(err, 0)
    end
    return lines
end

-- run f with config.loglevel set to level
local function at_loglevel(level, f)
    local saved = config.loglevel
    config.loglevel = level
    local ok, err = pcall(f)
    config.loglevel = saved
    if not ok then
        error(err, 0)
    end
end

local TS = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[+-]%d%d:%d%d$"

-- ---- load ----

function t.test_load_returns_ruleset()
    eq(type(ruleset), "table", "require result")
    eq(require("libruleset"), ruleset, "second require")
    for _, k in ipairs({ "resolve", "route", "route6", "failover", "tick", "stats" }) do
        eq(type(ruleset[k]), "function", "ruleset." .. k)
    end
    for _, k in ipairs({ "resolve", "route", "route6" }) do
        eq(type(ruleset.decide[k]), "function", "ruleset.decide." .. k)
    end
end

function t.test_globals_present()
    for _, k in ipairs({ "printf", "format_timestamp", "log", "logf", "evlog", "evlogf",
        "parse_cidr", "parse_cidr6", "async", "unmarshal" }) do
        eq(type(_G[k]), "function", k)
    end
    for _, k in ipairs({ "list", "rlist", "recent_events", "rpc", "msgh", "inet", "inet6",
        "match", "composite", "rule", "lb", "config", "stat_requests" }) do
        eq(type(_G[k]), "table", k)
    end
    eq(type(package.replace), "function", "package.replace")
    eq(type(string.startswith), "function", "string.startswith")
    eq(type(string.endswith), "function", "string.endswith")
    eq(type(table.get), "function", "table.get")
    eq(type(await.callback), "function", "await.callback")
    eq(type(await.rpcall), "function", "await.rpcall")
    eq(type(neosocksd.sendmsg), "function", "neosocksd.sendmsg")
    eq(type(regex.compat), "function", "regex.compat")
    eq(math.type(num_requests), "integer", "num_requests")
    eq(math.type(num_authorized), "integer", "num_authorized")
    eq(RECENT_EVENTS_STATS, 10, "RECENT_EVENTS_STATS")
    eq(recent_events.cap, 100, "recent_events capacity")
    eq(stat_requests.cap, 60, "stat_requests capacity")
end

function t.test_config_snapshot()
    local c = neosocksd.config()
    eq(type(config), "table", "config")
    eq(config.loglevel, c.loglevel, "loglevel")
    eq(config.listen, c.listen, "listen")
    eq(config.auth_required, false, "auth_required")
    -- a snapshot, not the live table
    assert(config ~= c)
end

-- ---- utilities ----

function t.test_printf()
    local lines = capture(printf, "%s=%d %q", "x", 42, "a b")
    eq(#lines, 1, "lines")
    eq(lines[1], 'x=42 "a b"', "printf output")
end

function t.test_format_timestamp()
    local s = format_timestamp(0)
    assert(s:match(TS), s)
    eq(#s, 25, "length")
    -- local time with the offset written +hh:mm
    local z = os.date("%z", 86400)
    eq(format_timestamp(86400):sub(-6), z:sub(1, 3) .. ":" .. z:sub(4, 5), "offset")
    eq(format_timestamp(86400):sub(1, 19), os.date("%Y-%m-%dT%H:%M:%S", 86400), "local time")
    if z == "+0000" then -- the usual case in the jail (UTC)
        eq(format_timestamp(0), "1970-01-01T00:00:00+00:00", "epoch")
        eq(format_timestamp(86400 * 365 + 3661), "1971-01-01T01:01:01+00:00", "later")
    end
    -- fractions are floored
    eq(format_timestamp(59.999), format_timestamp(59), "floored")
    assert(format_timestamp(59.999) ~= format_timestamp(60), "not rounded")
    eq(format_timestamp(1e9 + 0.5), format_timestamp(1e9), "float")
    assert(format_timestamp():match(TS), "default is now")
    assert(format_timestamp(neosocksd.now()):match(TS), "now")
end

function t.test_startswith_endswith()
    assert(string.startswith("example.com", "exa"))
    assert(("example.com"):startswith("example.com"))
    assert(("example.com"):startswith(""))
    assert(not ("example.com"):startswith("xample"))
    assert(not ("ex"):startswith("example"))
    assert(string.endswith("example.com", ".com"))
    assert(("example.com"):endswith("example.com"))
    assert(("example.com"):endswith(""))
    assert(not ("example.com"):endswith(".org"))
    assert(not ("com"):endswith("x.com"))
    assert((""):endswith(""))
    assert(not (""):endswith("a"))
end

function t.test_table_get()
    local x = { a = { b = { c = 1 } }, n = false }
    eq(table.get(x), x, "no keys")
    eq(table.get(x, "a", "b", "c"), 1, "nested")
    eq(table.get(x, "a", "x", "c"), nil, "missing middle")
    eq(table.get(x, "a", "b", "c", "d"), nil, "past a leaf")
    eq(table.get(x, "n"), false, "false value")
    eq(table.get(x, "n", "y"), nil, "under false")
    eq(table.get(nil, "a"), nil, "nil root")
    eq(table.get(nil), nil, "nil root, no keys")
    eq(table.get({ [1] = { [2] = "v" } }, 1, 2), "v", "integer keys")
end

function t.test_package_replace()
    local name = "test_libruleset_replaced"
    package.loaded[name] = nil
    _G[name] = nil
    -- a new module: loaded, but no global is created
    local m1 = package.replace(name, function(modname)
        eq(modname, name, "chunk argument")
        return { v = 1 }
    end)
    eq(package.loaded[name], m1, "loaded")
    eq(rawget(_G, name), nil, "no global")
    -- a global aliasing the loaded module follows the replacement
    _G[name] = m1
    local m2 = package.replace(name, "return { v = 2 }")
    eq(m2.v, 2, "from source")
    eq(package.loaded[name], m2, "loaded 2")
    eq(_G[name], m2, "global updated")
    -- an unrelated global of the same name is left alone
    _G[name] = "other"
    local m3 = package.replace(name, function() end)
    eq(m3, true, "nil result becomes true")
    eq(package.loaded[name], true, "loaded 3")
    eq(_G[name], "other", "global untouched")
    raises("", package.replace, name, "this is not lua")
    eq(package.loaded[name], true, "failed load keeps the old module")
    package.loaded[name] = nil
    _G[name] = nil
end

-- ---- list ----

function t.test_list()
    local l = list:new()
    eq(list:check(l), l, "check")
    eq(list:check({}), nil, "check plain")
    eq(list:check(rlist:new(3)), nil, "check rlist")
    eq(list:check("x"), nil, "check string")
    l:insert("a")
    l:insert("b")
    l:insertf("%s-%d", "c", 3)
    eq(l:concat(","), "a,b,c-3", "insert/insertf")
    eq(l:remove(), "c-3", "remove")
    eq(l:append({ "x", "y" }), l, "append returns self")
    eq(l:concat(","), "a,b,x,y", "append")
    eq(l:map(string.upper), l, "map returns self")
    eq(l:concat(","), "A,B,X,Y", "map in place")
    eq(l:reverse():concat(","), "Y,X,B,A", "reverse")
    eq(l:sort():concat(","), "A,B,X,Y", "sort")
    eq(l:sort(function(a, b) return a > b end):concat(","), "Y,X,B,A", "sort with cmp")
    same({ "Y", "X", "B", "A" }, l:unpack())
    local seen = {}
    for i, v in l:iter() do
        seen[#seen + 1] = i .. v
    end
    eq(table.concat(seen, " "), "1Y 2X 3B 4A", "iter")
    local plain = l:totable()
    eq(getmetatable(plain), nil, "totable has no metatable")
    eq(#plain, 4, "totable length")
    eq(plain[1], "Y", "totable element")
    eq(marshal(plain), '{"Y","X","B","A",}', "marshallable")
    -- an existing table becomes a list
    local src = { 3, 1, 2 }
    local l2 = list:new(src)
    eq(l2, src, "new adopts the table")
    eq(l2:sort():concat(), "123", "sorted")
    eq(list:new():reverse():concat(), "", "empty reverse")
    eq(list:new({ 1 }):reverse():concat(), "1", "one reverse")
    eq(list:new({ 1, 2, 3 }):reverse():concat(), "321", "odd reverse")
end

-- ---- rlist ----

function t.test_rlist_basic()
    local r = rlist:new(3)
    eq(rlist:check(r), r, "check")
    eq(rlist:check({}), nil, "check plain")
    eq(rlist:check(list:new()), nil, "check list")
    eq(r.len, 0, "len")
    eq(r.cap, 3, "cap")
    eq(r.pos, 0, "pos")
    eq(r:get(1), nil, "empty get")
    eq(r:get(-1), nil, "empty get -1")
    for _ in r:iter() do
        error("empty ring iterated")
    end
    r:push("a")
    eq(r.len, 1, "len 1")
    eq(r:get(1), "a", "newest")
    eq(r:get(-1), "a", "oldest")
    r:push("b")
    r:push("c")
    eq(r.len, 3, "full")
    eq(#r, 3, "#r")
    same({ "c", "b", "a" }, r:get(1), r:get(2), r:get(3))
    same({ "a", "b", "c" }, r:get(-1), r:get(-2), r:get(-3))
    eq(r:get(0), nil, "get(0)")
    eq(r:get(4), nil, "get past len")
    eq(r:get(-4), nil, "get(-4)")
    -- wrap around: the oldest is dropped
    r:push("d")
    eq(r.len, 3, "len stays at cap")
    same({ "d", "c", "b" }, r:get(1), r:get(2), r:get(3))
    eq(r:get(-1), "b", "oldest after wrap")
    r:push("e")
    r:push("f")
    r:push("g")
    same({ "g", "f", "e" }, r:get(1), r:get(2), r:get(3))
    local seen = {}
    for i, v in r:iter() do
        seen[#seen + 1] = i .. v
    end
    eq(table.concat(seen, " "), "1g 2f 3e", "iter newest first")
    same({ 2, "f" }, r:next(1))
    same({}, r:next(3))
    assert(r.pos >= 1 and r.pos <= 3, "pos in range")
    eq(r[r.pos], "g", "pos is the newest slot")
end

function t.test_rlist_new_with_table()
    local r = rlist:new(2, { 1, 2, 3 })
    eq(r.len, 2, "len")
    same({ 3, 2 }, r:get(1), r:get(2))
    local r1 = rlist:new(1)
    r1:push("x")
    r1:push("y")
    same({ "y", nil }, r1:get(1), r1:get(2))
    raises("capacity", rlist.new, rlist, 0)
    raises("capacity", rlist.new, rlist, "x")
end

function t.test_check_across_reloads()
    -- a list or ring made by an earlier load of the library (another
    -- metatable with the same __name) is recognised and upgraded, so state
    -- such as recent_events survives a reload of libruleset
    local old_ring = setmetatable({ pos = 1, len = 1, cap = 4, "kept" }, { __name = "rlist" })
    eq(rlist:check(old_ring), old_ring, "old ring accepted")
    eq(old_ring:get(1), "kept", "methods of the current library")
    old_ring:push("new")
    eq(old_ring:get(1), "new", "push")
    local old_list = setmetatable({ "a" }, { __name = "list" })
    eq(list:check(old_list), old_list, "old list accepted")
    eq(old_list:concat(), "a", "list methods")
    eq(rlist:check(setmetatable({}, { __name = "other" })), nil, "other __name")
    eq(rlist:check(setmetatable({}, {})), nil, "no __name")
end

-- ---- logging ----

function t.test_log_quiet_below_debug()
    at_loglevel(5, function()
        local lines = capture(function()
            log("a")
            logf("%d", 1)
            evlog("quiet event")
            evlogf("quiet %s", "eventf")
        end)
        eq(#lines, 0, "nothing printed at loglevel 5")
    end)
    -- evlog records even when not printing
    eq(recent_events:get(1).msg, "quiet eventf", "evlogf recorded")
    eq(recent_events:get(2).msg, "quiet event", "evlog recorded")
end

function t.test_log_format()
    at_loglevel(6, function()
        local lines = capture(function()
            log("hello", 42, nil, true)
            logf("x=%d %q", 7, "s")
            evlog("ev")
            evlogf("ev%d", 2)
        end)
        eq(#lines, 4, "lines")
        local ts, src, line, msg = lines[1]:match("^D (%S+) (%S+):(%d+) (.*)$")
        assert(ts, lines[1])
        assert(ts:match(TS), ts)
        eq(src, "test_libruleset_base.lua", "source file")
        assert(tonumber(line) > 0, "line")
        eq(msg, "hello\t42\tnil\ttrue", "log message")
        eq(lines[2]:match("^D %S+ %S+ (.*)$"), 'x=7 "s"', "logf message")
        eq(lines[3]:match("^D %S+ %S+ (.*)$"), "ev", "evlog message")
        eq(lines[4]:match("^D %S+ %S+ (.*)$"), "ev2", "evlogf message")
        -- every line names this file and increasing lines
        local prev = 0
        for _, l in ipairs(lines) do
            local s, n = l:match("^D %S+ (%S+):(%d+) ")
            eq(s, "test_libruleset_base.lua", "source of " .. l)
            assert(tonumber(n) > prev, "line numbers increase")
            prev = tonumber(n)
        end
    end)
    -- at loglevel 7 too
    at_loglevel(7, function()
        eq(#capture(log, "x"), 1, "loglevel 7 prints")
    end)
end

function t.test_recent_events_dedup()
    local saved = recent_events
    _G.recent_events = rlist:new(100)
    evlog("one")
    evlog("two")
    evlog("two")
    evlogf("%s", "two")
    evlog("one")
    eq(recent_events.len, 3, "consecutive duplicates merged")
    local e1, e2, e3 = recent_events:get(1), recent_events:get(2), recent_events:get(3)
    same({ "one", 1 }, e1.msg, e1.count)
    same({ "two", 3 }, e2.msg, e2.count)
    same({ "one", 1 }, e3.msg, e3.count)
    assert(type(e1.time) == "number" and e1.time > 1e9, "event time")
    -- capacity 100: the oldest events are dropped
    for i = 1, 150 do
        evlogf("event %d", i)
    end
    eq(recent_events.len, 100, "capped at 100")
    eq(recent_events:get(1).msg, "event 150", "newest")
    eq(recent_events:get(-1).msg, "event 51", "oldest")
    _G.recent_events = saved
end

-- ---- CIDR ----

function t.test_parse_cidr()
    same({ 0x0A000000, 8 }, parse_cidr("10.0.0.0/8"))
    same({ 0xC0A80100, 24 }, parse_cidr("192.168.1.0/24"))
    same({ 0, 0 }, parse_cidr("0.0.0.0/0"))
    same({ 0xFFFFFFFF, 32 }, parse_cidr("255.255.255.255/32"))
    same({ 0x7F000001, 32 }, parse_cidr("127.0.0.1/32"))
    same({ 0x7F000001, 32 }, parse_cidr("127.0.0.1"))
    raises("unaligned", parse_cidr, "10.0.0.1/8")
    raises("unaligned", parse_cidr, "192.168.1.128/24")
    raises("unaligned", parse_cidr, "0.0.0.1/0")
    raises("prefix", parse_cidr, "10.0.0.0/33")
    raises("prefix", parse_cidr, "10.0.0.0/-1")
    raises("prefix", parse_cidr, "10.0.0.0/")
    raises("prefix", parse_cidr, "10.0.0.0/x")
    raises("prefix", parse_cidr, "10.0.0.0/8/8")
    raises("address", parse_cidr, "10.0.0/8")
    raises("address", parse_cidr, "example.com/8")
    raises("address", parse_cidr, "::1/32")
    raises("", parse_cidr, nil)
end

function t.test_parse_cidr6()
    same({ 0, 1, 128 }, parse_cidr6("::1/128"))
    same({ 0, 1, 128 }, parse_cidr6("::1"))
    same({ 0, 0, 0 }, parse_cidr6("::/0"))
    same({ 0xFE80000000000000, 0, 10 }, parse_cidr6("fe80::/10"))
    same({ 0xFC00000000000000, 0, 7 }, parse_cidr6("FC00::/7"))
    same({ 0x20010DB800000000, 0, 32 }, parse_cidr6("2001:db8::/32"))
    same({ 0x20010DB800000000, 0, 64 }, parse_cidr6("2001:db8::/64"))
    same({ 0x20010DB800000000, 0x8000000000000000, 65 }, parse_cidr6("2001:db8::8000:0:0:0/65"))
    same({ -1, -1, 128 }, parse_cidr6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"))
    raises("unaligned", parse_cidr6, "2001:db8::1/64")
    raises("unaligned", parse_cidr6, "fe80::1/10")
    raises("unaligned", parse_cidr6, "2001:db8::4000:0:0:0/65")
    raises("unaligned", parse_cidr6, "::1/127")
    raises("prefix", parse_cidr6, "::/129")
    raises("prefix", parse_cidr6, "::/")
    raises("address", parse_cidr6, "10.0.0.0/8")
    raises("address", parse_cidr6, "2001:db8:::/32")
end

-- ---- marshal / unmarshal ----

function t.test_unmarshal_roundtrip()
    local v = {
        1, 2, "three", { 4, { 5, { 6 } } },
        x = "y", [10] = true, [-1] = false, [1.5] = "float key",
        nested = { deep = { deeper = { "z", n = 0x7FFFFFFFFFFFFFFF } } },
        s = "quote\" backslash\\ newline\n nul\0 tab\t bytes\1\127\255 utf8 ü",
        f = 3.5, neg = -1, big = 1e15, small = 1e-300, i = math.mininteger,
    }
    local s = marshal(v, "a", 7, nil, true)
    local r = table.pack(unmarshal(s))
    eq(r.n, 5, "value count")
    same({ "a", 7, nil, true }, r[2], r[3], r[4], r[5])
    local u = r[1]
    eq(u[1], 1, "1")
    eq(u[3], "three", "3")
    eq(u[4][2][2][1], 6, "nested array")
    eq(u.x, "y", "x")
    eq(u[10], true, "[10]")
    eq(u[-1], false, "[-1]")
    eq(u[1.5], "float key", "float key")
    eq(u.nested.deep.deeper[1], "z", "deeper")
    eq(u.nested.deep.deeper.n, 0x7FFFFFFFFFFFFFFF, "maxinteger")
    eq(u.s, v.s, "string bytes")
    eq(u.f, 3.5, "float")
    eq(u.neg, -1, "negative")
    eq(u.big, 1e15, "big")
    eq(u.small, 1e-300, "small")
    eq(u.i, math.mininteger, "mininteger")
    eq(math.type(u.i), "integer", "mininteger type")
    -- holes, odd keys, deep nesting
    local odd = { 1, nil, 3, [2 ^ 53] = "2^53", ["not an identifier"] = 1, [""] = 2,
        [true] = { [false] = { {} } }, [0] = 0, [-0.5] = "neg" }
    local o = unmarshal(marshal(odd))
    same({ 1, nil, 3 }, o[1], o[2], o[3])
    eq(o[2 ^ 53], "2^53", "float key 2^53")
    eq(o["not an identifier"], 1, "string key")
    eq(o[""], 2, "empty key")
    eq(type(o[true][false][1]), "table", "boolean keys")
    eq(o[0], 0, "key 0")
    eq(o[-0.5], "neg", "negative float key")
    local deep = {}
    local cur = deep
    for _ = 1, 50 do
        cur.next = {}
        cur = cur.next
    end
    cur.leaf = "bottom"
    local d = unmarshal(marshal(deep))
    for _ = 1, 50 do
        d = d.next
    end
    eq(d.leaf, "bottom", "50 levels")
    local long = string.rep("x\0y\n", 10000)
    eq(unmarshal(marshal(long)), long, "long string")
    -- special floats
    local nan, inf, ninf, nz = unmarshal(marshal(0 / 0, 1 / 0, -1 / 0, -0.0))
    assert(nan ~= nan, "nan")
    eq(inf, math.huge, "inf")
    eq(ninf, -math.huge, "-inf")
    -- -0.0 keeps its sign across marshal/unmarshal (issue 12)
    eq(nz, 0, "-0.0 comes back as zero")
    eq(math.type(nz), "float", "still a float")
    eq(1 / nz, -math.huge, "with its sign")
    -- the documented example
    eq(marshal("a", { "b", ["c"] = "d" }), '"a",{"b",["c"]="d",}', "example")
    eq(marshal(), "", "no values")
    same({}, unmarshal(marshal()))
end

function t.test_unmarshal_sandboxed()
    -- an empty environment: no globals reachable
    raises("attempt to call a nil value", unmarshal, "print('x')")
    eq(unmarshal("_G"), nil, "_G is not visible")
    eq(unmarshal("os"), nil, "os is not visible")
    raises("unmarshal", unmarshal, "{")
    raises("unmarshal", unmarshal, "1; os.exit()")
end

function t.test_marshal_errors()
    local c = {}
    c.self = c
    raises("circular", marshal, c)
    raises("not marshallable", marshal, print)
    raises("not marshallable", marshal, { f = coroutine.running() })
    -- shared, non-circular subtables are fine
    local shared = { 1 }
    local a, b = unmarshal(marshal(shared, { shared, shared }))
    eq(a[1], 1, "shared")
    eq(b[2][1], 1, "shared twice")
end

return t
