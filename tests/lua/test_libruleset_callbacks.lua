-- libruleset: the request callbacks (ruleset.resolve/route/route6 =
-- count, authenticate, decide, await.forward), ruleset.failover,
-- ruleset.tick and ruleset.stats. Runs inside the daemon
-- (tests/lua/runner.lua).
--
-- The tests run in asynchronous routines that are not request handlers,
-- where the real await.forward raises; they replace it with a recorder.
-- The real forwarding path is covered by tests/integration/test_examples.py.
local ruleset = require("libruleset")
local t = {}

-- ---- helpers ----

local check = require("lrcheck")
local show, eq, same, raises = check.show, check.eq, check.same, check.raises

local ROUTING = { "redirect_name", "hosts", "redirect", "route", "redirect6", "route6",
    "route_default", "secrets" }

-- scoped(function(set) ... end): set(t, k, v) for the duration of the call;
-- the routing tables and secrets start empty, counters at 0, a fresh event
-- log, and await.forward is a recorder (see forwarder)
local function scoped(f)
    local undo = {}
    local function set(tbl, k, v)
        table.insert(undo, { tbl, k, rawget(tbl, k) })
        rawset(tbl, k, v)
    end
    for _, k in ipairs(ROUTING) do
        set(_G, k, nil)
    end
    set(_G, "recent_events", rlist:new(100))
    set(_G, "stat_requests", rlist:new(60))
    set(_G, "num_requests", 0)
    set(_G, "num_authorized", 0)
    set(config, "auth_required", false)
    set(_G.ruleset, "authenticate", nil)
    local ok, err = pcall(f, set)
    for i = #undo, 1, -1 do
        rawset(undo[i][1], undo[i][2], undo[i][3])
    end
    if not ok then
        error(err, 0)
    end
end

-- a stand-in for await.forward: records each call's arguments and answers
-- with results(args) (default: true, i.e. committed)
local function forwarder(set, results)
    local calls = {}
    set(await, "forward", function(...)
        local args = table.pack(...)
        table.insert(calls, args)
        if args.n == 0 or args[1] == nil then
            return -- as the real one: nothing to dial
        end
        await.sleep(0) -- the real one waits for the dial
        if results then
            return results(args)
        end
        return true
    end)
    return calls
end

local function events()
    local out = {}
    for i = recent_events.len, 1, -1 do
        table.insert(out, recent_events:get(i).msg)
    end
    return out
end

-- ---- callbacks: decide, and hand the decision to the daemon ----

