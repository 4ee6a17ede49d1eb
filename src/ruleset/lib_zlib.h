/* lib_zlib: the Lua "zlib" library. Registered by hostapi_open(). */
#ifndef NEOSOCKSD_LIB_ZLIB_H
#define NEOSOCKSD_LIB_ZLIB_H

#include <lua.h>

/* Returns the table {compress, uncompress, gzip, gunzip}. zlib's own
 * state and all output are allocated with the state's lua_Alloc, so a
 * capped allocator bounds them; running out raises a Lua error. */
int luaopen_zlib(lua_State *L);

#endif
