-- lrcheck: the assertions the libruleset tests share (tests/lua/
-- test_libruleset_*.lua). Each raises an error at its caller's line.
local M = {}

function M.show(v)
    if type(v) == "string" then
        return string.format("%q", v)
    end
    return tostring(v)
end

function M.eq(got, want, what)
    if got ~= want then
        error(string.format("%s: want %s, got %s", what or "value", M.show(want), M.show(got)), 2)
    end
end

function M.same(want, ...)
    local got = table.pack(...)
    local n = math.max(got.n, want.n or #want)
    for i = 1, n do
        if got[i] ~= want[i] then
            local g, w = {}, {}
            for j = 1, got.n do g[j] = M.show(got[j]) end
            for j = 1, want.n or #want do w[j] = M.show(want[j]) end
            error(string.format("want (%s), got (%s)", table.concat(w, ", "),
                table.concat(g, ", ")), 2)
        end
    end
end

function M.raises(pattern, f, ...)
    local ok, err = pcall(f, ...)
    if ok then
        error("no error raised (want " .. pattern .. ")", 2)
    end
    if not tostring(err):find(pattern) then
        error(string.format("error %q does not match %q", tostring(err), pattern), 2)
    end
end

return M
