/* marshal(...): Lua values to Lua source, the RPC wire format.
 *
 * The output must be byte-identical to the reference daemon's:
 *   marshal({1,2,x="y"}, 3.5, -1, 1e15, "a\nb", nil, true) ==
 *   '{1,2,["x"]="y",},0x1.cp+1,-1,0x1.c6bf52634p+49,"a\<LF>b",nil,true'
 *
 * - values are joined by ',' with no spaces; marshal() is "".
 * - integers: decimal when |x| <= 999999999999, else lowercase hex with a
 *   '-' for negatives (-0xe8d4a51000); math.mininteger is written as its
 *   bit pattern 0x8000000000000000, which Lua reads back as mininteger.
 * - floats: hexadecimal with a normalised mantissa, "0x1.cp+1" (so a
 *   subnormal is "0x1p-1074", not glibc's "0x0.0000000000001p-1022");
 *   NaN "0/0", infinities "1/0" and "-1/0"; -0.0 is "-0.0" (it keeps its
 *   sign) and 0.0 is "0" (it reads back as the integer 0): the
 *   reference's format.
 * - strings: '"' and '\' are escaped, LF is a backslash and a LF, the other
 *   control bytes (0x00-0x1f and 0x7f) are \ddd with three digits, all
 *   other bytes are copied (UTF-8 passes through).
 * - tables: '{', each element followed by ',', then '}'. First t[1],
 *   t[2], ... positionally up to the first nil, then every other key in
 *   lua_next() order as [key]=value (integer keys 1..n skipped): the same
 *   text as the reference's whatever part of the table holds the keys.
 *   Keys are marshalled like values. Metatables are ignored (one Lua
 *   warning per call); access is raw.
 * - a table met again while it is being marshalled raises "circular
 *   referenced table is not marshallable"; one shared by siblings is
 *   written twice. Nesting deeper than MARSHAL_MAXDEPTH tables raises too:
 *   Lua's parser stops at about 197 nested constructors (LUAI_MAXCCALLS,
 *   shared with the loader's C call depth), so the peer could not load
 *   deeper text anyway.
 * - functions, userdata and threads raise "<tostring(v)> is not
 *   marshallable".
 * Errors are raised with luaL_error, so called from Lua they carry the
 * caller's position. The text is built in a userdata, so the VM's
 * allocator bounds it and nothing leaks when an error unwinds. */
#include "ruleset/lib_marshal.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#define MARSHAL_MAXDEPTH 100
#define MARSHAL_DECIMAL_MAX 999999999999
#define MARSHAL_INITIAL 256

struct marshal {
	lua_State *L;
	int slot;  /* stack index of the userdata holding the text */
	int seen;  /* stack index of the set of tables being marshalled */
	int warned;
	char *p;
	size_t len, cap;
};

/* Make room for need more bytes: a bigger userdata replaces the old one. */
static void marshal_grow(struct marshal *m, size_t need)
{
	size_t ncap = m->cap != 0 ? m->cap : MARSHAL_INITIAL;
	char *np;

	if (need > SIZE_MAX / 2 - m->len)
		luaL_error(m->L, "marshalled text too large");
	while (ncap - m->len < need)
		ncap *= 2;
	np = lua_newuserdatauv(m->L, ncap, 0);
	if (m->len != 0)
		memcpy(np, m->p, m->len);
	lua_replace(m->L, m->slot);
	m->p = np;
	m->cap = ncap;
}

static void marshal_add(struct marshal *m, const char *s, size_t n)
{
	if (n == 0)
		return;
	if (m->cap - m->len < n)
		marshal_grow(m, n);
	memcpy(m->p + m->len, s, n);
	m->len += n;
}

static void marshal_addstr(struct marshal *m, const char *s)
{
	marshal_add(m, s, strlen(s));
}

