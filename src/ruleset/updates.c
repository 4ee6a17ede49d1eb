/* updates: replacing the ruleset or a module at run time (/ruleset/update
 * and its replay from --state-dir), and running submitted code
 * (/ruleset/invoke, /ruleset/rpcall). Each is all-or-nothing: an error at
 * load or run time leaves the ruleset and every module as they were. */
#include "ruleset/updates.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "ruleset/codeinfo.h"
#include "ruleset/vm.h"

struct upd_ctx {
	int kind;
	const char *name;
	const char *chunkname;
	const char *src;
	size_t len;
};

/* [ud]: load, run, then install; nothing is installed before the end */
static int upd_call(lua_State *L)
{
	struct upd_ctx *u = lua_touserdata(L, 1);

	lua_settop(L, 0);
	if (luaL_loadbufferx(L, u->src, u->len, u->chunkname, "t") != LUA_OK)
		return lua_error(L);
	if (u->kind == UPDATE_RULESET) {
		lua_pushliteral(L, "ruleset");
		lua_call(L, 1, 1);
		if (!lua_istable(L, -1))
			return luaL_error(L, "ruleset: expected table, got %s",
					  luaL_typename(L, -1));
		lua_setglobal(L, "ruleset");
		return 0;
	}
	lua_pushstring(L, u->name);
	lua_call(L, 1, 1); /* 1: the module */
	if (lua_isnil(L, 1)) {
		lua_pushboolean(L, 1);
		lua_replace(L, 1);
	}
	lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE); /* 2 */
	lua_getfield(L, 2, u->name);                          /* 3: old */
	lua_getglobal(L, u->name);                            /* 4 */
	/* _G[name] follows the module only if it was the module before */
	if (!lua_isnil(L, 3) && lua_rawequal(L, 3, 4)) {
		lua_pushvalue(L, 1);
		lua_setglobal(L, u->name);
	}
	lua_pushvalue(L, 1);
	lua_setfield(L, 2, u->name);
	vm_mark_module(L, u->name);
	return 0;
}

static void upd_error(char *err, size_t cap)
{
	lua_State *L = vm_state();

	snprintf(err, cap, "%s",
		 lua_isstring(L, -1) ? lua_tostring(L, -1) : "(error object)");
	lua_pop(L, 1);
}

int updates_apply(int kind, const char *name, const char *chunkname,
		  const char *src, size_t len, char *err, size_t errcap)
{
	struct upd_ctx u = { kind, name, chunkname, NULL, 0 };
	char *buf;

	if (vm_prepare_source(src, len, &u.src, &u.len, &buf, err, errcap) < 0)
		return -1;
	if (vm_pcall(upd_call, &u) != LUA_OK) {
		upd_error(err, errcap);
		free(buf);
		return -1;
	}
	free(buf);
	codeinfo_note(kind == UPDATE_RULESET ? NULL : name, src, len);
	return 0;
}

/* A fresh environment whose reads fall through to _G: bare assignments
 * stay in it (the reference's invoke/rpcall sandbox). */
void updates_push_env(lua_State *L)
{
	lua_newtable(L);
	lua_createtable(L, 0, 1);
	lua_pushglobaltable(L);
	lua_setfield(L, -2, "__index");
	lua_setmetatable(L, -2);
}

struct inv_ctx {
	const char *src;
	size_t len;
};

static int inv_call(lua_State *L)
{
	struct inv_ctx *x = lua_touserdata(L, 1);

	lua_settop(L, 0);
	if (luaL_loadbufferx(L, x->src, x->len, "=(invoke)", "t") != LUA_OK)
		return lua_error(L);
	updates_push_env(L);
	lua_setupvalue(L, 1, 1);
	lua_call(L, 0, 0);
	return 0;
}

int updates_invoke(const char *src, size_t len, char *err, size_t errcap)
{
	struct inv_ctx x = { src, len };

	if (vm_pcall(inv_call, &x) != LUA_OK) {
		upd_error(err, errcap);
		return -1;
	}
	return 0;
}
