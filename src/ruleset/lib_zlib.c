/* The Lua "zlib" library and the C inflate/deflate helpers of lib.h.
 *
 * compress/uncompress use the zlib format (RFC 1950), gzip/gunzip the gzip
 * format (RFC 1952). gzip writes MTIME=0 and OS=255 (unknown); gunzip takes
 * one or more concatenated members, with any optional header fields, and
 * checks the header CRC (FHCRC), CRC32 and ISIZE of each. Both decoders are
 * strict about the end: a truncated stream, and bytes after the zlib stream
 * or after the last gzip member, are errors.
 *
 * Output is produced in ZLIB_CHUNK pieces. In Lua it goes into a luaL_Buffer
 * and zlib's state is allocated with the state's lua_Alloc, so the VM's
 * memory cap bounds a decompression bomb and running out is an ordinary Lua
 * error ("not enough memory" or "<op> error: out of memory"). The stream
 * lives in a userdata whose __gc ends it if an error unwinds past it.
 * Errors raised: "<op> error: <detail>". */
#include "ruleset/lib_zlib.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <zlib.h>

#define ZLIB_CHUNK 16384
/* input handed to zlib per call (avail_in is an unsigned int) */
#define ZLIB_MAXIN ((size_t)1 << 30)
#define ZLIB_MT "zlib.stream"
#define ZLIB_WBITS 15
#define ZLIB_WBITS_GZIP (15 + 16)

enum zlib_run {
	ZLIB_RUN_OK,
	ZLIB_RUN_BAD,   /* malformed input; the detail says why */
	ZLIB_RUN_STOP,  /* the sink gave no room */
	ZLIB_RUN_NOMEM, /* zlib could not allocate */
};

/* Where output goes: reserve() returns room for at least one byte (its
 * size in *avail) or NULL to stop; commit() accounts for what was written. */
struct zlib_sink {
	char *(*reserve)(void *ctx, size_t *avail);
	void (*commit)(void *ctx, size_t n);
	void *ctx;
};

/* Give zlib the next piece of input once it has used up the last one. */
static void zlib_feed(z_stream *zs, size_t *left)
{
	size_t n;

	if (zs->avail_in != 0 || *left == 0)
		return;
	n = *left < ZLIB_MAXIN ? *left : ZLIB_MAXIN;
	zs->avail_in = (uInt)n;
	*left -= n;
}

/* Point next_out at fresh room from the sink; 0 if it gave none. */
static int zlib_reserve(z_stream *zs, const struct zlib_sink *sink)
{
	size_t avail;
	char *p = sink->reserve(sink->ctx, &avail);

	if (p == NULL)
		return 0;
	zs->next_out = (Bytef *)p;
	zs->avail_out = avail < UINT_MAX ? (uInt)avail : UINT_MAX;
	return 1;
}

/* What one inflate() result means once the stream has not ended. */
static enum zlib_run zlib_inflate_status(const z_stream *zs, int ret,
					 size_t left, const char **why)
{
	switch (ret) {
	case Z_OK:
		return ZLIB_RUN_OK;
	case Z_BUF_ERROR:
		*why = zs->avail_in == 0 && left == 0 ? "truncated input" :
							"stream error";
		return ZLIB_RUN_BAD;
	case Z_NEED_DICT:
		*why = "preset dictionary required";
		return ZLIB_RUN_BAD;
	case Z_DATA_ERROR:
		*why = zs->msg != NULL ? zs->msg : "invalid data";
		return ZLIB_RUN_BAD;
	case Z_MEM_ERROR:
		return ZLIB_RUN_NOMEM;
	default:
		*why = "stream error";
		return ZLIB_RUN_BAD;
	}
}

