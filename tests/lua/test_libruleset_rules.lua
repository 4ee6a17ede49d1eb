-- libruleset: actions (rule.*), load balancers (lb.*) and the decision
-- pipeline (ruleset.decide.*) over the routing tables. Runs inside the
-- daemon (tests/lua/runner.lua).
local ruleset = require("libruleset")
local decide = ruleset.decide
local t = {}

-- ---- helpers ----

local check = require("lrcheck")
local show, eq, same, raises = check.show, check.eq, check.same, check.raises

-- the results of a call, compared with a list of expected values

-- scoped(function(set) ... end): set(t, k, v) assigns t[k] = v for the
-- duration of the call; everything is restored afterwards, even on error
local ROUTING = { "redirect_name", "hosts", "redirect", "route", "redirect6", "route6",
    "route_default" }
local function scoped(f)
    local undo = {}
    local function set(tbl, k, v)
        table.insert(undo, { tbl, k, rawget(tbl, k) })
        rawset(tbl, k, v)
    end
    -- every test starts with empty routing tables and a fresh event log
    for _, k in ipairs(ROUTING) do
        set(_G, k, nil)
    end
    set(_G, "recent_events", rlist:new(100))
    local ok, err = pcall(f, set)
    for i = #undo, 1, -1 do
        rawset(undo[i][1], undo[i][2], undo[i][3])
    end
    if not ok then
        error(err, 0)
    end
end

-- the messages in recent_events, oldest first
local function events()
    local out = {}
    for i = recent_events.len, 1, -1 do
        table.insert(out, recent_events:get(i).msg)
    end
    return out
end

local function has_event(msg)
    for _, m in ipairs(events()) do
        if m == msg then
            return true
        end
    end
    return false
end

-- an action that records its argument and returns a marker
local function marker(name, calls)
    return function(addr)
        if calls then
            table.insert(calls, name .. "@" .. tostring(addr))
        end
        return name
    end
end

-- ---- rule.* ----

function t.test_rule_direct_reject()
    same({ "a.test:80" }, rule.direct()("a.test:80"))
    same({ "[::1]:22" }, rule.direct()("[::1]:22"))
    same({ nil }, rule.reject()("a.test:80"))
end

function t.test_rule_default()
    scoped(function(set)
        local d = rule.default()
        same({ "a.test:80" }, d("a.test:80")) -- no route_default: direct
        set(_G, "route_default", { rule.proxy("socks5://p:1080"), "dflt" })
        same({ "a.test:80", "socks5://p:1080" }, d("a.test:80"))
        assert(has_event('[dflt] "a.test:80"'), "tag logged")
        set(_G, "route_default", { rule.reject() })
        same({ nil }, d("a.test:80"))
    end)
end

function t.test_rule_redirect()
    -- full address
    same({ "b.test:443" }, rule.redirect("b.test:443")("a.test:80"))
    same({ "[::1]:8080" }, rule.redirect("[::1]:8080")("a.test:80"))
    -- "host:" keeps the port
    same({ "127.0.0.1:8080" }, rule.redirect("127.0.0.1:")("a.test:8080"))
    same({ "[::1]:22" }, rule.redirect("[::1]:")("x.test:22"))
    same({ "b.test:443" }, rule.redirect("b.test:")("[2001:db8::1]:443"))
    -- ":port" keeps the host
    same({ "a.test:8443" }, rule.redirect(":8443")("a.test:443"))
    same({ "10.0.0.1:53" }, rule.redirect(":53")("10.0.0.1:5353"))
    same({ "[2001:db8::1]:80" }, rule.redirect(":80")("[2001:db8::1]:8080"))
    -- bad destinations are refused when the rule is made
    raises("", rule.redirect, "no-port")
    raises("", rule.redirect, ":http")
    raises("", rule.redirect, nil)
end

