-- Tests of the regex library (src/ruleset/lib_regex.c).
local t = require("testlib")
local T = {}

-- All results of f(...) as a packed table.
local function all(f, ...)
	return table.pack(f(...))
end

local function none(f, ...)
	t.eq(select("#", f(...)), 0, "expected no results")
end

-- Every tuple an iterator yields.
local function collect(iter)
	local out = {}
	while true do
		local r = table.pack(iter())
		if r.n == 0 or r[1] == nil then
			return out
		end
		r.n = nil
		out[#out + 1] = r
	end
end

function T.test_constants()
	t.eq(math.type(regex.EXTENDED), "integer")
	t.eq(math.type(regex.ICASE), "integer")
	t.eq(math.type(regex.NEWLINE), "integer")
	t.eq(math.type(regex.NOSUB), "integer")
	local flags = { regex.EXTENDED, regex.ICASE, regex.NEWLINE, regex.NOSUB }
	for i = 1, #flags do
		t.ok(flags[i] ~= 0)
		for j = i + 1, #flags do
			t.eq(flags[i] & flags[j], 0, "flags overlap")
		end
	end
end

function T.test_compile()
	local reg = regex.compile([[\.example\.(com|org)$]])
	t.eq(type(reg), "userdata")
	t.ok(tostring(reg):match("^regex: "), tostring(reg))
	t.eq(type(reg.find), "function")
	t.eq(type(reg.match), "function")
	t.eq(type(reg.gmatch), "function")
end

function T.test_seed_example()
	local reg = regex.compile([[\.example\.(com|org)$]])
	t.eq(all(reg.find, reg, "www.example.com"), { n = 2, 4, 15 })
	t.eq(all(reg.match, reg, "www.example.org"), { n = 2, ".example.org", "org" })
	none(reg.find, reg, "www.example.net")
	none(reg.match, reg, "example.com.evil")
	local seen = {}
	for m, sub1 in regex.compile("([a-z]+)\\.example"):gmatch("a.example b.example") do
		seen[#seen + 1] = m .. "/" .. sub1
	end
	t.eq(seen, { "a.example/a", "b.example/b" })
end

function T.test_module_functions()
	local reg = regex.compile("b+")
	t.eq(all(regex.find, reg, "abbbc"), all(reg.find, reg, "abbbc"))
	t.eq(all(regex.find, reg, "abbbc", 3), { n = 2, 3, 4 })
	t.eq(all(regex.match, reg, "abbbc"), { n = 1, "bbb" })
	t.eq(collect(regex.gmatch(reg, "b-bb-bbb")), { { "b" }, { "bb" }, { "bbb" } })
	t.eq(regex.find, reg.find)
end

function T.test_find_empty_match()
	local reg = regex.compile("x*")
	t.eq(all(reg.find, reg, "abc"), { n = 2, 1, 0 })
	t.eq(all(reg.find, reg, "abc", 2), { n = 2, 2, 1 })
	t.eq(all(reg.find, reg, ""), { n = 2, 1, 0 })
end

function T.test_match_captures()
	local reg = regex.compile("(a)(b)?(c)")
	t.eq(all(reg.match, reg, "xac"), { n = 4, "ac", "a", nil, "c" })
	t.eq(all(reg.match, reg, "abc"), { n = 4, "abc", "a", "b", "c" })
	-- alternation: the group of the other branch did not participate
	local alt = regex.compile("(x)|(y)")
	t.eq(all(alt.match, alt, "y"), { n = 3, "y", nil, "y" })
	-- a group that matched the empty string is "", not nil
	local e = regex.compile("a(b*)c")
	t.eq(all(e.match, e, "ac"), { n = 2, "ac", "" })
	local nogroup = regex.compile("[0-9]+")
	t.eq(all(nogroup.match, nogroup, "ab123c"), { n = 1, "123" })
end

function T.test_many_groups()
	local pat = string.rep("(.)", 20)
	local reg = regex.compile(pat)
	local s = "abcdefghijklmnopqrstuvwxyz"
	local r = all(reg.match, reg, s)
	t.eq(r.n, 21)
	t.eq(r[1], s:sub(1, 20))
	for i = 1, 20 do
		t.eq(r[i + 1], s:sub(i, i))
	end
	local n = 0
	for m, a, b in reg:gmatch(s .. s) do
		n = n + 1
		t.eq(#m, 20)
		t.ok(a and b)
	end
	t.eq(n, 2)
end

function T.test_gmatch()
	local reg = regex.compile("[0-9]+")
	t.eq(collect(reg:gmatch("a1b22c333")), { { "1" }, { "22" }, { "333" } })
	t.eq(collect(reg:gmatch("none")), {})
	t.eq(collect(reg:gmatch("")), {})
	local kv = regex.compile("([a-z]+)=([0-9]+)")
	t.eq(collect(kv:gmatch("a=1, bb=22,c=x")), { { "a=1", "a", "1" }, { "bb=22", "bb", "22" } })
	-- the iterator stays finished
	local it = reg:gmatch("1")
	t.eq(it(), "1")
	t.eq(select("#", it()), 0)
	t.eq(select("#", it()), 0)
end

-- After an empty match gmatch moves on by one byte; after a non-empty one
-- it resumes at the match's end (so an empty match may follow right
-- there, unlike string.gmatch in Lua 5.4).
function T.test_gmatch_empty_matches()
	local reg = regex.compile("x*")
	t.eq(collect(reg:gmatch("abc")), { { "" }, { "" }, { "" }, { "" } })
	t.eq(collect(reg:gmatch("")), { { "" } })
	local a = regex.compile("a*")
	t.eq(collect(a:gmatch("baaac")), { { "" }, { "aaa" }, { "" }, { "" } })
	local opt = regex.compile("(b)?")
	t.eq(collect(opt:gmatch("ab")), { { "", nil }, { "b", "b" }, { "", nil } })
end

function T.test_gmatch_init()
	local reg = regex.compile("[0-9]")
	t.eq(collect(reg:gmatch("1a2b3", 2)), { { "2" }, { "3" } })
	t.eq(collect(reg:gmatch("1a2b3", -1)), { { "3" } })
	t.eq(collect(reg:gmatch("1a2b3", -100)), { { "1" }, { "2" }, { "3" } })
	t.eq(collect(reg:gmatch("1a2b3", 0)), { { "1" }, { "2" }, { "3" } })
	t.eq(collect(reg:gmatch("1a2b3", 6)), {})
	t.eq(collect(reg:gmatch("1a2b3", 7)), {})
	t.eq(collect(reg:gmatch("1a2b3", math.maxinteger)), {})
	t.eq(collect(reg:gmatch("1a2b3", math.mininteger)), { { "1" }, { "2" }, { "3" } })
	local e = regex.compile("x*")
	t.eq(collect(e:gmatch("ab", 3)), { { "" } })
	t.eq(collect(e:gmatch("ab", 4)), {})
end

-- init as in string.find
function T.test_init()
	local reg = regex.compile("a")
	local s = "aXa"
	t.eq(all(reg.find, reg, s), { n = 2, 1, 1 })
	t.eq(all(reg.find, reg, s, 1), { n = 2, 1, 1 })
	t.eq(all(reg.find, reg, s, 2), { n = 2, 3, 3 })
	t.eq(all(reg.find, reg, s, 3), { n = 2, 3, 3 })
	none(reg.find, reg, s, 4)
	none(reg.find, reg, s, 5)
	none(reg.find, reg, s, math.maxinteger)
	t.eq(all(reg.find, reg, s, 0), { n = 2, 1, 1 })
	t.eq(all(reg.find, reg, s, -1), { n = 2, 3, 3 })
	t.eq(all(reg.find, reg, s, -2), { n = 2, 3, 3 })
	t.eq(all(reg.find, reg, s, -3), { n = 2, 1, 1 })
	t.eq(all(reg.find, reg, s, -4), { n = 2, 1, 1 })
	t.eq(all(reg.find, reg, s, math.mininteger), { n = 2, 1, 1 })
	t.eq(all(reg.match, reg, s, -1), { n = 1, "a" })
	none(reg.match, reg, s, 4)
	-- len + 1 is a valid start for an empty match, as in string.find
	local e = regex.compile("$")
	t.eq(all(e.find, e, "abc", 4), { n = 2, 4, 3 })
	t.eq(all(e.find, e, "abc", 4), all(string.find, "abc", "$", 4))
	none(e.find, e, "abc", 5)
	t.eq(select("#", string.find("abc", "$", 5)), 1, "string.find returns fail there")
	t.raises(reg.find, "number expected", reg, s, "x")
	t.raises(reg.find, "number has no integer representation", reg, s, 1.5)
end

-- Searching from init > 1 keeps the bytes before it as context.
function T.test_notbol()
	local reg = regex.compile("^b")
	none(reg.find, reg, "ab", 2)
	t.eq(all(reg.find, reg, "b", 1), { n = 2, 1, 1 })
	-- with NEWLINE (the default), ^ matches after a newline
	t.eq(all(reg.find, reg, "a\nb", 3), { n = 2, 3, 3 })
	local plain = regex.compile("^b", regex.EXTENDED)
	none(plain.find, plain, "a\nb", 3)
	none(plain.find, plain, "a\nb")
	t.eq(collect(regex.compile("^[a-z]"):gmatch("ab\ncd")), { { "a" }, { "c" } })
end

function T.test_newline_semantics()
	local s = "one\ntwo\nthree"
	local reg = regex.compile("^two$")
	t.eq(all(reg.find, reg, s), { n = 2, 5, 7 })
	local ext = regex.compile("^two$", regex.EXTENDED)
	none(ext.find, ext, s)
	t.eq(all(ext.find, ext, "two"), { n = 2, 1, 3 })
	-- '.' and [^...] do not match a newline with NEWLINE
	local dot = regex.compile("e.t")
	none(dot.find, dot, "e\nt")
	local dot2 = regex.compile("e.t", regex.EXTENDED)
	t.eq(all(dot2.find, dot2, "e\nt"), { n = 2, 1, 3 })
	local neg = regex.compile("e[^x]t")
	none(neg.find, neg, "e\nt")
	local ends = regex.compile("[a-z]+$")
	t.eq(collect(ends:gmatch(s)), { { "one" }, { "two" }, { "three" } })
end

function T.test_icase()
	local reg = regex.compile("abc", regex.EXTENDED | regex.ICASE)
	t.eq(all(reg.find, reg, "xABC"), { n = 2, 2, 4 })
	t.eq(all(reg.match, reg, "xAbC"), { n = 1, "AbC" })
	local cs = regex.compile("abc")
	none(cs.find, cs, "xABC")
	local icnl = regex.compile("^B", regex.EXTENDED | regex.ICASE | regex.NEWLINE)
	t.eq(all(icnl.find, icnl, "a\nb"), { n = 2, 3, 3 })
end

function T.test_nosub_stripped()
	local reg = regex.compile("(a)(b)", regex.EXTENDED | regex.NOSUB)
	t.eq(all(reg.match, reg, "xab"), { n = 3, "ab", "a", "b" })
	t.eq(all(reg.find, reg, "xab"), { n = 2, 2, 3 })
	t.eq(collect(reg:gmatch("abab")), { { "ab", "a", "b" }, { "ab", "a", "b" } })
end

function T.test_basic_syntax()
	-- cflags 0: POSIX basic regular expressions
	local reg = regex.compile("a\\(b\\)c", 0)
	t.eq(all(reg.match, reg, "abc"), { n = 2, "abc", "b" })
	local lit = regex.compile("(a)+", 0)
	t.eq(all(lit.match, lit, "x(a)+"), { n = 1, "(a)+" })
end

function T.test_nul_in_subject()
	local s = "a\0b\0c"
	local b = regex.compile("b")
	t.eq(all(b.find, b, s), { n = 2, 3, 3 })
	local c = regex.compile("c$")
	t.eq(all(c.find, c, s), { n = 2, 5, 5 })
	local br = regex.compile("a[^x]b")
	t.eq(all(br.match, br, s), { n = 1, "a\0b" })
	-- POSIX '.' does not match NUL
	local dot = regex.compile("a.b")
	none(dot.find, dot, s)
	t.eq(collect(regex.compile("[a-c]"):gmatch(s)), { { "a" }, { "b" }, { "c" } })
	local parts = collect(regex.compile("[^\1-\255]+"):gmatch(s))
	t.eq(parts, { { "\0" }, { "\0" } })
	-- matching covers the whole Lua string, not up to the first NUL
	local tail = regex.compile("c")
	t.eq(all(tail.find, tail, "\0\0\0c"), { n = 2, 4, 4 })
end

function T.test_subject_coercion()
	local reg = regex.compile("[0-9]+")
	t.eq(all(reg.find, reg, 12345), { n = 2, 1, 5 })
	t.raises(reg.find, "string expected", reg, {})
	t.raises(reg.find, "string expected", reg)
	t.raises(reg.match, "string expected", reg, nil)
	t.raises(reg.gmatch, "string expected", reg, true)
end

function T.test_pattern_errors()
	t.raises(regex.compile, "NUL", "a\0b")
	local e = t.raises(regex.compile, "Unmatched %( or \\%(", "a(")
	t.ok(not e:find("NUL"), e)
	t.raises(regex.compile, "Unmatched %[", "[a")
	t.raises(regex.compile, "Invalid preceding regular expression", "*a")
	t.raises(regex.compile, "Invalid range end", "[z-a]")
	t.raises(regex.compile, "Invalid back reference", "(a)\\2")
	t.raises(regex.compile, "string expected", nil)
	t.raises(regex.compile, "number expected", "a", "x")
	-- errors name the caller's line, like other C functions
	local ok, err = pcall(function()
		local r = regex.compile("(")
		return r
	end)
	t.ok(not ok)
	t.ok(err:match("^.-:%d+: "), err)
end

function T.test_bad_self()
	t.raises(regex.find, "regex expected", "x", "y")
	t.raises(regex.match, "regex expected", {}, "y")
	t.raises(regex.gmatch, "regex expected", nil, "y")
	local reg = regex.compile("x")
	t.raises(reg.find, "regex expected", setmetatable({}, getmetatable(reg)), "x")
end

function T.test_back_reference()
	local reg = regex.compile("(a+)b\\1")
	t.eq(all(reg.match, reg, "xaabaa"), { n = 2, "aabaa", "aa" })
end

function T.test_gc()
	local weak = setmetatable({}, { __mode = "v" })
	for i = 1, 200 do
		weak[i] = regex.compile(string.rep("(a|b)", i % 10 + 1) .. "[0-9]+")
	end
	collectgarbage()
	collectgarbage()
	t.eq(next(weak), nil, "compiled regexes were collected")
	-- the iterator keeps its regex alive
	local it = regex.compile("[a-z]"):gmatch("xyz")
	collectgarbage()
	collectgarbage()
	t.eq(it(), "x")
	t.eq(it(), "y")
end

function T.test_gc_twice()
	local reg = regex.compile("a")
	local gc = getmetatable(reg).__gc
	local it = reg:gmatch("aa")
	gc(reg)
	gc(reg)
	t.raises(reg.find, "regex has been freed", reg, "a")
	t.raises(it, "regex has been freed")
end

function T.test_long_subject()
	local s = string.rep("ab", 30000) .. "needle" .. string.rep("c", 1000)
	local reg = regex.compile("ne+dle")
	t.eq(all(reg.find, reg, s), { n = 2, 60001, 60006 })
	-- (kept short: ASan's regexec interceptor scans the whole subject, so
	-- this is quadratic; sized for the daemon's CPU budget)
	local n = 0
	for _ in regex.compile("ab"):gmatch(s:sub(1, 8000)) do
		n = n + 1
	end
	t.eq(n, 4000)
end

return T
