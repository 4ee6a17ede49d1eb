-- The safe standard library: what must be there, and what must not.
local t = {}

function t.test_absent()
    assert(io == nil, "io")
    assert(os.execute == nil, "os.execute")
    assert(os.remove == nil, "os.remove")
    assert(os.rename == nil, "os.rename")
    assert(os.tmpname == nil, "os.tmpname")
    assert(os.setlocale == nil, "os.setlocale")
    assert(package.loadlib == nil, "package.loadlib")
    assert(package.cpath == nil, "package.cpath")
    assert(package.searchpath == nil, "package.searchpath")
    assert(debug.getregistry == nil, "debug.getregistry")
    assert(debug.sethook == nil, "debug.sethook")
    assert(debug.setmetatable == nil, "debug.setmetatable")
    assert(collectgarbage ~= nil)
end

function t.test_present()
    for _, name in ipairs({ "string", "table", "math", "utf8", "coroutine" }) do
        assert(type(_G[name]) == "table", name)
    end
    assert(type(os.time) == "function" and type(os.clock) == "function")
    assert(type(os.date) == "function" and type(os.difftime) == "function")
    assert(type(os.getenv) == "function" and type(os.exit) == "function")
    assert(type(debug.traceback) == "function" and type(debug.getinfo) == "function")
    assert(type(require) == "function" and type(package.loaded) == "table")
    assert(type(loadfile) == "function" and type(dofile) == "function")
    assert(type(package.searchers) == "table" and type(package.path) == "string")
end

function t.test_no_bytecode()
    local f = function() return 1 end
    local ok, dump = pcall(string.dump, f)
    if ok then
        local fn, err = load(dump)
        assert(fn == nil and err:find("binary"), "bytecode was loaded: " .. tostring(err))
        fn, err = load(dump, "x", "b")
        assert(fn == nil, "mode 'b' was honoured")
    end
    assert(load("return 1")() == 1)
    local env = { y = 5 }
    assert(load("return y", "=c", "t", env)() == 5)
end

function t.test_require_names()
    assert(not pcall(require, "../x"))
    assert(not pcall(require, "a/b"))
    assert(not pcall(require, ""))
    assert(not pcall(require, "a..b"))
    assert(not pcall(require, ".a"))
    local ok, err = pcall(require, "surely_not_a_module")
    assert(not ok and err:find("not found"))
end

function t.test_async_only()
    -- await.* outside an asynchronous routine: the main thread of a
    -- coroutine the script made itself
    local co = coroutine.create(function() return await.sleep(0) end)
    local ok, err = coroutine.resume(co)
    assert(not ok and err:find("not in asynchronous routine"), err)
    -- inside one (this test runs in one) they work
    await.sleep(0.01)
end

return t