static void marshal_integer(struct marshal *m, lua_Integer x)
{
	lua_Unsigned u = x < 0 ? 0u - (lua_Unsigned)x : (lua_Unsigned)x;
	const char *sign = x < 0 && x != LUA_MININTEGER ? "-" : "";
	char s[32];

	if (u <= MARSHAL_DECIMAL_MAX)
		snprintf(s, sizeof(s), "%lld", (long long)x);
	else
		snprintf(s, sizeof(s), "%s0x%llx", sign, (unsigned long long)u);
	marshal_addstr(m, s);
}

/* "0x1.<hex fraction>p<exp>" from a mantissa normalised to [1, 2): exact,
 * since scaling by 16 and taking the integer part lose nothing. */
static void marshal_hexfloat(char *out, size_t cap, double x)
{
	static const char hex[] = "0123456789abcdef";
	char digits[32] = "";
	int e, nd = 0;
	bool neg = signbit(x);
	double mant = frexp(neg ? -x : x, &e) * 2 - 1;

	e--;
	while (mant > 0 && nd < (int)sizeof(digits)) {
		int d;

		mant *= 16;
		d = (int)mant;
		digits[nd++] = hex[d];
		mant -= d;
	}
	snprintf(out, cap, "%s0x1%s%.*sp%+d", neg ? "-" : "", nd ? "." : "",
		 nd, digits, e);
}

static void marshal_float(struct marshal *m, lua_Number x)
{
	char s[64];

	if (isnan(x)) {
		marshal_addstr(m, "0/0");
	} else if (isinf(x)) {
		marshal_addstr(m, x > 0 ? "1/0" : "-1/0");
	} else if (x == 0) {
		/* -0.0 keeps its sign (a float that reads back as -0.0) */
		marshal_addstr(m, signbit(x) ? "-0.0" : "0");
	} else {
		marshal_hexfloat(s, sizeof(s), (double)x);
		marshal_addstr(m, s);
	}
}

static int marshal_plain(unsigned char c)
{
	return c >= 0x20 && c != 0x7f && c != '"' && c != '\\';
}

static void marshal_escape(struct marshal *m, unsigned char c)
{
	char s[8];

	switch (c) {
	case '"':
		marshal_addstr(m, "\\\"");
		return;
	case '\\':
		marshal_addstr(m, "\\\\");
		return;
	case '\n':
		marshal_addstr(m, "\\\n");
		return;
	default:
		snprintf(s, sizeof(s), "\\%03u", (unsigned)c);
		marshal_addstr(m, s);
		return;
	}
}

static void marshal_string(struct marshal *m, const char *s, size_t n)
{
	size_t i, run = 0;

	marshal_add(m, "\"", 1);
	for (i = 0; i < n; i++) {
		if (marshal_plain((unsigned char)s[i]))
			continue;
		marshal_add(m, s + run, i - run);
		marshal_escape(m, (unsigned char)s[i]);
		run = i + 1;
	}
	marshal_add(m, s + run, n - run);
	marshal_add(m, "\"", 1);
}

static void marshal_value(struct marshal *m, int idx, int depth);

/* Mark the table at idx as being marshalled (on = 1) or done (on = 0). */
static void marshal_mark(struct marshal *m, int idx, int on)
{
	lua_State *L = m->L;

	lua_pushvalue(L, idx);
	if (on) {
		lua_pushvalue(L, idx);
		if (lua_rawget(L, m->seen) != LUA_TNIL)
			luaL_error(L, "circular referenced table is not "
				      "marshallable");
		lua_pop(L, 1);
		lua_pushboolean(L, 1);
	} else {
		lua_pushnil(L);
	}
	lua_rawset(L, m->seen);
}

static void marshal_metatable(struct marshal *m, int idx)
{
	if (m->warned || !lua_getmetatable(m->L, idx))
		return;
	lua_pop(m->L, 1);
	m->warned = 1;
	lua_warning(m->L, "marshal: table metatables are ignored", 0);
}

