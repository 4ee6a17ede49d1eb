/* zbody: zlib (RFC 1950) and gzip (RFC 1952) bodies in plain C, for the
 * REST API (request bodies in, deflated answers out), the VM (gzipped
 * sources) and the RPC client (its requests and the answers); and the
 * inflate and deflate loops, which the Lua "zlib" library (lib_zlib.c)
 * runs over its own buffers.
 *
 * Both decoders are strict about the end: a truncated stream, and bytes
 * after the zlib stream or after the last gzip member, are errors. gzip
 * input may hold several members, each with any optional header fields;
 * the header CRC (FHCRC), CRC32 and ISIZE of each are checked. */
#include "ruleset/zbody.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/growbuf.h"

/* input handed to zlib per call (avail_in is an unsigned int) */
#define ZBODY_MAXIN ((size_t)1 << 30)

/* Give zlib the next piece of input once it has used up the last one. */
static void zbody_feed(z_stream *zs, size_t *left)
{
	size_t n;

	if (zs->avail_in != 0 || *left == 0)
		return;
	n = *left < ZBODY_MAXIN ? *left : ZBODY_MAXIN;
	zs->avail_in = (uInt)n;
	*left -= n;
}

/* Point next_out at fresh room from the sink; 0 if it gave none. */
static int zbody_reserve(z_stream *zs, const struct zbody_sink *sink)
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
static enum zbody_run zbody_inflate_status(const z_stream *zs, int ret,
					   size_t left, const char **why)
{
	switch (ret) {
	case Z_OK:
		return ZBODY_RUN_OK;
	case Z_BUF_ERROR:
		*why = zs->avail_in == 0 && left == 0 ? "truncated input"
						      : "stream error";
		return ZBODY_RUN_BAD;
	case Z_NEED_DICT:
		*why = "preset dictionary required";
		return ZBODY_RUN_BAD;
	case Z_DATA_ERROR:
		*why = zs->msg != NULL ? zs->msg : "invalid data";
		return ZBODY_RUN_BAD;
	case Z_MEM_ERROR:
		return ZBODY_RUN_NOMEM;
	default:
		*why = "stream error";
		return ZBODY_RUN_BAD;
	}
}

/* Inflate all of in with an initialised zs; gzip allows more members. */
enum zbody_run zbody_inflate_run(z_stream *zs, const void *in, size_t inlen,
				 int gzip, const struct zbody_sink *sink,
				 const char **why)
{
	size_t left = inlen, before;
	enum zbody_run r;
	int ret;

	zs->next_in = (z_const Bytef *)in;
	zs->avail_in = 0;
	for (;;) {
		zbody_feed(zs, &left);
		if (!zbody_reserve(zs, sink))
			return ZBODY_RUN_STOP;
		before = zs->avail_out;
		ret = inflate(zs, Z_NO_FLUSH);
		sink->commit(sink->ctx, before - zs->avail_out);
		if (ret != Z_STREAM_END) {
			r = zbody_inflate_status(zs, ret, left, why);
			if (r != ZBODY_RUN_OK)
				return r;
			continue;
		}
		if (zs->avail_in == 0 && left == 0)
			return ZBODY_RUN_OK;
		if (!gzip) {
			*why = "trailing garbage after stream";
			return ZBODY_RUN_BAD;
		}
		if (inflateReset(zs) != Z_OK) {
			*why = "stream error";
			return ZBODY_RUN_BAD;
		}
	}
}

/* Deflate all of in with an initialised zs, finishing the stream. */
enum zbody_run zbody_deflate_run(z_stream *zs, const void *in, size_t inlen,
				 const struct zbody_sink *sink)
{
	size_t left = inlen, before;
	int ret, flush;

	zs->next_in = (z_const Bytef *)in;
	zs->avail_in = 0;
	for (;;) {
		zbody_feed(zs, &left);
		if (!zbody_reserve(zs, sink))
			return ZBODY_RUN_STOP;
		flush = zs->avail_in == 0 && left == 0 ? Z_FINISH : Z_NO_FLUSH;
		before = zs->avail_out;
		ret = deflate(zs, flush);
		sink->commit(sink->ctx, before - zs->avail_out);
		if (ret == Z_STREAM_END)
			return ZBODY_RUN_OK;
		if (ret != Z_OK)
			return ZBODY_RUN_BAD;
	}
}

/* ---- whole bodies (malloc, explicit limit) ---- */

/* The loops' output into a bounded growbuf. */
static char *zbody_buf_reserve(void *ctx, size_t *avail)
{
	return growbuf_room(ctx, 1, avail);
}

static void zbody_buf_commit(void *ctx, size_t n)
{
	growbuf_commit(ctx, n);
}

/* Map a run over a growbuf to the ZBODY_* results. */
static int zbody_buf_result(enum zbody_run r, const struct growbuf *b,
			    size_t limit)
{
	switch (r) {
	case ZBODY_RUN_OK:
		return b->len > limit ? ZBODY_ELIMIT : ZBODY_OK;
	case ZBODY_RUN_STOP:
		return b->nomem ? ZBODY_ENOMEM : ZBODY_ELIMIT;
	case ZBODY_RUN_NOMEM:
		return ZBODY_ENOMEM;
	default:
		return ZBODY_EMALFORMED;
	}
}

int zbody_inflate(const void *in, size_t inlen, int gzip, size_t limit,
		  char **out, size_t *outlen)
{
	struct growbuf b;
	struct zbody_sink sink = { zbody_buf_reserve, zbody_buf_commit, &b };
	z_stream zs;
	const char *why = NULL;
	int ret;

	*out = NULL;
	*outlen = 0;
	if (limit > SIZE_MAX - 2)
		limit = SIZE_MAX - 2;
	/* one byte more tells "over the limit" */
	b = (struct growbuf)GROWBUF_INIT(limit + 1);
	memset(&zs, 0, sizeof(zs));
	ret = inflateInit2(&zs, gzip ? ZBODY_WBITS_GZIP : ZBODY_WBITS);
	if (ret != Z_OK)
		return ret == Z_MEM_ERROR ? ZBODY_ENOMEM : ZBODY_EMALFORMED;
	ret = zbody_buf_result(zbody_inflate_run(&zs, in, inlen, gzip, &sink,
						 &why),
			       &b, limit);
	inflateEnd(&zs);
	if (ret != ZBODY_OK) {
		growbuf_free(&b);
		return ret;
	}
	if (b.p == NULL) /* no room was ever asked for: cannot happen */
		return ZBODY_ENOMEM;
	*outlen = b.len;
	*out = growbuf_take(&b);
	return ZBODY_OK;
}

int zbody_deflate(const void *in, size_t inlen, char **out, size_t *outlen)
{
	struct growbuf b = GROWBUF_INIT(SIZE_MAX - 1);
	struct zbody_sink sink = { zbody_buf_reserve, zbody_buf_commit, &b };
	z_stream zs;
	enum zbody_run r;

	*out = NULL;
	*outlen = 0;
	memset(&zs, 0, sizeof(zs));
	if (deflateInit(&zs, Z_DEFAULT_COMPRESSION) != Z_OK)
		return ZBODY_ENOMEM;
	r = zbody_deflate_run(&zs, in, inlen, &sink);
	deflateEnd(&zs);
	if (r != ZBODY_RUN_OK || b.p == NULL) {
		growbuf_free(&b);
		return ZBODY_ENOMEM;
	}
	*outlen = b.len;
	*out = growbuf_take(&b);
	return ZBODY_OK;
}
