-- ruleset.lua: a complete ruleset built on libruleset.
--
--   neosocksd -l 127.0.0.1:1080 --http 127.0.0.1:8080 --auth-required \
--       -r ruleset.lua
--
-- What it shows:
--   * authentication against a table of secrets (with --auth-required)
--   * tags: decisions recorded in the event log (see ruleset.stats)
--   * a proxy chain to another neosocksd ("the peer", PEER below)
--   * failover: through the peer, else directly
--   * a sub-chain of rules kept in its own table (office_rules)
--   * "biglists": large lists that can be pushed in later (composite.maybe)
--   * a periodic tick feeding the request statistics, and ruleset.stats
--
-- The chunk gets "ruleset" when loaded with -r and "config" when loaded
-- as a boot configuration with -c (in builds that support -c); it returns
-- the ruleset, or the configuration table with the ruleset in it.
local mode = ...
local ruleset = require("libruleset")

-- The peer: a second neosocksd on loopback that this one can chain through.
local PEER = "socks5://127.0.2.1:1081"

-- ---- authentication (only checked with --auth-required) ----

-- user = "password", or user = true for any password
_G.secrets = {
    alice = "correct horse",
    guest = true,
}
-- For anything else, define ruleset.authenticate(addr, user, pass) and
-- return true to accept; it replaces the secrets table. For example, to
-- let guest reach only .lan names:
--
-- function ruleset.authenticate(addr, user, pass)
--     if user == "guest" then
--         return match.domain("lan")(addr)
--     end
--     local s = _G.secrets[user]
--     return s == true or s == pass
-- end

-- ---- actions of our own ----

-- Forward to 127.0.0.1 on the requested port: through the peer if it is
-- up, else directly. ruleset.failover dials each chain in turn and returns
-- true once one connected (the request is then committed), false if none
-- did (the request is refused).
local function failover_local(addr)
    local _, port = neosocksd.splithostport(addr)
    return ruleset.failover("127.0.0.1:" .. port, { { PEER }, {} })
end

-- ---- rules ----

-- a sub-chain: rules for the office, in a table of their own that can be
-- replaced at run time (e.g. over RPC) without touching redirect_name
_G.office_rules = {
    { match.domain("printer.office.internal"), rule.redirect("127.0.0.1:"), "printer" },
    { match.domain("office.internal"), rule.reject(), "office" },
}

-- requests for names
_G.redirect_name = {
    -- refused domains (and subdomains)
    { match.domain({ "ads.example", "tracker.example" }), rule.reject(), "blocked" },
    -- a regular expression (POSIX ERE; \d and friends are accepted)
    { match.regex([[^tmp\d+\.example:]]), rule.reject(), "tmp" },
    -- the peer's loopback: names under peer.internal are reached through
    -- the peer, which dials 127.0.0.1 on the requested port itself
    { match.domain("peer.internal"), rule.redirect("127.0.0.1:", PEER), "via-peer" },
    -- through the peer when it is up, else directly
    { match.domain("ha.internal"), failover_local, "failover" },
    -- names under .lan: this machine, same port
    { match.domain("lan"), rule.redirect("127.0.0.1:"), "lan" },
    -- the office rules
    { composite.subchain(_G, "office_rules") },
    -- a biglist of names, if one has been pushed in:
    --   _G.biglist_name = match.domain({ ... thousands of names ... })
    { composite.maybe(_G, "biglist_name"), rule.reject(), "biglist" },
}

-- static names; the address is then routed like any other
_G.hosts = {
    ["gateway.internal"] = "127.0.0.1",
}

-- IPv4 destinations (matchers get the address as an integer)
_G.route = {
    { inet.subnet("127.0.0.0/8"), rule.direct(), "loopback" },
    -- a biglist of subnets: _G.biglist = inet.subnet({ ... })
    { composite.maybe(_G, "biglist"), rule.reject(), "biglist" },
    { inet.subnet({ "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16" }), rule.reject(), "private" },
}

-- IPv6 destinations (matchers get the address as two integers)
_G.route6 = {
    { inet6.subnet("::1/128"), rule.direct(), "loopback" },
    { inet6.subnet({ "fc00::/7", "fe80::/10" }), rule.reject(), "private" },
}

-- everything else: directly
_G.route_default = { rule.direct(), "default" }

-- ---- statistics ----

-- ruleset.tick samples the request counter; ruleset.stats (the /stats
-- API) shows the recent events and a histogram of requests per minute
neosocksd.setinterval(60)

if mode == "config" then
    return {
        auth_required = true,
        ruleset = ruleset,
    }
end
return ruleset
