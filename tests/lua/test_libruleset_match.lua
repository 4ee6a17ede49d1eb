-- libruleset: matchers (inet, inet6, match.*, regex.compat, composite.*).
-- Runs inside the daemon (tests/lua/runner.lua).
require("libruleset")
local t = {}

-- ---- helpers ----

local check = require("lrcheck")
local show, eq, raises = check.show, check.eq, check.raises

-- m must accept every address in yes and refuse every one in no
local function check(m, yes, no, what)
    for _, a in ipairs(yes) do
        if not m(a) then
            error(string.format("%s: %q should match", what or "matcher", a), 2)
        end
    end
    for _, a in ipairs(no) do
        if m(a) then
            error(string.format("%s: %q should not match", what or "matcher", a), 2)
        end
    end
end

local ip4 = neosocksd.parse_ipv4
local function ip6(s)
    return table.pack(neosocksd.parse_ipv6(s))
end

-- ---- inet / inet6 ----

function t.test_inet_subnet_single()
    local m = inet.subnet("192.168.0.0/16")
    assert(m(ip4("192.168.0.0")), "first")
    assert(m(ip4("192.168.255.255")), "last")
    assert(m(ip4("192.168.1.2")), "inside")
    assert(not m(ip4("192.167.255.255")), "just below")
    assert(not m(ip4("192.169.0.0")), "just above")
    local host = inet.subnet("10.1.2.3/32")
    assert(host(ip4("10.1.2.3")))
    assert(not host(ip4("10.1.2.4")))
    local all = inet.subnet("0.0.0.0/0")
    assert(all(ip4("0.0.0.0")) and all(ip4("255.255.255.255")), "/0")
    local odd = inet.subnet("172.16.0.0/12")
    assert(odd(ip4("172.31.255.255")), "/12 last")
    assert(not odd(ip4("172.32.0.0")), "/12 above")
    assert(not odd(ip4("172.15.255.255")), "/12 below")
    raises("unaligned", inet.subnet, "172.17.0.0/12")
    raises("prefix", inet.subnet, "10.0.0.0/40")
end

function t.test_inet_subnet_table()
    local m = inet.subnet({ "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.1/32",
        "100.64.0.0/10", "192.168.1.0/24" })
    for _, a in ipairs({ "10.0.0.0", "10.255.255.255", "172.16.0.1", "172.31.0.1", "192.168.3.4",
        "127.0.0.1", "100.64.0.0", "100.127.255.255", "192.168.1.1" }) do
        assert(m(ip4(a)), a .. " should match")
    end
    for _, a in ipairs({ "11.0.0.0", "9.255.255.255", "172.32.0.0", "192.169.0.0", "127.0.0.2",
        "100.128.0.0", "8.8.8.8", "0.0.0.0", "255.255.255.255" }) do
        assert(not m(ip4(a)), a .. " should not match")
    end
    local none = inet.subnet({})
    assert(not none(ip4("1.2.3.4")), "empty table")
    raises("unaligned", inet.subnet, { "10.0.0.0/8", "10.0.0.1/8" })
end

function t.test_inet6_subnet_single()
    local m = inet6.subnet("2001:db8::/32")
    assert(m(table.unpack(ip6("2001:db8::"))), "first")
    assert(m(table.unpack(ip6("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"))), "last")
    assert(not m(table.unpack(ip6("2001:db9::"))), "above")
    assert(not m(table.unpack(ip6("2001:db7:ffff::"))), "below")
    local lo = inet6.subnet("::1/128")
    assert(lo(table.unpack(ip6("::1"))))
    assert(not lo(table.unpack(ip6("::2"))))
    assert(not lo(table.unpack(ip6("1::1"))))
    -- a prefix longer than 64 bits
    local p96 = inet6.subnet("64:ff9b::/96")
    assert(p96(table.unpack(ip6("64:ff9b::192.0.2.1"))), "/96")
    assert(not p96(table.unpack(ip6("64:ff9b::1:0:0"))), "/96 above")
    local ula = inet6.subnet("fc00::/7")
    assert(ula(table.unpack(ip6("fd12:3456::1"))), "fd inside fc00::/7")
    assert(not ula(table.unpack(ip6("fe00::1"))), "fe outside fc00::/7")
    local all = inet6.subnet("::/0")
    assert(all(table.unpack(ip6("ffff::"))) and all(0, 0), "::/0")
    raises("unaligned", inet6.subnet, "2001:db8::1/32")
