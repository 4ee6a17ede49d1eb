/* Built-in Lua libraries of the ruleset VM: regex, time, zlib, marshal.
 *
 * The VM registers them the way the reference does:
 *   luaL_requiref(L, "regex", luaopen_regex, 1);   (also time, zlib)
 *   lua_pushcfunction(L, lib_marshal); lua_setglobal(L, "marshal");
 * Every function here that takes a lua_State may raise Lua errors (including
 * memory errors), so it must run inside a protected call, except where a
 * comment says otherwise. The plain C zlib helpers use malloc and never
 * touch Lua. */
#ifndef NEOSOCKSD_RULESET_LIB_H
#define NEOSOCKSD_RULESET_LIB_H

#include <stddef.h>

#include <lua.h>

/* lib_regex.c: returns the table {compile, find, match, gmatch, EXTENDED,
 * ICASE, NEWLINE, NOSUB}. regcomp() allocates with malloc, outside the Lua
 * allocator; the compiled regex is freed by the userdata's __gc. */
int luaopen_regex(lua_State *L);

/* lib_time.c: returns the table {monotonic, process, thread, unix, wall,
 * measure}. process() and thread() read CPU-time clocks, which are real
 * clock_gettime() system calls (not vDSO): the seccomp policy must allow
 * clock_gettime. */
int luaopen_time(lua_State *L);

/* lib_zlib.c: returns the table {compress, uncompress, gzip, gunzip}.
 * zlib's own state and all output are allocated with the state's lua_Alloc,
 * so a capped allocator bounds them; running out raises a Lua error. */
int luaopen_zlib(lua_State *L);

/* lib_marshal.c: the global function marshal(...), returning one string. */
int lib_marshal(lua_State *L);

/* Marshal the values at stack indices first..last (inclusive; none when
 * last < first; negative indices are relative to the top) exactly as
 * marshal(...) would, leaving them in place. Protected: never raises.
 * Returns 0 with the string pushed, or -1 with the error message pushed.
 * If the stack cannot grow by last - first + 3 slots it returns -1 and
 * pushes nothing (check lua_gettop() if that matters to the caller). */
int lib_marshal_values(lua_State *L, int first, int last);

/* Results of the plain C zlib helpers. */
enum {
	ZLIB_OK = 0,
	ZLIB_EMALFORMED = -1, /* bad header, data or check; truncated; junk */
	ZLIB_ELIMIT = -2,     /* the output would exceed the limit */
	ZLIB_ENOMEM = -3,     /* malloc failed */
};

/* Inflate a whole zlib (RFC 1950, gzip == 0) or gzip (RFC 1952, gzip != 0,
 * one or more concatenated members) body. On ZLIB_OK *out is a malloc'd
 * buffer of *outlen bytes plus a terminating NUL, to be freed by the caller;
 * on any error *out is NULL and *outlen 0. The output buffer never grows
 * beyond limit + 2 bytes; a realloc that copies briefly holds at most half
 * of that again (glibc remaps large blocks instead); zlib's own state adds
 * about 44 KiB. */
int zlib_inflate_bounded(const void *in, size_t inlen, int gzip, size_t limit,
			 char **out, size_t *outlen);

/* Deflate in zlib format (RFC 1950) at the default level. Returns ZLIB_OK
 * with a malloc'd *out (caller frees), or ZLIB_ENOMEM. */
int zlib_deflate(const void *in, size_t inlen, char **out, size_t *outlen);

#endif
