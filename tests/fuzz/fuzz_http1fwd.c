/* Fuzz target: the HTTP forward proxy's pure pieces
 * (src/common/http1fwd.c) on heads the HTTP/1 parser accepted.
 *
 * Flag byte: bit 0 a request or a response; bits 1-2 how the client's
 * connection ends (response heads); bit 3 dechunk; bit 4 the request
 * answered was HEAD; bits 5-7 and the next byte a chunk size. A request
 * whose absolute-form URI parses is rewritten for the origin; a response
 * is rewritten for the client. What is written must parse again as a head
 * of its kind, keep the method or status, carry Host from the URI (a
 * request) and "Via", and hold no hop-by-hop field: no Connection but the
 * proxy's own, no Keep-Alive, Proxy-*, TE, Trailer, nor a field the
 * original Connection named. A chunk header, with its data and the last
 * chunk, decodes to that data. */
#include "fuzz.h"

#include <strings.h>

#include "common/http1.h"
#include "common/http1fwd.h"

#define FUZZ_FWD_OUT (2 * HTTP1_HEAD_CAP + 1024)

static bool fuzz_fwd_name_is(const char *buf, struct http1_span s,
			     const char *lit)
{
	return http1_span_eq_ci(buf, s, lit);
}

/* No hop-by-hop field in the head we wrote (out, parsed into h); the
 * fields the original head's Connection named (orig, oh) are gone too. */
static void fuzz_fwd_no_hop(const char *out, const struct http1_head *h,
			    const char *orig, const struct http1_head *oh,
			    bool upgrade)
{
	static const char *const hop[] = { "keep-alive", "proxy-connection",
					   "proxy-authorization",
					   "proxy-authenticate", "te",
					   "trailer" };
	unsigned nconn = 0;

	for (unsigned i = 0; i < h->nfields; i++) {
		struct http1_span n = h->fields[i].name;
		char name[256];

		for (size_t k = 0; k < sizeof(hop) / sizeof(hop[0]); k++)
			FUZZ_CHECK(!fuzz_fwd_name_is(out, n, hop[k]));
		if (fuzz_fwd_name_is(out, n, "upgrade"))
			FUZZ_CHECK(upgrade);
		if (fuzz_fwd_name_is(out, n, "connection")) {
			nconn++;
			continue;
		}
		/* a field the client's Connection named is not forwarded */
		if (n.len >= sizeof(name))
			continue;
		memcpy(name, out + n.off, n.len);
		name[n.len] = '\0';
		for (unsigned j = 0; j < oh->nfields; j++)
			if (fuzz_fwd_name_is(orig, oh->fields[j].name,
					     "connection"))
				FUZZ_CHECK(!http1_list_has(orig,
							   oh->fields[j].value,
							   name) ||
					   (upgrade &&
					    strcasecmp(name, "upgrade") == 0));
	}
	FUZZ_CHECK(nconn <= 1);
}

static bool fuzz_fwd_has(const char *out, const struct http1_head *h,
			 const char *name)
{
	for (unsigned i = 0; i < h->nfields; i++)
		if (fuzz_fwd_name_is(out, h->fields[i].name, name))
			return true;
	return false;
}

static void fuzz_fwd_request(const char *buf, size_t n,
			     struct http1_head *h, struct http1_head *h2,
			     char *out)
{
	struct http1_parser p;
	struct http1fwd_uri u;
	struct http1fwd_req r;
	const char *why = NULL;
	const struct http1_span *host;
	long len;

	http1_parser_init(&p, HTTP1_REQUEST);
	if (http1_parse(&p, buf, n, h) <= 0)
		return;
	if (http1fwd_parse_uri(buf, h->target, &u, &why) != 0) {
		FUZZ_CHECK(why != NULL);
		return;
	}
	FUZZ_CHECK(u.authority.off >= h->target.off &&
		   u.authority.off + u.authority.len <=
			   h->target.off + h->target.len);
	FUZZ_CHECK(u.target.port != 0 || u.target.type != 0);
	http1fwd_request_info(buf, h, &r);
	FUZZ_CHECK(r.framing == HTTP1FWD_NONE ||
		   r.framing == HTTP1FWD_LENGTH ||
		   r.framing == HTTP1FWD_CHUNKED);
	len = http1fwd_request_head(out, FUZZ_FWD_OUT, buf, h, &u, &r);
	if (len < 0)
		return; /* it did not fit */
	http1_parser_init(&p, HTTP1_REQUEST);
	http1_parser_limits(&p, HTTP1_HEAD_CAP, HTTP1_FIELDS_CAP);
	FUZZ_CHECK(http1_parse(&p, out, (size_t)len, h2) == len);
	FUZZ_CHECK(h2->method.len == h->method.len &&
		   memcmp(out + h2->method.off, buf + h->method.off,
			  h->method.len) == 0);
	host = http1_known_value(h2, HTTP1_H_HOST);
	FUZZ_CHECK(host != NULL && host->len == u.authority.len &&
		   memcmp(out + host->off, buf + u.authority.off,
			  u.authority.len) == 0);
	FUZZ_CHECK(fuzz_fwd_has(out, h2, "via"));
	fuzz_fwd_no_hop(out, h2, buf, h, r.upgrade);
}