function t.test_rule_redirect_proxy_order()
    -- proxies are given first hop first; the action returns them reversed:
    -- addr, proxyN, ..., proxy1 (the last value is the first hop)
    local r = rule.redirect("b.test:443", "socks5://first:1080", "http://second:8080",
        "socks4a://third:1080")
    same({ "b.test:443", "socks4a://third:1080", "http://second:8080", "socks5://first:1080" },
        r("a.test:80"))
    same({ "127.0.0.1:80", "socks5://only:1080" },
        rule.redirect("127.0.0.1:", "socks5://only:1080")("a.test:80"))
    same({ "a.test:1", "http://2:2", "socks5://1:1" },
        rule.redirect(":1", "socks5://1:1", "http://2:2")("a.test:80"))
    -- the returned list is not shared between calls
    local a = table.pack(r("x:1"))
    a[2] = "changed"
    same({ "b.test:443", "socks4a://third:1080", "http://second:8080", "socks5://first:1080" },
        r("a.test:80"))
end

function t.test_rule_proxy()
    same({ "a.test:80" }, rule.proxy()("a.test:80"))
    same({ "a.test:80", "socks5://p1:1080" }, rule.proxy("socks5://p1:1080")("a.test:80"))
    same({ "[::1]:80", "http://p3:3", "socks4a://p2:2", "socks5://p1:1" },
        rule.proxy("socks5://p1:1", "socks4a://p2:2", "http://p3:3")("[::1]:80"))
end

function t.test_rule_maybe()
    local holder = {}
    local m = rule.maybe(holder, "act")
    same({ nil }, m("a.test:80"))
    holder.act = rule.proxy("socks5://p:1")
    same({ "a.test:80", "socks5://p:1" }, m("a.test:80"))
    holder.act = nil
    same({ nil }, m("a.test:80"))
end

function t.test_rule_rewrite()
    local r = rule.rewrite("^(.-)%.onion:(%d+)$", "%1.onion.test:%2")
    same({ "abc.onion.test:80" }, r("abc.onion:80"))
    same({ "other.test:80" }, r("other.test:80")) -- no match keeps addr
    -- only the first gsub result is returned, then the chain (reversed)
    local r2 = rule.rewrite("a", "b", "socks5://h1:1", "socks5://h2:2")
    same({ "bbb:1", "socks5://h2:2", "socks5://h1:1" }, r2("aaa:1"))
end

function t.test_rule_loopback()
    scoped(function(set)
        set(_G, "redirect_name", {
            { match.domain("internal.test"), rule.redirect("127.0.0.1:"), "internal" },
            { match.domain("loop.test"), rule.loopback("loop%.test", "loop.test") },
        })
        set(_G, "route", { { inet.subnet("10.0.0.0/8"), rule.proxy("socks5://ten:1"), "ten" } })
        set(_G, "route6", { { inet6.subnet("::1/128"), rule.proxy("socks5://six:1") } })
        set(_G, "route_default", { rule.reject(), "default" })
        -- a name becomes another name: the name pipeline again
        same({ "127.0.0.1:80" }, rule.loopback("^x%.", "a.internal.")("x.test:80"))
        -- a name becomes an IPv4 address: the IPv4 pipeline
        same({ "10.1.1.1:80", "socks5://ten:1" }, rule.loopback("^.*:", "10.1.1.1:")("n.test:80"))
        -- IPv6
        same({ "[::1]:80", "socks5://six:1" }, rule.loopback("^.*:", "[::1]:")("n.test:80"))
        -- unmatched: the default
        same({ nil }, rule.loopback("x", "y")("x.test:80"))
        -- a loop is cut off with an error
        raises("routing loop", decide.resolve, "loop.test:80")
        -- and the nesting count is back to zero afterwards
        same({ "127.0.0.1:80" }, rule.loopback("^x%.", "a.internal.")("x.test:80"))
    end)
end

