/* lib_time: the Lua "time" library. Registered by hostapi_open(). */
#ifndef NEOSOCKSD_LIB_TIME_H
#define NEOSOCKSD_LIB_TIME_H

#include <lua.h>

/* Returns the table {monotonic, process, thread, unix, wall, measure}.
 * process() and thread() read CPU-time clocks, which are real
 * clock_gettime() system calls (not vDSO): the seccomp policy must allow
 * clock_gettime. */
int luaopen_time(lua_State *L);

#endif
