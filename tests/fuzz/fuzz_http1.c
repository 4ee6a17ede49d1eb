/* Fuzz target: the HTTP/1 head parser, the chunked decoder and the
 * encoders (src/common/http1.c).
 *
 * Flag byte: bit 0 request or response, bit 1 the chunked decoder, bits
 * 2-7 a piece size. The head is parsed whole with a fresh state and again
 * as the daemon does, one piece at a time with the same state and a
 * growing buffer: both must give the same result and the same head. Spans
 * must lie inside the head. The chunked decoder decodes the bytes after
 * the head whole and a byte at a time: the same payload. The encoders'
 * output must parse (an error response as a response, a CONNECT as a
 * request). */
#include "fuzz.h"

#include "common/http1.h"

static bool fuzz_http1_same_head(const struct http1_head *a,
				 const struct http1_head *b)
{
	if (a->nfields != b->nfields || a->status != b->status ||
	    a->version_minor != b->version_minor ||
	    a->content_length != b->content_length ||
	    a->chunked != b->chunked || a->conn != b->conn ||
	    memcmp(&a->method, &b->method, sizeof(a->method)) != 0 ||
	    memcmp(&a->target, &b->target, sizeof(a->target)) != 0 ||
	    memcmp(a->known, b->known, sizeof(a->known)) != 0)
		return false;
	return memcmp(a->fields, b->fields,
		      a->nfields * sizeof(a->fields[0])) == 0;
}

static void fuzz_http1_span_in(struct http1_span s, long r)
{
	FUZZ_CHECK((long)s.off + s.len <= r);
}

static void fuzz_http1_check_head(const char *buf, const struct http1_head *h,
				  long r, bool request)
{
	char user[64], pass[64];

	FUZZ_CHECK(r <= HTTP1_MAX_HEAD && h->nfields <= HTTP1_MAX_FIELDS);
	FUZZ_CHECK(h->version_minor == 0 || h->version_minor == 1);
	FUZZ_CHECK(h->content_length >= -1);
	if (request) {
		FUZZ_CHECK(h->method.len > 0 && h->target.len > 0);
		fuzz_http1_span_in(h->method, r);
		fuzz_http1_span_in(h->target, r);
	} else {
		FUZZ_CHECK(h->status >= 100 && h->status <= 999);
		fuzz_http1_span_in(h->reason, r);
	}
	for (unsigned i = 0; i < h->nfields; i++) {
		const struct http1_field *f = &h->fields[i];

		FUZZ_CHECK(f->name.len > 0);
		fuzz_http1_span_in(f->name, r);
		fuzz_http1_span_in(f->value, r);
		(void)http1_list_has(buf, f->value, "close");
		(void)http1_list_has(buf, f->value, "deflate");
		if (http1_basic_auth_decode(buf + f->value.off, f->value.len,
					    user, sizeof(user), pass,
					    sizeof(pass)) == 0)
			FUZZ_CHECK(strlen(user) < sizeof(user) &&
				   strlen(pass) < sizeof(pass));
	}
	for (int k = 0; k < HTTP1_H_COUNT; k++) {
		const struct http1_span *v = http1_known_value(h, k);

		FUZZ_CHECK(h->known[k] < (int)h->nfields);
		if (v != NULL)
			fuzz_http1_span_in(*v, r);
	}
}

/* Whole and incremental (pieces of `piece` bytes, the same state). */
static long fuzz_http1_head(const char *buf, size_t n, bool request,
			    size_t piece, struct http1_head *h)
{
	struct http1_parser p, q;
	struct http1_head *h2 = malloc(sizeof(*h2));
	long r, r2 = 0;
	size_t len = 0;

	FUZZ_CHECK(h2 != NULL);
	http1_parser_init(&p, request ? HTTP1_REQUEST : HTTP1_RESPONSE);
	r = http1_parse(&p, buf, n, h);
	FUZZ_CHECK(r <= (long)n);
	if (r < 0)
		FUZZ_CHECK(p.why != NULL && p.status >= 400 && p.status < 600);
	http1_parser_init(&q, request ? HTTP1_REQUEST : HTTP1_RESPONSE);
	while (r2 == 0 && len < n) {
		len = len + piece < n ? len + piece : n;
		r2 = http1_parse(&q, buf, len, h2);
	}
	FUZZ_CHECK(r2 == r);
	if (r > 0) {
		FUZZ_CHECK(fuzz_http1_same_head(h, h2));
		fuzz_http1_check_head(buf, h, r, request);
	} else if (r < 0) {
		FUZZ_CHECK(q.status == p.status);
	}
	free(h2);
	return r;
}

