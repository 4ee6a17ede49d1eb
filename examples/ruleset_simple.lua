-- ruleset_simple.lua: a ruleset made of tables only.
--
--   neosocksd -l 127.0.0.1:1080 --http 127.0.0.1:8080 -r ruleset_simple.lua
--
-- libruleset turns the tables below into the ruleset callbacks. Each
-- request goes through them in this order (the first matching rule wins):
--
--   a name (SOCKS4A; SOCKS5 and HTTP CONNECT with a name):
--       redirect_name -> hosts -> (as an address: redirect -> route)
--       -> route_default
--   an IPv4 address:   redirect  -> route  -> route_default
--   an IPv6 address:   redirect6 -> route6 -> route_default
--
-- A rule is { matcher, action [, tag] }; a tag records the decision in
-- the event log (ruleset.stats) and, with --loglevel 6, in the log.
-- Actions return the address to dial and the proxies to go through.
local ruleset = require("libruleset")

-- Requests for names.
_G.redirect_name = {
    -- refuse these domains and their subdomains
    { match.domain({ "ads.example", "tracker.example" }), rule.reject(), "blocked" },
    -- every name under .lan is served by this machine, on the same port
    -- ("127.0.0.1:" keeps the requested port)
    { match.domain("lan"), rule.redirect("127.0.0.1:"), "lan" },
    -- one exact name and port to a fixed address
    { match.exact("mail.example:25"), rule.redirect("127.0.0.1:2525"), "mail" },
}

-- Static names, looked up case-insensitively after redirect_name. The
-- address is then routed like any other address (the tables below).
_G.hosts = {
    ["localhost"] = "127.0.0.1",
    ["ip6-localhost"] = "::1",
    ["router.home"] = "192.168.1.1",
}

-- IPv4 destinations (matchers get the address as an integer).
_G.route = {
    { inet.subnet("127.0.0.0/8"), rule.direct(), "loopback" },
    { inet.subnet({ "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16" }), rule.reject(), "private" },
}

-- IPv6 destinations (matchers get the address as two integers).
_G.route6 = {
    { inet6.subnet("::1/128"), rule.direct(), "loopback" },
    { inet6.subnet({ "fc00::/7", "fe80::/10" }), rule.reject(), "private" },
}

-- Everything else. Here: refuse. To let everything else through instead,
-- use { rule.direct() }, or { rule.proxy("socks5://127.0.0.1:9050") } to
-- send it through another proxy.
_G.route_default = { rule.reject(), "default" }

return ruleset