/* Inflate all of in with an initialised zs; gzip allows more members. */
static enum zlib_run zlib_inflate_run(z_stream *zs, const void *in,
				      size_t inlen, int gzip,
				      const struct zlib_sink *sink,
				      const char **why)
{
	size_t left = inlen, before;
	enum zlib_run r;
	int ret;

	zs->next_in = (z_const Bytef *)in;
	zs->avail_in = 0;
	for (;;) {
		zlib_feed(zs, &left);
		if (!zlib_reserve(zs, sink))
			return ZLIB_RUN_STOP;
		before = zs->avail_out;
		ret = inflate(zs, Z_NO_FLUSH);
		sink->commit(sink->ctx, before - zs->avail_out);
		if (ret != Z_STREAM_END) {
			r = zlib_inflate_status(zs, ret, left, why);
			if (r != ZLIB_RUN_OK)
				return r;
			continue;
		}
		if (zs->avail_in == 0 && left == 0)
			return ZLIB_RUN_OK;
		if (!gzip) {
			*why = "trailing garbage after stream";
			return ZLIB_RUN_BAD;
		}
		if (inflateReset(zs) != Z_OK) {
			*why = "stream error";
			return ZLIB_RUN_BAD;
		}
	}
}

/* Deflate all of in with an initialised zs, finishing the stream. */
static enum zlib_run zlib_deflate_run(z_stream *zs, const void *in,
				      size_t inlen,
				      const struct zlib_sink *sink)
{
	size_t left = inlen, before;
	int ret, flush;

	zs->next_in = (z_const Bytef *)in;
	zs->avail_in = 0;
	for (;;) {
		zlib_feed(zs, &left);
		if (!zlib_reserve(zs, sink))
			return ZLIB_RUN_STOP;
		flush = zs->avail_in == 0 && left == 0 ? Z_FINISH : Z_NO_FLUSH;
		before = zs->avail_out;
		ret = deflate(zs, flush);
		sink->commit(sink->ctx, before - zs->avail_out);
		if (ret == Z_STREAM_END)
			return ZLIB_RUN_OK;
		if (ret != Z_OK)
			return ZLIB_RUN_BAD;
	}
}

/* --- plain C helpers (malloc, explicit limit) --- */

struct zlib_mbuf {
	char *p;
	size_t len, cap;
	size_t max; /* cap never exceeds this */
	int nomem;
};

static char *zlib_mbuf_reserve(void *ctx, size_t *avail)
{
	struct zlib_mbuf *m = ctx;
	size_t ncap;
	char *np;

	if (m->len == m->cap) {
		if (m->cap >= m->max)
			return NULL;
		/* double, but go straight to max from at most max / 2, so a
		 * realloc that copies holds at most 1.5 * max */
		ncap = m->cap == 0 ? ZLIB_CHUNK : m->cap * 2;
		if (ncap > m->max / 2 || ncap < m->cap)
			ncap = m->max;
		np = realloc(m->p, ncap + 1); /* + 1 for the final NUL */
		if (np == NULL) {
			m->nomem = 1;
			return NULL;
		}
		m->p = np;
		m->cap = ncap;
	}
	*avail = m->cap - m->len;
	return m->p + m->len;
}

static void zlib_mbuf_commit(void *ctx, size_t n)
{
	struct zlib_mbuf *m = ctx;

	m->len += n;
}

/* Map a run over a malloc'd buffer to the ZLIB_* results. */
static int zlib_mbuf_result(enum zlib_run r, const struct zlib_mbuf *m,
			    size_t limit)
{
	switch (r) {
	case ZLIB_RUN_OK:
		return m->len > limit ? ZLIB_ELIMIT : ZLIB_OK;
	case ZLIB_RUN_STOP:
		return m->nomem ? ZLIB_ENOMEM : ZLIB_ELIMIT;
	case ZLIB_RUN_NOMEM:
		return ZLIB_ENOMEM;
	default:
		return ZLIB_EMALFORMED;
	}
}

