/* Fuzz target: marshal then parse (src/ruleset/lib_marshal.c, then
 * unmarshal.c). Lua values are built from the input (nil, booleans,
 * integers and floats of any bits, strings of any bytes, tables nested
 * with positional and keyed fields); marshal writes them, the data-only
 * parser reads them back: the same values (with marshal's documented
 * loss: 0.0 reads back as the integer 0), and the same as Lua's
 * own loader gives for that text. */
#include "fuzz_lua.h"

#include <math.h>

#include "ruleset/lib_marshal.h"
#include "ruleset/unmarshal_lua.h"

static void fuzz_marshal_value(lua_State *L, struct fuzz_in *in, int depth,
			       bool key);

static void fuzz_marshal_number(lua_State *L, struct fuzz_in *in, bool isint)
{
	uint64_t bits = 0;
	size_t n = fuzz_byte(in) % 9;

	for (size_t k = 0; k < n; k++)
		bits = bits << 8 | fuzz_byte(in);
	if (isint) {
		lua_pushinteger(L, (lua_Integer)bits);
	} else {
		double d;

		memcpy(&d, &bits, sizeof(d));
		lua_pushnumber(L, d);
	}
}

static void fuzz_marshal_table(lua_State *L, struct fuzz_in *in, int depth)
{
	int npos = fuzz_byte(in) % 8, nkeys = fuzz_byte(in) % 6;

	luaL_checkstack(L, 4, NULL);
	lua_newtable(L);
	for (int k = 1; k <= npos; k++) {
		fuzz_marshal_value(L, in, depth + 1, false);
		lua_rawseti(L, -2, k);
	}
	for (int k = 0; k < nkeys; k++) {
		fuzz_marshal_value(L, in, depth + 1, true);
		if (lua_isnil(L, -1) || (lua_type(L, -1) == LUA_TNUMBER &&
					 isnan(lua_tonumber(L, -1)))) {
			lua_pop(L, 1);
			continue;
		}
		fuzz_marshal_value(L, in, depth + 1, false);
		lua_rawset(L, -3);
	}
}

static void fuzz_marshal_value(lua_State *L, struct fuzz_in *in, int depth,
			       bool key)
{
	uint8_t t = fuzz_byte(in);
	const uint8_t *p;
	size_t n;

	luaL_checkstack(L, 2, NULL);
	switch (t % (key || depth >= 8 ? 5 : 6)) {
	case 0:
		lua_pushnil(L);
		break;
	case 1:
		lua_pushboolean(L, t & 0x80);
		break;
	case 2:
	case 3:
		fuzz_marshal_number(L, in, t & 1);
		break;
	case 4:
		p = fuzz_bytes(in, 255, &n);
		lua_pushlstring(L, (const char *)p, n);
		break;
	default:
		fuzz_marshal_table(L, in, depth);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lua_State *L = fuzz_lua_state(); /* per input: nothing carries over */
	struct fuzz_in in = { data, size };
	int top = lua_gettop(L), nv = fuzz_byte(&in) % 5, n;
	const char *text, *why = NULL;
	char *answer;
	size_t len;

	/* the values packed, then normal() of them (what should come back) */
	for (int k = 0; k < nv; k++)
		fuzz_marshal_value(L, &in, 0, false);
	fuzz_lua_pack(L, nv);
	lua_getglobal(L, "normal");
	lua_pushvalue(L, top + 1);
	lua_call(L, 1, 1);
	/* marshal(values...) */
	lua_pushcfunction(L, lib_marshal);
	for (int k = 1; k <= nv; k++)
		lua_rawgeti(L, top + 1, k);
	if (lua_pcall(L, nv, 1, 0) != LUA_OK) {
		/* only the memory cap may stop it (no cycles, no functions) */
		FUZZ_CHECK(strstr(lua_tostring(L, -1), "memory"));
		lua_close(L);
		return 0;
	}
	text = lua_tolstring(L, -1, &len);
	answer = malloc(len + 8);
	FUZZ_CHECK(answer != NULL);
	memcpy(answer, "return ", 7);
	memcpy(answer + 7, text, len);
	len += 7;
	lua_pop(L, 1);
	n = unmarshal_lua(L, answer, len, 1u << 20);
	if (n < 0) {
		fprintf(stderr, "marshal output refused: %s\n%.*s\n",
			lua_tostring(L, -1), (int)len, answer);
		abort();
	}
	fuzz_lua_pack(L, n);
	lua_pushvalue(L, -1);
	lua_pushvalue(L, top + 2);
	FUZZ_CHECK(fuzz_lua_same(L)); /* what was marshalled */
	FUZZ_CHECK(fuzz_lua_load_packed(L, answer, len, &why));
	FUZZ_CHECK(fuzz_lua_same(L)); /* what Lua reads */
	free(answer);
	lua_close(L);
	return 0;
}
