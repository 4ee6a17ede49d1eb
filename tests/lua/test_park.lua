-- await.park(key) / neosocksd.unpark(key): a routine waits until something
-- else wakes it; the wake arrives on a later loop iteration.
require("libruleset") -- async() and await.callback
local t = {}

local function check(cond, msg)
    if not cond then
        error(msg or "check failed", 2)
    end
end

function t.test_park_and_unpark()
    local key, other = {}, {}
    local log = {}
    local function waiter(name, k)
        return function()
            log[#log + 1] = name .. " parks"
            await.park(k)
            log[#log + 1] = name .. " woke"
        end
    end
    neosocksd.async(nil, waiter("a", key))
    neosocksd.async(nil, waiter("b", key))
    neosocksd.async(nil, waiter("c", other))
    check(#log == 3, "all three parked at once: " .. table.concat(log, ","))
    -- nothing wakes them by itself
    await.sleep(0.01)
    check(#log == 3, "still parked after a while: " .. table.concat(log, ","))
    -- unpark counts the routines it wakes, and the wake is not immediate
    check(neosocksd.unpark(key) == 2, "two parked on key")
    check(#log == 3, "woken later, not inside unpark")
    check(neosocksd.unpark(key) == 0, "already being woken")
    await.sleep(0)
    await.sleep(0)
    local woke = {}
    for _, l in ipairs(log) do woke[l] = true end
    check(woke["a woke"] and woke["b woke"], "both woke: " .. table.concat(log, ","))
    check(not woke["c woke"], "the other key's routine did not")
    check(neosocksd.unpark(other) == 1, "the last one")
    await.sleep(0)
    await.sleep(0)
    check(log[#log] == "c woke", "and it woke")
    check(neosocksd.unpark({}) == 0, "an unknown key wakes nobody")
end

function t.test_park_outside_routine_and_bad_key()
    -- the test body runs in a routine: a bad key is the error here
    local ok, err = pcall(await.park, 42)
    check(not ok and tostring(err):find("table or userdata expected"), tostring(err))
    local co = coroutine.create(function() return await.park({}) end)
    local ok2, err2 = coroutine.resume(co)
    check(not ok2 and tostring(err2):find("not in asynchronous routine"), tostring(err2))
end

function t.test_futures_and_callbacks_are_woken()
    -- a future resolved by a routine that itself waits on a timer
    local fut = async(function(x) await.sleep(0.01) return x * 2 end, 21)
    local ok, v = fut:get()
    check(ok == true and v == 42, "future result")
    -- several routines waiting on one future
    local fut2 = async(function() await.sleep(0.01) return "shared" end)
    local got = {}
    for i = 1, 3 do
        neosocksd.async(nil, function() got[i] = select(2, fut2:get()) end)
    end
    check(select(2, fut2:get()) == "shared", "shared result")
    await.sleep(0)
    check(got[1] == "shared" and got[2] == "shared" and got[3] == "shared",
          "every waiter woke")
    -- await.callback whose callback comes later, from another routine
    local saved
    neosocksd.async(nil, function()
        await.sleep(0.01)
        saved("late", 2)
    end)
    local a, b = await.callback(function(cb) saved = cb end)
    check(a == "late" and b == 2, "callback values")
end

return t
