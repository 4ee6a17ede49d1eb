#include "ruleset/hostapi.h"

#include <string.h>

#include <lauxlib.h>

#include "ruleset/builtin.h"
#include "ruleset/lib_await.h"
#include "ruleset/lib_marshal.h"
#include "ruleset/lib_neosocksd.h"
#include "ruleset/lib_regex.h"
#include "ruleset/lib_time.h"
#include "ruleset/lib_zlib.h"
#include "ruleset/vm.h"

static void hostapi_global(lua_State *L, const char *name, lua_CFunction open)
{
	luaL_requiref(L, name, open, 1);
	lua_pop(L, 1);
}

void hostapi_open(lua_State *L)
{
	hostapi_global(L, "neosocksd", luaopen_neosocksd);
	hostapi_global(L, "await", luaopen_await);
	hostapi_global(L, "regex", luaopen_regex);
	hostapi_global(L, "time", luaopen_time);
	hostapi_global(L, "zlib", luaopen_zlib);
	lua_pushcfunction(L, lib_marshal);
	lua_setglobal(L, "marshal");
}

const char *hostapi_builtin_module(const char *name, size_t *len)
{
	for (const struct builtin_module *m = builtin_modules; m->name != NULL;
	     m++) {
		if (strcmp(m->name, name) == 0) {
			*len = m->len;
			return m->src;
		}
	}
	return NULL;
}
