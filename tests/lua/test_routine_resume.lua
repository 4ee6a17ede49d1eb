-- A routine suspended by a bare coroutine.yield() and resumed by the
-- script with coroutine.resume, the way the reference's libruleset builds
-- its futures (a waiter yields; the finish function of neosocksd.async
-- resumes it) and its await.callback. Regression: the daemon ended such a
-- routine with "coroutine.yield outside await in an asynchronous routine",
-- so the reference's libruleset.lua and agent.lua (whose maintenance loop
-- waits on futures) stopped at their first future:get().
-- Runs inside the daemon (tests/lua/runner.lua): every test is a routine.
local t = {}

local check = require("lrcheck")
local eq, same, raises = check.eq, check.same, check.raises

-- the reference's future, in our words: waiters yield bare and the task's
-- finish function resumes them
local function ref_async(f, ...)
    local fut = { waiters = {} }
    local function finish(ok, ...)
        fut.result = table.pack(ok, ...)
        for co in pairs(fut.waiters) do
            fut.waiters[co] = nil
            coroutine.resume(co)
        end
    end
    fut.co = neosocksd.async(finish, f, ...)
    function fut.get()
        if not fut.result then
            local co = coroutine.running()
            assert(coroutine.isyieldable(co))
            fut.waiters[co] = true
            coroutine.yield()
        end
        return table.unpack(fut.result, 1, fut.result.n)
    end
    return fut
end

-- the reference's await.callback, in our words
local function ref_callback(f, ...)
    local co = coroutine.running()
    local result
    f(function(...)
        if co == coroutine.running() then
            result = table.pack(...)
            return
        end
        local ok, err = coroutine.resume(co, ...)
        if not ok then error(err) end
    end, ...)
    if result then
        return table.unpack(result, 1, result.n)
    end
    return coroutine.yield()
end

function t.test_future_waiter_resumed_by_finish()
    local fut = ref_async(function(x)
        await.sleep(0.01)
        return x * 2, "done"
    end, 21)
    same({ true, 42, "done" }, fut.get())
    -- a finished future answers at once, again
    same({ true, 42, "done" }, fut.get())
end

function t.test_several_waiters_and_parallel_tasks()
    -- the shape of the reference agent's parallel_for: start every task,
    -- then wait for each in turn (some finish before they are waited on)
    local tasks = {}
    for i = 1, 5 do
        tasks[i] = ref_async(function()
            await.sleep(i % 2 == 0 and 0 or 0.01 * i)
            return i
        end)
    end
    local got = {}
    local helper_done = false
    neosocksd.async(function() helper_done = true end, function()
        got.helper = select(2, tasks[5].get())
    end)
    for i = 1, 5 do
        local ok, v = tasks[i].get()
        eq(ok, true, "task " .. i)
        got[i] = v
    end
    same({ 1, 2, 3, 4, 5 }, got[1], got[2], got[3], got[4], got[5])
    await.sleep(0)
    eq(got.helper, 5, "a second waiter on the same future")
    eq(helper_done, true, "the second waiter ran to its end")
end

function t.test_task_error_reaches_the_waiter()
    local fut = ref_async(function()
        await.sleep(0.01)
        error("deliberate", 0)
    end)
    same({ false, "deliberate" }, fut.get())
end

function t.test_callback_resumed_later_with_values()
    local saved
    neosocksd.async(nil, function()
        await.sleep(0.01)
        saved("late", 2, nil, 4)
    end)
    same({ "late", 2, nil, 4, n = 4 }, ref_callback(function(cb) saved = cb end))
    -- and called at once, it never yields
    same({ "now" }, ref_callback(function(cb, v) cb(v) end, "now"))
end

function t.test_resume_passes_values_both_ways()
    local seen = {}
    local finished
    local r = neosocksd.async(function(ok, ...)
        finished = table.pack(ok, ...)
    end, function(a)
        seen[#seen + 1] = a
        local b, c = coroutine.yield("ignored: started by the daemon")
        seen[#seen + 1] = b .. c
        local d = coroutine.yield("second", "yield")
        seen[#seen + 1] = d
        await.sleep(0.01) -- waiting in await inside a resumed routine
        seen[#seen + 1] = "slept"
        return "end", #seen
    end, "first")
    eq(coroutine.status(r), "suspended", "after its bare yield")
    same({ true, "second", "yield" }, coroutine.resume(r, "x", "y"))
    -- it now waits in await.sleep: the resume returns with nothing
    same({ true }, coroutine.resume(r, "third"))
    same({ "first", "xy", "third" }, table.unpack(seen))
    eq(finished, nil, "still sleeping")
    await.sleep(0.05)
    same({ "first", "xy", "third", "slept" }, table.unpack(seen))
    same({ true, "end", 4, n = 3 }, table.unpack(finished, 1, finished.n))
end

function t.test_error_after_resume_goes_to_finish()
    local finished
    local r = neosocksd.async(function(ok, err)
        finished = { ok, err }
    end, function()
        coroutine.yield()
        error("after resume", 0)
    end)
    same({ true }, coroutine.resume(r))
    same({ false, "after resume" }, finished[1], finished[2])
    eq(coroutine.status(r), "dead", "ended")
end

function t.test_routine_waiting_in_await_is_not_resumed()
    local woke = 0
    local r = neosocksd.async(nil, function()
        await.sleep(0.02)
        woke = woke + 1
    end)
    local ok, err = coroutine.resume(r)
    eq(ok, false, "refused")
    eq(err, "cannot resume an asynchronous routine waiting in await")
    eq(woke, 0, "it did not run early")
    await.sleep(0.06)
    eq(woke, 1, "it woke from its own sleep, once")
end

function t.test_running_routine_is_not_resumed()
    local me = coroutine.running()
    local got
    ref_async(function()
        got = table.pack(coroutine.resume(me))
    end)
    same({ false, "cannot resume non-suspended coroutine" }, got[1], got[2])
    same({ false, "cannot resume non-suspended coroutine" }, coroutine.resume(me))
end

function t.test_routine_cannot_be_closed()
    local r = neosocksd.async(nil, function() coroutine.yield() end)
    raises("cannot close an asynchronous routine", coroutine.close, r)
    raises("cannot close an asynchronous routine", coroutine.close,
        coroutine.running())
    same({ true }, coroutine.resume(r)) -- and it ends normally
    eq(coroutine.status(r), "dead", "ended")
end

function t.test_script_coroutines_unchanged()
    local co = coroutine.create(function(a)
        local b = coroutine.yield(a + 1)
        return b * 2
    end)
    same({ true, 2 }, coroutine.resume(co, 1))
    same({ true, 10 }, coroutine.resume(co, 5))
    same({ false, "cannot resume dead coroutine" }, coroutine.resume(co))
    local co2 = coroutine.create(function() coroutine.yield() end)
    coroutine.resume(co2)
    same({ true }, coroutine.close(co2))
    eq(coroutine.status(co2), "dead", "closed")
    local w = coroutine.wrap(function() coroutine.yield(7) return 8 end)
    eq(w(), 7, "wrap")
    eq(w(), 8, "wrap again")
end

return t
