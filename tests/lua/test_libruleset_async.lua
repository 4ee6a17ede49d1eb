-- libruleset: async futures, await.callback, and the remote-call helpers
-- (unmarshal, rpc, await.rpcall, msgh, neosocksd.sendmsg). Runs inside the
-- daemon (tests/lua/runner.lua): every test is an asynchronous routine.
--
-- This build has no API client: await.invoke answers
-- false, "invoke: no API client in this build" and neosocksd.invoke drops
-- the call. So the remote side is simulated here by a stand-in for
-- await.invoke / neosocksd.invoke that runs the generated code the way a
-- peer's /ruleset/rpcall (or /ruleset/invoke) would, and the real ones are
-- used for the error paths.
require("libruleset")
local t = {}

-- ---- helpers ----

local check = require("lrcheck")
local show, eq, same = check.show, check.eq, check.same

-- scoped(function(set) ... end): set(t, k, v) for the duration of the call
local function scoped(f)
    local undo = {}
    local function set(tbl, k, v)
        table.insert(undo, { tbl, k, rawget(tbl, k) })
        rawset(tbl, k, v)
    end
    local ok, err = pcall(f, set)
    for i = #undo, 1, -1 do
        rawset(undo[i][1], undo[i][2], undo[i][3])
    end
    if not ok then
        error(err, 0)
    end
end

-- ---- async ----

function t.test_async_immediate()
    local fut = async(function(a, b)
        return a + b, "x", nil
    end, 1, 2)
    assert(fut:done(), "finished before async returned")
    same({ true, 3, "x", nil, n = 4 }, fut:get())
    -- get() again: the same results
    same({ true, 3, "x", nil, n = 4 }, fut:get())
    -- no results
    same({ true }, async(function() end):get())
end

function t.test_async_waits()
    local order = {}
    local fut = async(function(ms)
        table.insert(order, "start")
        await.sleep(ms / 1000)
        table.insert(order, "end")
        return "slept"
    end, 30)
    table.insert(order, "returned")
    assert(not fut:done(), "still running")
    local t0 = neosocksd.now()
    same({ true, "slept" }, fut:get())
    table.insert(order, "got")
    eq(table.concat(order, ","), "start,returned,end,got", "order")
    assert(neosocksd.now() - t0 >= 0.02, "get waited")
end

