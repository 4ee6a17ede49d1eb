/* unmarshal_lua: an RPC answer's values as Lua values, built from the
 * events of the data-only parser (unmarshal.h). Nothing of the answer
 * runs: no chunk is loaded, no metamethod or library function is called,
 * so the CPU budget is never needed; the tables and strings are allocated
 * by the state's allocator, so the memory cap bounds them. */
#ifndef NEOSOCKSD_UNMARSHAL_LUA_H
#define NEOSOCKSD_UNMARSHAL_LUA_H

#include <stddef.h>

#include <lua.h>

/* Parse the answer in buf and push its values (those after "return").
 * Protected: never raises. Returns how many values were pushed, or -1
 * with an error message pushed instead ("... at byte N", or "not enough
 * memory"); -1 with nothing pushed when the stack cannot grow by 4. A
 * decoded string may be at most str_max bytes. */
int unmarshal_lua(lua_State *L, const char *buf, size_t len, size_t str_max);

#endif