/* depth: how many tables enclose this one */
static void marshal_table(struct marshal *m, int idx, int depth)
{
	lua_State *L = m->L;
	lua_Integer next = 1;
	int top;

	if (depth >= MARSHAL_MAXDEPTH)
		luaL_error(L, "table nested deeper than %d levels is not "
			      "marshallable", MARSHAL_MAXDEPTH);
	luaL_checkstack(L, 6, "table nested too deep");
	marshal_mark(m, idx, 1);
	marshal_metatable(m, idx);
	marshal_add(m, "{", 1);
	/* the sequence 1..n positionally */
	while (lua_rawgeti(L, idx, next) != LUA_TNIL) {
		marshal_value(m, lua_gettop(L), depth + 1);
		marshal_add(m, ",", 1);
		lua_pop(L, 1);
		next++;
	}
	lua_pop(L, 1);
	/* every other key explicitly */
	lua_pushnil(L);
	while (lua_next(L, idx) != 0) {
		top = lua_gettop(L);
		if (lua_isinteger(L, top - 1) && lua_tointeger(L, top - 1) >= 1 &&
		    lua_tointeger(L, top - 1) < next) {
			lua_pop(L, 1);
			continue;
		}
		marshal_add(m, "[", 1);
		marshal_value(m, top - 1, depth + 1);
		marshal_add(m, "]=", 2);
		marshal_value(m, top, depth + 1);
		marshal_add(m, ",", 1);
		lua_pop(L, 1);
	}
	marshal_add(m, "}", 1);
	marshal_mark(m, idx, 0);
}

static void marshal_unsupported(struct marshal *m, int idx)
{
	const char *s = luaL_tolstring(m->L, idx, NULL);

	luaL_error(m->L, "%s is not marshallable", s);
}

/* idx must be an absolute index */
static void marshal_value(struct marshal *m, int idx, int depth)
{
	lua_State *L = m->L;
	const char *s;
	size_t n;

	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		marshal_addstr(m, "nil");
		break;
	case LUA_TBOOLEAN:
		marshal_addstr(m, lua_toboolean(L, idx) ? "true" : "false");
		break;
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			marshal_integer(m, lua_tointeger(L, idx));
		else
			marshal_float(m, lua_tonumber(L, idx));
		break;
	case LUA_TSTRING:
		s = lua_tolstring(L, idx, &n);
		marshal_string(m, s, n);
		break;
	case LUA_TTABLE:
		marshal_table(m, idx, depth);
		break;
	default:
		marshal_unsupported(m, idx);
		break;
	}
}

/* Push the marshalled text of the values at first..last (absolute). */
static void marshal_run(lua_State *L, int first, int last)
{
	struct marshal m;
	int i;

	luaL_checkstack(L, 8, NULL);
	memset(&m, 0, sizeof(m));
	m.L = L;
	lua_newtable(L);
	m.seen = lua_gettop(L);
	lua_pushnil(L); /* becomes the text's userdata once it has bytes */
	m.slot = lua_gettop(L);
	for (i = first; i <= last; i++) {
		if (i > first)
			marshal_add(&m, ",", 1);
		marshal_value(&m, i, 0);
	}
	lua_pushlstring(L, m.len != 0 ? m.p : "", m.len);
	lua_replace(L, m.seen);
	lua_settop(L, m.seen);
}

int lib_marshal(lua_State *L)
{
	marshal_run(L, 1, lua_gettop(L));
	return 1;
}

int lib_marshal_values(lua_State *L, int first, int last)
{
	int i, n;

	first = lua_absindex(L, first);
	last = lua_absindex(L, last);
	n = last >= first ? last - first + 1 : 0;
	if (!lua_checkstack(L, n + 3))
		return -1;
	lua_pushcfunction(L, lib_marshal);
	for (i = 0; i < n; i++)
		lua_pushvalue(L, first + i);
	return lua_pcall(L, n, 1, 0) == LUA_OK ? 0 : -1;
}