function t.test_rule_resolve()
    scoped(function(set)
        local asked = {}
        set(await, "resolve", function(host)
            table.insert(asked, host)
            await.sleep(0) -- a real await in between
            if host:endswith("v4.test") then
                return "10.9.8.7"
            elseif host == "v6.test" then
                return "2001:db8::7"
            elseif host == "lan.test" then
                return "192.168.1.1"
            end
            return nil
        end)
        set(_G, "redirect", { { match.host("192.168.1.1"), rule.redirect("127.0.0.1:"), "lanhop" } })
        set(_G, "route", { { inet.subnet("10.0.0.0/8"), rule.proxy("socks5://ten:1"), "ten" } })
        set(_G, "route6", { { inet6.subnet("2001:db8::/32"), rule.proxy("socks5://doc:1"), "doc" } })
        set(_G, "route_default", { rule.direct() })
        local r = rule.resolve()
        same({ "10.9.8.7:443", "socks5://ten:1" }, r("v4.test:443"))
        same({ "[2001:db8::7]:80", "socks5://doc:1" }, r("v6.test:80"))
        -- the resolved address goes through the whole IPv4 pipeline
        same({ "127.0.0.1:22" }, r("lan.test:22"))
        -- unresolvable: rejected, logged
        same({ nil }, r("nx.test:80"))
        assert(has_event('resolve failed: "nx.test"'), "resolve failure logged")
        -- an address is not resolved again
        same({ "10.1.1.1:80", "socks5://ten:1" }, r("10.1.1.1:80"))
        same({ "[2001:db8::1]:80", "socks5://doc:1" }, r("[2001:db8::1]:80"))
        eq(table.concat(asked, ","), "v4.test,v6.test,lan.test,nx.test", "names resolved")
        -- as a rule in the name table
        set(_G, "redirect_name", { { match.domain("v4.test"), rule.resolve(), "res" } })
        same({ "10.9.8.7:1", "socks5://ten:1" }, decide.resolve("www.v4.test:1"))
    end)
end

-- ---- lb.* ----

function t.test_lb_roundrobin()
    local calls = {}
    local rr = lb.roundrobin({ marker("A", calls), marker("B", calls), marker("C", calls) })
    local seq = {}
    for i = 1, 7 do
        seq[i] = rr("x:" .. i)
    end
    eq(table.concat(seq), "ABCABCA", "cycle")
    eq(calls[2], "B@x:2", "the action gets addr")
    same({ nil }, lb.roundrobin({})("x:1"))
    local one = lb.roundrobin({ marker("A") })
    eq(one("x:1") .. one("x:2"), "AA", "one action")
    -- actions return full decisions
    local rr2 = lb.roundrobin({ rule.redirect("127.0.0.2:"), rule.redirect("127.0.0.3:") })
    same({ "127.0.0.2:80" }, rr2("svc:80"))
    same({ "127.0.0.3:80" }, rr2("svc:80"))
    same({ "127.0.0.2:81" }, rr2("svc:81"))
end

local function run(action, n)
    local seq, counts = {}, {}
    for i = 1, n do
        local v = action("x:1")
        seq[i] = v
        counts[v] = (counts[v] or 0) + 1
    end
    return table.concat(seq), counts
end

function t.test_lb_iwrr_interleaving()
    local seq = run(lb.iwrr({ { 3, marker("A") }, { 1, marker("B") } }), 12)
    eq(seq, "ABAAABAAABAA", "3:1")
    seq = run(lb.iwrr({ { 1, marker("A") }, { 1, marker("B") }, { 1, marker("C") } }), 6)
    eq(seq, "ABCABC", "equal weights")
    seq = run(lb.iwrr({ { 2, marker("A") }, { 3, marker("B") }, { 1, marker("C") } }), 12)
    -- rounds: 1: A B C, 2: A B, 3: B
    eq(seq, "ABCABBABCABB", "2:3:1")
    local counts
    seq, counts = run(lb.iwrr({ { 5, marker("A") }, { 2, marker("B") } }), 70)
    eq(counts.A, 50, "5:2 A")
    eq(counts.B, 20, "5:2 B")
    eq(seq:sub(1, 7), "ABABAAA", "5:2 cycle")
end

