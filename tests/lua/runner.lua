-- runner: runs a Lua test module inside the daemon's ruleset process.
-- A ruleset file "return require('runner').run('test_x')" loads test_x
-- (a table of test_* functions), runs each in an asynchronous routine (so
-- they may await), and prints one line per test and a summary:
--   LUATEST PASS test_x.test_a cpu=1.2ms
--   LUATEST FAIL test_x.test_b: <error>
--   LUATEST DONE test_x pass=N fail=M
-- tests/integration/test_lua.py starts the daemon and reads these lines.
-- cpu= is the test's CPU time: each test runs in entries of the daemon,
-- and an entry past 1 s of CPU fails (the time budget), so keep every test
-- far below that (under 100 ms with ASan) for slow machines.
local M = {}

local function names_of(t)
    local names = {}
    for k, v in pairs(t) do
        if type(k) == "string" and k:sub(1, 5) == "test_" and type(v) == "function" then
            names[#names + 1] = k
        end
    end
    table.sort(names)
    return names
end

function M.run(modname, ruleset)
    local tests = require(modname)
    neosocksd.async(function(ok, err)
        if not ok then
            print(string.format("LUATEST FAIL %s.(runner): %s", modname, tostring(err)))
            print(string.format("LUATEST DONE %s pass=0 fail=1", modname))
        end
    end, function()
        local pass, fail = 0, 0
        for _, name in ipairs(names_of(tests)) do
            -- each test starts a fresh entry (and time budget)
            await.sleep(0)
            local c0 = time.thread()
            local ok, err = xpcall(tests[name], debug.traceback)
            if ok then
                pass = pass + 1
                print(string.format("LUATEST PASS %s.%s cpu=%.1fms", modname, name,
                    (time.thread() - c0) * 1000))
            else
                fail = fail + 1
                print(string.format("LUATEST FAIL %s.%s: %s", modname, name, tostring(err)))
            end
        end
        print(string.format("LUATEST DONE %s pass=%d fail=%d", modname, pass, fail))
    end)
    return ruleset or {}
end

return M
