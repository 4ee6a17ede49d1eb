/* lib_regex: the Lua "regex" library (POSIX extended regular expressions).
 * Registered by hostapi_open() as a global and in package.loaded. Its
 * functions may raise Lua errors: call them in protected mode. */
#ifndef NEOSOCKSD_LIB_REGEX_H
#define NEOSOCKSD_LIB_REGEX_H

#include <lua.h>

/* Returns the table {compile, find, match, gmatch, EXTENDED, ICASE,
 * NEWLINE, NOSUB}. regcomp() allocates with malloc, outside the Lua
 * allocator; the compiled regex is freed by the userdata's __gc. */
int luaopen_regex(lua_State *L);

#endif