function t.test_async_many_waiters()
    local release = false
    local fut = async(function()
        while not release do
            await.sleep(0.005)
        end
        return "value", 42
    end)
    -- three routines wait on the same future, plus this one
    local got = {}
    local waiters = {}
    for i = 1, 3 do
        waiters[i] = async(function()
            local ok, v, n = fut:get()
            got[i] = tostring(ok) .. v .. n
            return i
        end)
    end
    for i = 1, 3 do
        assert(not waiters[i]:done(), "waiter " .. i .. " is waiting")
    end
    await.sleep(0.02)
    eq(#got, 0, "nobody got a result before it existed")
    release = true
    same({ true, "value", 42 }, fut:get())
    for i = 1, 3 do
        same({ true, i }, waiters[i]:get())
        eq(got[i], "truevalue42", "waiter " .. i)
    end
end

function t.test_async_failure()
    local fut = async(function()
        await.sleep(0.001)
        error("boom", 0)
    end)
    same({ false, "boom" }, fut:get())
    local fut2 = async(function()
        error({ code = 7 })
    end)
    local ok, err = fut2:get()
    eq(ok, false, "table error")
    eq(err.code, 7, "the error object is kept")
    -- waiters of a failed future all see the failure
    local fut3 = async(function()
        await.sleep(0.01)
        error("late", 0)
    end)
    local w = async(function() return fut3:get() end)
    same({ false, "late" }, fut3:get())
    same({ true, false, "late" }, w:get())
end

function t.test_async_cannot_start()
    -- neosocksd.async refuses a non-function: the future holds the error
    local fut = async(nil)
    assert(fut:done(), "done at once")
    local ok, err = fut:get()
    eq(ok, false, "not started")
    assert(type(err) == "string" and err:find("function"), tostring(err))
    local fut2 = async("not a function", 1)
    eq((fut2:get()), false, "string")
end

function t.test_async_nested()
    local fut = async(function()
        local a = async(function() await.sleep(0.01) return 1 end)
        local b = async(function() await.sleep(0.005) return 2 end)
        local _, x = a:get()
        local _, y = b:get()
        return x + y
    end)
    same({ true, 3 }, fut:get())
end

-- ---- await.callback ----

function t.test_callback_sync()
    same({ 1, "two", nil, n = 3 }, await.callback(function(cb, a)
        cb(a, "two", nil)
        cb("ignored: only the first call counts")
    end, 1))
    same({}, await.callback(function(cb) cb() end))
end

function t.test_callback_async()
    local t0 = neosocksd.now()
    local r = table.pack(await.callback(function(cb, delay)
        async(function()
            await.sleep(delay)
            cb("later", delay)
            cb("again")
        end)
    end, 0.02))
    same({ "later", 0.02 }, table.unpack(r, 1, r.n))
    assert(neosocksd.now() - t0 >= 0.015, "waited for the callback")
    -- f may return values of its own: they are not the result
    same({ "cb" }, await.callback(function(cb)
        async(function() await.sleep(0) cb("cb") end)
        return "returned"
    end))
end

function t.test_callback_error()
    local ok, err = pcall(await.callback, function() error("in f", 0) end)
    eq(ok, false, "error raised")
    eq(err, "in f", "error text")
end

-- ---- rpc ----

-- A stand-in for await.invoke: run code the way a peer's /ruleset/rpcall
-- does (chunk "=(rpc)", a sandbox env over _G, results marshalled as
-- "return true,<results>") and load the reply the way await.invoke does
-- (a fresh env). Records what was sent.
local peer_marshal = marshal -- the peer's own, whatever a test does to _G.marshal
local function fake_invoke(sent)
    return function(code, ...)
        table.insert(sent, table.pack(code, ...))
        local chunk, err = load(code, "=(rpc)", "t", setmetatable({}, { __index = _G }))
        if not chunk then
            return false, err
        end
        local r = table.pack(pcall(chunk))
        if not r[1] then
            return false, "HTTP/1.1 500 Internal Server Error"
        end
        local body = "return true"
        if r.n > 1 then
            body = body .. "," .. peer_marshal(table.unpack(r, 2, r.n))
        end
        return true, load(body, "=(rpc)", "t", {})
    end
end

function t.test_rpc_echo()
    same({ 1, "a", nil, true, n = 4 }, rpc.echo(1, "a", nil, true))
    same({}, rpc.echo())
    eq(type(msgh.nop), "function", "msgh.nop")
    same({}, msgh.nop(1, 2))
end

function t.test_rpcall_roundtrip()
    scoped(function(set)
        local sent = {}
        set(await, "invoke", fake_invoke(sent))
        local arg = { 1, { 2, { 3 } }, k = "v", [10] = false, s = "line\nbreak \"q\"" }
        local r = table.pack(await.rpcall({ "api.neosocksd.internal:80", "socks5://b:1",
            "socks4a://a:1" }, "echo", arg, "x", 2.5, nil, -7))
        eq(r[1], true, "ok")
        eq(r.n, 6, "results")
        local back = r[2]
        eq(back[2][2][1], 3, "nested")
        eq(back.k, "v", "field")
        eq(back[10], false, "false value")
        eq(back.s, arg.s, "string")
        same({ "x", 2.5, nil, -7 }, table.unpack(r, 3, r.n))
        -- what was sent: the code and the target unpacked in order
        local call = sent[1]
        eq(call.n, 4, "invoke arguments")
        eq(call[1], 'return rpc["echo"](' .. marshal(arg, "x", 2.5, nil, -7) .. ")", "code")
        same({ "api.neosocksd.internal:80", "socks5://b:1", "socks4a://a:1" },
            table.unpack(call, 2, call.n))
        -- a handler of our own, with a name that needs quoting
        set(rpc, "sum\"q", function(...)
            local s = 0
            for _, v in ipairs({ ... }) do s = s + v end
            return s
        end)
        same({ true, 6 }, await.rpcall({ "peer:80" }, "sum\"q", 1, 2, 3))
        eq(sent[2][1], 'return rpc["sum\\"q"](1,2,3)', "quoted name")
        -- no results
        set(rpc, "none", function() end)
        same({ true }, await.rpcall({ "peer:80" }, "none"))
        -- a handler that awaits runs fine in the (simulated) remote routine
        set(rpc, "slow", function(x) await.sleep(0.001) return x * 2 end)
        same({ true, 42 }, await.rpcall({ "peer:80" }, "slow", 21))
    end)
end

function t.test_rpcall_errors()
    -- nothing listens there: the dial fails, reported as an error
    local ok, err = await.rpcall({ "127.0.0.1:9" }, "echo", 1)
    eq(ok, false, "nobody listening")
    eq(err, "connection failed", "error text")
    scoped(function(set)
        local sent = {}
        set(await, "invoke", fake_invoke(sent))
        -- a remote error
        set(rpc, "fail", function() error("remote failure") end)
        same({ false, "HTTP/1.1 500 Internal Server Error" }, await.rpcall({ "peer:80" }, "fail"))
        -- an unknown handler is a remote error too
        same({ false, "HTTP/1.1 500 Internal Server Error" }, await.rpcall({ "peer:80" }, "nosuch"))
        -- arguments that cannot be marshalled: an error, nothing is sent
        local n = #sent
        local ok2, err2 = await.rpcall({ "peer:80" }, "echo", print)
        eq(ok2, false, "unmarshallable")
        assert(tostring(err2):find("not marshallable"), tostring(err2))
        eq(#sent, n, "nothing sent")
        -- a reply chunk that raises
        set(await, "invoke", function() return true, function() error("bad reply", 0) end end)
        same({ false, "bad reply" }, await.rpcall({ "peer:80" }, "echo"))
        -- a transport failure
        set(await, "invoke", function() return false, "connection failed" end)
        same({ false, "connection failed" }, await.rpcall({ "peer:80" }, "echo"))
    end)
end

function t.test_rpcall_uses_global_marshal()
    scoped(function(set)
        local sent = {}
        set(await, "invoke", fake_invoke(sent))
        local real = marshal
        set(_G, "marshal", function(...)
            return real(...) .. ",\"added\""
        end)
        same({ true, 1, "added" }, await.rpcall({ "peer:80" }, "echo", 1))
    end)
end

function t.test_sendmsg()
    -- the real neosocksd.invoke drops the call in this build; no error
    neosocksd.sendmsg({ "127.0.0.1:9" }, "nop", 1)
    scoped(function(set)
        local sent = {}
        set(neosocksd, "invoke", function(code, ...)
            table.insert(sent, table.pack(code, ...))
            -- run it as the peer's /ruleset/invoke would
            assert(load(code, "=(invoke)", "t", setmetatable({}, { __index = _G })))()
        end)
        local got
        set(msgh, "note", function(...) got = table.pack(...) end)
        same({}, neosocksd.sendmsg({ "api:80", "socks5://hop2:1", "socks5://hop1:1" }, "note",
            { a = 1 }, "b", nil))
        eq(sent[1][1], 'msgh["note"](' .. marshal({ a = 1 }, "b", nil) .. ")", "code")
        same({ "api:80", "socks5://hop2:1", "socks5://hop1:1" }, table.unpack(sent[1], 2, sent[1].n))
        eq(got.n, 3, "handler arguments")
        eq(got[1].a, 1, "table argument")
        eq(got[2], "b", "string argument")
        neosocksd.sendmsg({ "api:80" }, "nop")
        eq(sent[2][1], 'msgh["nop"]()', "no arguments")
    end)
    -- an invalid target is refused by neosocksd.invoke
    local ok, err = pcall(neosocksd.sendmsg, {}, "nop")
    eq(ok, false, "empty target")
    assert(tostring(err):find("invalid address"), tostring(err))
end

return t
