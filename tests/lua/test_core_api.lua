-- The neosocksd.* and await.* functions that the other files use only in
-- passing: resolve (inside and outside routines), stats, traceback, the
-- address helpers, and several lookups in flight at once through the front.
local t = require("testlib")
local T = {}

function T.test_await_resolve_through_the_front()
	-- the front answers from the /etc/hosts it read at start; no query
	-- leaves the machine
	local addr = await.resolve("localhost")
	t.ok(addr == "127.0.0.1" or addr == "::1", "localhost: " .. tostring(addr))
	-- literals come back at once, as they are
	t.eq(await.resolve("192.0.2.7"), "192.0.2.7")
	t.eq(await.resolve("2001:db8::1"), "2001:db8::1")
	-- names the front must not look up
	t.eq(await.resolve(""), nil)
	t.eq(await.resolve(("a"):rep(256)), nil)
end

function T.test_resolve_is_await_resolve_inside_a_routine()
	local addr = neosocksd.resolve("localhost")
	t.ok(addr == "127.0.0.1" or addr == "::1", "localhost: " .. tostring(addr))
end

function T.test_resolve_outside_a_routine_answers_synchronously()
	-- regression (issue 12): outside an asynchronous routine (here a
	-- coroutine of the script's own) a name returned nothing; it is
	-- resolved by a bounded round trip to the front, as the reference
	-- answers (synchronously). Literals pass as they are.
	local co = coroutine.wrap(function()
		return neosocksd.resolve("10.1.2.3"), neosocksd.resolve("::1"),
			neosocksd.resolve("localhost"),
			neosocksd.resolve("bad%name")
	end)
	local v4, v6, name, bad = co()
	t.eq(v4, "10.1.2.3")
	t.eq(v6, "::1")
	t.ok(name == "127.0.0.1" or name == "::1", "localhost: " .. tostring(name))
	t.eq(bad, nil)
end

function T.test_lookups_in_flight_at_once()
	-- several routines wait on the front together; each gets its answer
	local got, pending = {}, 0
	for i = 1, 8 do
		pending = pending + 1
		neosocksd.async(function(ok, addr)
			got[i] = ok and addr or ("error: " .. tostring(addr))
			pending = pending - 1
		end, await.resolve, "localhost")
	end
	t.ok(pending > 0, "the lookups wait for the front")
	for _ = 1, 3000 do -- at most 30 s: a slow machine's front answers late
		if pending == 0 then
			break
		end
		await.sleep(0.01)
	end
	t.eq(pending, 0, "every lookup answered")
	for i = 1, 8 do
		t.ok(got[i] == "127.0.0.1" or got[i] == "::1", tostring(got[i]))
	end
end

function T.test_stats_fields()
	local s = neosocksd.stats()
	for _, k in ipairs({ "bytes_allocated", "num_object", "num_thread_active",
		"num_thread_peak", "num_request_pending" }) do
		t.eq(math.type(s[k]), "integer", k)
		t.ok(s[k] >= 0, k)
	end
	-- this test runs in a routine: at least one is active
	t.ok(s.num_thread_active >= 1, "active routines")
	t.ok(s.num_thread_peak >= s.num_thread_active, "peak >= active")
	-- the heap figure follows allocation
	local keep = {}
	for i = 1, 20000 do
		keep[i] = { i }
	end
	t.ok(neosocksd.stats().bytes_allocated > s.bytes_allocated, "heap grew")
	t.ok(#keep == 20000)
	-- a new table each call
	t.ok(neosocksd.stats() ~= neosocksd.stats())
end

function T.test_traceback()
	local tb = neosocksd.traceback("boom")
	t.eq(type(tb), "string")
	t.eq(tb:sub(1, 4), "boom")
	t.ok(tb:find("stack traceback:", 1, true), tb)
	-- as an xpcall handler it receives the error
	local ok, msg = xpcall(function()
		error("deliberate failure")
	end, neosocksd.traceback)
	t.eq(ok, false)
	t.ok(msg:find("deliberate failure", 1, true), msg)
	t.ok(msg:find("stack traceback:", 1, true), msg)
	-- no message: the traceback alone
	t.ok(neosocksd.traceback():find("stack traceback:", 1, true))
end

function T.test_splithostport()
	t.eq({ neosocksd.splithostport("example.org:443") }, { "example.org", "443" })
	t.eq({ neosocksd.splithostport("[::1]:80") }, { "::1", "80" })
	t.eq({ neosocksd.splithostport("10.0.0.1:8080") }, { "10.0.0.1", "8080" })
	t.eq({ neosocksd.splithostport(":") }, { "", "" })
	t.eq({ neosocksd.splithostport("a:") }, { "a", "" })
	t.raises(neosocksd.splithostport, "invalid address", "no-port-here")
	t.raises(neosocksd.splithostport, "address too long", ("a"):rep(300) .. ":1")
end

function T.test_parse_ip()
	t.eq(neosocksd.parse_ipv4("10.0.0.1"), 0x0a000001)
	t.eq(neosocksd.parse_ipv4("255.255.255.255"), 0xffffffff)
	t.eq(neosocksd.parse_ipv4("10.0.0"), nil)
	t.eq(neosocksd.parse_ipv4("::1"), nil)
	t.eq({ neosocksd.parse_ipv6("::1") }, { 0, 1 })
	t.eq({ neosocksd.parse_ipv6("2001:db8::ff") }, { 0x20010db800000000, 0xff })
	-- the high bit makes the integer negative
	t.eq({ neosocksd.parse_ipv6("ffff::") }, { math.mininteger + 0x7fff000000000000, 0 })
	t.eq(neosocksd.parse_ipv6("10.0.0.1"), nil)
end

function T.test_now_is_wall_clock()
	local now = neosocksd.now()
	t.eq(math.type(now), "float")
	t.ok(math.abs(now - os.time()) < 5, "within seconds of os.time")
end

return T