function t.test_lb_iwrr_weights()
    -- weights are normalised in place to the largest
    local t1 = { { 4, marker("A") }, { 2, marker("B") }, { 1, marker("C") } }
    lb.iwrr(t1)
    same({ 1.0, 0.5, 0.25 }, t1[1][1], t1[2][1], t1[3][1])
    -- non-positive weights are left out (and not normalised)
    local t2 = { { 0, marker("Z") }, { 2, marker("A") }, { -1, marker("N") }, { 1, marker("B") } }
    local seq = run(lb.iwrr(t2), 6)
    eq(seq, "ABAABA", "0 and -1 excluded")
    eq(t2[1][1], 0, "zero weight untouched")
    eq(t2[3][1], -1, "negative weight untouched")
    eq(t2[2][1], 1.0, "max normalised to 1")
    eq(t2[4][1], 0.5, "other normalised")
    -- empty, or nothing usable: a no-op that rejects
    same({ nil }, lb.iwrr({})("x:1"))
    same({ nil }, lb.iwrr({ { 0, marker("Z") }, { -5, marker("N") } })("x:1"))
    -- fractional weights: cycles of 100 rounds by default
    local _, counts = run(lb.iwrr({ { 0.5, marker("A") }, { 0.25, marker("B") } }), 150)
    eq(counts.A, 100, "fractional A")
    eq(counts.B, 50, "fractional B")
    -- an explicit cycle size
    seq = run(lb.iwrr({ { 2, marker("A") }, { 1, marker("B") } }, 4), 12)
    eq(seq, "ABABAAABABAA", "cyclesize 4")
    -- a tiny weight still gets its turn once per cycle
    _, counts = run(lb.iwrr({ { 1000, marker("A") }, { 1, marker("B") } }), 1001)
    eq(counts.B, 1, "tiny weight")
    -- rebuilding from normalised weights (1, 0.333...) keeps the ratio
    -- approximately: 100 rounds, 100:33
    local t3 = { { 3, marker("A") }, { 1, marker("B") } }
    lb.iwrr(t3)
    _, counts = run(lb.iwrr(t3), 1330)
    eq(counts.A, 1000, "rebuilt A")
    eq(counts.B, 330, "rebuilt B")
end

function t.test_lb_with_actions()
    local b = lb.iwrr({ { 1, rule.redirect("127.0.0.2:") }, { 1, rule.redirect("127.0.0.3:", "socks5://p:1") } })
    same({ "127.0.0.2:80" }, b("svc.test:80"))
    same({ "127.0.0.3:80", "socks5://p:1" }, b("svc.test:80"))
end

-- ---- the decision pipeline ----

function t.test_no_tables_is_direct()
    scoped(function()
        same({ "a.test:80" }, decide.resolve("a.test:80"))
        same({ "10.0.0.1:80" }, decide.route("10.0.0.1:80"))
        same({ "[::1]:80" }, decide.route6("[::1]:80"))
        same({ "10.0.0.1:80" }, decide.resolve("10.0.0.1:80"))
    end)
end

function t.test_pipeline_resolve()
    scoped(function(set)
        set(_G, "redirect_name", {
            { match.exact("blocked.test:80"), rule.reject(), "blocked" },
            { match.domain("lan.test"), rule.redirect("127.0.0.1:"), "lan" },
            { match.host("alias.test"), rule.redirect("www.example.test:443", "socks5://p1:1080",
                "http://p2:8080") },
        })
        set(_G, "hosts", { ["router.test"] = "192.168.1.1", ["v6.test"] = "::1",
            ["name.test"] = "other.test", ["blocked.test"] = "10.0.0.1" })
        set(_G, "redirect", { { match.port(25), rule.reject(), "smtp" } })
        set(_G, "route", { { inet.subnet("192.168.0.0/16"), rule.proxy("socks5://gw:1080"), "home" } })
        set(_G, "route6", { { inet6.subnet("::1/128"), rule.direct(), "lo6" } })
        set(_G, "route_default", { rule.reject(), "default" })

        -- redirect_name first (before hosts)
        same({ nil }, decide.resolve("blocked.test:80"))
        same({ "127.0.0.1:8080" }, decide.resolve("x.lan.test:8080"))
        same({ "www.example.test:443", "http://p2:8080", "socks5://p1:1080" },
            decide.resolve("ALIAS.test:1"))
        -- hosts (case-insensitive), then the IPv4 pipeline (redirect, route)
        same({ "192.168.1.1:80", "socks5://gw:1080" }, decide.resolve("ROUTER.test:80"))
        same({ nil }, decide.resolve("router.test:25"))
        -- hosts then the IPv6 pipeline
        same({ "[::1]:22" }, decide.resolve("v6.test:22"))
        -- hosts to another name: the default
        same({ nil }, decide.resolve("name.test:80"))
        -- a name nothing knows: the default
        same({ nil }, decide.resolve("unknown.test:80"))
        -- address literals (HTTP proxy requests always come here)
        same({ "192.168.5.5:80", "socks5://gw:1080" }, decide.resolve("192.168.5.5:80"))
        same({ "[::1]:80" }, decide.resolve("[::1]:80"))
        -- tags are logged with the address at that stage
        local want = {
            '[blocked] "blocked.test:80"',
            '[lan] "x.lan.test:8080"',
            '[home] "192.168.1.1:80"',
            '[smtp] "192.168.1.1:25"',
            '[lo6] "[::1]:22"',
            '[default] "other.test:80"',
            '[default] "unknown.test:80"',
            '[home] "192.168.5.5:80"',
            '[lo6] "[::1]:80"',
        }
        eq(table.concat(events(), "|"), table.concat(want, "|"), "tags")
    end)
