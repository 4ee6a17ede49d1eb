/* The Lua "time" library: clock_gettime() clocks as seconds (floats).
 *
 * monotonic  CLOCK_MONOTONIC
 * process    CLOCK_PROCESS_CPUTIME_ID
 * thread     CLOCK_THREAD_CPUTIME_ID
 * unix, wall CLOCK_REALTIME (the same function under two names: the
 *            reference documents both)
 * Each returns -1 if the clock cannot be read.
 *
 * time.measure(f, ...) calls f(...) and returns the elapsed monotonic time
 * followed by f's results. It uses lua_callk, so f may yield (await.*). */
#include "ruleset/lib_time.h"

#include <stdint.h>
#include <time.h>

#include <lauxlib.h>

#include "common/monotime.h"

#define TIME_NSEC 1000000000

static lua_Number time_read(clockid_t clk)
{
	struct timespec ts;

	if (clock_gettime(clk, &ts) != 0)
		return -1;
	return (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / TIME_NSEC;
}

static int time_monotonic(lua_State *L)
{
	lua_pushnumber(L, time_read(CLOCK_MONOTONIC));
	return 1;
}

static int time_process(lua_State *L)
{
	lua_pushnumber(L, time_read(CLOCK_PROCESS_CPUTIME_ID));
	return 1;
}

static int time_thread(lua_State *L)
{
	lua_pushnumber(L, time_read(CLOCK_THREAD_CPUTIME_ID));
	return 1;
}

static int time_unix(lua_State *L)
{
	lua_pushnumber(L, time_read(CLOCK_REALTIME));
	return 1;
}

/* Stack: the start time (ns) at 1, then f's results. */
static int time_measure_done(lua_State *L, int status, lua_KContext ctx)
{
	int64_t t1 = monotime_ns();
	int64_t t0 = (int64_t)lua_tointeger(L, 1);

	(void)status;
	(void)ctx;
	luaL_checkstack(L, 1, NULL);
	lua_pushnumber(L, (lua_Number)(t1 - t0) / TIME_NSEC);
	lua_replace(L, 1);
	return lua_gettop(L);
}

static int time_measure(lua_State *L)
{
	int nargs = lua_gettop(L) - 1;

	luaL_checkany(L, 1);
	luaL_checkstack(L, 1, NULL);
	lua_pushinteger(L, (lua_Integer)monotime_ns());
	lua_insert(L, 1);
	lua_callk(L, nargs, LUA_MULTRET, 0, time_measure_done);
	return time_measure_done(L, LUA_OK, 0);
}

int luaopen_time(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{ "monotonic", time_monotonic },
		{ "process", time_process },
		{ "thread", time_thread },
		{ "unix", time_unix },
		{ "wall", time_unix },
		{ "measure", time_measure },
		{ NULL, NULL },
	};

	luaL_newlib(L, funcs);
	return 1;
}
