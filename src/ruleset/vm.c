#include "ruleset/vm.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "common/log.h"

#define VM_MEMLIMIT_DEFAULT (64u << 20)

static struct {
	lua_State *L;
	size_t used, limit;
} V;

/* The allocator refuses growth past the cap: that allocation fails, Lua
 * raises "not enough memory" in the call that asked, and the state stays
 * usable. */
static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	(void)ud;
	if (ptr == NULL)
		osize = 0;
	if (nsize == 0) {
		free(ptr);
		V.used -= osize;
		return NULL;
	}
	if (nsize > osize && V.used + (nsize - osize) > V.limit)
		return NULL;
	ptr = realloc(ptr, nsize);
	if (ptr != NULL)
		V.used = V.used - osize + nsize;
	return ptr;
}

static void vm_open_safe_libs(lua_State *L)
{
	static const luaL_Reg libs[] = {
		{ LUA_GNAME, luaopen_base },
		{ LUA_COLIBNAME, luaopen_coroutine },
		{ LUA_TABLIBNAME, luaopen_table },
		{ LUA_STRLIBNAME, luaopen_string },
		{ LUA_MATHLIBNAME, luaopen_math },
		{ LUA_UTF8LIBNAME, luaopen_utf8 },
		{ NULL, NULL },
	};
	static const char *const unsafe_base[] = { "dofile", "loadfile",
						   NULL };

	for (const luaL_Reg *l = libs; l->name != NULL; l++) {
		luaL_requiref(L, l->name, l->func, 1);
		lua_pop(L, 1);
	}
	for (int i = 0; unsafe_base[i] != NULL; i++) {
		lua_pushnil(L);
		lua_setglobal(L, unsafe_base[i]);
	}
}

int vm_init(size_t memlimit)
{
	V.limit = memlimit > 0 ? memlimit : VM_MEMLIMIT_DEFAULT;
	V.L = lua_newstate(vm_alloc, NULL);
	if (V.L == NULL)
		return -1;
	vm_open_safe_libs(V.L);
	return 0;
}

void vm_close(void)
{
	if (V.L != NULL)
		lua_close(V.L);
	V.L = NULL;
}

lua_State *vm_state(void)
{
	return V.L;
}

size_t vm_memory(void)
{
	return V.used;
}

size_t vm_memlimit(void)
{
	return V.limit;
}

/* Skip a UTF-8 BOM and a "#!" first line (keeping the newline, so line
 * numbers stay right). */
static const char *vm_skip_prefix(const char *src, size_t *len)
{
	if (*len >= 3 && memcmp(src, "\xef\xbb\xbf", 3) == 0) {
		src += 3;
		*len -= 3;
	}
	if (*len >= 2 && src[0] == '#' && src[1] == '!') {
		const char *nl = memchr(src, '\n', *len);
		size_t skip = nl != NULL ? (size_t)(nl - src) : *len;
		src += skip;
		*len -= skip;
	}
	return src;
}

int vm_load_ruleset(const char *src, size_t len, const char *chunkname,
		    char *err, size_t errcap)
{
	lua_State *L = V.L;
	int top = lua_gettop(L);

	src = vm_skip_prefix(src, &len);
	if (luaL_loadbufferx(L, src, len, chunkname, "t") != LUA_OK)
		goto fail;
	lua_pushliteral(L, "ruleset");
	if (lua_pcall(L, 1, 1, 0) != LUA_OK)
		goto fail;
	if (!lua_istable(L, -1)) {
		lua_pushfstring(L, "ruleset: expected table, got %s",
				luaL_typename(L, -1));
		goto fail;
	}
	lua_setglobal(L, "ruleset");
	lua_settop(L, top);
	return 0;
fail:
	snprintf(err, errcap, "%s",
		 lua_isstring(L, -1) ? lua_tostring(L, -1) : "(error object)");
	lua_settop(L, top);
	return -1;
}

bool vm_has_ruleset(void)
{
	bool r;

	lua_getglobal(V.L, "ruleset");
	r = lua_istable(V.L, -1);
	lua_pop(V.L, 1);
	return r;
}
