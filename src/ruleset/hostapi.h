/* hostapi: the host's API into Lua: neosocksd.*, await.*, and the C
 * libraries (regex, time, zlib, marshal), registered as globals and in
 * package.loaded; and the Lua modules built into the binary. */
#ifndef NEOSOCKSD_HOSTAPI_H
#define NEOSOCKSD_HOSTAPI_H

#include <stddef.h>

#include <lua.h>

void hostapi_open(lua_State *L);
/* A module built into the binary (libruleset), used by require() when no
 * file provides the name; NULL when there is none. */
const char *hostapi_builtin_module(const char *name, size_t *len);

#endif
