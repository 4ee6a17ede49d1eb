/* lib_neosocksd: the neosocksd.* table. */
#ifndef NEOSOCKSD_LIB_NEOSOCKSD_H
#define NEOSOCKSD_LIB_NEOSOCKSD_H

#include <lua.h>

int luaopen_neosocksd(lua_State *L);

#endif