end

function t.test_inet6_subnet_table()
    local m = inet6.subnet({ "::1/128", "fe80::/10", "fc00::/7", "2001:db8:1:2::/64",
        "2001:db8:1:3:8000::/65", "64:ff9b::/96" })
    for _, a in ipairs({ "::1", "fe80::1", "febf:ffff::1", "fd00::", "2001:db8:1:2::ffff",
        "2001:db8:1:3:8000::1", "2001:db8:1:3:ffff:ffff:ffff:ffff", "64:ff9b::808:808" }) do
        assert(m(table.unpack(ip6(a))), a .. " should match")
    end
    for _, a in ipairs({ "::2", "::", "fec0::1", "2001:db8:1:1::1", "2001:db8:1:3::1",
        "2001:db8:1:3:7fff:ffff:ffff:ffff", "64:ff9b::1:0:0", "2001:4860::8888" }) do
        assert(not m(table.unpack(ip6(a))), a .. " should not match")
    end
end

-- ---- match.* ----

function t.test_match_any()
    local m = match.any()
    assert(m("x:1") and m() and m(1, 2), "any")
end

function t.test_match_exact()
    local m = match.exact("Example.COM:443")
    check(m, { "example.com:443", "EXAMPLE.com:443" },
        { "example.com:80", "www.example.com:443", "example.com:4430", "example.com" }, "exact")
    local ms = match.exact({ "a.test:80", "[::1]:22", "10.0.0.1:53" })
    check(ms, { "a.test:80", "A.TEST:80", "[::1]:22", "10.0.0.1:53" },
        { "a.test:81", "b.test:80", "[::2]:22", "10.0.0.1:54" }, "exact table")
    raises("invalid address", match.exact, "no-port")
    raises("invalid address", match.exact, { "ok.test:1", "bad" })
end

function t.test_match_host()
    local m = match.host("Example.com")
    check(m, { "example.com:80", "EXAMPLE.COM:443" },
        { "www.example.com:80", "example.org:80", "example.co:80" }, "host")
    local ms = match.host({ "a.test", "::1", "10.0.0.1" })
    check(ms, { "a.test:1", "[::1]:80", "10.0.0.1:80" }, { "b.test:1", "[::2]:80", "10.0.0.2:80" },
        "host table")
    -- not an address at all
    eq(m("garbage"), false, "invalid address")
end

function t.test_match_port()
    check(match.port(443), { "a:443", "[::1]:443" }, { "a:80", "a:4430", "a:44" }, "single")
    check(match.port("8080"), { "a:8080" }, { "a:80" }, "string port")
    check(match.port(8000, 8999), { "a:8000", "a:8500", "a:8999" }, { "a:7999", "a:9000", "a:80" },
        "range")
    check(match.port({ 80, 443, "8443" }), { "a:80", "a:443", "a:8443" }, { "a:8080", "a:1" },
        "set")
    eq(match.port(80)("garbage"), false, "invalid address")
end

function t.test_match_domain_single()
    for _, spelling in ipairs({ "example.com", ".example.com", "EXAMPLE.com" }) do
        check(match.domain(spelling),
            { "example.com:80", "www.example.com:443", "a.b.EXAMPLE.COM:1", "example.com.:80" },
            { "example.org:80", "badexample.com:80", "example.com.evil:80", "com:80",
                "xexample.com:80", "10.0.0.1:80" }, "domain " .. spelling)
    end
    check(match.domain("com"), { "example.com:80", "com:1" }, { "example.org:80" }, "tld")
    eq(match.domain("example.com")("garbage"), false, "invalid address")
end

function t.test_match_domain_table()
    local m = match.domain({ "example.com", ".Example.ORG", "deep.sub.test", "sub.test",
        "www.net", "net.www.local" })
    check(m, { "example.com:80", "a.example.com:80", "EXAMPLE.org:443", "x.y.example.org:1",
            "sub.test:1", "deep.sub.test:1", "other.sub.test:1", "www.net:1", "a.www.net:1",
            "net.www.local:1" },
        { "example.net:80", "badexample.com:80", "test:1", "sub.test.evil:1", "net:1",
            "www.local:1", "local:1", "x.net:1" }, "domain table")
    -- a subdomain listed before its parent does not narrow the parent
    local m2 = match.domain({ "a.b.c", "b.c" })
    check(m2, { "b.c:1", "x.b.c:1", "a.b.c:1" }, { "c:1" }, "order")
    eq(match.domain({})("a.b:1"), false, "empty table")
