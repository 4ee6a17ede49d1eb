-- libruleset.lua: the ruleset library shipped with neosocksd.
--
-- Load it from a ruleset with
--
--     local ruleset = require("libruleset")
--     _G.redirect_name = { ... }      -- and the other routing tables
--     return ruleset
--
-- It implements the public Lua API of the reference neosocksd's libruleset
-- (names, argument conventions and return values), written for this
-- daemon from that API's description. The file is embedded in the binary
-- (mk/embed.sh); a libruleset.lua in the ruleset's directory or on
-- --lua-path takes precedence.
--
-- Contents, in order:
--   1. small utilities         printf, format_timestamp, package.replace,
--                              string.startswith/endswith, table.get
--   2. containers              list, rlist
--   3. logging                 log, logf, evlog, evlogf, recent_events
--   4. addresses               parse_cidr, parse_cidr6, inet, inet6
--   5. asynchronous helpers    async (futures), await.callback
--   6. remote calls            unmarshal, rpc, msgh, await.rpcall,
--                              neosocksd.sendmsg
--   7. matchers                match, regex.compat, composite
--   8. actions                 rule, lb
--   9. the decision pipeline   ruleset.decide.*
--  10. callbacks               ruleset.resolve/route/route6 (authentication
--                              and forwarding), failover, tick, stats
--
-- Everything the user may replace at run time (the routing tables, secrets,
-- marshal, await.*, neosocksd.invoke, _G.ruleset.authenticate) is looked up
-- when it is used, never cached.
--
-- Argument conventions of rule tables (a rule is {matcher, action [, tag]}
-- or {functional_matcher}):
--   redirect_name, redirect, redirect6   matcher(addr)   "host:port" string
--   route                                matcher(ip)     IPv4 as an integer
--   route6                               matcher(hi, lo) IPv6 as 2 integers
--   every action                         action(addr)    -> addr [, proxyN,
--                                                         ..., proxy1]
-- A functional matcher returns action, tag (or nil for "no match").

local strformat = string.format
local tconcat, tinsert, tpack, tunpack = table.concat, table.insert, table.pack, table.unpack
local splithostport = neosocksd.splithostport
local parse_ipv4, parse_ipv6 = neosocksd.parse_ipv4, neosocksd.parse_ipv6

-- the table this module returns (it becomes _G.ruleset in most rulesets)
local ruleset = {}

-- ---------------------------------------------------------------------
-- 1. Small utilities
-- ---------------------------------------------------------------------

-- neosocksd.config() as it was when the library was loaded
_G.config = neosocksd.config()

function _G.printf(fmt, ...)
    return print(strformat(fmt, ...))
end

-- "YYYY-MM-DDTHH:MM:SS+hh:mm" in local time (RFC 3339, fixed length);
-- fractions of a second are dropped; t defaults to the current time.
function _G.format_timestamp(t)
    t = math.floor(t or os.time())
    local zone = os.date("%z", t) -- "+hhmm"
    if not zone:match("^[+-]%d%d%d%d$") then
        zone = "+0000"
    end
    return os.date("%Y-%m-%dT%H:%M:%S", t) .. zone:sub(1, 3) .. ":" .. zone:sub(4, 5)
end

-- package.replace(modname, chunk): load a new version of a module.
-- chunk is a function (or Lua source text) called with modname; its result
-- (true when it returns nothing) becomes package.loaded[modname]. A global
-- of the same name is updated only when it was the previously loaded
-- module, so unrelated globals are never clobbered. Returns the module.
function package.replace(modname, chunk)
    if type(chunk) == "string" then
        chunk = assert(load(chunk, "@" .. modname .. ".lua", "t"))
    end
    local old = package.loaded[modname]
    local module = chunk(modname)
    if module == nil then
        module = true
    end
    package.loaded[modname] = module
    if old ~= nil and rawget(_G, modname) == old then
        _G[modname] = module
    end
    return module
end

