-- testlib: a tiny test framework for the ruleset's Lua libraries.
--
-- A test file returns a table of functions whose names start with "test_".
-- testlib.run(suite) calls each one (sorted by name) under xpcall and reports;
-- the C runner (tests/unit/test_lualibs.c) instead runs each function as one
-- cmocka test, listing them with testlib.names(suite).
--
-- Assertions raise errors pointing at the caller's line:
--   eq(actual, expected [, msg])  deep equality: tables compared key by key,
--                                 NaN equals NaN, 1 ~= 1.0 (math.type must
--                                 match) and 0.0 ~= -0.0
--   ne(a, b [, msg])              not eq
--   ok(cond [, msg])              cond is truthy
--   raises(f, pattern [, ...])    f(...) raises an error whose text matches
--                                 the Lua pattern; returns the message
--   plain_raises(f, text [, ...]) same, text found literally
--   fmt(v)                        a printable representation of v
local M = {}

local function fmt_string(s)
	return (string.format("%q", s):gsub("\\\n", "\\n"))
end

local function fmt(v, seen)
	local ty = type(v)
	if ty == "string" then
		return fmt_string(v)
	elseif ty == "number" then
		if v ~= v then
			return "nan"
		elseif math.type(v) == "float" then
			if v == 0 and 1 / v < 0 then
				return "-0.0"
			end
			return string.format("%.17g(float)", v)
		end
		return tostring(v)
	elseif ty ~= "table" then
		return tostring(v)
	end
	seen = seen or {}
	if seen[v] then
		return "<cycle>"
	end
	seen[v] = true
	local keys = {}
	for k in pairs(v) do
		keys[#keys + 1] = k
	end
	table.sort(keys, function(a, b)
		return fmt(a) < fmt(b)
	end)
	local parts = {}
	for _, k in ipairs(keys) do
		parts[#parts + 1] = "[" .. fmt(k, seen) .. "]=" .. fmt(v[k], seen)
	end
	seen[v] = nil
	return "{" .. table.concat(parts, ",") .. "}"
end
M.fmt = fmt

local function num_eq(a, b)
	if a ~= a and b ~= b then
		return true
	end
	if math.type(a) ~= math.type(b) or a ~= b then
		return false
	end
	if a == 0 and math.type(a) == "float" then
		return 1 / a == 1 / b
	end
	return true
end

-- Returns true, or false and the path of the first difference.
local function deep_eq(a, b, path, seen)
	if type(a) ~= type(b) then
		return false, path
	end
	if type(a) == "number" then
		return num_eq(a, b), path
	end
	if type(a) ~= "table" or rawequal(a, b) then
		return rawequal(a, b), path
	end
	seen = seen or {}
	if seen[a] == b then
		return true
	end
	seen[a] = b
	for k, va in pairs(a) do
		local ok, where = deep_eq(va, rawget(b, k), path .. "[" .. fmt(k) .. "]", seen)
		if not ok then
			return false, where
		end
	end
	for k in pairs(b) do
		if rawget(a, k) == nil then
			return false, path .. "[" .. fmt(k) .. "]"
		end
	end
	return true
end
M.deep_eq = deep_eq

local function prefix(msg)
	return msg and (msg .. ": ") or ""
end

function M.eq(actual, expected, msg)
	local ok, where = deep_eq(actual, expected, "")
	if not ok then
		error(string.format("%sexpected %s, got %s%s", prefix(msg), fmt(expected),
			fmt(actual), where ~= "" and (" (differs at " .. where .. ")") or ""), 2)
	end
end

function M.ne(a, b, msg)
	if deep_eq(a, b, "") then
		error(string.format("%sexpected a value other than %s", prefix(msg), fmt(b)), 2)
	end
end

function M.ok(cond, msg)
	if not cond then
		error(prefix(msg) .. "assertion failed", 2)
	end
	return cond
end

local function check_raises(level, f, plain, text, ...)
	local ok, err = pcall(f, ...)
	if ok then
		error(string.format("expected an error matching %s, got none", fmt(text)), level)
	end
	local s = tostring(err)
	if not s:find(text, 1, plain) then
		error(string.format("expected an error matching %s, got %s", fmt(text), fmt(s)), level)
	end
	return s
end

function M.raises(f, pattern, ...)
	return check_raises(3, f, false, pattern, ...)
end

function M.plain_raises(f, text, ...)
	return check_raises(3, f, true, text, ...)
end

-- The sorted names of the test functions of a suite.
function M.names(suite)
	local names = {}
	for name, f in pairs(suite) do
		if type(name) == "string" and name:match("^test_") and type(f) == "function" then
			names[#names + 1] = name
		end
	end
	table.sort(names)
	return names
end

-- Run a whole suite. Returns the number passed, the number failed and a
-- report with one line per test (and the error text of each failure).
function M.run(suite, title)
	local passed, failed, lines = 0, 0, {}
	for _, name in ipairs(M.names(suite)) do
		local ok, err = xpcall(suite[name], debug and debug.traceback or tostring)
		if ok then
			passed = passed + 1
			lines[#lines + 1] = "ok   " .. name
		else
			failed = failed + 1
			lines[#lines + 1] = "FAIL " .. name .. ": " .. tostring(err)
		end
	end
	lines[#lines + 1] = string.format("%s: %d passed, %d failed", title or "suite", passed, failed)
	return passed, failed, table.concat(lines, "\n")
end

return M
