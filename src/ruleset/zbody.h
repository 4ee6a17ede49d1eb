/* zbody: zlib and gzip bodies in plain C, and the inflate and deflate
 * loops the Lua "zlib" library shares. */
#ifndef NEOSOCKSD_ZBODY_H
#define NEOSOCKSD_ZBODY_H

#include <stddef.h>

#include <zlib.h>

#define ZBODY_WBITS 15          /* zlib format */
#define ZBODY_WBITS_GZIP (15 + 16)

/* Results of zbody_inflate and zbody_deflate. */
enum {
	ZBODY_OK = 0,
	ZBODY_EMALFORMED = -1, /* bad header, data or check; truncated; junk */
	ZBODY_ELIMIT = -2,     /* the output would exceed the limit */
	ZBODY_ENOMEM = -3,     /* malloc failed */
};

/* Inflate a whole zlib (RFC 1950, gzip == 0) or gzip (RFC 1952, gzip != 0,
 * one or more concatenated members) body. On ZBODY_OK *out is a malloc'd
 * buffer of *outlen bytes plus a terminating NUL, to be freed by the caller;
 * on any error *out is NULL and *outlen 0. The output buffer never grows
 * beyond limit + 2 bytes; a realloc that copies briefly holds at most half
 * of that again (glibc remaps large blocks instead); zlib's own state adds
 * about 44 KiB. */
int zbody_inflate(const void *in, size_t inlen, int gzip, size_t limit,
		  char **out, size_t *outlen);

/* Deflate in zlib format (RFC 1950) at the default level. Returns ZBODY_OK
 * with a malloc'd *out (caller frees), or ZBODY_ENOMEM. */
int zbody_deflate(const void *in, size_t inlen, char **out, size_t *outlen);

/* ---- the loops, over any output buffer ---- */

enum zbody_run {
	ZBODY_RUN_OK,
	ZBODY_RUN_BAD,   /* malformed input; the detail says why */
	ZBODY_RUN_STOP,  /* the sink gave no room */
	ZBODY_RUN_NOMEM, /* zlib could not allocate */
};

/* Where output goes: reserve() returns room for at least one byte (its
 * size in *avail) or NULL to stop; commit() accounts for what was written. */
struct zbody_sink {
	char *(*reserve)(void *ctx, size_t *avail);
	void (*commit)(void *ctx, size_t n);
	void *ctx;
};

/* Inflate all of in with an initialised zs; gzip allows more members.
 * On ZBODY_RUN_BAD *why says what is wrong (it may point into zs). */
enum zbody_run zbody_inflate_run(z_stream *zs, const void *in, size_t inlen,
				 int gzip, const struct zbody_sink *sink,
				 const char **why);
/* Deflate all of in with an initialised zs, finishing the stream. */
enum zbody_run zbody_deflate_run(z_stream *zs, const void *in, size_t inlen,
				 const struct zbody_sink *sink);

#endif
