#include "ruleset/stats.h"

#include <stdio.h>
#include <string.h>

#include "ruleset/aroutine.h"
#include "ruleset/request.h"
#include "ruleset/vm.h"

static char stats_lasterror[512];

void stats_set_lasterror(const char *msg)
{
	snprintf(stats_lasterror, sizeof(stats_lasterror), "%s",
		 msg != NULL ? msg : "?");
}

static void set_num(lua_State *L, const char *k, lua_Integer v)
{
	lua_pushinteger(L, v);
	lua_setfield(L, -2, k);
}

void stats_push_table(lua_State *L)
{
	lua_createtable(L, 0, 24);
	if (stats_lasterror[0] != '\0') {
		lua_pushstring(L, stats_lasterror);
		lua_setfield(L, -2, "lasterror");
	}
	set_num(L, "bytes_allocated", (lua_Integer)vm_memory());
	set_num(L, "num_object", (lua_Integer)vm_objects());
	set_num(L, "num_thread_active", (lua_Integer)ar_active());
	set_num(L, "num_thread_peak", (lua_Integer)ar_peak());
	set_num(L, "num_request_pending", (lua_Integer)request_pending());
}