function t.test_callbacks_return_the_decision()
    scoped(function(set)
        local calls = forwarder(set)
        set(_G, "redirect_name", {
            { match.domain("chain.test"), rule.redirect("127.0.0.1:", "socks5://hop1:1", "http://hop2:2") },
            { match.domain("blocked.test"), rule.reject(), "blocked" },
        })
        set(_G, "route", { { inet.subnet("10.0.0.0/8"), rule.proxy("socks4a://ten:1") } })
        set(_G, "route6", { { inet6.subnet("::1/128"), rule.redirect(":8080") } })
        -- the decision: addr, proxyN, ..., proxy1 (the daemon dials it)
        same({ "127.0.0.1:443", "http://hop2:2", "socks5://hop1:1" },
             ruleset.resolve("www.chain.test:443"))
        same({ "10.1.2.3:80", "socks4a://ten:1" }, ruleset.route("10.1.2.3:80"))
        same({ "[::1]:8080" }, ruleset.route6("[::1]:80"))
        -- direct (no tables match, no default)
        same({ "other.test:80" }, ruleset.resolve("other.test:80"))
        -- a rejection: nothing
        same({}, ruleset.resolve("blocked.test:80"))
        eq(#calls, 0, "nothing dialed by the ruleset itself")
        eq(num_requests, 5, "requests counted")
        eq(num_authorized, 5, "all authorized (no auth required)")
    end)
end

function t.test_callbacks_decision_errors_propagate()
    scoped(function(set)
        forwarder(set)
        set(_G, "redirect_name", { { match.any(), function() error("action failed", 0) end } })
        raises("action failed", ruleset.resolve, "a.test:80")
    end)
end

function t.test_callbacks_action_commits_itself()
    scoped(function(set)
        local calls = forwarder(set)
        -- an action that forwards by itself (ruleset.failover) and returns
        -- true or nothing: the callback returns nothing more to dial
        set(_G, "route_default", { function(addr)
            return ruleset.failover(addr, { { "socks5://p:1" } })
        end })
        same({}, ruleset.resolve("a.test:80"))
        eq(#calls, 1, "one forward")
        same({ "a.test:80", "socks5://p:1" }, table.unpack(calls[1], 1, calls[1].n))
        set(_G, "route_default", { function(addr)
            ruleset.failover(addr, { {} })
        end })
        same({}, ruleset.resolve("b.test:80"))
        eq(#calls, 2, "one more forward")
    end)
end

function t.test_callbacks_failover_gives_up()
    scoped(function(set)
        local calls = forwarder(set, function() return false, "connection refused" end)
        set(_G, "route_default", { function(addr)
            return ruleset.failover(addr, { { "socks5://p:1" }, {} })
        end })
        -- every chain failed: false from the action, a rejection
        same({}, ruleset.resolve("a.test:80"))
        eq(#calls, 2, "both chains tried")
    end)
end

function t.test_callbacks_trailing_nils_are_not_hops()
    scoped(function(set)
        set(_G, "route_default", { function(addr) return addr, "socks5://p:1", nil end })
        local r = table.pack(ruleset.resolve("a.test:80"))
        eq(r.n, 2, "values returned")
        same({ "a.test:80", "socks5://p:1" }, table.unpack(r, 1, r.n))
    end)
end

-- ---- authentication ----

function t.test_authenticate_secrets()
    scoped(function(set)
        set(config, "auth_required", true)
        set(_G, "secrets", { alice = "pw", bob = true, carol = false })
        same({ "a.test:80" }, ruleset.resolve("a.test:80", "alice", "pw"))
        same({}, ruleset.resolve("a.test:80", "alice", "wrong"))
        same({}, ruleset.resolve("a.test:80", "alice", nil))
        same({ "10.0.0.1:80" }, ruleset.route("10.0.0.1:80", "bob", "anything"))
        same({ "[::1]:80" }, ruleset.route6("[::1]:80", "bob", nil))
        same({}, ruleset.resolve("a.test:80", "carol", "false"))
        same({}, ruleset.resolve("a.test:80", "mallory", "pw"))
        same({}, ruleset.resolve("a.test:80", nil, nil))
        same({}, ruleset.resolve("a.test:80", "ALICE", "pw"))
        eq(num_requests, 9, "all counted")
        eq(num_authorized, 3, "three authorized")
        eq(table.concat(events(), "|"), table.concat({
            'authenticate failed: "alice"',
            -- consecutive identical messages are merged
            'authenticate failed: "carol"',
            'authenticate failed: "mallory"',
            'authenticate failed: nil',
            'authenticate failed: "ALICE"',
        }, "|"), "failures logged")
        eq(recent_events:get(-1).count, 2, "alice failed twice")
        -- no secrets at all: everyone fails
        set(_G, "secrets", nil)
        same({}, ruleset.resolve("a.test:80", "alice", "pw"))
        -- auth not required: credentials are ignored
        set(config, "auth_required", false)
        same({ "a.test:80" }, ruleset.resolve("a.test:80", "mallory", "x"))
        same({ "a.test:80" }, ruleset.resolve("a.test:80"))
    end)
end

function t.test_authenticate_custom()
    scoped(function(set)
        set(config, "auth_required", true)
        set(_G, "secrets", { alice = true }) -- ignored when a function is set
        local seen = {}
        set(_G.ruleset, "authenticate", function(addr, user, pass)
            table.insert(seen, table.pack(addr, user, pass))
            return user == "dave" and pass == addr:match("^(%w+)")
        end)
        same({ "open:80" }, ruleset.resolve("open:80", "dave", "open"))
        same({}, ruleset.route("10.0.0.1:80", "dave", "open"))
        same({}, ruleset.resolve("open:80", "alice", "x"))
        same({ "open:80", "dave", "open" }, table.unpack(seen[1], 1, seen[1].n))
        same({ "10.0.0.1:80", "dave", "open" }, table.unpack(seen[2], 1, seen[2].n))
        eq(num_authorized, 1, "authorized")
        -- an authenticate that awaits
        set(_G.ruleset, "authenticate", function()
            await.sleep(0.001)
            return true
        end)
        same({ "x:1" }, ruleset.resolve("x:1", "anyone", "x"))
    end)
end

function t.test_authenticate_follows_settings_in_force()
    -- libruleset loaded from a -c file snapshots config before the file's
    -- settings apply; the settings in force switch the check on (checked
    -- at the first request after loading and after each tick)
    scoped(function(set)
        set(_G, "secrets", { alice = "pw" })
        set(neosocksd, "config", function() return { auth_required = true } end)
        ruleset.tick(1)
        same({}, ruleset.resolve("a.test:80", "alice", "wrong"))
        eq(config.auth_required, true, "switched on")
        same({ "a.test:80" }, ruleset.resolve("a.test:80", "alice", "pw"))
        -- never switched off by the settings
        set(neosocksd, "config", function() return { auth_required = false } end)
        ruleset.tick(2)
        same({}, ruleset.resolve("a.test:80", "alice", "wrong"))
    end)
    ruleset.tick(3) -- sync again with the real settings (no auth)
end

-- ---- failover ----

function t.test_failover()
    scoped(function(set)
        local calls = forwarder(set, function(args)
            if args[args.n] == "socks5://up:1" or args.n == 1 then
                return true
            end
            return false, "connection failed"
        end)
        local chains = {
            { "socks5://hop2:1", "socks5://down:1" },
            { "socks5://up:1" },
            {},
        }
        eq(ruleset.failover("a.test:80", chains), true, "second chain")
        eq(#calls, 2, "stopped at the first success")
        same({ "a.test:80", "socks5://hop2:1", "socks5://down:1" }, table.unpack(calls[1], 1, calls[1].n))
        same({ "a.test:80", "socks5://up:1" }, table.unpack(calls[2], 1, calls[2].n))
        -- {} is direct
        eq(ruleset.failover("b.test:80", { { "socks5://down:1" }, {} }), true, "direct")
        eq(calls[4].n, 1, "direct has no proxies")
        -- all fail
        same({ false, "connection failed" }, ruleset.failover("c.test:80",
            { { "socks5://down:1" }, { "socks5://down2:1" } }))
        same({ false, "no chain" }, ruleset.failover("c.test:80", {}))
    end)
end

-- ---- tick and stats ----

function t.test_tick()
    scoped(function()
        ruleset.tick(1000)
        num_requests = 5
        ruleset.tick(1060)
        num_requests = 12
        ruleset.tick(1120)
        same({ 12, 5, 0 }, stat_requests:get(1), stat_requests:get(2), stat_requests:get(3))
        for i = 1, 70 do
            ruleset.tick(1120 + 60 * i)
        end
        eq(stat_requests.len, 60, "60 samples kept")
        ruleset.tick() -- the engine passes the time; it is optional
        eq(stat_requests.len, 60, "still 60")
    end)
end

local function parse_stats(s)
    local lines = {}
    for line in s:gmatch("([^\n]*)\n") do
        table.insert(lines, line)
    end
    return lines
end

function t.test_stats_shape()
    scoped(function(set)
        set(_G, "RECENT_EVENTS_STATS", 3)
        evlog("first")
        evlog("second")
        evlog("second")
        evlog("third")
        evlog("fourth")
        -- per-minute samples: 0, +2, +4, +1, +0, +4
        local counts = { 0, 2, 6, 7, 7, 11 }
        for i, n in ipairs(counts) do
            num_requests = n
            ruleset.tick(60 * i)
        end
        local s = ruleset.stats(60)
        eq(type(s), "string", "a string")
        eq(s:sub(-1), "\n", "ends with a newline")
        local lines = parse_stats(s)
        eq(lines[1], "> Recent Events", "events header")
        -- newest first, RECENT_EVENTS_STATS of them, with counts
        assert(lines[2]:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[+-]%d%d:%d%d fourth$"), lines[2])
        assert(lines[3]:match("^%S+ third$"), lines[3])
        assert(lines[4]:match("^%S+ second %(x2%)$"), lines[4])
        eq(lines[5], "> Request Stats (avg=2.2/min, max=4)", "stats header")
        -- 5 rows; columns oldest to newest: 2 4 1 0 4 (scaled to 5 rows)
        eq(#lines, 10, "line count")
        -- heights ceil(d * 5 / max): 3 5 2 0 5
        eq(lines[6], "| *  *", "row 5")
        eq(lines[7], "| *  *", "row 4")
        eq(lines[8], "|**  *", "row 3")
        eq(lines[9], "|*** *", "row 2")
        eq(lines[10], "|*** *", "row 1")
    end)
end

function t.test_stats_empty()
    scoped(function()
        local lines = parse_stats(ruleset.stats(0))
        eq(lines[1], "> Recent Events", "header")
        eq(lines[2], "> Request Stats (avg=0.0/min, max=0)", "no samples")
        eq(#lines, 7, "5 empty rows")
        for i = 3, 7 do
            eq(lines[i], "|", "empty row")
        end
        -- one sample: still no rate
        ruleset.tick(60)
        eq(parse_stats(ruleset.stats(0))[2], "> Request Stats (avg=0.0/min, max=0)", "one sample")
    end)
end

function t.test_stats_rate_uses_tick_interval()
    scoped(function()
        -- ticks every 10 s, 5 requests per tick: 30/min
        for i = 0, 6 do
            num_requests = 5 * i
            ruleset.tick(1000 + 10 * i)
        end
        local lines = parse_stats(ruleset.stats(60))
        eq(lines[2], "> Request Stats (avg=30.0/min, max=5)", "rate")
        eq(lines[3], "|******", "full rows")
    end)
end

function t.test_stats_tags_from_requests()
    scoped(function(set)
        forwarder(set)
        set(_G, "redirect_name", { { match.domain("echo.test"), rule.redirect("127.0.0.1:"), "echo" } })
        set(_G, "route_default", { rule.reject(), "default" })
        ruleset.resolve("echo.test:80")
        ruleset.route("10.1.1.1:80")
        ruleset.route("10.1.1.1:80")
        local lines = parse_stats(ruleset.stats(1))
        assert(lines[2]:match(' %[default%] "10%.1%.1%.1:80" %(x2%)$'), lines[2])
        assert(lines[3]:match(' %[echo%] "echo%.test:80"$'), lines[3])
    end)
end

return t