static void fuzz_http1_chunked(const char *in, size_t n)
{
	static char out1[1 << 16], out2[1 << 16];
	struct http1_chunked a, b;
	size_t len1 = 0, len2 = 0, used2 = 0;
	long r1, r;

	http1_chunked_init(&a);
	r1 = http1_chunked_decode(&a, in, n, out1, sizeof(out1), &len1);
	FUZZ_CHECK(r1 <= (long)n && len1 <= sizeof(out1));
	if (r1 < 0 || (!a.done && len1 == sizeof(out1)))
		return; /* an error, or stopped by a full output */
	http1_chunked_init(&b);
	while (!b.done && used2 < n) {
		r = http1_chunked_decode(&b, in + used2, 1, out2, sizeof(out2),
					 &len2);
		FUZZ_CHECK(r >= 0 && r <= 1);
		if (r == 0)
			break;
		used2 += (size_t)r;
	}
	FUZZ_CHECK(b.done == a.done && len2 == len1 &&
		   memcmp(out1, out2, len1) == 0);
	if (a.done)
		FUZZ_CHECK((long)used2 == r1);
}

static void fuzz_http1_encoders(const uint8_t *d, size_t n)
{
	struct fuzz_in in = { d, n };
	struct http1_parser p;
	struct http1_head *h = malloc(sizeof(*h));
	char buf[2048], host[300], user[300], pass[300];
	int status = 100 + fuzz_byte(&in) * 4 % 500, len;

	FUZZ_CHECK(h != NULL);
	len = http1_error_response(buf, sizeof(buf), status,
				   "Retry-After: 1\r\n");
	FUZZ_CHECK(len > 0);
	http1_parser_init(&p, HTTP1_RESPONSE);
	FUZZ_CHECK(http1_parse(&p, buf, (size_t)len, h) > 0);
	FUZZ_CHECK(h->status == status && h->content_length >= 0);
	fuzz_str(&in, host, sizeof(host));
	fuzz_str(&in, user, sizeof(user));
	fuzz_str(&in, pass, sizeof(pass));
	len = http1_connect_request(buf, sizeof(buf), host,
				    fuzz_byte(&in) & 1 ? user : NULL, pass);
	if (len > 0 && host[0] != '\0' && strcspn(host, " \t\r\n") ==
	    strlen(host) && strspn(host, "!#$%&'*+-.^_`|~0123456789"
			   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			   ":[]@/?=") == strlen(host)) {
		char u2[300], p2[300];
		const struct http1_span *v;

		http1_parser_init(&p, HTTP1_REQUEST);
		FUZZ_CHECK(http1_parse(&p, buf, (size_t)len, h) == len);
		v = http1_known_value(h, HTTP1_H_PROXY_AUTHORIZATION);
		if (v != NULL && strchr(user, ':') == NULL)
			FUZZ_CHECK(http1_basic_auth_decode(buf + v->off, v->len,
							   u2, sizeof(u2), p2,
							   sizeof(p2)) == 0 &&
				   strcmp(u2, user) == 0 &&
				   strcmp(p2, pass) == 0);
	}
	free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http1_head *h;
	bool request;
	size_t piece;
	long r;

	if (size == 0)
		return 0;
	request = !(data[0] & 1);
	piece = (size_t)(data[0] >> 2) + 1;
	if (data[0] & 2) {
		fuzz_http1_chunked((const char *)data + 1, size - 1);
		fuzz_http1_encoders(data + 1, size - 1);
		return 0;
	}
	h = malloc(sizeof(*h));
	FUZZ_CHECK(h != NULL);
	r = fuzz_http1_head((const char *)data + 1, size - 1, request, piece,
			    h);
	if (r > 0 && h->chunked)
		fuzz_http1_chunked((const char *)data + 1 + r,
				   size - 1 - (size_t)r);
	free(h);
	return 0;
}
