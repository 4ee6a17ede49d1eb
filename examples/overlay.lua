-- overlay.lua: daemons that find each other through RPC and route
-- "<service>.<peer>" through the peer that announced it.
--
-- Each daemon runs this ruleset with its own settings in the environment
-- (os.getenv reads the daemon's environment as it was at start):
--
--   OVERLAY_NAME      this peer's name                     "b"
--   OVERLAY_SOCKS     this daemon's SOCKS listener         "127.0.0.1:1082"
--   OVERLAY_SERVICES  its own services, name=addr,...      "web=127.0.0.1:8080"
--   OVERLAY_SEEDS     REST APIs of peers to ask, comma-separated
--   OVERLAY_INTERVAL  seconds between announcements (default 30)
--   OVERLAY_TTL       seconds a peer stays known without news (default 90)
--
-- Every OVERLAY_INTERVAL seconds the daemon calls rpc.overlay_hello on each
-- seed (await.rpcall to its REST API) with the peers it knows, and learns
-- the peers the seed knows: both sides gossip, so peers that never named
-- each other find each other through a third. A request for "web.b:80" through any daemon is sent to b's
-- SOCKS listener, and b sends it to its own "web" service; a peer not
-- heard from for OVERLAY_TTL seconds is forgotten and its names are
-- refused. Only the public API is used (libruleset, await.rpcall, rpc,
-- neosocksd.*, os.getenv, os.time), so the reference runs it too.
--
--   OVERLAY_NAME=a OVERLAY_SOCKS=127.0.0.1:1081 OVERLAY_SEEDS=127.0.0.1:9082 \
--     neosocksd -l 127.0.0.1:1081 --api 127.0.0.1:9081 -r overlay.lua
_G.libruleset = require("libruleset")

local function setting(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then
        return default
    end
    return v
end

local function split(s, sep)
    local out = {}
    for item in string.gmatch(s or "", "[^" .. sep .. "]+") do
        out[#out + 1] = item
    end
    return out
end

local overlay = {
    name = setting("OVERLAY_NAME", "self"),
    socks = setting("OVERLAY_SOCKS", nil),
    services = {},
    seeds = split(setting("OVERLAY_SEEDS", ""), ","),
    interval = tonumber(setting("OVERLAY_INTERVAL", "30")),
    ttl = tonumber(setting("OVERLAY_TTL", "90")),
}
for _, kv in ipairs(split(setting("OVERLAY_SERVICES", ""), ",")) do
    local k, v = kv:match("^([%w_-]+)=(.+)$")
    if k then
        overlay.services[k] = v
    end
end
_G.overlay = overlay

-- peers[name] = { socks = "host:port", seen = os.time() }, kept across
-- reloads
_G.overlay_peers = _G.overlay_peers or {}

local function learn(name, socks, seen)
    if type(name) ~= "string" or type(socks) ~= "string" or name == overlay.name then
        return
    end
    local known = _G.overlay_peers[name]
    if not known or known.seen < seen then
        if not known then
            printf("overlay: learned peer %q at %s", name, socks)
        end
        _G.overlay_peers[name] = { socks = socks, seen = seen }
    end
end

local function expire(now)
    for name, p in pairs(_G.overlay_peers) do
        if now - p.seen > overlay.ttl then
            printf("overlay: peer %q went away", name)
            _G.overlay_peers[name] = nil
        end
    end
end

-- What a peer answers: its name and everything it knows.
local function known(now)
    local t = { [overlay.name] = { socks = overlay.socks, seen = now } }
    for name, p in pairs(_G.overlay_peers) do
        t[name] = { socks = p.socks, seen = p.seen }
    end
    return t
end

-- what a table of peers from another daemon tells us (the sender itself
-- is fresh; what it relays keeps its age)
local function learn_all(sender, peers, now)
    if type(peers) ~= "table" then
        return
    end
    for pname, p in pairs(peers) do
        if type(p) == "table" then
            learn(pname, p.socks,
                pname == sender and now or math.min(tonumber(p.seen) or 0, now))
        end
    end
end

function rpc.overlay_hello(name, socks, peers)
    local now = os.time()
    learn(name, socks, now)
    learn_all(name, peers, now)
    return overlay.name, known(now)
end

local function announce()
    local now = os.time()
    for _, api in ipairs(overlay.seeds) do
        local ok, name, peers = await.rpcall({ api }, "overlay_hello",
            overlay.name, overlay.socks, known(now))
        if ok then
            learn_all(name, peers, now)
        end
    end
    expire(os.time())
end

-- "<service>.<peer>:port": ours, through the peer, or refused
local function overlay_route(addr)
    local host, port = neosocksd.splithostport(addr)
    local service, peer = host:match("^([%w_-]+)%.([%w_-]+)$")
    if not peer then
        return nil
    end
    if peer == overlay.name then
        return overlay.services[service]
    end
    local p = _G.overlay_peers[peer]
    if not p then
        return nil
    end
    return addr, "socks5://" .. p.socks
end

_G.redirect_name = {
    { match.any(), overlay_route },
}
_G.route_default = { rule.reject(), "not in the overlay" }

local ruleset = setmetatable({}, {
    __index = function(_, k)
        return _G.libruleset[k]
    end,
})

function ruleset.stats()
    local names = {}
    for name in pairs(_G.overlay_peers) do
        names[#names + 1] = name
    end
    table.sort(names)
    return string.format("overlay %s: peers %s", overlay.name, table.concat(names, ","))
end

-- one announcing loop, even across reloads
if not _G.overlay_running then
    _G.overlay_running = true
    async(function()
        while true do
            local ok, err = pcall(announce)
            if not ok then
                logf("overlay: %s", err)
            end
            await.sleep(overlay.interval)
        end
    end)
end

return ruleset
