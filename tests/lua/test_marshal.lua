-- Tests of the global marshal(...) (src/ruleset/lib_marshal.c).
local t = require("testlib")
local T = {}

-- Load marshalled text back, in an empty environment: the text must not
-- need any global.
local function unmarshal(s)
	local f, err = load("return " .. s, "=(unmarshal)", "t", {})
	t.ok(f, err)
	return table.pack(f())
end

-- marshal(v) must load back as exactly v (deep, with number subtypes).
local function roundtrip(v, msg)
	local s = marshal(v)
	local r = unmarshal(s)
	t.eq(r.n, 1, msg)
	t.eq(r[1], v, (msg or "") .. " via " .. s)
	return s
end

local function bits(x)
	return string.pack("<d", x)
end

function T.test_reference_sample()
	t.eq(marshal({ 1, 2, x = "y" }, 3.5, -1, 1e15, "a\nb", nil, true),
		'{1,2,["x"]="y",},0x1.cp+1,-1,0x1.c6bf52634p+49,"a\\\nb",nil,true')
end

function T.test_seed_sample()
	t.eq(marshal("a", { "b", ["c"] = "d" }), '"a",{"b",["c"]="d",}')
end

function T.test_arguments()
	t.eq(marshal(), "")
	t.eq(marshal(nil), "nil")
	t.eq(marshal(nil, nil), "nil,nil")
	t.eq(marshal(1, nil), "1,nil")
	t.eq(marshal(true, false), "true,false")
	t.eq(marshal("", {}), '"",{}')
	local r = unmarshal(marshal(1, nil, "x", nil))
	t.eq(r, { n = 4, 1, nil, "x", nil })
end

function T.test_integers_exact()
	local cases = {
		{ 0, "0" }, { 1, "1" }, { -1, "-1" }, { 42, "42" },
		{ 999999999999, "999999999999" },
		{ -999999999999, "-999999999999" },
		{ 1000000000000, "0xe8d4a51000" },
		{ -1000000000000, "-0xe8d4a51000" },
		{ math.maxinteger, "0x7fffffffffffffff" },
		{ math.mininteger, "0x8000000000000000" },
		{ math.mininteger + 1, "-0x7fffffffffffffff" },
		{ 0x100000000, "4294967296" },
	}
	for _, c in ipairs(cases) do
		t.eq(marshal(c[1]), c[2], tostring(c[1]))
	end
end

