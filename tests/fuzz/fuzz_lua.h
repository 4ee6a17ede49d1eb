/* Lua helpers of the marshal and unmarshal fuzz targets: a state with a
 * capped allocator (as the daemon's), a deep comparison, and Lua's own
 * reading of an answer. */
#ifndef NEOSOCKSD_FUZZ_LUA_H
#define NEOSOCKSD_FUZZ_LUA_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "fuzz.h"

#define FUZZ_LUA_CAP (64u << 20)

static size_t fuzz_lua_used;

static void *fuzz_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	size_t old = ptr != NULL ? osize : 0;
	void *p;

	(void)ud;
	if (nsize == 0) {
		free(ptr);
		fuzz_lua_used -= old;
		return NULL;
	}
	if (nsize > old && fuzz_lua_used - old + nsize > FUZZ_LUA_CAP)
		return NULL;
	p = realloc(ptr, nsize);
	if (p != NULL)
		fuzz_lua_used = fuzz_lua_used - old + nsize;
	return p;
}

/* same(a, b): equal values of equal types (integer and float apart, -0.0
 * and 0.0 apart, NaN equal to NaN), tables compared deeply (keys by
 * value: tables as keys are compared by identity). normal(v): v with
 * 0.0 as the integer 0 (marshal writes it "0"; -0.0 keeps its sign). */
static const char fuzz_lua_helpers[] =
	"function same(a, b)\n"
	"  if type(a) ~= type(b) then return false end\n"
	"  if type(a) == 'number' then\n"
	"    if math.type(a) ~= math.type(b) then return false end\n"
	"    if a ~= a then return b ~= b end\n"
	"    return a == b and 1/a == 1/b\n"
	"  end\n"
	"  if type(a) ~= 'table' then return a == b end\n"
	"  for k, v in pairs(a) do\n"
	"    if type(k) == 'table' then return false end\n"
	"    if not same(v, rawget(b, k)) then return false end\n"
	"  end\n"
	"  for k in pairs(b) do\n"
	"    if rawget(a, k) == nil then return false end\n"
	"  end\n"
	"  return true\n"
	"end\n"
	"function normal(v)\n"
	"  if type(v) == 'number' and v == 0 and 1/v > 0 then return 0 end\n"
	"  if type(v) ~= 'table' then return v end\n"
	"  local t = {}\n"
	"  for k, x in pairs(v) do t[normal(k)] = normal(x) end\n"
	"  return t\n"
	"end\n";

static lua_State *fuzz_lua_state(void)
{
	lua_State *L = lua_newstate(fuzz_lua_alloc, NULL);

	FUZZ_CHECK(L != NULL);
	luaL_openlibs(L);
	FUZZ_CHECK(luaL_dostring(L, fuzz_lua_helpers) == LUA_OK);
	return L;
}

/* Pack the n values on top of the stack into {n = n, ...}. */
static void fuzz_lua_pack(lua_State *L, int n)
{
	int base = lua_gettop(L) - n;

	lua_createtable(L, n, 1);
	lua_insert(L, base + 1);
	for (int k = n; k >= 1; k--)
		lua_rawseti(L, base + 1, k);
	lua_pushinteger(L, n);
	lua_setfield(L, -2, "n");
}

/* Lua's reading of text, packed; false (nothing pushed) when Lua refuses
 * it, with the reason in *why (valid until the next call). */
static bool fuzz_lua_load_packed(lua_State *L, const char *s, size_t n,
				 const char **why)
{
	int top = lua_gettop(L);

	if (luaL_loadbufferx(L, s, n, "=(answer)", "t") != LUA_OK) {
		static char msg[256];

		snprintf(msg, sizeof(msg), "%s", lua_tostring(L, -1));
		*why = msg;
		lua_settop(L, top);
		return false;
	}
	lua_newtable(L); /* an empty environment: data needs none */
	FUZZ_CHECK(lua_setupvalue(L, -2, 1) != NULL);
	if (lua_pcall(L, 0, LUA_MULTRET, 0) != LUA_OK) {
		static char msg[256];

		snprintf(msg, sizeof(msg), "%s", lua_tostring(L, -1));
		*why = msg;
		lua_settop(L, top);
		return false;
	}
	fuzz_lua_pack(L, lua_gettop(L) - top);
	return true;
}

/* same() on the two values on top (popped). */
static bool fuzz_lua_same(lua_State *L)
{
	bool eq;

	lua_getglobal(L, "same");
	lua_insert(L, -3);
	FUZZ_CHECK(lua_pcall(L, 2, 1, 0) == LUA_OK);
	eq = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return eq;
}

#endif
