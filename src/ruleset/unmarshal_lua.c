/* unmarshal_lua: Lua values from unmarshal's events (see the header).
 *
 * The parser's state lives in a to-be-closed userdata, so a memory error
 * raised while building (the allocator is capped) frees the parser's
 * buffer on the way out. */
#include "ruleset/unmarshal_lua.h"

#include <string.h>

#include <lauxlib.h>

#include "ruleset/unmarshal.h"

#define UNMARSHAL_LUA_MT "neosocksd.unmarshal"

struct unmarshal_lua_ctx {
	lua_State *L;
	const char *buf;
	size_t len, str_max;
	int tables[UNMARSHAL_DEPTH_MAX + 2]; /* stack slots of open tables */
	int ntables;
};

static int unmarshal_lua_event(void *ud, const struct unmarshal_ev *ev)
{
	struct unmarshal_lua_ctx *x = ud;
	lua_State *L = x->L;
	int t = x->ntables > 0 ? x->tables[x->ntables - 1] : 0;

	luaL_checkstack(L, 2, "answer nested too deep");
	switch (ev->kind) {
	case UNMARSHAL_NIL:
		lua_pushnil(L);
		break;
	case UNMARSHAL_BOOLEAN:
		lua_pushboolean(L, ev->b);
		break;
	case UNMARSHAL_INTEGER:
		lua_pushinteger(L, (lua_Integer)ev->i);
		break;
	case UNMARSHAL_FLOAT:
		lua_pushnumber(L, (lua_Number)ev->f);
		break;
	case UNMARSHAL_STRING:
		lua_pushlstring(L, ev->s, ev->len);
		break;
	case UNMARSHAL_TABLE:
		if (x->ntables == (int)(sizeof(x->tables) / sizeof(x->tables[0])))
			return -1;
		lua_newtable(L);
		x->tables[x->ntables++] = lua_gettop(L);
		break;
	case UNMARSHAL_SET: /* the parser refuses nil and NaN keys */
		if (t == 0)
			return -1;
		lua_rawset(L, t);
		break;
	case UNMARSHAL_FLUSH_N:
		if (t == 0)
			return -1;
		for (uint32_t k = ev->n; k > 0; k--)
			lua_rawseti(L, t, (lua_Integer)(ev->first + k - 1));
		break;
	case UNMARSHAL_CLOSE:
		if (t == 0)
			return -1;
		x->ntables--;
		break;
	default:
		return -1;
	}
	return 0;
}

static int unmarshal_lua_close(lua_State *L)
{
	struct unmarshal *u = luaL_checkudata(L, 1, UNMARSHAL_LUA_MT);

	unmarshal_free(u);
	return 0;
}

static int unmarshal_lua_build(lua_State *L)
{
	struct unmarshal_lua_ctx *x = lua_touserdata(L, 1);
	struct unmarshal *u;
	int n;

	x->L = L;
	u = lua_newuserdatauv(L, sizeof(*u), 0);
	memset(u, 0, sizeof(*u));
	if (luaL_newmetatable(L, UNMARSHAL_LUA_MT)) {
		lua_pushcfunction(L, unmarshal_lua_close);
		lua_setfield(L, -2, "__close");
		lua_pushcfunction(L, unmarshal_lua_close);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	lua_toclose(L, -1);
	unmarshal_init(u, x->str_max, unmarshal_lua_event, x);
	n = unmarshal_feed(u, x->buf, x->len);
	if (n == 0)
		n = unmarshal_end(u);
	if (n < 0)
		return luaL_error(L, "%s", u->err);
	unmarshal_free(u);
	return n;
}

int unmarshal_lua(lua_State *L, const char *buf, size_t len, size_t str_max)
{
	struct unmarshal_lua_ctx x = { .buf = buf, .len = len,
				       .str_max = str_max };
	int top = lua_gettop(L);

	if (!lua_checkstack(L, 4))
		return -1;
	lua_pushcfunction(L, unmarshal_lua_build);
	lua_pushlightuserdata(L, &x);
	if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK)
		return -1;
	return lua_gettop(L) - top;
}
