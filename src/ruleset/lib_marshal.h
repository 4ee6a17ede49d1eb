/* lib_marshal: the global function marshal(...), registered by
 * hostapi_open(). */
#ifndef NEOSOCKSD_LIB_MARSHAL_H
#define NEOSOCKSD_LIB_MARSHAL_H

#include <lua.h>

/* marshal(...), returning one string. May raise: protected mode only. */
int lib_marshal(lua_State *L);

/* Marshal the values at stack indices first..last (inclusive; none when
 * last < first; negative indices are relative to the top) exactly as
 * marshal(...) would, leaving them in place. Protected: never raises.
 * Returns 0 with the string pushed, or -1 with the error message pushed.
 * If the stack cannot grow by last - first + 3 slots it returns -1 and
 * pushes nothing (check lua_gettop() if that matters to the caller). */
int lib_marshal_values(lua_State *L, int first, int last);

#endif