end

function t.test_match_domaintree()
    local tree = { com = { example = true, test = { www = true } }, org = true }
    local m = match.domaintree(tree)
    check(m, { "example.com:80", "WWW.Example.Com:443", "www.test.com:1", "a.www.test.com:1",
            "anything.org:1", "org:1" },
        { "test.com:1", "com:1", "other.com:1", "example.net:1" }, "domaintree")
    -- the tree is used as given (only the host is lowercased): upper-case
    -- labels in the tree never match
    local upper = match.domaintree({ com = { Example = true } })
    eq(upper("example.com:80"), false, "tree keys are not lowercased")
    -- the tree is live: later changes count
    tree.net = true
    assert(m("example.net:1"), "live tree")
    tree.net = nil
end

function t.test_match_pattern()
    local m = match.pattern("^[^:]+%.example%.com:443$")
    check(m, { "www.example.com:443" }, { "www.example.com:80", "example.com:443",
        "www.example.com:4430" }, "pattern")
    local ms = match.pattern({ "^10%.", ":22$" })
    check(ms, { "10.0.0.1:80", "host:22" }, { "110.0.0.1:80", "host:220" }, "pattern table")
    -- Lua patterns are case-sensitive
    eq(m("WWW.EXAMPLE.COM:443"), false, "case-sensitive")
end

function t.test_regex_compat()
    eq(regex.compat([[\d+]]), "[0-9]+", "\\d")
    eq(regex.compat([[\D]]), "[^0-9]", "\\D")
    eq(regex.compat([[\w]]), "[0-9A-Za-z_]", "\\w")
    eq(regex.compat([[\W]]), "[^0-9A-Za-z_]", "\\W")
    eq(regex.compat([[\s]]), "[[:space:]]", "\\s")
    eq(regex.compat([[\S]]), "[^[:space:]]", "\\S")
    eq(regex.compat([[a\.b]]), [[a\.b]], "other escapes are kept")
    eq(regex.compat([[\\d]]), [[\\d]], "an escaped backslash")
    eq(regex.compat([[[\d.]+]]), "[0-9.]+", "inside a bracket")
    eq(regex.compat("[^\\w-]"), "[^0-9A-Za-z_-]", "inside a negated bracket")
    eq(regex.compat("[]\\d]"), "[]0-9]", "leading ] in a bracket")
    eq(regex.compat("[[:alpha:]\\d]x\\d"), "[[:alpha:]0-9]x[0-9]", "class inside a bracket")
    eq(regex.compat("plain"), "plain", "nothing to do")
    eq(regex.compat(""), "", "empty")
    -- the result compiles and means what the Perl-style pattern meant
    local re = regex.compile(regex.compat([[^\w+\s\d{2}$]]))
    assert(re:find("abc_1 42"), "compat regex matches")
    assert(not re:find("abc 4x"), "compat regex refuses")
end