static void fuzz_fwd_response(const char *buf, size_t n, uint8_t flags,
			      struct http1_head *h, struct http1_head *h2,
			      char *out)
{
	struct http1_parser p;
	struct http1fwd_req req = { 0 };
	struct http1fwd_resp r;
	enum http1fwd_conn conn = (enum http1fwd_conn)(flags >> 1 & 3);
	long len;

	http1_parser_init(&p, HTTP1_RESPONSE);
	http1_parser_limits(&p, HTTP1_HEAD_CAP, HTTP1_FIELDS_CAP);
	if (http1_parse(&p, buf, n, h) <= 0)
		return;
	req.head = flags & 16;
	req.upgrade = conn == HTTP1FWD_CONN_UPGRADE;
	req.keepalive = true;
	http1fwd_response_info(buf, h, &req, &r);
	FUZZ_CHECK(r.framing <= HTTP1FWD_TUNNEL);
	if (h->status == 101 && req.upgrade)
		FUZZ_CHECK(r.framing == HTTP1FWD_TUNNEL);
	else if (req.head || h->status == 204 || h->status == 304 ||
		 h->status < 200)
		FUZZ_CHECK(r.framing == HTTP1FWD_NONE);
	len = http1fwd_response_head(out, FUZZ_FWD_OUT, buf, h, conn,
				     flags & 8);
	if (len < 0)
		return;
	http1_parser_init(&p, HTTP1_RESPONSE);
	http1_parser_limits(&p, HTTP1_HEAD_CAP, HTTP1_FIELDS_CAP);
	FUZZ_CHECK(http1_parse(&p, out, (size_t)len, h2) == len);
	FUZZ_CHECK(h2->status == h->status);
	FUZZ_CHECK(fuzz_fwd_has(out, h2, "via"));
	if (flags & 8)
		FUZZ_CHECK(!h2->chunked);
	fuzz_fwd_no_hop(out, h2, buf, h, conn == HTTP1FWD_CONN_UPGRADE);
}

static void fuzz_fwd_chunk(uint64_t size)
{
	static char in[1 << 16], payload[1 << 16];
	struct http1_chunked c;
	size_t outlen = 0;
	int a, b;

	size = size % 40000 + 1; /* size 0 is the last chunk itself */
	a = http1fwd_chunk_header(in, sizeof(in), size, false);
	FUZZ_CHECK(a > 0 && a <= HTTP1FWD_CHUNK_HDR_MAX);
	memset(in + a, 'x', size);
	b = http1fwd_chunk_header(in + a + size, sizeof(in) - a - size, 0,
				  true);
	FUZZ_CHECK(b > 0);
	http1_chunked_init(&c);
	FUZZ_CHECK(http1_chunked_decode(&c, in, (size_t)a + size + (size_t)b,
					payload, sizeof(payload),
					&outlen) == (long)((size_t)a + size +
							   (size_t)b));
	FUZZ_CHECK(c.done && outlen == size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http1_head *h, *h2;
	char *out;

	if (size < 2)
		return 0;
	h = malloc(sizeof(*h));
	h2 = malloc(sizeof(*h2));
	out = malloc(FUZZ_FWD_OUT);
	FUZZ_CHECK(h != NULL && h2 != NULL && out != NULL);
	if (data[0] & 1)
		fuzz_fwd_response((const char *)data + 2, size - 2, data[0], h,
				  h2, out);
	else
		fuzz_fwd_request((const char *)data + 2, size - 2, h, h2, out);
	fuzz_fwd_chunk((uint64_t)(data[0] >> 5) << 8 | data[1]);
	free(out);
	free(h2);
	free(h);
	return 0;
}
