/* confload: evaluate a -c config file in the ruleset's VM. The chunk is
 * called with "config" and must return a table; its fields override the
 * command line's settings (nil keeps them), after all of them were
 * checked; a "ruleset" field (a table) becomes _G.ruleset. The parent gets
 * the merged settings and validates them before it binds anything. */
#include "ruleset/confload.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>

#include "ruleset/vm.h"

/* A key's value by its row of settings.def (config_find()). Raises on a
 * bad value; stores it when apply. */
static void confload_field(lua_State *L, const struct config_setting *k,
			   int vi, struct config *c, bool apply)
{
	char *dst = (char *)c + k->off;
	size_t len;

	if (k->flags & CONF_CLI)
		luaL_error(L, "config: %s cannot be set in a config file (use "
			      "the command line)", k->key);
	switch (k->type) {
	case CONF_T_STR: {
		const char *s;
		if (lua_type(L, vi) != LUA_TSTRING)
			luaL_error(L, "config: %s: expected string, got %s",
				   k->key, luaL_typename(L, vi));
		s = lua_tolstring(L, vi, &len);
		if (len == 0 || len >= k->cap || memchr(s, '\0', len) != NULL)
			luaL_error(L, "config: %s: bad length or NUL byte",
				   k->key);
		if (apply)
			memcpy(dst, s, len + 1);
		break;
	}
	case CONF_T_INT:
	case CONF_T_OCT: {
		lua_Integer v;
		int iv;
		if (!lua_isinteger(L, vi))
			luaL_error(L, "config: %s: expected integer, got %s",
				   k->key, luaL_typename(L, vi));
		v = lua_tointeger(L, vi);
		if (v < INT32_MIN || v > INT32_MAX)
			luaL_error(L, "config: %s: out of range", k->key);
		iv = (int)v;
		if (apply)
			memcpy(dst, &iv, sizeof(iv));
		break;
	}
	case CONF_T_NUM: {
		double d;
		if (lua_type(L, vi) != LUA_TNUMBER ||
		    !isfinite(lua_tonumber(L, vi)))
			luaL_error(L, "config: %s: expected number, got %s",
				   k->key, luaL_typename(L, vi));
		d = lua_tonumber(L, vi);
		if (apply)
			memcpy(dst, &d, sizeof(d));
		break;
	}
	case CONF_T_BOOL: {
		bool b;
		if (lua_type(L, vi) != LUA_TBOOLEAN)
			luaL_error(L, "config: %s: expected boolean, got %s",
				   k->key, luaL_typename(L, vi));
		b = lua_toboolean(L, vi);
		if (apply)
			memcpy(dst, &b, sizeof(b));
		break;
	}
	default: /* CONF_T_UNSUPPORTED */
		if (lua_toboolean(L, vi))
			luaL_error(L, "config: %s is not supported by this "
				      "daemon", k->key);
	}
}

struct confload_ctx {
	const char *src;
	size_t len;
	const char *chunkname;
	struct config *c;
	char *err; /* a scratch buffer */
	size_t errcap;
};

/* Two passes over the table: check everything, then apply, so a bad
 * field leaves every setting as it was. */
static int confload_call(lua_State *L)
{
	struct confload_ctx *x = lua_touserdata(L, 1);

	if (luaL_loadbufferx(L, x->src, x->len, x->chunkname, "t") != LUA_OK)
		return lua_error(L);
	lua_pushliteral(L, "config");
	lua_call(L, 1, 1);
	if (!lua_istable(L, -1))
		return luaL_error(L, "config: expected table, got %s",
				  luaL_typename(L, -1));
	for (int pass = 0; pass < 2; pass++) {
		lua_pushnil(L);
		while (lua_next(L, -2) != 0) {
			const struct config_setting *k;
			const char *name;

			if (lua_type(L, -2) != LUA_TSTRING)
				return luaL_error(L, "config: keys must be "
						     "strings");
			name = lua_tostring(L, -2);
			if (strcmp(name, "ruleset") == 0) {
				if (!lua_istable(L, -1))
					return luaL_error(
						L, "config: ruleset must be a "
						   "table (use -r for a file)");
			} else if ((k = config_find(name)) == NULL) {
				return luaL_error(L, "config: unknown key '%s'",
						  name);
			} else {
				confload_field(L, k, lua_gettop(L), x->c,
					       pass == 1);
			}
			lua_pop(L, 1);
		}
	}
	/* each number within its range: the parent takes a value out of
	 * range from this process as a fault, so say it here */
	if (config_check_ranges(x->c, x->err, x->errcap) < 0)
		return luaL_error(L, "%s", x->err);
	if (lua_getfield(L, -1, "ruleset") == LUA_TTABLE)
		lua_setglobal(L, "ruleset");
	else
		lua_pop(L, 1);
	return 0;
}

int confload_eval(const char *src, size_t len, const char *chunkname,
		  struct config *c, char *err, size_t errcap)
{
	struct config merged = *c;
	struct confload_ctx x = { .chunkname = chunkname, .c = &merged,
				  .err = err, .errcap = errcap };
	char *buf;
	lua_State *L = vm_state();

	if (vm_prepare_source(src, len, &x.src, &x.len, &buf, err, errcap) < 0)
		return -1;
	if (vm_pcall(confload_call, &x) != LUA_OK) {
		snprintf(err, errcap, "%s",
			 lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
		lua_pop(L, 1);
		free(buf);
		return -1;
	}
	free(buf);
	*c = merged;
	return 0;
}
