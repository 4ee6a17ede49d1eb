/* The Lua "zlib" library. The loops are zbody.c's.
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

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <zlib.h>

#include "ruleset/zbody.h"

#define ZLIB_CHUNK 16384 /* output into the luaL_Buffer at a time */
#define ZLIB_MT "zlib.stream"

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
		     enum zbody_run r, const char *why)
{
	char detail[128];

	/* zs.msg may point into the state that zlib_end frees */
	if (r == ZBODY_RUN_NOMEM || r == ZBODY_RUN_STOP || why == NULL)
		why = "out of memory";
	snprintf(detail, sizeof(detail), "%s", why);
	zlib_end(z);
	return luaL_error(L, "%s error: %s", op, detail);
}

static int zlib_init_error(lua_State *L, struct zlib_ud *z, const char *op,
			   int ret)
{
	return zlib_fail(L, z, op,
			 ret == Z_MEM_ERROR ? ZBODY_RUN_NOMEM : ZBODY_RUN_BAD,
			 "stream error");
}

static int zlib_lua_inflate(lua_State *L, const char *op, int gzip)
{
	size_t len;
	const char *in = luaL_checklstring(L, 1, &len);
	struct zlib_ud *z = zlib_newstream(L);
	const char *why = NULL;
	struct zbody_sink sink;
	enum zbody_run r;
	luaL_Buffer b;
	int ret;

	ret = inflateInit2(&z->zs, gzip ? ZBODY_WBITS_GZIP : ZBODY_WBITS);
	if (ret != Z_OK)
		return zlib_init_error(L, z, op, ret);
	z->mode = ZLIB_INFLATE;
	luaL_buffinit(L, &b);
	sink = (struct zbody_sink){ zlib_lbuf_reserve, zlib_lbuf_commit, &b };
	r = zbody_inflate_run(&z->zs, in, len, gzip, &sink, &why);
	if (r != ZBODY_RUN_OK)
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
	struct zbody_sink sink;
	enum zbody_run r;
	luaL_Buffer b;
	int ret;

	ret = deflateInit2(&z->zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
			   gzip ? ZBODY_WBITS_GZIP : ZBODY_WBITS, 8,
			   Z_DEFAULT_STRATEGY);
	if (ret != Z_OK)
		return zlib_init_error(L, z, op, ret);
	z->mode = ZLIB_DEFLATE;
	if (gzip) {
		z->gh.time = 0;
		z->gh.os = 0xff;
		if (deflateSetHeader(&z->zs, &z->gh) != Z_OK)
			return zlib_fail(L, z, op, ZBODY_RUN_BAD,
					 "stream error");
	}
	luaL_buffinit(L, &b);
	sink = (struct zbody_sink){ zlib_lbuf_reserve, zlib_lbuf_commit, &b };
	r = zbody_deflate_run(&z->zs, in, len, &sink);
	if (r != ZBODY_RUN_OK)
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