int zlib_inflate_bounded(const void *in, size_t inlen, int gzip, size_t limit,
			 char **out, size_t *outlen)
{
	struct zlib_mbuf m = { NULL, 0, 0, 0, 0 };
	struct zlib_sink sink = { zlib_mbuf_reserve, zlib_mbuf_commit, &m };
	z_stream zs;
	const char *why = NULL;
	int ret;

	*out = NULL;
	*outlen = 0;
	if (limit > SIZE_MAX - 2)
		limit = SIZE_MAX - 2;
	m.max = limit + 1; /* one byte more tells "over the limit" */
	memset(&zs, 0, sizeof(zs));
	ret = inflateInit2(&zs, gzip ? ZLIB_WBITS_GZIP : ZLIB_WBITS);
	if (ret != Z_OK)
		return ret == Z_MEM_ERROR ? ZLIB_ENOMEM : ZLIB_EMALFORMED;
	ret = zlib_mbuf_result(zlib_inflate_run(&zs, in, inlen, gzip, &sink,
						&why),
			       &m, limit);
	inflateEnd(&zs);
	if (ret != ZLIB_OK) {
		free(m.p);
		return ret;
	}
	if (m.p == NULL) /* no room was ever asked for: cannot happen */
		return ZLIB_ENOMEM;
	m.p[m.len] = '\0';
	*out = m.p;
	*outlen = m.len;
	return ZLIB_OK;
}

int zlib_deflate(const void *in, size_t inlen, char **out, size_t *outlen)
{
	struct zlib_mbuf m = { NULL, 0, 0, SIZE_MAX - 1, 0 };
	struct zlib_sink sink = { zlib_mbuf_reserve, zlib_mbuf_commit, &m };
	z_stream zs;
	enum zlib_run r;

	*out = NULL;
	*outlen = 0;
	memset(&zs, 0, sizeof(zs));
	if (deflateInit(&zs, Z_DEFAULT_COMPRESSION) != Z_OK)
		return ZLIB_ENOMEM;
	r = zlib_deflate_run(&zs, in, inlen, &sink);
	deflateEnd(&zs);
	if (r != ZLIB_RUN_OK || m.p == NULL) {
		free(m.p);
		return ZLIB_ENOMEM;
	}
	*out = m.p;
	*outlen = m.len;
	return ZLIB_OK;
}

/* --- Lua --- */

enum zlib_mode {
	ZLIB_NONE,
	ZLIB_INFLATE,
	ZLIB_DEFLATE,
};

/* A z_stream owned by a userdata; zlib allocates through lua_Alloc. */
struct zlib_ud {
	z_stream zs;
	gz_header gh; /* must live until deflate writes the header */
	enum zlib_mode mode;
	lua_Alloc alloc;
	void *alloc_ud;
};

/* lua_Alloc needs the size on free; keep it in front of each block */
union zlib_hdr {
	size_t size;
	max_align_t align;
};

static voidpf zlib_lalloc(voidpf opaque, uInt items, uInt size)
{
	struct zlib_ud *z = opaque;
	union zlib_hdr *h;
	size_t n;

	if (size != 0 && items > (SIZE_MAX - sizeof(*h)) / size)
		return Z_NULL;
	n = (size_t)items * size + sizeof(*h);
	h = z->alloc(z->alloc_ud, NULL, 0, n);
	if (h == NULL)
		return Z_NULL;
	h->size = n;
	return h + 1;
}

static void zlib_lfree(voidpf opaque, voidpf p)
{
	struct zlib_ud *z = opaque;
	union zlib_hdr *h = p;

	if (p == Z_NULL)
		return;
	h--;
	z->alloc(z->alloc_ud, h, h->size, 0);
}

static void zlib_end(struct zlib_ud *z)
{
	if (z->mode == ZLIB_INFLATE)
		inflateEnd(&z->zs);
	else if (z->mode == ZLIB_DEFLATE)
		deflateEnd(&z->zs);
	z->mode = ZLIB_NONE;
}

static int zlib_gc(lua_State *L)
{
	zlib_end(luaL_checkudata(L, 1, ZLIB_MT));
	return 0;
}

static struct zlib_ud *zlib_newstream(lua_State *L)
{
	struct zlib_ud *z = lua_newuserdatauv(L, sizeof(*z), 0);

	memset(z, 0, sizeof(*z));
	z->mode = ZLIB_NONE;
	z->alloc = lua_getallocf(L, &z->alloc_ud);
	z->zs.zalloc = zlib_lalloc;
	z->zs.zfree = zlib_lfree;
	z->zs.opaque = z;
	luaL_setmetatable(L, ZLIB_MT);
	return z;
}

static char *zlib_lbuf_reserve(void *ctx, size_t *avail)
{
	*avail = ZLIB_CHUNK;
	return luaL_prepbuffsize(ctx, ZLIB_CHUNK);
}