function T.test_integers_roundtrip()
	local xs = { 0, 1, -1, 999999999999, 1000000000000, -999999999999,
		-1000000000000, math.maxinteger, math.mininteger,
		math.maxinteger - 1, math.mininteger + 1 }
	for i = 0, 62 do
		xs[#xs + 1] = 1 << i
		xs[#xs + 1] = -(1 << i)
		xs[#xs + 1] = (1 << i) - 1
		xs[#xs + 1] = (1 << i) + 1
	end
	for _, x in ipairs(xs) do
		local s = roundtrip(x, tostring(x))
		t.eq(math.type(unmarshal(s)[1]), "integer", s)
	end
end

function T.test_floats_exact()
	local cases = {
		{ 3.5, "0x1.cp+1" },
		{ 1e15, "0x1.c6bf52634p+49" },
		{ 0.1, "0x1.999999999999ap-4" },
		{ 1.0, "0x1p+0" },
		{ -2.5, "-0x1.4p+1" },
		{ 5e-324, "0x1p-1074" }, -- subnormals are normalised
		{ -5e-324, "-0x1p-1074" },
		{ 2.2250738585072014e-308 / 3, string.format("%s", "0x1.5555555555554p-1024") },
		{ 1e300, string.format("%a", 1e300) },
		{ 2.0 ^ 63, "0x1p+63" },
		{ -0.0, "-0.0" }, -- keeps its sign, as the reference writes it
		{ 0.0, "0" },
		{ 0 / 0, "0/0" },
		{ 1 / 0, "1/0" },
		{ -1 / 0, "-1/0" },
	}
	for _, c in ipairs(cases) do
		t.eq(marshal(c[1]), c[2], string.format("%a", c[1]))
	end
end

function T.test_array_part_whatever_the_storage()
	-- integer keys in the hash part still come out positionally first,
	-- then the rest in next() order, as the reference writes them
	local h = {}
	h[3] = "c"
	h[2] = "b"
	h[1] = "a"
	t.eq(marshal(h), '{"a","b","c",}')
	local g = { 1, 2 }
	g[4] = 4 -- not contiguous: explicit
	t.eq(marshal(g), "{1,2,[4]=4,}")
end

function T.test_floats_roundtrip()
	local xs = { 0.1, -0.1, 1e300, -1e300, 5e-324, -5e-324, 2.2250738585072014e-308,
		1.7976931348623157e308, 3.5, 1e15, 1e12, 999999999999.0, 1.0, -1.0,
		2.0 ^ 63, -2.0 ^ 63, 2.0 ^ 53 + 2, math.pi, -math.pi, 1 / 3 }
	for _, x in ipairs(xs) do
		local s = marshal(x)
		local y = unmarshal(s)[1]
		t.eq(math.type(y), "float", s)
		t.eq(bits(y), bits(x), s)
	end
end

function T.test_zeros_roundtrip()
	-- regression (issue 12): marshal(-0.0) wrote "0" and the sign was
	-- lost; it is "-0.0", a float that keeps it. 0.0 is "0" (an integer)
	local y = unmarshal(marshal(-0.0))[1]
	t.ok(y == 0 and math.type(y) == "float")
	t.eq(1 / y, -math.huge)
	y = unmarshal(marshal(0.0))[1]
	t.ok(y == 0.0)
	t.eq(math.type(y), "integer")
	t.eq(1 / y, math.huge)
end

function T.test_nan_inf_roundtrip()
	local r = unmarshal(marshal(0 / 0, 1 / 0, -1 / 0, { 0 / 0 }))
	t.ok(r[1] ~= r[1], "nan")
	t.eq(r[2], math.huge)
	t.eq(r[3], -math.huge)
	t.ok(r[4][1] ~= r[4][1], "nan in a table")
end

function T.test_strings_escapes()
	t.eq(marshal('say "hi"'), '"say \\"hi\\""')
	t.eq(marshal("back\\slash"), '"back\\\\slash"')
	t.eq(marshal("a\nb"), '"a\\\nb"')
	t.eq(marshal("\0\1\r\t\27\31\127"), '"\\000\\001\\013\\009\\027\\031\\127"')
	-- three digits always, so a following digit cannot join the escape
	t.eq(marshal("\0" .. "12"), '"\\00012"')
	t.eq(marshal("\128\255 ~"), '"\128\255 ~"')
	t.eq(marshal("h\195\169llo \226\152\131"), '"h\195\169llo \226\152\131"')
end

function T.test_strings_every_byte()
	local all = {}
	for i = 0, 255 do
		all[#all + 1] = string.char(i)
	end
	local s = table.concat(all)
	roundtrip(s, "bytes 0..255")
	roundtrip(s:reverse(), "bytes 255..0")
	for i = 0, 255 do
		local c = string.char(i)
		roundtrip(c, "byte " .. i)
		roundtrip(c .. "0" .. c .. c .. "\n\r" .. c, "mixed " .. i)
	end
	-- no raw control byte may remain: CR after backslash-LF would be eaten
	local m = marshal(s)
	t.ok(not m:find("[%z\1-\9\11-\31\127]"), "raw control byte in output")
	roundtrip("\n\r\r\n\n", "line ends")
end

function T.test_strings_large()
	local s = string.rep("0123456789\n\0", 20000)
	t.eq(#unmarshal(marshal(s))[1], #s)
	roundtrip(s)
end

function T.test_tables_exact()
	t.eq(marshal({}), "{}")
	t.eq(marshal({ {} }), "{{},}")
	t.eq(marshal({ 10, 20, 30 }), "{10,20,30,}")
	t.eq(marshal({ 1, nil, 3 }), "{1,[3]=3,}")
	t.eq(marshal({ x = 1 }), '{["x"]=1,}')
	t.eq(marshal({ [true] = false }), "{[true]=false,}")
	t.eq(marshal({ [1.5] = "f" }), '{[0x1.8p+0]="f",}')
	t.eq(marshal({ [-1] = 0 }), "{[-1]=0,}")
	t.eq(marshal({ [0] = 0 }), "{[0]=0,}")
	t.eq(marshal({ [2.0] = "two" }), '{[2]="two",}', "integral float keys are integers")
	t.eq(marshal({ { 1, { 2 } }, "s" }), '{{1,{2,},},"s",}')
end

function T.test_tables_roundtrip()
	roundtrip({})
	roundtrip({ 1, 2, 3, "x", true, false, 1.5 })
	roundtrip({ 1, nil, 3, nil, 5 })
	roundtrip({ [3] = "c", [2] = "b" })
	roundtrip({ a = { b = { c = { d = "deep" } } } })
	roundtrip({ [true] = 1, [false] = 0, [1.25] = "q", [-7] = "n", [0] = "z" })
	roundtrip({ [math.mininteger] = 1, [math.maxinteger] = 2, [1e15] = 3 })
	roundtrip({ ["\0key\n"] = "v\0", [""] = "" })
	roundtrip({ 1, 2, x = { 3, 4, y = {} }, [10] = 10, [-0.5] = false })
	local big = {}
	for i = 1, 10000 do
		big[i] = i * 3
	end
	big.extra = "yes"
	roundtrip(big, "10000 elements")
end

-- Integer keys in the hash part come in hash order: positional elements
-- are numbered by appearance, so the result is exact in every order.
function T.test_hash_integer_keys()
	for n = 1, 40 do
		local tab = {}
		for i = n, 1, -1 do
			tab[i] = "v" .. i
		end
		tab.k = "x"
		tab[n + 2] = "gap"
		roundtrip(tab, "n=" .. n)
	end
	local tab = { [1] = "a", [2] = "b", [3] = "c" }
	roundtrip(tab)
end

function T.test_table_keys()
	local r = unmarshal(marshal({ [{ 1, 2 }] = "tk" }))[1]
	local k, v = next(r)
	t.eq(k, { 1, 2 })
	t.eq(v, "tk")
	t.eq(next(r, k), nil)
end

function T.test_shared_subtables()
	local s = { 1 }
	t.eq(marshal({ s, s }), "{{1,},{1,},}")
	t.eq(marshal(s, s), "{1,},{1,}")
	local r = unmarshal(marshal({ a = s, b = { s } }))[1]
	t.eq(r, { a = { 1 }, b = { { 1 } } })
	t.ok(r.a ~= r.b[1], "shared tables come back as copies")
	local k = { "key" }
	roundtrip({ [1] = k, [2] = { k, k } })
end

function T.test_cycles()
	local msg = "circular referenced table is not marshallable"
	local a = {}
	a.self = a
	t.plain_raises(marshal, msg, a)
	local b = { {} }
	b[1][1] = b
	t.plain_raises(marshal, msg, b)
	local c = {}
	c[c] = 1
	t.plain_raises(marshal, msg, c)
	local d = { 1, 2, { 3, { 4, {} } } }
	d[3][2][2].up = d[3]
	t.plain_raises(marshal, msg, "x", d)
	-- no state is left behind: the same tables marshal after a fix
	a.self = nil
	t.eq(marshal(a), "{}")
	d[3][2][2].up = nil
	t.eq(marshal(d), "{1,2,{3,{4,{},},},}")
end

function T.test_unmarshallable()
	local f = function() end
	local e = t.plain_raises(marshal, tostring(f) .. " is not marshallable", f)
	t.ok(e:match("function: "), e)
	local co = coroutine.create(f)
	t.plain_raises(marshal, tostring(co) .. " is not marshallable", co)
	local reg = regex.compile("x")
	t.plain_raises(marshal, tostring(reg) .. " is not marshallable", reg)
	t.plain_raises(marshal, tostring(print) .. " is not marshallable", 1, { 2, { print } })
	t.plain_raises(marshal, " is not marshallable", { [f] = 1 })
	-- __tostring names the value in the message
	local named = setmetatable({}, { __tostring = function() return "NAMED" end })
	t.eq(marshal(named), "{}", "tables with __tostring are still tables")
	local u = setmetatable({}, { __index = function() return f end })
	t.eq(marshal(u), "{}")
end

local function nest(depth)
	local root = {}
	local cur = root
	for _ = 2, depth do
		local n = {}
		cur[1] = n
		cur = n
	end
	return root
end

function T.test_depth_limit()
	local s = marshal(nest(100))
	t.eq(#s, 100 * 3 - 1)
	t.eq(s:sub(1, 4), "{{{{")
	-- the deepest accepted text still loads, even from a coroutine
	local co = coroutine.wrap(function()
		return unmarshal(s)[1]
	end)
	t.eq(co(), nest(100))
	t.raises(marshal, "nested deeper than 100 levels is not marshallable", nest(101))
	t.raises(marshal, "nested deeper than 100 levels", { [nest(100)] = true })
	t.raises(marshal, "nested deeper", nest(10000))
end

function T.test_metatables_ignored()
	local mt = {
		__index = function() error("no __index") end,
		__pairs = function() error("no __pairs") end,
		__len = function() return 99 end,
		__newindex = function() error("no __newindex") end,
	}
	local v = setmetatable({ 1, x = 2 }, mt)
	local s = marshal(v)
	t.ok(s == '{1,["x"]=2,}', s)
	t.eq(unmarshal(marshal({ v, v }))[1], { { 1, x = 2 }, { 1, x = 2 } })
end

function T.test_many_values()
	local args = {}
	for i = 1, 200 do
		args[i] = i
	end
	local s = marshal(table.unpack(args))
	t.eq(unmarshal(s), table.pack(table.unpack(args)))
end

function T.test_errors_position()
	-- called from Lua, errors carry the caller's position like any C function
	local ok, err = pcall(function()
		local s = marshal(print)
		return s
	end)
	t.ok(not ok)
	t.ok(err:match("^.-:%d+: function: .* is not marshallable$"), err)
end

return T
