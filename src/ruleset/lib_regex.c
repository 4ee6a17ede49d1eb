/* The Lua "regex" library: POSIX regular expressions (regcomp/regexec).
 *
 * regex.compile(pattern [, cflags]) returns a userdata with the methods
 * find, match and gmatch; regex.find(reg, s [, init]) etc. are the same
 * functions. Matching uses glibc's REG_STARTEND, so it covers exactly the
 * bytes of the Lua string, NUL bytes included ('.' does not match NUL in
 * POSIX regexes, but bracket expressions such as [^a] do).
 *
 * init works as in string.find: 1-based, negative counts from the end,
 * 0 and values before the start clamp to 1, and a value past len + 1 never
 * matches. A search from init > 1 still sees the bytes before init as
 * context: '^' matches there only after a newline with REG_NEWLINE, and
 * '\b' looks at the previous byte. gmatch resumes at the end of each match;
 * after an empty match it resumes one byte further. */
#include "ruleset/lib_regex.h"

#include <limits.h>
#include <regex.h>
#include <string.h>

#include <lauxlib.h>

#define REGEX_MT "regex"
/* flags regcomp may get from Lua; REG_NOSUB is dropped, captures are needed */
#define REGEX_CFLAGS (REG_EXTENDED | REG_ICASE | REG_NEWLINE)
/* matches with up to this many groups (whole match included) need no
 * allocation */
#define REGEX_NSTACK 16

struct regex_ud {
	regex_t re;
	int compiled;
};

static struct regex_ud *regex_check(lua_State *L, int idx)
{
	struct regex_ud *r = luaL_checkudata(L, idx, REGEX_MT);

	if (!r->compiled)
		luaL_argerror(L, idx, "regex has been freed");
	return r;
}

static int regex_gc(lua_State *L)
{
	struct regex_ud *r = luaL_checkudata(L, 1, REGEX_MT);

	if (r->compiled) {
		r->compiled = 0;
		regfree(&r->re);
	}
	return 0;
}

static int regex_compile(lua_State *L)
{
	size_t len;
	const char *pat = luaL_checklstring(L, 1, &len);
	lua_Integer flags = luaL_optinteger(L, 2, REG_EXTENDED | REG_NEWLINE);
	struct regex_ud *r;
	char msg[256];
	int err;

	luaL_argcheck(L, strlen(pat) == len, 1, "pattern contains a NUL byte");
	r = lua_newuserdatauv(L, sizeof(*r), 0);
	r->compiled = 0;
	luaL_setmetatable(L, REGEX_MT);
	err = regcomp(&r->re, pat, (int)(flags & REGEX_CFLAGS));
	if (err != 0) {
		/* a failed regcomp leaves nothing to free */
		regerror(err, &r->re, msg, sizeof(msg));
		return luaL_error(L, "%s", msg);
	}
	r->compiled = 1;
	return 1;
}

/* The 0-based offset where a search starts for a string.find-like init,
 * or len + 1 when init is past the end. */
static size_t regex_start(lua_Integer init, size_t len)
{
	lua_Unsigned back;

	if (init > 0) {
		if ((lua_Unsigned)init - 1 > (lua_Unsigned)len)
			return len + 1;
		return (size_t)init - 1;
	}
	if (init == 0)
		return 0;
	back = 0u - (lua_Unsigned)init;
	if (back > (lua_Unsigned)len)
		return 0;
	return len - (size_t)back;
}

/* Check the subject (argument sidx) and init (sidx + 1). */
static const char *regex_subject(lua_State *L, int sidx, size_t *len,
				 size_t *start)
{
	const char *s = luaL_checklstring(L, sidx, len);
	lua_Integer init = luaL_optinteger(L, sidx + 1, 1);

	/* regoff_t is an int in glibc */
	luaL_argcheck(L, *len <= (size_t)INT_MAX, sidx, "string too long");
	*start = regex_start(init, *len);
	return s;
}

/* Search s[start..len) and fill pm[0..n) (offsets from s); returns 1 on a
 * match. glibc takes the context at start from s[start - 1], so '^' after a
 * newline still matches with REG_NEWLINE; REG_NOTBOL says the same to any
 * regexec that would treat s + start as the beginning of the line. */
static int regex_exec(lua_State *L, const struct regex_ud *r, const char *s,
		      size_t len, size_t start, regmatch_t *pm, size_t n)
{
	int eflags = REG_STARTEND | (start > 0 ? REG_NOTBOL : 0);
	char msg[256];
	int err;

	pm[0].rm_so = (regoff_t)start;
	pm[0].rm_eo = (regoff_t)len;
	err = regexec(&r->re, s, n, pm, eflags);
	if (err == 0)
		return 1;
	if (err == REG_NOMATCH)
		return 0;
	regerror(err, &r->re, msg, sizeof(msg));
	return luaL_error(L, "%s", msg);
}