function string.startswith(s, sub)
    return s:sub(1, #sub) == sub
end

function string.endswith(s, sub)
    return #sub == 0 or s:sub(-#sub) == sub
end

-- table.get(t, k1, k2, ...) == t[k1][k2]..., or nil as soon as a level is
-- missing (not a table); table.get(t) is t.
function table.get(t, ...)
    for i = 1, select("#", ...) do
        if type(t) ~= "table" then
            return nil
        end
        t = t[(select(i, ...))]
    end
    return t
end

-- ---------------------------------------------------------------------
-- 2. Containers
-- ---------------------------------------------------------------------

-- list: a sequence with methods. The metatable carries __name so that
-- list:check recognises lists made by an earlier load of this library.
local list = {
    iter = ipairs,
    insert = table.insert,
    remove = table.remove,
    unpack = table.unpack,
    concat = table.concat,
}
local list_mt = { __name = "list", __index = list }

function list:new(t)
    return setmetatable(t or {}, list_mt)
end

-- t if it is a list, else nil
function list:check(t)
    local mt = getmetatable(t)
    if type(t) == "table" and type(mt) == "table" and rawget(mt, "__name") == "list" then
        return setmetatable(t, list_mt)
    end
    return nil
end

-- a plain table (no metatable) with the same elements
function list:totable()
    return table.move(self, 1, #self, 1, {})
end

function list:insertf(fmt, ...)
    tinsert(self, strformat(fmt, ...))
    return self
end

-- append every element of the sequence t
function list:append(t)
    return table.move(t, 1, #t, #self + 1, self)
end

-- replace each element v by f(v), in place
function list:map(f)
    for i = 1, #self do
        self[i] = f(self[i])
    end
    return self
end

function list:reverse()
    local i, j = 1, #self
    while i < j do
        self[i], self[j] = self[j], self[i]
        i, j = i + 1, j - 1
    end
    return self
end

function list:sort(...)
    table.sort(self, ...)
    return self
end

_G.list = list

-- rlist: a ring buffer of at most cap elements. Fields: pos (slot of the
-- newest element), len (number of elements), cap. get(1) is the newest
-- element, get(len) (or get(-1)) the oldest.
local rlist = {}
local rlist_mt = {
    __name = "rlist",
    __index = rlist,
    __len = function(self)
        return self.len
    end,
}

-- rlist:new(cap [, t]): an empty ring, then the elements of the sequence t
-- pushed in order (so t's last element is the newest).
function rlist:new(cap, t)
    cap = math.tointeger(cap)
    assert(cap and cap > 0, "rlist: capacity must be a positive integer")
    local r = setmetatable({ pos = 0, len = 0, cap = cap }, rlist_mt)
    if t ~= nil then
        for _, v in ipairs(t) do
            r:push(v)
        end
    end
    return r
end

-- t if it is a ring (also one made by an earlier load of this library),
-- else nil
function rlist:check(t)
    local mt = getmetatable(t)
    if type(t) == "table" and type(mt) == "table" and rawget(mt, "__name") == "rlist" then
        return setmetatable(t, rlist_mt)
    end
    return nil
end

function rlist:push(v)
    local pos = self.pos % self.cap + 1
    self[pos] = v
    self.pos = pos
    if self.len < self.cap then
        self.len = self.len + 1
    end
    return self
end

-- the i-th newest element (1 = newest); negative i counts from the oldest
-- (-1 = oldest); nil out of range
function rlist:get(i)
    local len = self.len
    if i < 0 then
        i = len + 1 + i
    end
    if i < 1 or i > len then
        return nil
    end
    return self[(self.pos - i) % self.cap + 1]
end

-- iterator step: i+1 and its element, or nil at the end
function rlist:next(i)
    i = i + 1
    if i > self.len then
        return nil
    end
    return i, self:get(i)
end

-- for i, v in r:iter() do ... end  -- newest first
function rlist:iter()
    return rlist.next, self, 0
end

_G.rlist = rlist

-- ---------------------------------------------------------------------
-- 3. Logging
-- ---------------------------------------------------------------------

-- the event log shown by ruleset.stats; kept across reloads
_G.recent_events = rlist:check(_G.recent_events) or rlist:new(100)
if _G.RECENT_EVENTS_STATS == nil then
    _G.RECENT_EVENTS_STATS = 10
end

-- where(n): "file:line" of the n-th frame above where() (1: its caller).
-- debug.getinfo is not available in the sandbox: read the traceback.
local function where(level)
    local tb = debug.traceback("", level + 1)
    local src, line = tb:match("\n\t([^\n]-):(%d+):")
    if src == nil then
        return "?:0"
    end
    return src .. ":" .. line
end

local function message(...)
    local n = select("#", ...)
    if n == 1 then
        return tostring((...))
    end
    local t = {}
    for i = 1, n do
        t[i] = tostring((select(i, ...)))
    end
    return tconcat(t, "\t")
end

local function now()
    return neosocksd.now()
end

local function verbose()
    local c = _G.config
    return type(c) == "table" and (tonumber(c.loglevel) or 0) >= 6
end

-- print "D <timestamp> <file>:<line> <msg>" (print goes to the daemon's
-- log); the position is that of the level-th frame above emit (1: its
-- caller, 2: the caller of log/logf/evlog/evlogf)
local function emit(level, msg)
    print(strformat("D %s %s %s", format_timestamp(now()), where(level + 1), msg))
end

local function event(msg)
    local events = _G.recent_events
    if rlist:check(events) == nil then
        return
    end
    local newest = events:get(1)
    if type(newest) == "table" and newest.msg == msg then
        newest.count = (newest.count or 1) + 1
        newest.time = now()
        return
    end
    events:push({ time = now(), msg = msg, count = 1 })
end

function _G.log(...)
    if verbose() then
        emit(2, message(...))
    end
end

function _G.logf(fmt, ...)
    if verbose() then
        emit(2, strformat(fmt, ...))
    end
end

-- as log, and record the message in recent_events (always)
function _G.evlog(...)
    local msg = message(...)
    event(msg)
    if verbose() then
        emit(2, msg)
    end
end

function _G.evlogf(fmt, ...)
    local msg = strformat(fmt, ...)
    event(msg)
    if verbose() then
        emit(2, msg)
    end
end

-- ---------------------------------------------------------------------
-- 4. Addresses
-- ---------------------------------------------------------------------

local function cidr_prefix(s, bits, what)
    local addr, n = s:match("^([^/]+)/(%d+)$")
    if addr == nil then
        if s:find("/", 1, true) then
            error(strformat("%s: invalid prefix length in %q", what, s), 3)
        end
        return s, bits -- a single address
    end
    n = math.tointeger(tonumber(n))
    if n == nil or n > bits then
        error(strformat("%s: invalid prefix length in %q", what, s), 3)
    end
    return addr, n
end

local function mask4(n)
    return ~(0xFFFFFFFF >> n) & 0xFFFFFFFF
end

-- two 64-bit masks for a prefix of n bits (shifts of 64 or more give 0)
local function mask6(n)
    local hi = ~(-1 >> n)
    local lo = 0
    if n > 64 then
        lo = ~(-1 >> (n - 64))
    end
    return hi, lo
end

-- parse_cidr("a.b.c.d/n") -> subnet (integer), n. A bare address is /32.
-- Raises on a bad address or prefix and on host bits set in the subnet.
function _G.parse_cidr(s)
    local addr, n = cidr_prefix(s, 32, "parse_cidr")
    local ip = parse_ipv4(addr)
    if ip == nil then
        error(strformat("parse_cidr: invalid address in %q", s), 2)
    end
    if ip & mask4(n) ~= ip then
        error(strformat("parse_cidr: unaligned subnet %q", s), 2)
    end
    return ip, n
end

-- parse_cidr6("x::/n") -> hi, lo, n. A bare address is /128.
function _G.parse_cidr6(s)
    local addr, n = cidr_prefix(s, 128, "parse_cidr6")
    local hi, lo = parse_ipv6(addr)
    if hi == nil then
        error(strformat("parse_cidr6: invalid address in %q", s), 2)
    end
    local mhi, mlo = mask6(n)
    if hi & mhi ~= hi or lo & mlo ~= lo then
        error(strformat("parse_cidr6: unaligned subnet %q", s), 2)
    end
    return hi, lo, n
end

local inet, inet6 = {}, {}

-- inet.subnet("10.0.0.0/8") or inet.subnet({cidr, ...}) -> matcher(ip)
-- The table form keeps one set of subnets per prefix length and checks
-- each length once, longest first.
function inet.subnet(s)
    if type(s) ~= "table" then
        local subnet, n = parse_cidr(s)
        local mask = mask4(n)
        return function(ip)
            return ip & mask == subnet
        end
    end
    local sets, lengths = {}, {}
    for _, cidr in ipairs(s) do
        local subnet, n = parse_cidr(cidr)
        if sets[n] == nil then
            sets[n] = {}
            tinsert(lengths, n)
        end
        sets[n][subnet] = true
    end
    table.sort(lengths, function(a, b) return a > b end)
    local masks = {}
    for i, n in ipairs(lengths) do
        masks[i] = mask4(n)
    end
    if #lengths == 1 then -- one prefix length: one lookup
        local set, mask = sets[lengths[1]], masks[1]
        return function(ip)
            return set[ip & mask] == true
        end
    end
    return function(ip)
        for i, n in ipairs(lengths) do
            if sets[n][ip & masks[i]] then
                return true
            end
        end
        return false
    end
end

-- inet6.subnet("fc00::/7") or inet6.subnet({cidr, ...}) -> matcher(hi, lo)
function inet6.subnet(s)
    if type(s) ~= "table" then
        local shi, slo, n = parse_cidr6(s)
        local mhi, mlo = mask6(n)
        return function(hi, lo)
            return hi & mhi == shi and lo & mlo == slo
        end
    end
    -- sets[n][subnet_hi] = true (n <= 64) or {[subnet_lo] = true}
    local sets, lengths = {}, {}
    for _, cidr in ipairs(s) do
        local shi, slo, n = parse_cidr6(cidr)
        if sets[n] == nil then
            sets[n] = {}
            tinsert(lengths, n)
        end
        if n <= 64 then
            sets[n][shi] = true
        else
            local los = sets[n][shi] or {}
            los[slo] = true
            sets[n][shi] = los
        end
    end
    table.sort(lengths, function(a, b) return a > b end)
    local mhis, mlos = {}, {}
    for i, n in ipairs(lengths) do
        mhis[i], mlos[i] = mask6(n)
    end
    return function(hi, lo)
        for i, n in ipairs(lengths) do
            local e = sets[n][hi & mhis[i]]
            if e == true or (e and e[lo & mlos[i]]) then
                return true
            end
        end
        return false
    end
end

_G.inet, _G.inet6 = inet, inet6

-- ---------------------------------------------------------------------
-- 5. Asynchronous helpers
-- ---------------------------------------------------------------------

-- Park the current asynchronous routine on key until cond() is true:
-- await.park(key) suspends it and neosocksd.unpark(key) (called by
-- whatever makes cond() true) wakes it on the next loop iteration.
-- Engines without await.park get a poll with await.sleep instead.
local POLL_MIN, POLL_MAX = 0.001, 0.02
local function wait_until(key, cond)
    if cond() then
        return
    end
    local park = await.park
    if park then
        repeat
            park(key)
        until cond()
        return
    end
    await.sleep(0)
    local interval = POLL_MIN
    while not cond() do
        await.sleep(interval)
        interval = math.min(interval * 2, POLL_MAX)
    end
end

local function wake(key)
    local unpark = neosocksd.unpark
    if unpark then
        unpark(key)
    end
end

-- futures returned by async()
local future = {}
local future_mt = { __name = "future", __index = future }

-- true once the routine has finished
function future:done()
    return self.result ~= nil
end

-- Wait (inside an asynchronous routine) for the routine to finish; returns
-- true, results... or false, error. Any number of routines may wait on
-- the same future; a finished future answers at once, anywhere.
function future:get()
    wait_until(self, function() return self.result ~= nil end)
    return tunpack(self.result, 1, self.result.n)
end

-- async(f, ...): run f(...) in a new asynchronous routine (it runs until
-- its first await or its end before async returns) and return a future.
-- If the routine cannot be started the future holds false, err.
function _G.async(f, ...)
    local fut = setmetatable({}, future_mt)
    local function finish(...)
        fut.result = tpack(...)
        wake(fut)
    end
    local ok, co, err = pcall(neosocksd.async, finish, f, ...)
    if not ok then
        fut.result = tpack(false, co)
    elseif co == nil and fut.result == nil then
        fut.result = tpack(false, err or "cannot start an asynchronous routine")
    end
    fut.co = ok and co or nil
    return fut
end

-- await.callback(f, ...): call f(cb, ...) and return what cb is called
-- with, whether f calls it before returning or later (from another
-- routine, a timer...). Only the first call of cb counts.
function await.callback(f, ...)
    local result
    local key = {}
    local function cb(...)
        if result == nil then
            result = tpack(...)
            wake(key)
        end
    end
    f(cb, ...)
    wait_until(key, function() return result ~= nil end)
    return tunpack(result, 1, result.n)
end

-- ---------------------------------------------------------------------
-- 6. Remote calls
-- ---------------------------------------------------------------------

-- the inverse of marshal(): the values, evaluated in an empty environment
function _G.unmarshal(s)
    local f, err = load("return " .. s, "=(unmarshal)", "t", {})
    if f == nil then
        error(err, 2)
    end
    return f()
end

-- handlers callable with await.rpcall (kept across reloads)
_G.rpc = type(_G.rpc) == "table" and _G.rpc or {}
function rpc.echo(...)
    return ...
end

-- handlers for neosocksd.sendmsg (fire and forget)
_G.msgh = type(_G.msgh) == "table" and _G.msgh or {}
function msgh.nop(...)
end

local function marshal_args(...)
    return pcall(_G.marshal, ...)
end

-- await.rpcall({addr, proxyN, ..., proxy1}, "func", ...): run
-- rpc.func(...) on the neosocksd whose API is at addr and return
-- true, results... or false, error.
function await.rpcall(target, func, ...)
    local ok, args = marshal_args(...)
    if not ok then
        return false, args
    end
    local code = strformat("return rpc[%q](%s)", func, args)
    local ok2, reply = await.invoke(code, tunpack(target))
    if not ok2 then
        return false, reply
    end
    -- reply is the loaded response chunk: "return true, <results>"
    local r = tpack(pcall(reply))
    if not r[1] then
        return false, r[2]
    end
    return tunpack(r, 2, r.n)
end

-- neosocksd.sendmsg({addr, proxyN, ..., proxy1}, "func", ...): run
-- msgh.func(...) there; returns at once, failures are dropped.
function neosocksd.sendmsg(target, func, ...)
    local code = strformat("msgh[%q](%s)", func, _G.marshal(...))
    return neosocksd.invoke(code, tunpack(target))
end

-- ---------------------------------------------------------------------
-- 7. Matchers
-- ---------------------------------------------------------------------

-- split "host:port"; nil for something that is not an address. The last
-- address is remembered: a chain's matchers all look at the same one.
local split_addr, split_host, split_port
local function split(addr)
    if addr ~= split_addr then
        local ok, host, port = pcall(splithostport, addr)
        if not ok then
            return nil
        end
        split_addr, split_host, split_port = addr, host, port
    end
    return split_host, split_port
end

-- host and port back into an address ("[v6]:port" for IPv6)
local function joinhostport(host, port)
    if host:find(":", 1, true) then
        return "[" .. host .. "]:" .. port
    end
    return host .. ":" .. port
end

-- IPv4-mapped IPv6 (::ffff:a.b.c.d, as parse_ipv6's hi, lo) -> the IPv4
-- address as parse_ipv4's integer, else nil. Such an address reaches the
-- IPv4 host, so it is routed by the IPv4 rules: a rule that rejects
-- 127.0.0.0/8 also rejects [::ffff:127.0.0.1].
local function mapped_ipv4(hi, lo)
    if hi == 0 and lo >> 32 == 0xffff then
        return lo & 0xffffffff
    end
    return nil
end

local function ipv4_text(ip)
    return strformat("%d.%d.%d.%d", ip >> 24 & 255, ip >> 16 & 255, ip >> 8 & 255, ip & 255)
end

-- {s} or s -> list of strings
local function strings(s)
    if type(s) == "table" then
        return s
    end
    return { s }
end

local function lower_set(s)
    local set = {}
    for _, v in ipairs(strings(s)) do
        set[v:lower()] = true
    end
    return set
end

-- labels of a host name, last first: "www.example.com" -> com, example, www
local function rlabels(host)
    local labels = {}
    for label in host:gmatch("[^.]+") do
        tinsert(labels, 1, label)
    end
    return labels
end

-- walk a label tree (tree.com.example = true): true when the host or one
-- of its parent domains ends in a leaf that is true
local function tree_match(tree, host)
    host = host:lower()
    local node = tree
    for _, label in ipairs(rlabels(host)) do
        node = node[label]
        if node == true then
            return true
        end
        if type(node) ~= "table" then
            return false
        end
    end
    return false
end

local match = {}

function match.any()
    return function()
        return true
    end
end

-- the whole "host:port", case-insensitively
function match.exact(s)
    for _, v in ipairs(strings(s)) do
        splithostport(v) -- raises on an invalid address
    end
    local set = lower_set(s)
    return function(addr)
        return type(addr) == "string" and set[addr:lower()] == true
    end
end

-- the host part, case-insensitively ("[v6]" without brackets)
function match.host(s)
    local set = lower_set(s)
    return function(addr)
        local host = split(addr)
        return host ~= nil and set[host:lower()] == true
    end
end

-- match.port(80), match.port(8000, 8999) or match.port({80, 443})
function match.port(from, to)
    local set
    if type(from) == "table" then
        set = {}
        for _, p in ipairs(from) do
            set[assert(math.tointeger(tonumber(p)), "match.port: invalid port")] = true
        end
    else
        from = assert(tonumber(from), "match.port: invalid port")
        to = to ~= nil and assert(tonumber(to), "match.port: invalid port") or from
    end
    return function(addr)
        local _, port = split(addr)
        port = port and math.tointeger(tonumber(port))
        if port == nil then
            return false
        end
        if set then
            return set[port] == true
        end
        return from <= port and port <= to
    end
end

-- match.domain("example.com") (or ".example.com"): the host is that domain
-- or a subdomain of it, case-insensitively. A table of domains is turned
-- into a label tree, so a long list costs one walk per request.
function match.domain(s)
    if type(s) ~= "table" then
        local domain = s:lower():gsub("^%.", ""):gsub("%.$", "")
        local suffix = "." .. domain
        return function(addr)
            local host = split(addr)
            if host == nil then
                return false
            end
            host = host:lower():gsub("%.$", "")
            return host == domain or host:endswith(suffix)
        end
    end
    local tree = {}
    for _, d in ipairs(s) do
        local labels = rlabels(d:lower())
        local node = tree
        for i, label in ipairs(labels) do
            if node[label] == true then
                break -- a parent domain is in the tree already
            end
            if i == #labels then
                node[label] = true
            else
                node[label] = node[label] or {}
                node = node[label]
            end
        end
    end
    return match.domaintree(tree)
end

-- match.domaintree(tree): tree is nested tables of labels, last label
-- first, with true at the domains that match (with their subdomains):
-- { com = { example = true } }. Only the queried host is lowercased.
function match.domaintree(tree)
    return function(addr)
        local host = split(addr)
        return host ~= nil and tree_match(tree, host)
    end
end

-- Lua patterns (string.find) on the whole "host:port"
function match.pattern(p)
    local patterns = strings(p)
    return function(addr)
        if type(addr) ~= "string" then
            return false
        end
        for _, pat in ipairs(patterns) do
            if addr:find(pat) then
                return true
            end
        end
        return false
    end
end

-- regex.compat(s): POSIX ERE has no \d \w \s; rewrite them (and \D \W \S)
-- into bracket expressions. Inside a bracket expression \d \w \s become
-- the bare class; a negated one cannot be expressed there and is left as
-- it is. Other escapes are copied.
local compat_out = {
    d = "[0-9]", D = "[^0-9]",
    w = "[0-9A-Za-z_]", W = "[^0-9A-Za-z_]",
    s = "[[:space:]]", S = "[^[:space:]]",
}
local compat_in = { d = "0-9", w = "0-9A-Za-z_", s = "[:space:]" }

function regex.compat(s)
    local out, i, n = {}, 1, #s
    local inside = false
    while i <= n do
        local c = s:sub(i, i)
        if c == "\\" then
            local e = s:sub(i + 1, i + 1)
            local rep = (inside and compat_in or compat_out)[e]
            if rep then
                tinsert(out, rep)
                i = i + 2
            elseif inside then
                tinsert(out, c) -- a backslash is literal in brackets
                i = i + 1
            else
                tinsert(out, c .. e)
                i = i + 2
            end
        elseif c == "[" and not inside then
            inside = true
            tinsert(out, c)
            i = i + 1
            if s:sub(i, i) == "^" then
                tinsert(out, "^")
                i = i + 1
            end
            if s:sub(i, i) == "]" then -- a leading ']' is literal
                tinsert(out, "]")
                i = i + 1
            end
        elseif c == "[" and s:sub(i + 1, i + 1):match("[:.=]") then
            -- [:class:], [.coll.], [=equiv=] inside a bracket expression
            local close = s:find(s:sub(i + 1, i + 1) .. "]", i + 2, true)
            local j = close and close + 1 or n
            tinsert(out, s:sub(i, j))
            i = j + 1
        else
            if c == "]" then
                inside = false
            end
            tinsert(out, c)
            i = i + 1
        end
    end
    return tconcat(out)
end

-- POSIX extended regexes (after regex.compat) on the whole "host:port".
-- A single bad pattern raises; in a table bad patterns are skipped and
-- logged.
function match.regex(r)
    local compiled = {}
    if type(r) ~= "table" then
        compiled[1] = regex.compile(regex.compat(r))
    else
        for _, p in ipairs(r) do
            local ok, re = pcall(regex.compile, regex.compat(p))
            if ok then
                tinsert(compiled, re)
            else
                evlogf("match.regex: pattern %q skipped: %s", p, tostring(re))
                print(strformat("W match.regex: pattern %q skipped: %s", p, tostring(re)))
            end
        end
    end
    return function(addr)
        if type(addr) ~= "string" then
            return false
        end
        for _, re in ipairs(compiled) do
            if re:find(addr) then
                return true
            end
        end
        return false
    end
end

_G.match = match

-- combinators; they pass every argument through, so they work with any
-- matcher convention (addr, ip, or hi and lo)
local composite = {}

function composite.inverse(f)
    return function(...)
        return not f(...)
    end
end

function composite.anyof(t)
    return function(...)
        for _, f in ipairs(t) do
            if f(...) then
                return true
            end
        end
        return false
    end
end

function composite.allof(t)
    return function(...)
        for _, f in ipairs(t) do
            if not f(...) then
                return false
            end
        end
        return true
    end
end

-- t[k](...) when t[k] is set at call time, else false: a matcher that can
-- be swapped later (e.g. composite.maybe(_G, "biglist"))
function composite.maybe(t, k)
    return function(...)
        local f = t[k]
        if f then
            return f(...)
        end
        return false
    end
end

-- run the rule chain t[k] as a functional matcher: returns the action and
-- tag of its first matching rule (see the pipeline below)
local run_chain
function composite.subchain(t, k)
    return function(...)
        return run_chain(t[k], ...)
    end
end

_G.composite = composite

-- ---------------------------------------------------------------------
-- 8. Actions
-- ---------------------------------------------------------------------

-- proxies given first hop first, as the list to return after addr
-- (proxyN, ..., proxy1: the last value is the first hop)
local function return_order(...)
    local n = select("#", ...)
    local hops = {}
    for i = 1, n do
        local hop = select(i, ...)
        assert(type(hop) == "string", "proxy URIs must be strings")
        hops[n + 1 - i] = hop
    end
    return hops, n
end

local decide = {}
ruleset.decide = decide

-- Nesting of re-routing actions (rule.loopback, rule.resolve) per routine,
-- so that a routing loop fails instead of recursing forever.
local MAX_DEPTH = 8
local depth = setmetatable({}, { __mode = "k" })
local function nested(f, addr)
    local co = coroutine.running()
    local d = depth[co] or 0
    if d >= MAX_DEPTH then
        error(strformat("routing loop: %q re-routed %d times", addr, d), 0)
    end
    depth[co] = d + 1
    local r = tpack(pcall(f, addr))
    depth[co] = d > 0 and d or nil
    if not r[1] then
        error(r[2], 0)
    end
    return tunpack(r, 2, r.n)
end

-- the decision function for an address, by the type of its host
local function decide_any(addr)
    local host = split(addr)
    if host ~= nil and parse_ipv4(host) then
        return decide.route(addr)
    elseif host ~= nil and parse_ipv6(host) then
        return decide.route6(addr)
    end
    return decide.resolve(addr)
end

local rule = {}

function rule.direct()
    return function(addr)
        return addr
    end
end

function rule.reject()
    return function()
        return nil
    end
end

-- whatever _G.route_default decides
local route_default
function rule.default()
    return function(addr)
        return route_default(addr)
    end
end

-- resolve the host name and route the result through the IPv4 or IPv6
-- pipeline: _G.hosts first, then await.resolve; the decision names the
-- resolved address, so the front dials what the rules judged (no second
-- lookup). Unresolvable names are rejected. This is the resolve-then-route
-- rule that makes the IP rules cover names too (docs/ruleset.md): as the
-- last rule of _G.redirect_name, or as _G.route_default. In the latter
-- place the IP stage it starts ends in the default again, that is in this
-- rule: an address no IP rule matched then goes direct.
local route_ip4, route_ip6
local resolving = setmetatable({}, { __mode = "k" })
local function resolving_call(f, addr)
    local co = coroutine.running()
    local was = resolving[co]
    resolving[co] = true
    local r = tpack(pcall(nested, f, addr))
    resolving[co] = was
    if not r[1] then
        error(r[2], 0)
    end
    return tunpack(r, 2, r.n)
end

function rule.resolve()
    return function(addr)
        local host, port = split(addr)
        if host == nil then
            return nil
        end
        local ip = parse_ipv4(host)
        local hi, lo
        if not ip then
            hi, lo = parse_ipv6(host)
        end
        if ip or hi then
            if resolving[coroutine.running()] then
                return addr -- back from the default of our own IP stage
            end
            -- already an address: no redirect tables again
            return resolving_call(function(a)
                if ip then
                    return route_ip4(a, ip)
                end
                return route_ip6(a, hi, lo)
            end, addr)
        end
        local hosts = _G.hosts
        local resolved = type(hosts) == "table" and hosts[host:lower()] or nil
        if resolved == nil then
            resolved = await.resolve(host)
        end
        if resolved == nil then
            evlogf("resolve failed: %q", host)
            return nil
        end
        return resolving_call(decide_any, joinhostport(resolved, port))
    end
end

-- rule.redirect(dst, proxy1, ..., proxyN): go to dst through the chain
-- (proxies first hop first). dst "host:port"; "host:" keeps the requested
-- port, ":port" keeps the requested host.
function rule.redirect(dst, ...)
    local hops, n = return_order(...)
    assert(type(dst) == "string", "rule.redirect: destination must be a string")
    if dst:endswith(":") and not dst:startswith(":") then
        splithostport(dst .. "0") -- validate
        return function(addr)
            local _, port = split(addr)
            if port == nil then
                return nil
            end
            return dst .. port, tunpack(hops, 1, n)
        end
    elseif dst:startswith(":") then
        assert(dst:match("^:%d+$"), "rule.redirect: invalid port in " .. dst)
        return function(addr)
            local host = split(addr)
            if host == nil then
                return nil
            end
            return joinhostport(host, dst:sub(2)), tunpack(hops, 1, n)
        end
    end
    splithostport(dst) -- validate
    return function()
        return dst, tunpack(hops, 1, n)
    end
end

-- rule.proxy(proxy1, ..., proxyN): the requested address through the chain
function rule.proxy(...)
    local hops, n = return_order(...)
    return function(addr)
        return addr, tunpack(hops, 1, n)
    end
end

-- t[k](addr) when t[k] is set at call time, else reject
function rule.maybe(t, k)
    return function(addr)
        local f = t[k]
        if f then
            return f(addr)
        end
        return nil
    end
end

-- addr:gsub(pattern, repl) through the chain
function rule.rewrite(pattern, repl, ...)
    local hops, n = return_order(...)
    return function(addr)
        local s = addr:gsub(pattern, repl)
        return s, tunpack(hops, 1, n)
    end
end

-- addr:gsub(pattern, repl), then decide again for the new address
function rule.loopback(pattern, repl)
    return function(addr)
        local s = addr:gsub(pattern, repl)
        return nested(decide_any, s)
    end
end

_G.rule = rule

local lb = {}

-- lb.roundrobin({action, ...}): each call uses the next action
function lb.roundrobin(t)
    local i = 0
    return function(addr)
        local n = #t
        if n == 0 then
            return nil
        end
        i = i % n + 1
        return t[i](addr)
    end
end

-- lb.iwrr({{weight, action}, ...} [, cyclesize]): interleaved weighted
-- round robin. Entries with a weight <= 0 (or not a number) are left out;
-- the weights of the others are normalised in place to (0, 1] (divided by
-- the largest). A cycle has cyclesize rounds; in round r every entry whose
-- share reaches r/cyclesize is used once, in list order, so over a cycle
-- each entry is used about weight/max*cyclesize times (at least once)
-- and the uses interleave. cyclesize defaults to the largest weight when
-- all weights are integers (exact ratios, e.g. 3:1 -> A B A A), else 100.
-- With no usable entry the action is a no-op (rejects).
function lb.iwrr(t, cyclesize)
    local entries, weights, maxw, integers = {}, {}, 0, true
    for _, e in ipairs(t) do
        local w = tonumber(e[1])
        if w and w > 0 and w < math.huge then
            tinsert(entries, e)
            tinsert(weights, w)
            maxw = math.max(maxw, w)
            integers = integers and math.type(w) == "integer"
        end
    end
    if #entries == 0 then
        return function()
            return nil
        end
    end
    if cyclesize == nil then
        cyclesize = (integers and maxw <= 1000) and maxw or 100
    end
    cyclesize = math.max(1, math.floor(cyclesize))
    local rounds = {}
    for i, e in ipairs(entries) do
        e[1] = weights[i] / maxw
        rounds[i] = math.max(1, math.floor(e[1] * cyclesize + 0.5))
    end
    local n, round, i = #entries, 1, 0
    return function(addr)
        while true do
            i = i + 1
            if i > n then
                i = 1
                round = round % cyclesize + 1
            end
            if rounds[i] >= round then
                return entries[i][2](addr)
            end
        end
    end
end

_G.lb = lb

-- ---------------------------------------------------------------------
-- 9. The decision pipeline
-- ---------------------------------------------------------------------

-- first matching rule of a chain -> action, tag (nil: none matched)
-- (matchers get one value, or two for IPv6; fixed parameters are cheaper
-- than a vararg on this path, run for every request)
local function run_chain1(chain, a)
    if chain == nil then
        return nil
    end
    for _, r in ipairs(chain) do
        local matcher, action = r[1], r[2]
        if action == nil then
            local act, tag = matcher(a) -- a functional matcher
            if act then
                return act, tag
            end
        elseif matcher(a) then
            return action, r[3]
        end
    end
    return nil
end

local function run_chain2(chain, a, b)
    if chain == nil then
        return nil
    end
    for _, r in ipairs(chain) do
        local matcher, action = r[1], r[2]
        if action == nil then
            local act, tag = matcher(a, b)
            if act then
                return act, tag
            end
        elseif matcher(a, b) then
            return action, r[3]
        end
    end
    return nil
end

function run_chain(chain, ...)
    if select("#", ...) <= 1 then
        return run_chain1(chain, ...)
    end
    return run_chain2(chain, ...)
end

local function apply(action, tag, addr)
    if tag then
        evlogf("[%s] %q", tostring(tag), addr)
    end
    return action(addr)
end

-- _G.route_default = {action [, tag]} (or a bare action); none: direct
function route_default(addr)
    local d = _G.route_default
    if d == nil then
        return addr
    end
    if type(d) == "function" then
        return d(addr)
    end
    return apply(d[1], d[2], addr)
end

-- the IPv4 stage: _G.route (matchers get the integer address), default
function route_ip4(addr, ip)
    local action, tag = run_chain1(_G.route, ip)
    if action then
        return apply(action, tag, addr)
    end
    return route_default(addr)
end

-- the IPv6 stage: _G.route6 (matchers get hi, lo), default; a mapped
-- IPv4 address goes to the IPv4 stage instead
function route_ip6(addr, hi, lo)
    local ip = mapped_ipv4(hi, lo)
    if ip then
        local _, port = split(addr)
        return route_ip4(joinhostport(ipv4_text(ip), port), ip)
    end
    local action, tag = run_chain2(_G.route6, hi, lo)
    if action then
        return apply(action, tag, addr)
    end
    return route_default(addr)
end

-- IPv4 requests: _G.redirect (matchers get addr), then the IPv4 stage
function decide.route(addr)
    local action, tag = run_chain1(_G.redirect, addr)
    if action then
        return apply(action, tag, addr)
    end
    local host = split(addr)
    local ip = host and parse_ipv4(host)
    if ip then
        return route_ip4(addr, ip)
    end
    return route_default(addr)
end

-- IPv6 requests: _G.redirect6 (matchers get addr), then the IPv6 stage.
-- An IPv4-mapped address (::ffff:a.b.c.d) is an IPv4 request: it takes
-- the IPv4 pipeline as "a.b.c.d:port" (the front already sends those to
-- route(); this covers names holding the literal, redirects and callers)
function decide.route6(addr)
    local host, port = split(addr)
    if host then
        local hi, lo = parse_ipv6(host)
        local ip = hi and mapped_ipv4(hi, lo)
        if ip then
            return decide.route(joinhostport(ipv4_text(ip), port))
        end
    end
    local action, tag = run_chain1(_G.redirect6, addr)
    if action then
        return apply(action, tag, addr)
    end
    local host = split(addr)
    local hi, lo
    if host then
        hi, lo = parse_ipv6(host)
    end
    if hi then
        return route_ip6(addr, hi, lo)
    end
    return route_default(addr)
end

-- name requests (SOCKS4A, SOCKS5 and HTTP CONNECT with a name):
-- _G.redirect_name (matchers get addr), then _G.hosts (lowercased host ->
-- address), then by the type of the host: the IPv4 or IPv6 pipeline, else
-- the default
function decide.resolve(addr)
    local action, tag = run_chain1(_G.redirect_name, addr)
    if action then
        return apply(action, tag, addr)
    end
    local host, port = split(addr)
    if host == nil then
        return route_default(addr)
    end
    local hosts = _G.hosts
    local mapped = type(hosts) == "table" and hosts[host:lower()] or nil
    if mapped then
        host = mapped
        addr = joinhostport(host, port)
    end
    if parse_ipv4(host) then
        return decide.route(addr)
    elseif parse_ipv6(host) then
        return decide.route6(addr)
    end
    return route_default(addr)
end

-- ---------------------------------------------------------------------
-- 10. Callbacks
-- ---------------------------------------------------------------------

-- counters, kept across reloads
_G.num_requests = _G.num_requests or 0
-- secrets[user] = "password" or true; an empty table to fill, as in the
-- reference (kept across reloads)
_G.secrets = _G.secrets or {}
_G.num_authorized = _G.num_authorized or 0
_G.stat_requests = rlist:check(_G.stat_requests) or rlist:new(60)

-- _G.ruleset.authenticate(addr, user, pass) when the active ruleset has
-- one, else _G.secrets: secrets[user] == true (any password) or the
-- password string
local function authenticate(addr, user, pass)
    local f = table.get(_G, "ruleset", "authenticate")
    if f then
        return f(addr, user, pass)
    end
    local secret = user ~= nil and table.get(_G, "secrets", user) or nil
    return secret == true or (type(secret) == "string" and secret == pass)
end

-- Is authentication required? config is the snapshot taken when this
-- library was loaded. A -c file is evaluated before its own settings are
-- applied, so if it loaded the library, the snapshot holds the command
-- line's auth_required. So the first request after loading (and after
-- each tick) looks at the settings in force once, and turns the check on
-- if they require it; it never turns it off.
local auth_synced = false
local function auth_required()
    local c = _G.config
    if type(c) ~= "table" then
        return false
    end
    if not auth_synced then
        auth_synced = true
        if not c.auth_required and neosocksd.config().auth_required then
            c.auth_required = true
        end
    end
    return c.auth_required and true or false
end

-- count the request and, when the daemon requires authentication, check
-- the credentials first (a failure rejects)
local function with_authenticate(f)
    return function(addr, user, pass)
        _G.num_requests = _G.num_requests + 1
        if auth_required() then
            if not authenticate(addr, user, pass) then
                evlogf("authenticate failed: %q", user)
                return nil
            end
        end
        _G.num_authorized = _G.num_authorized + 1
        return f(addr, user, pass)
    end
end

-- Hand the decision to the daemon, which dials it: the address and the
-- proxies (trailing nils dropped), or nothing for a rejection. A decision
-- of true means an action already committed the request itself with
-- await.forward (e.g. ruleset.failover); the daemon knows, and relays it.
--
-- The reference's libruleset dials every decision here with await.forward
-- and rejects the request when that fails. Returning the decision is the
-- same routing with half the messages, and a failed dial reaches the client
-- with its own error (connection refused, timeout, ...) instead of a
-- generic refusal.
local function decision(first, ...)
    if first == nil or first == false or first == true then
        return nil
    end
    if select("#", ...) == 0 then
        return first -- the usual case: an address, no proxies
    end
    local d = tpack(first, ...)
    while d.n > 0 and d[d.n] == nil do
        d.n = d.n - 1 -- trailing nils are not hops
    end
    return tunpack(d, 1, d.n)
end

local function forwarding(decide_fn)
    return function(addr)
        return decision(decide_fn(addr))
    end
end

ruleset.resolve = with_authenticate(forwarding(decide.resolve))
ruleset.route = with_authenticate(forwarding(decide.route))
ruleset.route6 = with_authenticate(forwarding(decide.route6))

-- ruleset.failover(addr, {chain, ...}): forward addr through each chain in
-- turn ({proxyN, ..., proxy1}, as returned by an action; {} = direct)
-- until one connects. true when the request is committed, else false and
-- the last error. For use in actions inside request handlers; an action
-- that committed the request returns nothing (or true).
function ruleset.failover(addr, chains)
    local err = "no chain"
    for _, chain in ipairs(chains) do
        local ok, e = await.forward(addr, tunpack(chain))
        if ok then
            return true
        end
        err = e or "rejected"
        logf("failover: %q via [%s]: %s", addr, tconcat(chain, ","), tostring(err))
    end
    return false, err
end

-- timer callback (neosocksd.setinterval): one request-count sample per tick
local last_tick, tick_interval
function ruleset.tick(now_)
    now_ = now_ or now()
    if last_tick and now_ > last_tick then
        tick_interval = now_ - last_tick
    end
    last_tick = now_
    auth_synced = false
    _G.stat_requests:push(_G.num_requests)
end

local HISTOGRAM_ROWS = 5

-- per-tick request counts, oldest first, from stat_requests samples
local function request_deltas()
    local samples = _G.stat_requests
    local deltas = {}
    for i = samples.len - 1, 1, -1 do
        tinsert(deltas, math.max(0, samples:get(i) - samples:get(i + 1)))
    end
    return deltas
end

-- text for the /stats API: recent events, then the request rate histogram
function ruleset.stats(dt)
    local w = list:new()
    w:insert("> Recent Events")
    local shown = 0
    for _, e in _G.recent_events:iter() do
        if shown >= (tonumber(_G.RECENT_EVENTS_STATS) or 10) then
            break
        end
        local line
        if type(e) == "table" then
            line = format_timestamp(e.time) .. " " .. tostring(e.msg)
            if (e.count or 1) > 1 then
                line = line .. strformat(" (x%d)", e.count)
            end
        else
            line = tostring(e)
        end
        w:insert(line)
        shown = shown + 1
    end
    local deltas = request_deltas()
    local sum, max = 0, 0
    for _, d in ipairs(deltas) do
        sum = sum + d
        max = math.max(max, d)
    end
    local avg = 0
    if #deltas > 0 then
        avg = sum / #deltas * 60 / (tick_interval or 60)
    end
    w:insertf("> Request Stats (avg=%.1f/min, max=%d)", avg, max)
    for row = HISTOGRAM_ROWS, 1, -1 do
        local cols = {}
        for i, d in ipairs(deltas) do
            local h = max > 0 and math.ceil(d * HISTOGRAM_ROWS / max) or 0
            cols[i] = h >= row and "*" or " "
        end
        local line = ("|" .. tconcat(cols)):gsub("%s+$", "")
        w:insert(line)
    end
    return w:concat("\n") .. "\n"
end

return ruleset