function t.test_match_regex()
    local m = match.regex([[^(www\.)?example\.(com|org):\d+$]])
    check(m, { "example.com:80", "www.example.org:443" },
        { "www.example.net:80", "example.com:", "xexample.com:80" }, "regex")
    local ms = match.regex({ [[^10\.]], [[:(22|23)$]] })
    check(ms, { "10.1.1.1:80", "h:22", "h:23" }, { "110.1.1.1:80", "h:24" }, "regex table")
    -- a single bad pattern raises
    raises("", match.regex, "a(")
    -- in a table, bad patterns are skipped and logged
    local saved_print = print
    local printed = {}
    _G.print = function(s) printed[#printed + 1] = s end
    local ok, mb = pcall(match.regex, { "a(", [[\d{3}]], "[z" })
    _G.print = saved_print
    assert(ok, mb)
    check(mb, { "x:123" }, { "x:12", "a(:1" }, "regex table with bad patterns")
    eq(#printed, 2, "two warnings")
    assert(printed[1]:find("a(", 1, true), printed[1])
    eq(recent_events:get(1).msg:match("^match.regex"), "match.regex", "event logged")
end

function t.test_address_matchers_refuse_other_conventions()
    -- an address matcher put in the route table gets an integer: no match,
    -- no error
    local ip = neosocksd.parse_ipv4("10.0.0.1")
    for name, m in pairs({
        exact = match.exact("10.0.0.1:80"), host = match.host("10.0.0.1"),
        port = match.port(80), domain = match.domain("example.com"),
        domains = match.domain({ "example.com" }), tree = match.domaintree({ com = true }),
        pattern = match.pattern("."), regex = match.regex("."),
    }) do
        eq(m(ip), false, name)
        eq(m(nil), false, name .. " (nil)")
    end
end

-- ---- composite.* ----

function t.test_composite()
    local yes, no = match.any(), composite.inverse(match.any())
    eq(no("x:1"), false, "inverse")
    eq(composite.inverse(no)("x:1"), true, "double inverse")
    eq(composite.anyof({ no, no, yes })("x:1"), true, "anyof")
    eq(composite.anyof({ no, no })("x:1"), false, "anyof none")
    eq(composite.anyof({})("x:1"), false, "anyof empty")
    eq(composite.allof({ yes, yes })("x:1"), true, "allof")
    eq(composite.allof({ yes, no })("x:1"), false, "allof one fails")
    eq(composite.allof({})("x:1"), true, "allof empty")
    -- arguments pass through: IPv6 matchers take two
    local v6 = composite.anyof({ inet6.subnet("::1/128"), inet6.subnet("fe80::/10") })
    assert(v6(neosocksd.parse_ipv6("fe80::1")), "anyof with hi, lo")
    assert(not composite.inverse(v6)(neosocksd.parse_ipv6("fe80::1")), "inverse with hi, lo")
    -- short-circuit
    local calls = 0
    local counted = function() calls = calls + 1 return true end
    composite.anyof({ yes, counted })("x:1")
    eq(calls, 0, "anyof stops at the first match")
    composite.allof({ no, counted })("x:1")
    eq(calls, 0, "allof stops at the first failure")
    -- combined with other matchers
    local m = composite.allof({ match.domain("example.com"), composite.inverse(match.port(80)) })
    check(m, { "example.com:443" }, { "example.com:80", "example.org:443" }, "combined")
end

function t.test_composite_maybe()
    local holder = {}
    local m = composite.maybe(holder, "biglist")
    eq(m("a.test:1"), false, "unset")
    holder.biglist = match.domain({ "a.test" })
    eq(m("a.test:1"), true, "set later")
    eq(m("b.test:1"), false, "set later, no match")
    holder.biglist = nil
    eq(m("a.test:1"), false, "unset again")
    -- on _G, as the examples use it
    _G.test_biglist = inet.subnet({ "10.0.0.0/8" })
    local g = composite.maybe(_G, "test_biglist")
    assert(g(neosocksd.parse_ipv4("10.1.1.1")), "biglist on _G")
    _G.test_biglist = nil
    eq(g(neosocksd.parse_ipv4("10.1.1.1")), false, "biglist gone")
end

function t.test_composite_subchain()
    local direct, reject = rule.direct(), rule.reject()
    local chains = {
        inner = {
            { match.domain("a.test"), direct, "a" },
            { match.domain("b.test"), reject },
        },
    }
    local sc = composite.subchain(chains, "inner")
    local action, tag = sc("x.a.test:1")
    eq(action, direct, "first rule's action")
    eq(tag, "a", "first rule's tag")
    action, tag = sc("b.test:1")
    eq(action, reject, "second rule's action")
    eq(tag, nil, "no tag")
    eq(sc("c.test:1"), nil, "no match")
    -- late-bound: replacing the chain takes effect
    chains.inner = { { match.any(), reject, "all" } }
    action, tag = sc("c.test:1")
    eq(action, reject, "replaced chain")
    eq(tag, "all", "replaced chain tag")
    chains.inner = nil
    eq(sc("c.test:1"), nil, "missing chain")
    -- nested subchains and functional matchers inside
    chains.inner = { { composite.subchain(chains, "deeper") } }
    chains.deeper = { { match.port(22), direct, "ssh" } }
    action, tag = sc("h:22")
    eq(action, direct, "nested")
    eq(tag, "ssh", "nested tag")
    -- with the route convention (integer address)
    chains.ip = { { inet.subnet("10.0.0.0/8"), reject, "ten" } }
    action, tag = composite.subchain(chains, "ip")(neosocksd.parse_ipv4("10.2.3.4"))
    eq(action, reject, "integer address")
    eq(tag, "ten", "integer address tag")
end

return t