end

function t.test_pipeline_route()
    scoped(function(set)
        local seen = {}
        local spy = function(...)
            table.insert(seen, table.pack(...))
            return false
        end
        set(_G, "redirect", {
            { spy, rule.reject() },
            { match.exact("10.0.0.1:80"), rule.redirect("10.0.0.2:80"), "r" },
        })
        set(_G, "route", {
            { spy, rule.reject() },
            { inet.subnet("10.0.0.0/8"), rule.proxy("socks5://a:1", "socks5://b:2"), "ten" },
            { inet.subnet({ "172.16.0.0/12", "192.168.0.0/16" }), rule.reject(), "private" },
        })
        set(_G, "route_default", { rule.direct(), "default" })
        same({ "10.0.0.2:80" }, decide.route("10.0.0.1:80"))
        same({ "10.0.0.1:81", "socks5://b:2", "socks5://a:1" }, decide.route("10.0.0.1:81"))
        same({ nil }, decide.route("192.168.1.1:80"))
        same({ "8.8.8.8:53" }, decide.route("8.8.8.8:53"))
        -- redirect matchers get the address string, route matchers the
        -- integer address (one argument each)
        eq(seen[1].n, 1, "redirect args")
        eq(seen[1][1], "10.0.0.1:80", "redirect arg")
        eq(seen[2][1], "10.0.0.1:81", "redirect arg 2")
        eq(seen[3].n, 1, "route args")
        eq(seen[3][1], 0x0A000001, "route arg is the integer address")
        eq(math.type(seen[3][1]), "integer", "integer")
        eq(seen[5][1], 0xC0A80101, "route arg 192.168.1.1")
        -- functional matchers in route
        set(_G, "route", { { function(ip)
            if ip == 0x08080808 then
                return rule.proxy("socks5://dns:1"), "dns"
            end
        end } })
        same({ "8.8.8.8:53", "socks5://dns:1" }, decide.route("8.8.8.8:53"))
        same({ "8.8.4.4:53" }, decide.route("8.8.4.4:53"))
        assert(has_event('[dns] "8.8.8.8:53"'), "functional matcher tag")
    end)
end

function t.test_pipeline_route6()
    scoped(function(set)
        local seen = {}
        local spy = function(...)
            table.insert(seen, table.pack(...))
            return false
        end
        set(_G, "redirect6", {
            { spy, rule.reject() },
            { match.exact("[2001:db8::1]:80"), rule.redirect("[2001:db8::2]:80"), "r6" },
        })
        set(_G, "route6", {
            { spy, rule.reject() },
            { inet6.subnet("2001:db8::/32"), rule.proxy("socks5://doc:1"), "doc" },
            { inet6.subnet({ "fc00::/7", "fe80::/10" }), rule.reject(), "private6" },
        })
        set(_G, "route_default", { rule.proxy("socks5://default:1"), "default" })
        same({ "[2001:db8::2]:80" }, decide.route6("[2001:db8::1]:80"))
        same({ "[2001:db8::1]:81", "socks5://doc:1" }, decide.route6("[2001:db8::1]:81"))
        same({ nil }, decide.route6("[fe80::1]:80"))
        same({ "[2606:4700::1]:443", "socks5://default:1" }, decide.route6("[2606:4700::1]:443"))
        -- redirect6 gets the string, route6 gets hi, lo
        eq(seen[1][1], "[2001:db8::1]:80", "redirect6 arg")
        eq(seen[3].n, 2, "route6 gets two arguments")
        same({ 0x20010DB800000000, 1 }, seen[3][1], seen[3][2])
        -- the IPv4 tables are not consulted for IPv6
        set(_G, "route", { { match.any(), rule.reject() } })
        set(_G, "redirect", { { match.any(), rule.reject() } })
        same({ "[2001:db8::1]:81", "socks5://doc:1" }, decide.route6("[2001:db8::1]:81"))
        -- nor the IPv6 ones for IPv4
        set(_G, "route", nil)
        set(_G, "redirect", nil)
        set(_G, "route6", { { match.any(), rule.reject() } })
        set(_G, "redirect6", { { match.any(), rule.reject() } })
        same({ "10.0.0.1:1", "socks5://default:1" }, decide.route("10.0.0.1:1"))
    end)
