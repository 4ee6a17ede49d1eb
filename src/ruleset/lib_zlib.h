/* lib_zlib: the Lua "zlib" library, and (for now) the plain C body
 * helpers. Registered by hostapi_open(). */
#ifndef NEOSOCKSD_LIB_ZLIB_H
#define NEOSOCKSD_LIB_ZLIB_H

#include <stddef.h>

#include <lua.h>

/* Returns the table {compress, uncompress, gzip, gunzip}. zlib's own
 * state and all output are allocated with the state's lua_Alloc, so a
 * capped allocator bounds them; running out raises a Lua error. */
int luaopen_zlib(lua_State *L);

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