/* Room for the whole match and every group: the caller's array when it is
 * big enough, else a fresh userdata left on the stack. */
static regmatch_t *regex_pmatch(lua_State *L, size_t n, regmatch_t *local)
{
	if (n <= REGEX_NSTACK)
		return local;
	return lua_newuserdatauv(L, n * sizeof(regmatch_t), 0);
}

/* Push the whole match and the n - 1 groups (nil when unset). */
static int regex_push_match(lua_State *L, const char *s, const regmatch_t *pm,
			    size_t n)
{
	size_t i;

	if (n > (size_t)INT_MAX)
		return luaL_error(L, "too many captures");
	luaL_checkstack(L, (int)n, "too many captures");
	for (i = 0; i < n; i++) {
		if (pm[i].rm_so < 0)
			lua_pushnil(L);
		else
			lua_pushlstring(L, s + pm[i].rm_so,
					(size_t)(pm[i].rm_eo - pm[i].rm_so));
	}
	return (int)n;
}

static int regex_find(lua_State *L)
{
	const struct regex_ud *r = regex_check(L, 1);
	size_t len, start;
	const char *s = regex_subject(L, 2, &len, &start);
	regmatch_t pm[1];

	if (start > len || !regex_exec(L, r, s, len, start, pm, 1))
		return 0;
	lua_pushinteger(L, (lua_Integer)pm[0].rm_so + 1);
	lua_pushinteger(L, (lua_Integer)pm[0].rm_eo);
	return 2;
}

static int regex_match(lua_State *L)
{
	const struct regex_ud *r = regex_check(L, 1);
	size_t len, start, n = r->re.re_nsub + 1;
	const char *s = regex_subject(L, 2, &len, &start);
	regmatch_t local[REGEX_NSTACK], *pm;

	if (start > len)
		return 0;
	pm = regex_pmatch(L, n, local);
	if (!regex_exec(L, r, s, len, start, pm, n))
		return 0;
	return regex_push_match(L, s, pm, n);
}

/* upvalues: the regex, the subject, the next start offset (> len: done) */
static int regex_gmatch_next(lua_State *L)
{
	const struct regex_ud *r = lua_touserdata(L, lua_upvalueindex(1));
	size_t len, n;
	const char *s = lua_tolstring(L, lua_upvalueindex(2), &len);
	lua_Integer pos = lua_tointeger(L, lua_upvalueindex(3));
	regmatch_t local[REGEX_NSTACK], *pm;
	size_t next = len + 1;
	int found;

	if (pos < 0 || (lua_Unsigned)pos > (lua_Unsigned)len)
		return 0;
	if (!r->compiled)
		return luaL_error(L, "regex has been freed");
	n = r->re.re_nsub + 1;
	pm = regex_pmatch(L, n, local);
	found = regex_exec(L, r, s, len, (size_t)pos, pm, n);
	if (found) {
		next = (size_t)pm[0].rm_eo;
		if (pm[0].rm_eo == pm[0].rm_so)
			next++; /* an empty match moves on by one byte */
	}
	lua_pushinteger(L, (lua_Integer)next);
	lua_replace(L, lua_upvalueindex(3));
	if (!found)
		return 0;
	return regex_push_match(L, s, pm, n);
}

static int regex_gmatch(lua_State *L)
{
	size_t len, start;

	regex_check(L, 1);
	regex_subject(L, 2, &len, &start);
	lua_settop(L, 2);
	lua_pushinteger(L, (lua_Integer)start);
	lua_pushcclosure(L, regex_gmatch_next, 3);
	return 1;
}

int luaopen_regex(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{ "find", regex_find },
		{ "match", regex_match },
		{ "gmatch", regex_gmatch },
		{ NULL, NULL },
	};
	static const luaL_Reg funcs[] = {
		{ "compile", regex_compile },
		{ "find", regex_find },
		{ "match", regex_match },
		{ "gmatch", regex_gmatch },
		{ NULL, NULL },
	};

	if (luaL_newmetatable(L, REGEX_MT)) {
		lua_pushcfunction(L, regex_gc);
		lua_setfield(L, -2, "__gc");
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	lua_pushinteger(L, REG_EXTENDED);
	lua_setfield(L, -2, "EXTENDED");
	lua_pushinteger(L, REG_ICASE);
	lua_setfield(L, -2, "ICASE");
	lua_pushinteger(L, REG_NEWLINE);
	lua_setfield(L, -2, "NEWLINE");
	lua_pushinteger(L, REG_NOSUB);
	lua_setfield(L, -2, "NOSUB");
	return 1;
}
