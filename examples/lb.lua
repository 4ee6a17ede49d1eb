-- lb.lua: a TCP load balancer with interleaved weighted round robin.
--
--   neosocksd -l 127.0.0.1:1080 --http 127.0.0.1:8080 -r lb.lua
--
-- Clients ask the proxy for "lb.internal:<port>" (SOCKS5 with a name,
-- SOCKS4A or HTTP CONNECT); each connection goes to the next backend, on
-- the same port, in proportion to the backends' weights. Anything else is
-- refused.
--
-- The backends can be changed while the daemon runs, from another
-- neosocksd (await.rpcall) or the REST API (/ruleset/rpcall):
--   rpc.set_weight(i, weight)         weight <= 0 takes backend i out
--   rpc.set_backends({ {addr, weight}, ... })
--   rpc.get_backends()                -> the list
local ruleset = require("libruleset")

-- { address, weight }: an address ending in ':' keeps the requested port;
-- weights are relative (3 and 1: three connections to the first for each
-- one to the second). Kept across reloads (SIGHUP).
_G.backends = _G.backends or {
    { "127.0.0.2:", 3 },
    { "127.0.0.3:", 1 },
}

-- the balancer is rebuilt from the list whenever it changes
local function rebuild()
    local entries = {}
    for i, b in ipairs(_G.backends) do
        entries[i] = { b[2], rule.redirect(b[1]) }
    end
    _G.balancer = lb.iwrr(entries)
    evlogf("backends: %d, balancer rebuilt", #_G.backends)
end

local function check_backend(b)
    assert(type(b) == "table" and type(b[1]) == "string", "backend: { address, weight }")
    assert(type(b[2]) == "number", "backend weight must be a number")
    neosocksd.splithostport(b[1]:endswith(":") and b[1] .. "0" or b[1]) -- raises if invalid
end

function rpc.set_weight(i, weight)
    local b = _G.backends[i]
    assert(b, "no such backend")
    check_backend({ b[1], weight })
    b[2] = weight
    rebuild()
    return true
end

function rpc.set_backends(list)
    assert(type(list) == "table", "a list of { address, weight }")
    for _, b in ipairs(list) do
        check_backend(b)
    end
    _G.backends = list
    rebuild()
    return true
end

function rpc.get_backends()
    return _G.backends
end

rebuild()

_G.redirect_name = {
    -- rule.maybe looks _G.balancer up on each request, so a rebuilt
    -- balancer takes over at once
    { match.domain("lb.internal"), rule.maybe(_G, "balancer") },
}
_G.route_default = { rule.reject(), "refused" }

return ruleset