static void zlib_lbuf_commit(void *ctx, size_t n)
{
	luaL_addsize((luaL_Buffer *)ctx, n);
}

/* End the stream, then raise "<op> error: <detail>". */
static int zlib_fail(lua_State *L, struct zlib_ud *z, const char *op,
		     enum zlib_run r, const char *why)
{
	char detail[128];

	/* zs.msg may point into the state that zlib_end frees */
	if (r == ZLIB_RUN_NOMEM || r == ZLIB_RUN_STOP || why == NULL)
		why = "out of memory";
	snprintf(detail, sizeof(detail), "%s", why);
	zlib_end(z);
	return luaL_error(L, "%s error: %s", op, detail);
}

static int zlib_init_error(lua_State *L, struct zlib_ud *z, const char *op,
			   int ret)
{
	return zlib_fail(L, z, op,
			 ret == Z_MEM_ERROR ? ZLIB_RUN_NOMEM : ZLIB_RUN_BAD,
			 "stream error");
}

static int zlib_lua_inflate(lua_State *L, const char *op, int gzip)
{
	size_t len;
	const char *in = luaL_checklstring(L, 1, &len);
	struct zlib_ud *z = zlib_newstream(L);
	const char *why = NULL;
	struct zlib_sink sink;
	enum zlib_run r;
	luaL_Buffer b;
	int ret;

	ret = inflateInit2(&z->zs, gzip ? ZLIB_WBITS_GZIP : ZLIB_WBITS);
	if (ret != Z_OK)
		return zlib_init_error(L, z, op, ret);
	z->mode = ZLIB_INFLATE;
	luaL_buffinit(L, &b);
	sink = (struct zlib_sink){ zlib_lbuf_reserve, zlib_lbuf_commit, &b };
	r = zlib_inflate_run(&z->zs, in, len, gzip, &sink, &why);
	if (r != ZLIB_RUN_OK)
		return zlib_fail(L, z, op, r, why);
	luaL_pushresult(&b);
	zlib_end(z);
	return 1;
}

static int zlib_lua_deflate(lua_State *L, const char *op, int gzip)
{
	size_t len;
	const char *in = luaL_checklstring(L, 1, &len);
	struct zlib_ud *z = zlib_newstream(L);
	struct zlib_sink sink;
	enum zlib_run r;
	luaL_Buffer b;
	int ret;

	ret = deflateInit2(&z->zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
			   gzip ? ZLIB_WBITS_GZIP : ZLIB_WBITS, 8,
			   Z_DEFAULT_STRATEGY);
	if (ret != Z_OK)
		return zlib_init_error(L, z, op, ret);
	z->mode = ZLIB_DEFLATE;
	if (gzip) {
		z->gh.time = 0;
		z->gh.os = 0xff;
		if (deflateSetHeader(&z->zs, &z->gh) != Z_OK)
			return zlib_fail(L, z, op, ZLIB_RUN_BAD,
					 "stream error");
	}
	luaL_buffinit(L, &b);
	sink = (struct zlib_sink){ zlib_lbuf_reserve, zlib_lbuf_commit, &b };
	r = zlib_deflate_run(&z->zs, in, len, &sink);
	if (r != ZLIB_RUN_OK)
		return zlib_fail(L, z, op, r, "stream error");
	luaL_pushresult(&b);
	zlib_end(z);
	return 1;
}

static int zlib_compress(lua_State *L)
{
	return zlib_lua_deflate(L, "compress", 0);
}

static int zlib_uncompress(lua_State *L)
{
	return zlib_lua_inflate(L, "uncompress", 0);
}

static int zlib_gzip(lua_State *L)
{
	return zlib_lua_deflate(L, "gzip", 1);
}

static int zlib_gunzip(lua_State *L)
{
	return zlib_lua_inflate(L, "gunzip", 1);
}

int luaopen_zlib(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{ "compress", zlib_compress },
		{ "uncompress", zlib_uncompress },
		{ "gzip", zlib_gzip },
		{ "gunzip", zlib_gunzip },
		{ NULL, NULL },
	};

	if (luaL_newmetatable(L, ZLIB_MT)) {
		lua_pushcfunction(L, zlib_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