end

function t.test_pipeline_first_match_wins_and_subchain()
    scoped(function(set)
        set(_G, "office", {
            { match.domain("printer.office.test"), rule.redirect("127.0.0.1:631"), "printer" },
            { match.domain("office.test"), rule.proxy("socks5://office:1"), "office" },
        })
        set(_G, "redirect_name", {
            { match.domain("x.office.test"), rule.reject(), "first" },
            { composite.subchain(_G, "office") },
            { match.any(), rule.direct(), "any" },
        })
        same({ nil }, decide.resolve("a.x.office.test:80"))
        same({ "127.0.0.1:631" }, decide.resolve("printer.office.test:9100"))
        same({ "y.office.test:80", "socks5://office:1" }, decide.resolve("y.office.test:80"))
        same({ "z.test:80" }, decide.resolve("z.test:80"))
        eq(table.concat(events(), "|"),
            '[first] "a.x.office.test:80"|[printer] "printer.office.test:9100"|'
            .. '[office] "y.office.test:80"|[any] "z.test:80"', "tags")
    end)
end

function t.test_route_default_forms()
    scoped(function(set)
        set(_G, "route_default", { rule.redirect("127.0.0.1:1") })
        same({ "127.0.0.1:1" }, decide.resolve("a.test:80"))
        eq(recent_events.len, 0, "no tag, no event")
        set(_G, "route_default", rule.proxy("socks5://p:1")) -- a bare action
        same({ "a.test:80", "socks5://p:1" }, decide.resolve("a.test:80"))
    end)
end

function t.test_pipeline_tables_are_live()
    scoped(function(set)
        local chain = { { match.domain("a.test"), rule.reject() } }
        set(_G, "redirect_name", chain)
        same({ nil }, decide.resolve("a.test:80"))
        -- changing the table in place counts at once
        chain[1] = { match.domain("a.test"), rule.redirect("127.0.0.1:") }
        same({ "127.0.0.1:80" }, decide.resolve("a.test:80"))
        -- replacing the global too
        set(_G, "redirect_name", nil)
        same({ "a.test:80" }, decide.resolve("a.test:80"))
    end)
end

-- Regression (issue 9, defect 3): a rule rejecting 127.0.0.0/8 was passed
-- by ::ffff:127.0.0.1 (SOCKS5 ATYP 4, HTTP CONNECT [::ffff:7f00:1], a name
-- holding the literal). IPv4-mapped addresses take the IPv4 pipeline.
function t.test_mapped_ipv4_routed_as_ipv4()
    scoped(function(set)
        set(_G, "route", {
            { inet.subnet("127.0.0.0/8"), rule.reject(), "lo" },
            { inet.subnet("10.0.0.0/8"), rule.proxy("socks5://ten:1"), "ten" },
        })
        set(_G, "route6", { { inet6.subnet("::/0"), rule.direct(), "any6" } })
        set(_G, "route_default", { rule.direct() })
        for _, a in ipairs({ "[::ffff:127.0.0.1]:80", "[::ffff:7f00:1]:80",
            "[::FFFF:127.1.2.3]:22", "[0:0:0:0:0:ffff:7f00:1]:80" }) do
            same({ nil }, decide.route6(a))
            same({ nil }, decide.resolve(a)) -- a name holding the literal
            same({ nil }, ruleset.route6(a))
        end
        assert(has_event('[lo] "127.0.0.1:80"'), "judged as the IPv4 address")
        -- the decision names the IPv4 address
        same({ "10.1.2.3:443", "socks5://ten:1" }, decide.route6("[::ffff:10.1.2.3]:443"))
        same({ "192.0.2.1:80" }, decide.route6("[::ffff:192.0.2.1]:80"))
        -- the IPv4 redirect table applies too, not redirect6
        set(_G, "redirect", { { match.host("192.0.2.1"), rule.redirect("10.0.0.9:") } })
        set(_G, "redirect6", { { match.any(), rule.reject() } })
        same({ "10.0.0.9:80" }, decide.route6("[::ffff:192.0.2.1]:80"))
        -- not mapped: still IPv6 (IPv4-compatible, NAT64, loopback)
        set(_G, "redirect6", nil)
        same({ "[::127.0.0.1]:80" }, decide.route6("[::127.0.0.1]:80"))
        same({ "[64:ff9b::7f00:1]:80" }, decide.route6("[64:ff9b::7f00:1]:80"))
        same({ "[::1]:80" }, decide.route6("[::1]:80"))
        -- rule.resolve on a mapped address or a mapped answer
        same({ nil }, rule.resolve()("[::ffff:127.0.0.1]:80"))
        set(await, "resolve", function() return "::ffff:127.0.0.2" end)
        same({ nil }, rule.resolve()("evil.test:80"))
        -- rule.redirect to a mapped address: a redirect is not a way around
        set(_G, "redirect_name", { { match.any(), rule.loopback("^.*:", "[::ffff:127.0.0.1]:") } })
        same({ nil }, decide.resolve("x.test:80"))
    end)
