-- Tests of the zlib library (src/ruleset/lib_zlib.c).
local t = require("testlib")
local T = {}

-- CRC-32 (IEEE 802.3, as in gzip), computed independently of zlib.
local crc_table = {}
for i = 0, 255 do
	local c = i
	for _ = 1, 8 do
		if c & 1 ~= 0 then
			c = 0xedb88320 ~ (c >> 1)
		else
			c = c >> 1
		end
	end
	crc_table[i] = c
end

local function crc32(s)
	local c = 0xffffffff
	for i = 1, #s do
		c = crc_table[(c ~ s:byte(i)) & 0xff] ~ (c >> 8)
	end
	return c ~ 0xffffffff
end

-- Deterministic pseudo-random bytes (an LCG), the same on every run.
local function noise(n, seed)
	local x, out = seed or 1, {}
	for i = 1, n do
		x = (x * 1103515245 + 12345) & 0x7fffffff
		out[i] = string.char((x >> 16) & 0xff)
	end
	return table.concat(out)
end

local function samples()
	local all = {}
	for i = 0, 255 do
		all[#all + 1] = string.char(i)
	end
	return {
		"", "a", "hello world", "\0", table.concat(all),
		string.rep("abc", 10000), noise(100000, 7),
		string.rep("\0", 70000) .. noise(1000, 3),
	}
end

-- The raw deflate data inside a zlib stream (no header, no Adler-32).
local function raw_deflate(s)
	local z = zlib.compress(s)
	return z:sub(3, -5)
end

-- Build a gzip member by hand. opts: flags to set and their fields.
local function gzip_member(data, opts)
	opts = opts or {}
	local flg, fields = 0, ""
	if opts.extra then
		flg = flg | 4
		fields = fields .. string.pack("<s2", opts.extra)
	end
	if opts.name then
		flg = flg | 8
		fields = fields .. opts.name .. "\0"
	end
	if opts.comment then
		flg = flg | 16
		fields = fields .. opts.comment .. "\0"
	end
	if opts.hcrc then
		flg = flg | 2
	end
	local head = "\31\139\8" .. string.char(flg) .. string.pack("<I4", opts.mtime or 0)
		.. "\0\3" .. fields
	if opts.hcrc then
		local hc = crc32(head) & 0xffff
		if opts.bad_hcrc then
			hc = hc ~ 1
		end
		head = head .. string.pack("<I2", hc)
	end
	local crc = opts.crc or crc32(data)
	local isize = opts.isize or (#data & 0xffffffff)
	return head .. raw_deflate(data) .. string.pack("<I4I4", crc, isize)
end

function T.test_roundtrip_zlib()
	for i, s in ipairs(samples()) do
		local z = zlib.compress(s)
		t.eq(type(z), "string")
		t.ok(zlib.uncompress(z) == s, "sample " .. i)
	end
end

function T.test_roundtrip_gzip()
	for i, s in ipairs(samples()) do
		local z = zlib.gzip(s)
		t.ok(zlib.gunzip(z) == s, "sample " .. i)
	end
end

function T.test_compresses()
	local s = string.rep("neosocksd ", 10000)
	t.ok(#zlib.compress(s) < #s / 50)
	t.ok(#zlib.gzip(s) < #s / 50)
end

function T.test_zlib_format()
	local z = zlib.compress("hello")
	local cmf, flg = z:byte(1, 2)
	t.eq(cmf & 0x0f, 8, "CM = deflate")
	t.ok(cmf >> 4 <= 7, "window <= 32K")
	t.eq((cmf * 256 + flg) % 31, 0, "FCHECK")
	t.eq(flg & 0x20, 0, "no preset dictionary")
	-- Adler-32 of "hello" is 0x062c0215, big-endian at the end
	t.eq(z:sub(-4), "\6\44\2\21")
end

function T.test_gzip_format()
	local s = "gzip header test"
	local z = zlib.gzip(s)
	t.eq(z:sub(1, 3), "\31\139\8", "ID1 ID2 CM")
	t.eq(z:byte(4), 0, "FLG: no optional fields")
	t.eq(z:sub(5, 8), "\0\0\0\0", "MTIME = 0")
	t.eq(z:byte(10), 0xff, "OS = 255")
	local crc, isize = string.unpack("<I4I4", z, #z - 7)
	t.eq(crc, crc32(s), "CRC32")
	t.eq(isize, #s, "ISIZE")
	local e = zlib.gzip("")
	t.eq(e:byte(10), 0xff)
	t.eq(e:sub(-8), "\0\0\0\0\0\0\0\0")
end

-- Streams produced by Python's zlib and gzip modules.
function T.test_known_vectors()
	local z = "\120\218\203\075\205\047\206\079\206\046\078\081\040\042\205\073\045"
		.. "\078\045\225\202\035\075\004\000\006\076\027\221"
	t.eq(zlib.uncompress(z), string.rep("neosocksd ruleset\n", 4))
	-- gzip.GzipFile(filename="rules.lua", mtime=0): FNAME set
	local g = "\031\139\008\008\000\000\000\000\002\255\114\117\108\101\115\046\108\117"
		.. "\097\000\203\072\205\201\201\087\072\175\202\044\224\002\000\057\124\099"
		.. "\086\011\000\000\000"
	t.eq(zlib.gunzip(g), "hello gzip\n")
	t.eq(crc32("hello gzip\n"), 0x56637c39)
end

function T.test_gunzip_handmade()
	t.eq(zlib.gunzip(gzip_member("plain")), "plain")
	t.eq(zlib.gunzip(gzip_member("", {})), "")
	t.eq(zlib.gunzip(gzip_member("data", { mtime = 0x5f000000 })), "data")
end

function T.test_gunzip_optional_fields()
	local opts = {
		{ extra = "AB\4\0xyzw" },
		{ name = "file.txt" },
		{ comment = "a comment" },
		{ hcrc = true },
		{ extra = "", name = "", comment = "" },
		{ extra = string.rep("e", 1000), name = "n", comment = "c", hcrc = true },
	}
	for i, o in ipairs(opts) do
		local data = "payload " .. i
		t.eq(zlib.gunzip(gzip_member(data, o)), data, "fields " .. i)
	end
end

function T.test_gunzip_concatenated()
	t.eq(zlib.gunzip(zlib.gzip("ab") .. zlib.gzip("cd")), "abcd")
	t.eq(zlib.gunzip(zlib.gzip("") .. zlib.gzip("x") .. zlib.gzip("")), "x")
	local parts, members = {}, {}
	for i = 1, 20 do
		parts[i] = noise(i * 37, i)
		members[i] = (i % 2 == 0) and zlib.gzip(parts[i])
			or gzip_member(parts[i], { name = "m" .. i, hcrc = true })
	end
	t.ok(zlib.gunzip(table.concat(members)) == table.concat(parts))
end

function T.test_gunzip_checks()
	t.raises(zlib.gunzip, "^gunzip error: header crc mismatch$",
		gzip_member("x", { hcrc = true, bad_hcrc = true }))
	t.raises(zlib.gunzip, "^gunzip error: incorrect data check$",
		gzip_member("x", { crc = crc32("x") ~ 0x80 }))
	t.raises(zlib.gunzip, "^gunzip error: incorrect length check$",
		gzip_member("x", { isize = 2 }))
	-- a bad second member fails the whole body
	t.raises(zlib.gunzip, "incorrect data check",
		zlib.gzip("ok") .. gzip_member("x", { crc = 0 }))
	-- reserved flag bits
	local z = zlib.gzip("x")
	t.raises(zlib.gunzip, "^gunzip error: ", z:sub(1, 3) .. "\224" .. z:sub(5))
	t.raises(zlib.gunzip, "^gunzip error: incorrect header check$", "\31\140" .. z:sub(3))
	t.raises(zlib.gunzip, "^gunzip error: unknown compression method$", "\31\139\7" .. z:sub(4))
end

-- Every prefix of a short stream, and of a stream longer than one output
-- chunk (16 KiB) the prefixes that end in its header, around the chunk
-- boundary, in its trailer, and a stride through the rest. (Each failing
-- call costs a quarter of a millisecond under ASan: every prefix of a long
-- stream would pass the daemon's CPU budget of one second on a slow
-- machine.)
local function prefixes(len, chunk)
	local set = {}
	if len <= 512 then
		for n = 0, len - 1 do
			set[n] = true
		end
	else
		for n = 0, 12 do -- a gzip header is 10 bytes, a trailer 8
			set[n] = true
			set[len - 1 - n] = true
		end
		for n = chunk - 2, chunk + 6 do
			set[n] = true
		end
		for n = 13, len - 13, 3999 do
			set[n] = true
		end
	end
	local out = {}
	for n in pairs(set) do
		if n < len then
			out[#out + 1] = n
		end
	end
	table.sort(out)
	return out
end

function T.test_truncated()
	for _, s in ipairs({ noise(40, 11), noise(20000, 12) }) do
		for _, c in ipairs({ { zlib.compress, zlib.uncompress, "uncompress" },
			{ zlib.gzip, zlib.gunzip, "gunzip" } }) do
			local z = c[1](s)
			for _, n in ipairs(prefixes(#z, 16384)) do
				local ok, err = pcall(c[2], z:sub(1, n))
				t.ok(not ok, c[3] .. " accepted a prefix of " .. n .. " bytes")
				t.ok(err:find("^" .. c[3] .. " error: truncated input$"), err)
			end
			-- each codec and sample in an entry of its own: the CPU
			-- budget (1 s an entry) is far off on a slow machine too
			if await then
				await.sleep(0)
			end
		end
	end
	t.raises(zlib.uncompress, "^uncompress error: truncated input$", "")
	t.raises(zlib.gunzip, "^gunzip error: truncated input$", "")
	-- a second member cut short
	local two = zlib.gzip("a") .. zlib.gzip("b")
	t.raises(zlib.gunzip, "truncated input", two:sub(1, -2))
	t.raises(zlib.gunzip, "truncated input", two:sub(1, -15))
end

function T.test_trailing_garbage()
	t.raises(zlib.uncompress, "^uncompress error: trailing garbage after stream$",
		zlib.compress("x") .. "\0")
	t.raises(zlib.uncompress, "trailing garbage", zlib.compress("x") .. zlib.compress("y"))
	t.raises(zlib.gunzip, "^gunzip error: ", zlib.gzip("x") .. "\0\0\0\0")
	t.raises(zlib.gunzip, "^gunzip error: ", zlib.gzip("x") .. "garbage!")
end

function T.test_corrupt()
	local z = zlib.compress("hello world")
	t.raises(zlib.uncompress, "^uncompress error: incorrect header check$", "\120\0" .. z:sub(3))
	local bad = z:sub(1, -2) .. string.char(z:byte(-1) ~ 1)
	t.raises(zlib.uncompress, "^uncompress error: incorrect data check$", bad)
	t.raises(zlib.uncompress, "^uncompress error: ", "not compressed at all")
	-- format mismatch both ways
	t.raises(zlib.uncompress, "^uncompress error: incorrect header check$", zlib.gzip("x"))
	t.raises(zlib.gunzip, "^gunzip error: incorrect header check$", zlib.compress("x"))
	-- a stream that needs a preset dictionary (FDICT set)
	t.raises(zlib.uncompress, "^uncompress error: preset dictionary required$",
		"\120\187\0\0\0\1\3\0")
	-- flipping bytes never crashes, and gives an error or some output
	local long = zlib.compress(noise(2000, 5))
	for i = 3, #long, 7 do
		local broken = long:sub(1, i - 1) .. string.char(long:byte(i) ~ 0x55) .. long:sub(i + 1)
		local ok, err = pcall(zlib.uncompress, broken)
		t.ok(ok or err:find("^uncompress error: "), err)
	end
end

-- 512 KiB: 32 output chunks (sized for the daemon's CPU budget under ASan)
function T.test_large_expansion()
	local n = 512 * 1024
	local z = zlib.compress(string.rep("\0", n))
	t.ok(#z < 16384, "a bomb: " .. #z .. " bytes")
	local s = zlib.uncompress(z)
	t.eq(#s, n)
	t.ok(s == string.rep("\0", n))
	local g = zlib.gzip(string.rep("x", n))
	t.eq(#zlib.gunzip(g), n)
end

function T.test_arguments()
	t.eq(zlib.uncompress(zlib.compress(12345)), "12345")
	t.raises(zlib.compress, "string expected", {})
	t.raises(zlib.uncompress, "string expected", nil)
	t.raises(zlib.gzip, "string expected")
	t.raises(zlib.gunzip, "string expected", true)
end

function T.test_error_position()
	local ok, err = pcall(function()
		local s = zlib.uncompress("x")
		return s
	end)
	t.ok(not ok)
	t.ok(err:match("^.-:%d+: uncompress error: "), err)
end

return T