end

-- Names reach route_default unless a rule matches names: IP rules do not
-- see them. rule.resolve() is the resolve-then-route rule that makes them.
function t.test_resolve_then_route()
    scoped(function(set)
        local asked = {}
        set(await, "resolve", function(host)
            table.insert(asked, host)
            if host == "localhost" or host:endswith(".localhost") then
                return "127.0.0.1"
            elseif host == "six.test" then
                return "::1"
            elseif host == "ten.test" then
                return "10.1.1.1"
            end
            return nil
        end)
        set(_G, "route", {
            { inet.subnet("127.0.0.0/8"), rule.reject(), "lo" },
            { inet.subnet("10.0.0.0/8"), rule.proxy("socks5://ten:1"), "ten" },
        })
        set(_G, "route6", { { inet6.subnet("::1/128"), rule.reject(), "lo6" } })
        set(_G, "route_default", { rule.direct() })
        -- without it: the name goes to route_default, unseen by the IP rules
        same({ "localhost:80" }, decide.resolve("localhost:80"))
        eq(#asked, 0, "nothing resolved")
        -- as the last rule of redirect_name
        set(_G, "redirect_name", { { match.any(), rule.resolve(), "resolve" } })
        same({ nil }, decide.resolve("localhost:80"))
        same({ nil }, decide.resolve("a.localhost:80"))
        same({ nil }, decide.resolve("six.test:22"))
        same({ "10.1.1.1:80", "socks5://ten:1" }, decide.resolve("ten.test:80"))
        same({ nil }, decide.resolve("nx.test:80")) -- unresolvable: rejected
        same({ "192.0.2.7:80" }, decide.resolve("192.0.2.7:80"))
        -- _G.hosts is consulted first, without a lookup
        set(_G, "hosts", { ["alias.test"] = "127.0.0.5" })
        local n = #asked
        same({ nil }, rule.resolve()("ALIAS.test:80"))
        eq(#asked, n, "hosts answered")
        -- as route_default: resolved, judged by the IP rules, and what no
        -- IP rule matches goes direct to the resolved address (no loop)
        set(_G, "redirect_name", nil)
        set(_G, "hosts", nil)
        set(_G, "route_default", { rule.resolve(), "resolve" })
        same({ nil }, decide.resolve("localhost:80"))
        same({ "10.1.1.1:80", "socks5://ten:1" }, decide.resolve("ten.test:80"))
        set(await, "resolve", function() return "192.0.2.8" end)
        same({ "192.0.2.8:443" }, decide.resolve("www.example:443"))
        same({ "192.0.2.9:443" }, decide.route("192.0.2.9:443"))
        same({ nil }, decide.route("127.0.0.1:443"))
        -- and the depth count is back to zero
        same({ "192.0.2.8:1" }, decide.resolve("again.example:1"))
    end)
end

return t
