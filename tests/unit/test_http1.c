/* Unit tests for src/common/http1.c and src/common/base64.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/http1.h"

#define LIT(s) s, (sizeof(s) - 1)

/* ---- helpers ---- */

/* Parse buf[0..len) in one call with a fresh parser. */
static int parse_whole(enum http1_kind kind, const char *buf, size_t len,
		       struct http1_parser *p, struct http1_head *h)
{
	http1_parser_init(p, kind);
	return http1_parse(p, buf, len, h);
}

/* Feed buf one more byte per call; every call before the last must ask
 * for more. Returns the first non-zero result, or 0 if none. h is filled
 * with junk before every call: the parser must not rely on what an
 * earlier call left in it. */
static int parse_bytewise(enum http1_kind kind, const char *buf, size_t len,
			  struct http1_parser *p, struct http1_head *h)
{
	size_t n;

	http1_parser_init(p, kind);
	for (n = 1; n <= len; n++) {
		int r;

		memset(h, 0xa5, sizeof(*h));
		r = http1_parse(p, buf, n, h);

		if (r != 0)
			return r;
	}
	return 0;
}

static void assert_span(const char *buf, struct http1_span s,
			const char *want)
{
	if (!http1_span_eq(buf, s, want))
		print_message("span \"%.*s\" != \"%s\"\n", (int)s.len,
			      buf + s.off, want);
	assert_true(http1_span_eq(buf, s, want));
}

static void assert_span_equal(struct http1_span a, struct http1_span b)
{
	assert_int_equal(a.off, b.off);
	assert_int_equal(a.len, b.len);
}

static void assert_heads_equal(const struct http1_head *a,
			       const struct http1_head *b)
{
	size_t i;

	assert_span_equal(a->method, b->method);
	assert_span_equal(a->target, b->target);
	assert_int_equal(a->status, b->status);
	assert_span_equal(a->reason, b->reason);
	assert_int_equal(a->version_minor, b->version_minor);
	assert_int_equal(a->nfields, b->nfields);
	for (i = 0; i < a->nfields; i++) {
		assert_span_equal(a->fields[i].name, b->fields[i].name);
		assert_span_equal(a->fields[i].value, b->fields[i].value);
	}
	assert_int_equal(a->content_length, b->content_length);
	assert_int_equal(a->chunked, b->chunked);
	assert_int_equal(a->conn, b->conn);
	for (i = 0; i < HTTP1_H_COUNT; i++)
		assert_int_equal(a->known[i], b->known[i]);
}

/* The whole input and the byte-at-a-time feed must both fail with
 * status. */
static void expect_reject(enum http1_kind kind, const char *buf, size_t len,
			  int status)
{
	struct http1_parser p;
	struct http1_head h;
	int r;

	r = parse_whole(kind, buf, len, &p, &h);
	if (r != -1 || p.status != status)
		print_message("whole: %d/%d for \"%.*s\"\n", r, p.status,
			      (int)len, buf);
	assert_int_equal(r, -1);
	assert_int_equal(p.status, status);
	assert_non_null(p.why);
	/* a failed parser stays failed */
	assert_int_equal(http1_parse(&p, buf, len, &h), -1);

	r = parse_bytewise(kind, buf, len, &p, &h);
	if (r != -1 || p.status != status)
		print_message("bytewise: %d/%d for \"%.*s\"\n", r, p.status,
			      (int)len, buf);
	assert_int_equal(r, -1);
	assert_int_equal(p.status, status);
}

/* Valid head: whole, byte-at-a-time and every prefix agree. */
static void expect_accept(enum http1_kind kind, const char *buf, size_t len,
			  size_t headlen, struct http1_head *h)
{
	struct http1_parser p, q;
	struct http1_head h2;
	size_t n;
	int r;

	r = parse_whole(kind, buf, len, &p, h);
	if (r != (int)headlen)
		print_message("whole: %d (status %d, %s) for \"%.*s\"\n", r,
			      p.status, p.why ? p.why : "-", (int)len, buf);
	assert_int_equal(r, (int)headlen);
	/* a finished parser keeps returning the head length, and fills a
	 * head again */
	memset(&h2, 0x5a, sizeof(h2));
	assert_int_equal(http1_parse(&p, buf, len, &h2), (int)headlen);
	assert_heads_equal(h, &h2);

	assert_int_equal(parse_bytewise(kind, buf, len, &q, &h2),
			 (int)headlen);
	assert_heads_equal(h, &h2);

	/* every strict prefix, each with a fresh parser, needs more */
	for (n = 0; n < headlen; n++) {
		struct http1_head h3;

		assert_int_equal(parse_whole(kind, buf, n, &q, &h3), 0);
	}
}

/* ---- valid requests ---- */

static void test_request_connect(void **state)
{
	static const char req[] =
		"CONNECT example.com:443 HTTP/1.1\r\n"
		"Host: example.com:443\r\n"
		"Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"
		"Proxy-Connection: Keep-Alive\r\n"
		"\r\n";
	struct http1_head h;
	const struct http1_span *v;

	(void)state;
	expect_accept(HTTP1_REQUEST, LIT(req), sizeof(req) - 1, &h);
	assert_span(req, h.method, "CONNECT");
	assert_span(req, h.target, "example.com:443");
	assert_int_equal(h.version_minor, 1);
	assert_int_equal(h.nfields, 3);
	assert_span(req, h.fields[0].name, "Host");
	assert_span(req, h.fields[0].value, "example.com:443");
	assert_int_equal(h.content_length, -1);
	assert_false(h.chunked);
	assert_int_equal(h.conn, 0);
	assert_int_equal(h.known[HTTP1_H_HOST], 0);
	assert_int_equal(h.known[HTTP1_H_PROXY_AUTHORIZATION], 1);
	assert_int_equal(h.known[HTTP1_H_PROXY_CONNECTION], 2);
	assert_int_equal(h.known[HTTP1_H_AUTHORIZATION], -1);
	v = http1_known_value(&h, HTTP1_H_PROXY_AUTHORIZATION);
	assert_non_null(v);
	assert_span(req, *v, "Basic dXNlcjpwYXNz");
	assert_null(http1_known_value(&h, HTTP1_H_EXPECT));
	assert_null(http1_known_value(&h, HTTP1_H_COUNT));
}

static void test_request_get_absolute(void **state)
{
	static const char req[] =
		"GET http://example.com/a/b?c=d&e=%20 HTTP/1.1\r\n"
		"host: example.com\r\n"
		"User-Agent: curl/8.0\r\n"
		"Connection: keep-alive, Upgrade\r\n"
		"Upgrade: websocket\r\n"
		"Accept-Encoding: gzip, br\r\n"
		"Origin: http://example.com\r\n"
		"Authorization: Bearer x\r\n"
		"Expect: 100-continue\r\n"
		"Content-Type: text/plain\r\n"
		"Content-Encoding: gzip\r\n"
		"\r\n";
	struct http1_head h;
	size_t k;

	(void)state;
	expect_accept(HTTP1_REQUEST, LIT(req), sizeof(req) - 1, &h);
	assert_span(req, h.method, "GET");
	assert_span(req, h.target, "http://example.com/a/b?c=d&e=%20");
	assert_int_equal(h.nfields, 10);
	assert_int_equal(h.conn, HTTP1_CONN_KEEPALIVE | HTTP1_CONN_UPGRADE);
	assert_int_equal(h.known[HTTP1_H_HOST], 0);
	assert_int_equal(h.known[HTTP1_H_UPGRADE], 3);
	assert_int_equal(h.known[HTTP1_H_ACCEPT_ENCODING], 4);
	assert_int_equal(h.known[HTTP1_H_ORIGIN], 5);
	assert_int_equal(h.known[HTTP1_H_AUTHORIZATION], 6);
	assert_int_equal(h.known[HTTP1_H_EXPECT], 7);
	assert_int_equal(h.known[HTTP1_H_CONTENT_TYPE], 8);
	assert_int_equal(h.known[HTTP1_H_CONTENT_ENCODING], 9);
	assert_int_equal(h.known[HTTP1_H_PROXY_AUTHORIZATION], -1);
	for (k = 0; k < HTTP1_H_COUNT; k++) {
		const struct http1_span *v = http1_known_value(&h, k);

		if (h.known[k] < 0)
			assert_null(v);
		else
			assert_ptr_equal(v, &h.fields[h.known[k]].value);
	}
	assert_span(req, *http1_known_value(&h, HTTP1_H_UPGRADE),
		    "websocket");
}

static void test_request_post_content_length(void **state)
{
	static const char req[] =
		"POST /submit HTTP/1.1\r\n"
		"Host: a\r\n"
		"Content-Length: 0005\r\n"
		"\r\n"
		"hello";
	struct http1_head h;

	(void)state;
	expect_accept(HTTP1_REQUEST, LIT(req), sizeof(req) - 1 - 5, &h);
	assert_span(req, h.method, "POST");
	assert_int_equal(h.content_length, 5);
	assert_false(h.chunked);
}

static void test_request_chunked(void **state)
{
	static const char req[] =
		"PUT /x HTTP/1.1\r\n"
		"Transfer-Encoding: \t ChUnKeD \t\r\n"
		"\r\n"
		"5\r\nhello\r\n0\r\n\r\n";
	struct http1_head h;

	(void)state;
	expect_accept(HTTP1_REQUEST, LIT(req),
		      strstr(req, "\r\n\r\n") + 4 - req, &h);
	assert_true(h.chunked);
	assert_int_equal(h.content_length, -1);
}

static void test_request_versions_and_shapes(void **state)
{
	static const char r10[] = "GET / HTTP/1.0\r\n\r\n";
	static const char r19[] = "OPTIONS * HTTP/1.9\r\n\r\n";
	static const char nohost[] =
		"POST /rpc HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
	static const char cl0[] = "GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
	static const char clmax[] =
		"GET / HTTP/1.1\r\nContent-Length: 4611686018427387904\r\n\r\n";
	static const char ext[] = "M-SEARCH * HTTP/1.1\r\n"
				  "X~!#$%&'*+-.^_`|: v\r\n\r\n";
	struct http1_head h;

	(void)state;
	expect_accept(HTTP1_REQUEST, LIT(r10), sizeof(r10) - 1, &h);
	assert_int_equal(h.version_minor, 0);
	assert_int_equal(h.nfields, 0);
	expect_accept(HTTP1_REQUEST, LIT(r19), sizeof(r19) - 1, &h);
	assert_int_equal(h.version_minor, 1);
	assert_span(r19, h.target, "*");
	expect_accept(HTTP1_REQUEST, LIT(nohost), sizeof(nohost) - 3, &h);
	assert_int_equal(h.known[HTTP1_H_HOST], -1);
	assert_null(http1_known_value(&h, HTTP1_H_HOST));
	assert_int_equal(h.content_length, 2);
	expect_accept(HTTP1_REQUEST, LIT(cl0), sizeof(cl0) - 1, &h);
	assert_int_equal(h.content_length, 0);
	expect_accept(HTTP1_REQUEST, LIT(clmax), sizeof(clmax) - 1, &h);
	assert_int_equal(h.content_length, INT64_C(4611686018427387904));
	expect_accept(HTTP1_REQUEST, LIT(ext), sizeof(ext) - 1, &h);
	assert_span(ext, h.method, "M-SEARCH");
	assert_span(ext, h.fields[0].name, "X~!#$%&'*+-.^_`|");
}

static void test_field_values(void **state)
{
	static const char req[] =
		"GET / HTTP/1.1\r\n"
		"X-A: \t val\tue \t\r\n"
		"X-B: caf\xc3\xa9 \xff\x80\r\n"
		"X-C:\r\n"
		"X-D: \t \r\n"
		"X-E:nospace\r\n"
		"\r\n";
	struct http1_head h;

	(void)state;
	expect_accept(HTTP1_REQUEST, LIT(req), sizeof(req) - 1, &h);
	assert_int_equal(h.nfields, 5);
	assert_span(req, h.fields[0].value, "val\tue");
	assert_span(req, h.fields[1].value, "caf\xc3\xa9 \xff\x80");
	assert_int_equal(h.fields[2].value.len, 0);
	assert_int_equal(h.fields[3].value.len, 0);
	assert_span(req, h.fields[4].value, "nospace");
	assert_span(req, h.fields[4].name, "X-E");
}

static void test_known_first_kept_and_connection(void **state)
{
	static const char req[] =
		"GET / HTTP/1.1\r\n"
		"Origin: first\r\n"
		"Connection: close\r\n"
		"ORIGIN: second\r\n"
		"connection: foo, \"x,y\" , Keep-Alive;p=1\r\n"
		"Proxy-Authorization: one\r\n"
		"Proxy-Authorization: two\r\n"
		"\r\n";
	struct http1_head h;

	(void)state;
	expect_accept(HTTP1_REQUEST, LIT(req), sizeof(req) - 1, &h);
	assert_int_equal(h.known[HTTP1_H_ORIGIN], 0);
	assert_span(req, *http1_known_value(&h, HTTP1_H_ORIGIN), "first");
	assert_span(req, *http1_known_value(&h, HTTP1_H_PROXY_AUTHORIZATION),
		    "one");
	assert_int_equal(h.conn, HTTP1_CONN_CLOSE | HTTP1_CONN_KEEPALIVE);
}

/* ---- rejections ---- */

struct reject_case {
	const char *in;
	size_t len;
	int status;
};

#define REJ(s, st) { s, sizeof(s) - 1, st }

static void run_rejects(enum http1_kind kind, const struct reject_case *c,
			size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		expect_reject(kind, c[i].in, c[i].len, c[i].status);
}

static void test_reject_line_endings_and_controls(void **state)
{
	static const struct reject_case c[] = {
		/* bare LF */
		REJ("GET / HTTP/1.1\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\nHost: a\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\nHost: a\r\n\n", 400),
		REJ("GET / HTTP/1.1\n\n", 400),
		/* bare CR */
		REJ("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\r\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\nHost: a\r\n\r\r", 400),
		REJ("GET /\r HTTP/1.1\r\n\r\n", 400),
		/* NUL and other controls */
		REJ("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 400),
		REJ("GET /\0 HTTP/1.1\r\n\r\n", 400),
		REJ("\0GET / HTTP/1.1\r\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\nX: a\x01\r\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\nX: \x1f\r\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\nX\x1b: a\r\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\nX: \x0b\r\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\nX: \x0c\r\n\r\n", 400),
		/* HTAB only inside values */
		REJ("GET\t/ HTTP/1.1\r\n\r\n", 400),
		REJ("GET /\tHTTP/1.1\r\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\nX\t: a\r\n\r\n", 400),
	};

	(void)state;
	run_rejects(HTTP1_REQUEST, c, sizeof(c) / sizeof(c[0]));
}

static void test_reject_field_syntax(void **state)
{
	static const struct reject_case c[] = {
		/* obs-fold */
		REJ("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n", 400),
		/* whitespace-led line right after the start line */
		REJ("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\n\tHost: a\r\n\r\n", 400),
		REJ("HTTP/1.1 200 OK\r\n X: a\r\n\r\n", 400),
		/* whitespace between name and colon */
		REJ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400),
		/* empty or non-token names, missing colon */
		REJ("GET / HTTP/1.1\r\n: a\r\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\n:\r\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\nHo\"st: a\r\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\nX(y): a\r\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\nX/y: a\r\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\nX@y: a\r\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\nCaf\xc3\xa9: a\r\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\nHost a\r\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\nHost\r\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\nHo st: a\r\n\r\n", 400),
	};

	(void)state;
	run_rejects(HTTP1_REQUEST, c, sizeof(c) / sizeof(c[0]));
}

static void test_reject_request_line(void **state)
{
	static const struct reject_case c[] = {
		REJ("\r\nGET / HTTP/1.1\r\n\r\n", 400),
		REJ("GET  / HTTP/1.1\r\n\r\n", 400),
		REJ("GET /  HTTP/1.1\r\n\r\n", 400),
		REJ("GET / HTTP/1.1 \r\n\r\n", 400),
		REJ(" GET / HTTP/1.1\r\n\r\n", 400),
		REJ(" / HTTP/1.1\r\n\r\n", 400),     /* empty method */
		REJ("GET  HTTP/1.1\r\n\r\n", 400),   /* empty target */
		REJ("GET /\r\n\r\n", 400),
		REJ("GET\r\n\r\n", 400),
		REJ("GET HTTP/1.1\r\n\r\n", 400),
		REJ("GET / HTTP/1.1x\r\n\r\n", 400),
		REJ("GET / http/1.1\r\n\r\n", 400),
		REJ("GET / HTTP/1.\r\n\r\n", 400),
		REJ("GET / HTTP/1\r\n\r\n", 400),
		REJ("GET / HTTP/11.1\r\n\r\n", 400),
		REJ("GET / HTTP/1.10\r\n\r\n", 400),
		REJ("GET / HTTP/a.1\r\n\r\n", 400),
		REJ("GET / HTTP 1.1\r\n\r\n", 400),
		REJ("G(T / HTTP/1.1\r\n\r\n", 400),
		REJ("GE\"T / HTTP/1.1\r\n\r\n", 400),
		REJ("GET /\x80 HTTP/1.1\r\n\r\n", 400),
		REJ("GET /a b HTTP/1.1\r\n\r\n", 400),
		REJ("HTTP/1.1 200 OK\r\n\r\n", 400),
		/* unsupported major version */
		REJ("GET / HTTP/2.0\r\n\r\n", 505),
		REJ("GET / HTTP/0.9\r\n\r\n", 505),
		REJ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
		REJ("GET / HTTP/3.1\r\nHost: a\r\n\r\n", 505),
	};

	(void)state;
	run_rejects(HTTP1_REQUEST, c, sizeof(c) / sizeof(c[0]));
}

static void test_reject_framing(void **state)
{
	static const struct reject_case c[] = {
		/* Content-Length not 1*DIGIT */
		REJ("POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400),
		REJ("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
		REJ("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 400),
		REJ("POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n", 400),
		REJ("POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", 400),
		REJ("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400),
		REJ("POST / HTTP/1.1\r\nContent-Length: 5.0\r\n\r\n", 400),
		/* overflow: 2^62 + 1, and beyond 64 bits */
		REJ("POST / HTTP/1.1\r\n"
		    "Content-Length: 4611686018427387905\r\n\r\n", 400),
		REJ("POST / HTTP/1.1\r\n"
		    "Content-Length: 99999999999999999999999\r\n\r\n", 400),
		REJ("POST / HTTP/1.1\r\n"
		    "Content-Length: 18446744073709551616\r\n\r\n", 400),
		/* duplicates, equal values, comma lists */
		REJ("POST / HTTP/1.1\r\nContent-Length: 5,5\r\n\r\n", 400),
		REJ("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", 400),
		REJ("POST / HTTP/1.1\r\nContent-Length: 5\r\n"
		    "Content-Length: 5\r\n\r\n", 400),
		REJ("POST / HTTP/1.1\r\nContent-Length: 5\r\n"
		    "content-length: 6\r\n\r\n", 400),
		/* Content-Length with Transfer-Encoding, both orders */
		REJ("POST / HTTP/1.1\r\nContent-Length: 5\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n", 400),
		REJ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
		    "Content-Length: 5\r\n\r\n", 400),
		REJ("POST / HTTP/1.1\r\nContent-Length: 5\r\n"
		    "Transfer-Encoding: gzip\r\n\r\n", 400),
		/* duplicate Transfer-Encoding */
		REJ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n", 400),
		/* Transfer-Encoding in an HTTP/1.0 request */
		REJ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
		    400),
		/* other transfer codings */
		REJ("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
		REJ("POST / HTTP/1.1\r\n"
		    "Transfer-Encoding: gzip, chunked\r\n\r\n", 501),
		REJ("POST / HTTP/1.1\r\n"
		    "Transfer-Encoding: chunked, gzip\r\n\r\n", 501),
		REJ("POST / HTTP/1.1\r\n"
		    "Transfer-Encoding: chunked, chunked\r\n\r\n", 501),
		REJ("POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n",
		    501),
		REJ("POST / HTTP/1.1\r\nTransfer-Encoding: chunkedx\r\n\r\n",
		    501),
		REJ("POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n", 501),
		/* duplicate Host */
		REJ("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\nHost: a\r\nX: y\r\nhOsT: b\r\n\r\n",
		    400),
	};

	(void)state;
	run_rejects(HTTP1_REQUEST, c, sizeof(c) / sizeof(c[0]));
}

/* Errors in a complete line are reported at once, before the head ends. */
static void test_reject_early(void **state)
{
	static const struct reject_case c[] = {
		REJ("GET  / HTTP/1.1\r\n", 400),
		REJ("GET / HTTP/2.0\r\n", 505),
		REJ("GET / HTTP/1.1\r\nHost : a\r\n", 400),
		REJ("GET / HTTP/1.1\r\nA: b\r\n c\r\n", 400),
		REJ("GET / HTTP/1.1\r\n: a\r\nX: y\r\n", 400),
		REJ("HTTP/1.1 20 OK\r\nX: y\r\n", 400),
	};
	size_t i;

	(void)state;
	run_rejects(HTTP1_REQUEST, c, 5);
	run_rejects(HTTP1_RESPONSE, c + 5, 1);
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		assert_null(strstr(c[i].in, "\r\n\r\n"));
}

/* Bytes that cannot start an HTTP request are refused as they arrive,
 * not after 8 KiB or a deadline: no line end is needed. */
static void test_reject_non_http_at_once(void **state)
{
	static const char bin[] = "\x80\x81\xfe\xff";
	char longm[40];
	struct http1_parser p;
	struct http1_head h;

	(void)state;
	http1_parser_init(&p, HTTP1_REQUEST);
	assert_int_equal(http1_parse(&p, bin, 1, &h), -1);
	assert_int_equal(p.status, 400);
	http1_parser_init(&p, HTTP1_REQUEST);
	assert_int_equal(http1_parse(&p, "GE{T", 4, &h), -1);
	assert_int_equal(p.status, 400);
	/* a token method of any sane length is fine so far... */
	http1_parser_init(&p, HTTP1_REQUEST);
	assert_int_equal(http1_parse(&p, "PROPFIND", 8, &h), 0);
	/* ...but no method is 33 bytes long */
	memset(longm, 'A', sizeof(longm));
	http1_parser_init(&p, HTTP1_REQUEST);
	assert_int_equal(http1_parse(&p, longm, 32, &h), 0);
	assert_int_equal(http1_parse(&p, longm, 33, &h), -1);
	assert_int_equal(p.status, 400);
	/* bytes after the method are not judged by this rule */
	http1_parser_init(&p, HTTP1_REQUEST);
	assert_int_equal(http1_parse(&p, "GET /\x80", 6, &h), 0);
	/* nor are responses */
	http1_parser_init(&p, HTTP1_RESPONSE);
	assert_int_equal(http1_parse(&p, "HTTP/1.1 200 \x80", 14, &h), 0);
}

/* p->why tells the two kinds of whitespace-led line apart. */
static void test_reject_reasons(void **state)
{
	struct http1_parser p;
	struct http1_head h;

	(void)state;
	assert_int_equal(parse_whole(HTTP1_REQUEST,
				     LIT("GET / HTTP/1.1\r\n Host: a\r\n"),
				     &p, &h), -1);
	assert_non_null(strstr(p.why, "start line"));
	assert_int_equal(parse_whole(HTTP1_REQUEST,
				     LIT("GET / HTTP/1.1\r\nA: b\r\n c\r\n"),
				     &p, &h), -1);
	assert_non_null(strstr(p.why, "folding"));
	assert_int_equal(parse_whole(HTTP1_REQUEST,
				     LIT("GET / HTTP/1.1\r\nA: b\n"), &p, &h),
			 -1);
	assert_string_equal(p.why, "bare LF");
}

/* A request with nfields "Xn: v" fields; returns its length. */
static size_t build_fields(char *buf, size_t cap, unsigned nfields)
{
	size_t o;
	unsigned i;

	o = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\n");
	for (i = 0; i < nfields; i++)
		o += (size_t)snprintf(buf + o, cap - o, "X%u: v\r\n", i);
	o += (size_t)snprintf(buf + o, cap - o, "\r\n");
	assert_true(o < cap);
	return o;
}

static void test_too_many_fields(void **state)
{
	char buf[2048];
	struct http1_head h;
	size_t n;

	(void)state;
	n = build_fields(buf, sizeof(buf), HTTP1_MAX_FIELDS);
	expect_accept(HTTP1_REQUEST, buf, n, n, &h);
	assert_int_equal(h.nfields, HTTP1_MAX_FIELDS);
	assert_span(buf, h.fields[HTTP1_MAX_FIELDS - 1].name, "X63");
	n = build_fields(buf, sizeof(buf), HTTP1_MAX_FIELDS + 1);
	expect_reject(HTTP1_REQUEST, buf, n, 431);
}

static void test_head_too_large(void **state)
{
	static char buf[HTTP1_MAX_HEAD * 2];
	struct http1_parser p;
	struct http1_head h;
	size_t n;

	(void)state;
	/* 8 KiB + 1 of a request line without any CRLF */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "GET /", 5);
	assert_int_equal(parse_whole(HTTP1_REQUEST, buf, HTTP1_MAX_HEAD, &p,
				     &h), 0);
	assert_int_equal(http1_parse(&p, buf, HTTP1_MAX_HEAD + 1, &h), -1);
	assert_int_equal(p.status, 431);
	assert_int_equal(parse_whole(HTTP1_REQUEST, buf, HTTP1_MAX_HEAD + 1,
				     &p, &h), -1);
	assert_int_equal(p.status, 431);
	assert_int_equal(parse_whole(HTTP1_REQUEST, buf, sizeof(buf), &p, &h),
			 -1);
	assert_int_equal(p.status, 431);
	expect_reject(HTTP1_REQUEST, buf, HTTP1_MAX_HEAD + 1, 431);

	/* a head of exactly HTTP1_MAX_HEAD bytes is fine */
	n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nX: ");
	memset(buf + n, 'v', HTTP1_MAX_HEAD - n - 4);
	memcpy(buf + HTTP1_MAX_HEAD - 4, "\r\n\r\n", 4);
	assert_int_equal(parse_whole(HTTP1_REQUEST, buf, HTTP1_MAX_HEAD, &p,
				     &h), HTTP1_MAX_HEAD);
	/* ... and with trailing bytes beyond the limit too */
	assert_int_equal(parse_whole(HTTP1_REQUEST, buf, sizeof(buf), &p, &h),
			 HTTP1_MAX_HEAD);
	assert_int_equal(h.fields[0].value.len, HTTP1_MAX_HEAD - n - 4);

	/* one byte more: complete, but too long */
	n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nX: ");
	memset(buf + n, 'v', HTTP1_MAX_HEAD + 1 - n - 4);
	memcpy(buf + HTTP1_MAX_HEAD + 1 - 4, "\r\n\r\n", 4);
	expect_reject(HTTP1_REQUEST, buf, HTTP1_MAX_HEAD + 1, 431);

	/* many valid fields summing up past the limit */
	n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
	while (n < HTTP1_MAX_HEAD + 100) {
		memcpy(buf + n, "X: ", 3);
		memset(buf + n + 3, 'v', 1000);
		memcpy(buf + n + 1003, "\r\n", 2);
		n += 1005;
	}
	memcpy(buf + n, "\r\n", 2);
	expect_reject(HTTP1_REQUEST, buf, n + 2, 431);
}

/* The parser continues from where it stopped: the byte checks are not
 * run again over bytes an earlier call accepted. (Here a byte is changed
 * behind the parser's back to make that visible; callers must not.) */
static void test_resume_does_not_rescan(void **state)
{
	char buf[] = "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\r\n";
	struct http1_parser p;
	struct http1_head h;
	size_t n = sizeof(buf) - 1;

	(void)state;
	assert_int_equal(parse_whole(HTTP1_REQUEST, buf, 25, &p, &h), 0);
	buf[22] = '\x01'; /* the value of Host, already scanned */
	assert_int_equal(http1_parse(&p, buf, n, &h), (int)n);
	assert_int_equal(h.nfields, 2);
	assert_span(buf, h.fields[0].value, "\x01");
	/* the same bytes in one call are refused */
	assert_int_equal(parse_whole(HTTP1_REQUEST, buf, n, &p, &h), -1);
	/* a shrinking buffer is a caller error */
	buf[22] = 'a';
	assert_int_equal(parse_whole(HTTP1_REQUEST, buf, 25, &p, &h), 0);
	assert_int_equal(http1_parse(&p, buf, 10, &h), -1);
}

/* Calling with every length up to the end on the same parser. */
static void test_prefixes_same_parser(void **state)
{
	static const char req[] =
		"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
	struct http1_parser p;
	struct http1_head h;
	size_t n, head = sizeof(req) - 1 - 3;

	(void)state;
	http1_parser_init(&p, HTTP1_REQUEST);
	for (n = 0; n < head; n++)
		assert_int_equal(http1_parse(&p, req, n, &h), 0);
	assert_int_equal(http1_parse(&p, req, sizeof(req) - 1, &h), (int)head);
	assert_int_equal(h.content_length, 3);
}

static void test_pipelined(void **state)
{
	static const char two[] =
		"GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
		"GET /b HTTP/1.1\r\nHost: b\r\n\r\n";
	static const char tunnel[] =
		"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n"
		"\x16\x03\x01\x00\n\r\x00\xff garbage\n";
	struct http1_parser p;
	struct http1_head h;
	size_t first = strlen("GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
	size_t head = strlen("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n");

	(void)state;
	assert_int_equal(parse_whole(HTTP1_REQUEST, LIT(two), &p, &h),
			 (int)first);
	assert_span(two, h.target, "/a");
	assert_int_equal(parse_whole(HTTP1_REQUEST, two + first,
				     sizeof(two) - 1 - first, &p, &h),
			 (int)(sizeof(two) - 1 - first));
	assert_span(two + first, h.target, "/b");
	assert_span(two + first, h.fields[0].value, "b");

	expect_accept(HTTP1_REQUEST, LIT(tunnel), head, &h);
	assert_span(tunnel, h.method, "CONNECT");
	/* the tunnel payload arriving in one call with the head */
	assert_int_equal(parse_whole(HTTP1_REQUEST, LIT(tunnel), &p, &h),
			 (int)head);
}

/* ---- responses ---- */

static void test_response_ok(void **state)
{
	static const char r1[] =
		"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03";
	static const char r2[] = "HTTP/1.1 200\r\n\r\n";
	static const char r3[] =
		"HTTP/1.0 407 Proxy Authentication Required\r\n"
		"Proxy-Authenticate: Basic realm=\"x\"\r\n"
		"Content-Length: 0\r\n"
		"Connection: close\r\n"
		"\r\n";
	static const char r4[] = "HTTP/1.1 204 \r\n\r\n";
	static const char r5[] = "HTTP/1.1 999 A\tb \xe2\x9c\x93\r\n"
				 "Transfer-Encoding: chunked\r\n\r\n";
	static const char r6[] = "HTTP/1.1 100 Continue\r\n\r\n";
	struct http1_head h;

	(void)state;
	expect_accept(HTTP1_RESPONSE, LIT(r1), sizeof(r1) - 3, &h);
	assert_int_equal(h.status, 200);
	assert_int_equal(h.version_minor, 1);
	assert_span(r1, h.reason, "Connection established");
	assert_int_equal(h.method.len, 0);
	expect_accept(HTTP1_RESPONSE, LIT(r2), sizeof(r2) - 1, &h);
	assert_int_equal(h.status, 200);
	assert_int_equal(h.reason.len, 0);
	expect_accept(HTTP1_RESPONSE, LIT(r3), sizeof(r3) - 1, &h);
	assert_int_equal(h.status, 407);
	assert_int_equal(h.version_minor, 0);
	assert_span(r3, h.reason, "Proxy Authentication Required");
	assert_int_equal(h.content_length, 0);
	assert_int_equal(h.conn, HTTP1_CONN_CLOSE);
	assert_int_equal(h.nfields, 3);
	expect_accept(HTTP1_RESPONSE, LIT(r4), sizeof(r4) - 1, &h);
	assert_int_equal(h.status, 204);
	assert_int_equal(h.reason.len, 0);
	expect_accept(HTTP1_RESPONSE, LIT(r5), sizeof(r5) - 1, &h);
	assert_int_equal(h.status, 999);
	assert_span(r5, h.reason, "A\tb \xe2\x9c\x93");
	assert_true(h.chunked);
	expect_accept(HTTP1_RESPONSE, LIT(r6), sizeof(r6) - 1, &h);
	assert_int_equal(h.status, 100);
}

static void test_response_malformed(void **state)
{
	static const struct reject_case c[] = {
		REJ("HTTP/1.1 20 OK\r\n\r\n", 400),
		REJ("HTTP/1.1 2000 OK\r\n\r\n", 400),
		REJ("HTTP/1.1 200OK\r\n\r\n", 400),
		REJ("HTTP/1.1 abc OK\r\n\r\n", 400),
		REJ("HTTP/1.1 2x0 OK\r\n\r\n", 400),
		REJ("HTTP/1.1  200 OK\r\n\r\n", 400),
		REJ("HTTP/1.1 099 Low\r\n\r\n", 400),
		REJ("HTTP/1.1 000\r\n\r\n", 400),
		REJ("HTTP/1.1\r\n\r\n", 400),
		REJ("HTTP/1.1 \r\n\r\n", 400),
		REJ("HTTP/1.1\t200 OK\r\n\r\n", 400),
		REJ("http/1.1 200 OK\r\n\r\n", 400),
		REJ("HTTP/1 200 OK\r\n\r\n", 400),
		REJ("ICY 200 OK\r\n\r\n", 400),
		REJ("GET / HTTP/1.1\r\n\r\n", 400),
		REJ("\r\n\r\n", 400),
		REJ("HTTP/1.1 200 OK\nX: y\r\n\r\n", 400),
		REJ("HTTP/1.1 200 OK\r\nX: \x01\r\n\r\n", 400),
		REJ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
		    "Content-Length: 1\r\n\r\n", 400),
		REJ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n", 400),
		/* responses: any other coding is an error, status 400 */
		REJ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
		REJ("HTTP/2.0 200 OK\r\n\r\n", 505),
		REJ("HTTP/0.9 200 OK\r\n\r\n", 505),
	};

	(void)state;
	run_rejects(HTTP1_RESPONSE, c, sizeof(c) / sizeof(c[0]));
}

/* ---- helpers over spans ---- */

static void test_span_helpers(void **state)
{
	static const char b[] =
		"Keep-Alive gzip, deflate;q=0.5 , BR,,x;a=\"p,gzip\",  , zz";
	struct http1_span ka = { 0, 10 }, list = { 11, sizeof(b) - 12 };
	struct http1_span empty = { 0, 0 };

	(void)state;
	assert_true(http1_span_eq(b, ka, "Keep-Alive"));
	assert_false(http1_span_eq(b, ka, "keep-alive"));
	assert_false(http1_span_eq(b, ka, "Keep-Aliv"));
	assert_false(http1_span_eq(b, ka, "Keep-Alive "));
	assert_true(http1_span_eq_ci(b, ka, "keep-alive"));
	assert_true(http1_span_eq_ci(b, ka, "KEEP-ALIVE"));
	assert_false(http1_span_eq_ci(b, ka, "keep-alivE2"));
	assert_false(http1_span_eq_ci(b, ka, "keep_alive"));
	assert_true(http1_span_eq(b, empty, ""));
	assert_true(http1_span_eq_ci(b, empty, ""));

	assert_true(http1_list_has(b, list, "gzip"));
	assert_true(http1_list_has(b, list, "deflate"));
	assert_true(http1_list_has(b, list, "br"));
	assert_true(http1_list_has(b, list, "x"));
	assert_true(http1_list_has(b, list, "ZZ"));
	assert_false(http1_list_has(b, list, "defl"));
	assert_false(http1_list_has(b, list, "q=0.5"));
	assert_false(http1_list_has(b, list, "p"));
	assert_false(http1_list_has(b, list, ""));
	assert_false(http1_list_has(b, list, "Keep-Alive"));
	assert_false(http1_list_has(b, empty, "gzip"));
	/* a comma inside a quoted parameter value does not split */
	{
		static const char q[] = "a;b=\"c, d;e\", f";
		struct http1_span qs = { 0, sizeof(q) - 1 };

		assert_true(http1_list_has(q, qs, "a"));
		assert_true(http1_list_has(q, qs, "f"));
		assert_false(http1_list_has(q, qs, "d"));
		assert_false(http1_list_has(q, qs, "c"));
	}
	{
		/* an escaped quote does not end the quoted string */
		static const char q[] = "a;b=\"x\\\", d;e\", f";
		struct http1_span qs = { 0, sizeof(q) - 1 };

		assert_true(http1_list_has(q, qs, "f"));
		assert_false(http1_list_has(q, qs, "d"));
	}
}

/* ---- Basic credentials ---- */

static int basic(const char *v, char *u, size_t ucap, char *pw, size_t pcap)
{
	return http1_basic_auth_decode(v, strlen(v), u, ucap, pw, pcap);
}

static void test_basic_auth(void **state)
{
	char u[16], pw[16];
	char big[512], b64[1024];
	unsigned i;

	(void)state;
	assert_int_equal(basic("Basic dXNlcjpwYXNz", u, sizeof(u), pw,
			       sizeof(pw)), 0);
	assert_string_equal(u, "user");
	assert_string_equal(pw, "pass");
	assert_int_equal(basic("bAsIc    dXNlcjpwYXNz", u, sizeof(u), pw,
			       sizeof(pw)), 0);
	assert_string_equal(u, "user");
	/* user:pa:ss -> the password keeps its colon */
	assert_int_equal(basic("Basic dXNlcjpwYTpzcw==", u, sizeof(u), pw,
			       sizeof(pw)), 0);
	assert_string_equal(u, "user");
	assert_string_equal(pw, "pa:ss");
	/* ":pw" and "user:" */
	assert_int_equal(basic("Basic OnB3", u, sizeof(u), pw, sizeof(pw)), 0);
	assert_string_equal(u, "");
	assert_string_equal(pw, "pw");
	assert_int_equal(basic("Basic dXNlcjo=", u, sizeof(u), pw,
			       sizeof(pw)), 0);
	assert_string_equal(u, "user");
	assert_string_equal(pw, "");

	/* failures leave both outputs empty */
	memcpy(u, "junk", 5);
	memcpy(pw, "junk", 5);
	assert_int_equal(basic("Basic dXNlcg==", u, sizeof(u), pw,
			       sizeof(pw)), -1); /* "user", no ':' */
	assert_string_equal(u, "");
	assert_string_equal(pw, "");
	assert_int_equal(basic("Bearer dXNlcjpwYXNz", u, sizeof(u), pw,
			       sizeof(pw)), -1);
	assert_int_equal(basic("Basic", u, sizeof(u), pw, sizeof(pw)), -1);
	assert_int_equal(basic("Basic ", u, sizeof(u), pw, sizeof(pw)), -1);
	assert_int_equal(basic("BasicdXNlcjpwYXNz", u, sizeof(u), pw,
			       sizeof(pw)), -1);
	assert_int_equal(basic("Basic\tdXNlcjpwYXNz", u, sizeof(u), pw,
			       sizeof(pw)), -1);
	assert_int_equal(basic("Basicx dXNlcjpwYXNz", u, sizeof(u), pw,
			       sizeof(pw)), -1);
	assert_int_equal(basic("Basic dXNlcjpwYXNz ", u, sizeof(u), pw,
			       sizeof(pw)), -1);
	assert_int_equal(basic("Basic dXNlcjpwYXN", u, sizeof(u), pw,
			       sizeof(pw)), -1);
	assert_int_equal(basic("Basic dXNlcjpwYXNz=", u, sizeof(u), pw,
			       sizeof(pw)), -1);
	assert_int_equal(basic("Basic dXNl cjpwYXN", u, sizeof(u), pw,
			       sizeof(pw)), -1);
	assert_int_equal(basic("Basic dXNlcjpw*XNz", u, sizeof(u), pw,
			       sizeof(pw)), -1);
	/* padding inside: "u:" "p" as two padded quads */
	assert_int_equal(basic("Basic dTo=cA==", u, sizeof(u), pw,
			       sizeof(pw)), -1);
	/* only SP separates the scheme */
	assert_int_equal(basic("Basic \tdXNlcjpwYXNz", u, sizeof(u), pw,
			       sizeof(pw)), -1);
	/* NUL in the decoded bytes: "us\0er:pw" and "user:p\0w" */
	assert_int_equal(basic("Basic dXMAZXI6cHc=", u, sizeof(u), pw,
			       sizeof(pw)), -1);
	assert_int_equal(basic("Basic dXNlcjpwAHc=", u, sizeof(u), pw,
			       sizeof(pw)), -1);
	assert_string_equal(u, "");

	/* capacity: "user" needs 5 bytes, "pass" needs 5 bytes */
	assert_int_equal(basic("Basic dXNlcjpwYXNz", u, 5, pw, 5), 0);
	assert_string_equal(u, "user");
	assert_string_equal(pw, "pass");
	assert_int_equal(basic("Basic dXNlcjpwYXNz", u, 4, pw, 5), -1);
	assert_int_equal(basic("Basic dXNlcjpwYXNz", u, 5, pw, 4), -1);
	assert_int_equal(basic("Basic OnB3", u, 1, pw, 3), 0);
	assert_int_equal(basic("Basic OnB3", u, 0, pw, 3), -1);
	assert_int_equal(basic("Basic dXNlcjo=", u, 5, pw, 1), 0);

	/* long credentials: 300-byte user, 150-byte password */
	for (i = 0; i < 451; i++)
		big[i] = i == 300 ? ':' : (char)('a' + i % 26);
	assert_int_equal(base64_encode(b64 + 6, sizeof(b64) - 6, big, 451),
			 BASE64_ENCLEN(451));
	memcpy(b64, "Basic ", 6);
	{
		char lu[301], lp[151];

		assert_int_equal(basic(b64, lu, sizeof(lu), lp, sizeof(lp)),
				 0);
		assert_memory_equal(lu, big, 300);
		assert_int_equal(strlen(lu), 300);
		assert_memory_equal(lp, big + 301, 150);
		assert_int_equal(strlen(lp), 150);
		assert_int_equal(basic(b64, lu, 300, lp, sizeof(lp)), -1);
		assert_int_equal(basic(b64, lu, sizeof(lu), lp, 150), -1);
	}
}

/* ---- encoders ---- */

static void test_reason(void **state)
{
	static const struct {
		int status;
		const char *text;
	} t[] = {
		{ 100, "Continue" },
		{ 101, "Switching Protocols" },
		{ 200, "OK" },
		{ 201, "Created" },
		{ 204, "No Content" },
		{ 206, "Partial Content" },
		{ 301, "Moved Permanently" },
		{ 302, "Found" },
		{ 304, "Not Modified" },
		{ 400, "Bad Request" },
		{ 401, "Unauthorized" },
		{ 403, "Forbidden" },
		{ 404, "Not Found" },
		{ 405, "Method Not Allowed" },
		{ 407, "Proxy Authentication Required" },
		{ 408, "Request Timeout" },
		{ 411, "Length Required" },
		{ 413, "Content Too Large" },
		{ 414, "URI Too Long" },
		{ 415, "Unsupported Media Type" },
		{ 417, "Expectation Failed" },
		{ 421, "Misdirected Request" },
		{ 429, "Too Many Requests" },
		{ 431, "Request Header Fields Too Large" },
		{ 500, "Internal Server Error" },
		{ 501, "Not Implemented" },
		{ 502, "Bad Gateway" },
		{ 503, "Service Unavailable" },
		{ 504, "Gateway Timeout" },
		{ 505, "HTTP Version Not Supported" },
		{ 0, "Unknown" },
		{ 299, "Unknown" },
		{ 999, "Unknown" },
		{ -1, "Unknown" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_string_equal(http1_reason(t[i].status), t[i].text);
}

static void test_error_response(void **state)
{
	static const char want400[] =
		"HTTP/1.1 400 Bad Request\r\n"
		"Connection: close\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"X-Content-Type-Options: nosniff\r\n"
		"Content-Length: 16\r\n"
		"\r\n"
		"400 Bad Request\n";
	static const char want407[] =
		"HTTP/1.1 407 Proxy Authentication Required\r\n"
		"Connection: close\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"X-Content-Type-Options: nosniff\r\n"
		"Content-Length: 34\r\n"
		"Proxy-Authenticate: Basic realm=\"neosocksd\"\r\n"
		"\r\n"
		"407 Proxy Authentication Required\n";
	static const char want299[] =
		"HTTP/1.1 299 Unknown\r\n"
		"Connection: close\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"X-Content-Type-Options: nosniff\r\n"
		"Content-Length: 12\r\n"
		"\r\n"
		"299 Unknown\n";
	char buf[512];
	size_t cap;

	(void)state;
	assert_int_equal(http1_error_response(buf, sizeof(buf), 400, NULL),
			 sizeof(want400) - 1);
	assert_string_equal(buf, want400);
	assert_int_equal(http1_error_response(
				 buf, sizeof(buf), 407,
				 "Proxy-Authenticate: Basic "
				 "realm=\"neosocksd\"\r\n"),
			 sizeof(want407) - 1);
	assert_string_equal(buf, want407);
	assert_int_equal(http1_error_response(buf, sizeof(buf), 299, ""),
			 sizeof(want299) - 1);
	assert_string_equal(buf, want299);

	/* the produced response parses, and its Content-Length is right */
	{
		struct http1_parser p;
		struct http1_head h;
		int n = http1_error_response(buf, sizeof(buf), 431, NULL);
		int r;

		assert_true(n > 0);
		r = parse_whole(HTTP1_RESPONSE, buf, (size_t)n, &p, &h);
		assert_true(r > 0);
		assert_int_equal(h.status, 431);
		assert_int_equal(h.content_length, n - r);
		assert_int_equal(h.conn, HTTP1_CONN_CLOSE);
		assert_string_equal(buf + r,
				    "431 Request Header Fields Too Large\n");
	}

	/* too small, down to nothing */
	for (cap = 0; cap < sizeof(want400); cap++)
		assert_int_equal(http1_error_response(buf, cap, 400, NULL), -1);
	assert_int_equal(http1_error_response(buf, sizeof(want400), 400, NULL),
			 sizeof(want400) - 1);
	/* not a 3-digit status */
	assert_int_equal(http1_error_response(buf, sizeof(buf), 99, NULL), -1);
	assert_int_equal(http1_error_response(buf, sizeof(buf), 1000, NULL),
			 -1);
}

static void test_connect_request(void **state)
{
	static const char plain[] = "CONNECT example.com:443 HTTP/1.1\r\n\r\n";
	static const char auth[] =
		"CONNECT [2001:db8::1]:8443 HTTP/1.1\r\n"
		"Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"
		"\r\n";
	static const char nopass[] =
		"CONNECT h:1 HTTP/1.1\r\n"
		"Proxy-Authorization: Basic dTo=\r\n"
		"\r\n";
	char buf[1024], user[301], pass[301], u2[400], p2[400];
	struct http1_parser p;
	struct http1_head h;
	size_t cap;
	int n;

	(void)state;
	assert_int_equal(http1_connect_request(buf, sizeof(buf),
					       "example.com:443", NULL, NULL),
			 sizeof(plain) - 1);
	assert_string_equal(buf, plain);
	assert_int_equal(http1_connect_request(buf, sizeof(buf),
					       "[2001:db8::1]:8443", "user",
					       "pass"),
			 sizeof(auth) - 1);
	assert_string_equal(buf, auth);
	assert_int_equal(http1_connect_request(buf, sizeof(buf), "h:1", "u",
					       NULL),
			 sizeof(nopass) - 1);
	assert_string_equal(buf, nopass);

	/* every too-small capacity fails; the exact one works */
	for (cap = 0; cap < sizeof(auth); cap++)
		assert_int_equal(http1_connect_request(buf, cap,
						       "[2001:db8::1]:8443",
						       "user", "pass"),
				 -1);
	assert_int_equal(http1_connect_request(buf, sizeof(auth),
					       "[2001:db8::1]:8443", "user",
					       "pass"),
			 sizeof(auth) - 1);
	for (cap = 0; cap < sizeof(plain); cap++)
		assert_int_equal(http1_connect_request(buf, cap,
						       "example.com:443", NULL,
						       NULL),
				 -1);

	/* a host:port that would break the request line */
	assert_int_equal(http1_connect_request(buf, sizeof(buf), "", NULL,
					       NULL), -1);
	assert_int_equal(http1_connect_request(buf, sizeof(buf), "a b:1",
					       NULL, NULL), -1);
	assert_int_equal(http1_connect_request(buf, sizeof(buf),
					       "a:1\r\nX: y", NULL, NULL), -1);

	/* long credentials with every group length round-trip through the
	 * parser and the Basic decoder */
	memset(user, 'u', sizeof(user));
	memset(pass, 'p', sizeof(pass));
	for (cap = 0; cap < 3; cap++) {
		user[300 - cap] = '\0';
		pass[299] = '\0';
		user[7] = '\xe9';
		n = http1_connect_request(buf, sizeof(buf), "h:2", user, pass);
		assert_true(n > 0);
		assert_int_equal(parse_whole(HTTP1_REQUEST, buf, (size_t)n, &p,
					     &h), n);
		assert_non_null(http1_known_value(&h,
						  HTTP1_H_PROXY_AUTHORIZATION));
		assert_int_equal(h.known[HTTP1_H_HOST], -1);
		assert_int_equal(
			http1_basic_auth_decode(
				buf + h.fields[0].value.off,
				h.fields[0].value.len, u2, sizeof(u2), p2,
				sizeof(p2)),
			0);
		assert_string_equal(u2, user);
		assert_string_equal(p2, pass);
		user[300 - cap] = 'u';
	}
}

/* ---- chunked decoder ---- */

/* Decode in[0..n) in one call into a large buffer. */
static long chunked_all(const char *in, size_t n, char *out, size_t cap,
			size_t *outlen, struct http1_chunked *c)
{
	http1_chunked_init(c);
	*outlen = 0;
	return http1_chunked_decode(c, in, n, out, cap, outlen);
}

struct chunk_ok {
	const char *in;
	size_t len, consumed;
	const char *payload;
};

#define CHUNK_OK(s, rest, pl) \
	{ s rest, sizeof(s rest) - 1, sizeof(s) - 1, pl }

static void test_chunked_valid(void **state)
{
	static const struct chunk_ok t[] = {
		CHUNK_OK("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "EXTRA",
			 "hello world"),
		CHUNK_OK("0\r\n\r\n", "", ""),
		CHUNK_OK("A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n",
			 "GET / HTTP/1.1\r\n", "0123456789abcdefghij"),
		CHUNK_OK("000005\r\nhello\r\n00\r\n\r\n", "", "hello"),
		/* extensions, with BWS and quoted strings */
		CHUNK_OK("5;name=val;x=\"q;r\\\"\"\r\nhello\r\n"
			 "1 \t; a = b\r\n!\r\n0;last\r\n\r\n", "x", "hello!"),
		/* trailers */
		CHUNK_OK("3\r\nabc\r\n0\r\nX-Trailer: a\r\nY: b \xff\r\n\r\n",
			 "\r\n", "abc"),
	};
	char out[64];
	size_t i, k, outlen;
	struct http1_chunked c;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t pl = strlen(t[i].payload);

		assert_int_equal(chunked_all(t[i].in, t[i].len, out,
					     sizeof(out), &outlen, &c),
				 (long)t[i].consumed);
		assert_true(c.done);
		assert_int_equal(outlen, pl);
		assert_memory_equal(out, t[i].payload, pl);
		/* nothing more is consumed once done */
		assert_int_equal(http1_chunked_decode(&c, "0\r\n\r\n", 5, out,
						      sizeof(out), &outlen),
				 0);

		/* byte at a time: each byte consumed until done */
		http1_chunked_init(&c);
		outlen = 0;
		for (k = 0; k < t[i].consumed; k++) {
			assert_false(c.done);
			assert_int_equal(http1_chunked_decode(&c, t[i].in + k,
							      1, out,
							      sizeof(out),
							      &outlen),
					 1);
		}
		assert_true(c.done);
		assert_int_equal(outlen, pl);
		assert_memory_equal(out, t[i].payload, pl);
		if (k < t[i].len)
			assert_int_equal(http1_chunked_decode(
						 &c, t[i].in + k, 1, out,
						 sizeof(out), &outlen),
					 0);
	}
}

static void test_chunked_small_output(void **state)
{
	static const char in[] =
		"a\r\n0123456789\r\n3\r\nabc\r\n0\r\n\r\n";
	char out[4], all[32];
	size_t outlen = 0, got = 0, off = 0, calls = 0;
	struct http1_chunked c;

	(void)state;
	http1_chunked_init(&c);
	while (!c.done) {
		size_t left = sizeof(in) - 1 - off;
		long r = http1_chunked_decode(&c, in + off, left, out,
					      sizeof(out), &outlen);

		assert_true(r >= 0);
		/* it stops early only because out is full */
		if (!c.done)
			assert_int_equal(outlen, sizeof(out));
		memcpy(all + got, out, outlen);
		got += outlen;
		outlen = 0;
		off += (size_t)r;
		assert_true(++calls < 10);
	}
	assert_int_equal(off, sizeof(in) - 1);
	assert_int_equal(got, 13);
	assert_memory_equal(all, "0123456789abc", 13);
	/* first call: "a\r\n" + 4 payload bytes */
	http1_chunked_init(&c);
	outlen = 0;
	assert_int_equal(http1_chunked_decode(&c, LIT(in), out, sizeof(out),
					      &outlen), 7);
	assert_int_equal(outlen, 4);
	/* with no room at all nothing of the payload is consumed */
	assert_int_equal(http1_chunked_decode(&c, in + 7, sizeof(in) - 8, out,
					      sizeof(out), &outlen), 0);
	/* *outlen beyond outcap is a caller error */
	http1_chunked_init(&c);
	outlen = 5;
	assert_int_equal(http1_chunked_decode(&c, LIT(in), out, sizeof(out),
					      &outlen), -1);
}

static void test_chunked_malformed(void **state)
{
	static const struct reject_case t[] = {
		REJ("\r\n", 0), REJ("g\r\n", 0), REJ("-1\r\n", 0),
		REJ(" 5\r\n", 0), REJ("5 \r\n", 0), REJ("5\t\r\n", 0),
		REJ("5\n", 0), REJ("5\r\r", 0), REJ("5\rx", 0),
		REJ("0x5\r\n", 0), REJ("5 5\r\n", 0), REJ(";a\r\n", 0),
		REJ("+5\r\n", 0),
		REJ("5;a\x01\r\n", 0), REJ("5;a\nb\r\n", 0),
		REJ("5;\x7f\r\n", 0),
		/* missing or broken CRLF after the payload */
		REJ("5\r\nhelloX\r\n", 0), REJ("5\r\nhello\n", 0),
		REJ("5\r\nhello\r\r", 0),
		/* trailers */
		REJ("0\r\nX: a\n\r\n", 0), REJ("0\r\nX: a\r\n b\r\n\r\n", 0),
		REJ("0\r\nX: \x01\r\n\r\n", 0), REJ("0\r\n\rx", 0),
		REJ("0\r\n\n", 0), REJ("0\r\n\tX: a\r\n\r\n", 0),
		/* overflow: 2^64, 2^62 + 1, 2^68 */
		REJ("10000000000000000\r\n", 0),
		REJ("4000000000000001\r\n", 0),
		REJ("400000000000000000\r\n", 0),
		REJ("ffffffffffffffffff\r\n", 0),
	};
	char out[64];
	size_t i, k, outlen;
	struct http1_chunked c;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		long r = chunked_all(t[i].in, t[i].len, out, sizeof(out),
				     &outlen, &c);

		if (r != -1)
			print_message("chunked case %zu accepted\n", i);
		assert_int_equal(r, -1);
		assert_false(c.done);
		/* stays failed */
		assert_int_equal(http1_chunked_decode(&c, "0\r\n\r\n", 5, out,
						      sizeof(out), &outlen),
				 -1);
		/* byte at a time fails too */
		http1_chunked_init(&c);
		outlen = 0;
		r = 0;
		for (k = 0; k < t[i].len && r != -1; k++)
			r = http1_chunked_decode(&c, t[i].in + k, 1, out,
						 sizeof(out), &outlen);
		assert_int_equal(r, -1);
	}
	/* 2^62 itself is a valid size: the size line is consumed */
	assert_int_equal(chunked_all(LIT("4000000000000000\r\n"), out,
				     sizeof(out), &outlen, &c),
			 18);
	assert_false(c.done);
}

static void test_chunked_limits(void **state)
{
	static char in[HTTP1_MAX_HEAD * 2];
	char out[8];
	size_t n, outlen;
	struct http1_chunked c;

	(void)state;
	/* a size line of exactly 4096 bytes: "1;" + 4094 'a' */
	in[0] = '1';
	in[1] = ';';
	memset(in + 2, 'a', 4094);
	memcpy(in + 4096, "\r\nZ\r\n0\r\n\r\n", 10);
	assert_int_equal(chunked_all(in, 4106, out, sizeof(out), &outlen, &c),
			 4106);
	assert_true(c.done);
	assert_int_equal(outlen, 1);
	assert_int_equal(out[0], 'Z');
	/* 4097 bytes: refused without waiting for the CRLF */
	memset(in + 2, 'a', 4095);
	assert_int_equal(chunked_all(in, 4097, out, sizeof(out), &outlen, &c),
			 -1);
	/* the same with leading zeros only */
	memset(in, '0', 4097);
	assert_int_equal(chunked_all(in, 4096, out, sizeof(out), &outlen, &c),
			 4096);
	assert_int_equal(chunked_all(in, 4097, out, sizeof(out), &outlen, &c),
			 -1);

	/* trailers of exactly 8192 bytes, then one more */
	memcpy(in, "0\r\n", 3);
	n = 3;
	while (n + 100 <= 3 + 8192) {
		memcpy(in + n, "X: ", 3);
		memset(in + n + 3, 'v', 95);
		memcpy(in + n + 98, "\r\n", 2);
		n += 100;
	}
	/* pad the last trailer line so the trailers total 8192 */
	memcpy(in + n, "Y: ", 3);
	memset(in + n + 3, 'w', 3 + 8192 - n - 5);
	memcpy(in + 3 + 8192 - 2, "\r\n", 2);
	n = 3 + 8192;
	memcpy(in + n, "\r\n", 2);
	assert_int_equal(chunked_all(in, n + 2, out, sizeof(out), &outlen, &c),
			 (long)(n + 2));
	assert_true(c.done);
	/* one more trailer byte: 8193, a field byte or the LF */
	memcpy(in + n, "Z\r\n\r\n", 5);
	assert_int_equal(chunked_all(in, n + 5, out, sizeof(out), &outlen, &c),
			 -1);
	memcpy(in + n - 2, "w\r\n\r\n", 5);
	assert_int_equal(chunked_all(in, n + 3, out, sizeof(out), &outlen, &c),
			 -1);
	/* an endless trailer line is cut off as well */
	memset(in + 3, 'x', sizeof(in) - 3);
	assert_int_equal(chunked_all(in, sizeof(in), out, sizeof(out), &outlen,
				     &c),
			 -1);
}

/* ---- base64 ---- */

static void test_base64_vectors(void **state)
{
	static const char *const v[][2] = {
		{ "", "" },
		{ "f", "Zg==" },
		{ "fo", "Zm8=" },
		{ "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
	};
	char enc[32], dec[32];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t n = strlen(v[i][0]), m = strlen(v[i][1]);

		assert_int_equal(base64_encode(enc, sizeof(enc), v[i][0], n),
				 m);
		assert_string_equal(enc, v[i][1]);
		assert_int_equal(BASE64_ENCLEN(n), m);
		/* exact capacity includes the NUL */
		assert_int_equal(base64_encode(enc, m + 1, v[i][0], n), m);
		assert_int_equal(base64_encode(enc, m, v[i][0], n), -1);
		assert_int_equal(base64_decode(dec, sizeof(dec), v[i][1], m),
				 n);
		assert_memory_equal(dec, v[i][0], n);
		assert_int_equal(base64_decode(dec, n, v[i][1], m), n);
		if (n > 0)
			assert_int_equal(base64_decode(dec, n - 1, v[i][1], m),
					 -1);
	}
	assert_int_equal(base64_encode(enc, sizeof(enc), "\xfb\xff\xbf", 3),
			 4);
	assert_string_equal(enc, "+/+/");
}

static void test_base64_roundtrip(void **state)
{
	unsigned char in[256], dec[256];
	char enc[BASE64_ENCLEN(256) + 1];
	size_t n, i;

	(void)state;
	for (i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 7 + 3);
	for (n = 0; n <= sizeof(in); n++) {
		int m = base64_encode(enc, sizeof(enc), in, n);

		assert_int_equal(m, BASE64_ENCLEN(n));
		assert_int_equal(strlen(enc), (size_t)m);
		assert_int_equal(base64_decode(dec, sizeof(dec), enc,
					       (size_t)m), n);
		assert_memory_equal(dec, in, n);
	}
}

static void test_base64_invalid(void **state)
{
	static const char *const bad[] = {
		"Zm9", "Zm9vY", "Zm9v\n", "Zm 9v", "Zm9v ", " Zm9v",
		"Zm=v", "Z===", "====", "=Zm9", "Zm9vYg=", "Zm9vYg==Zm9v",
		"Zm9=Zm9v", "Zg==Zg==", "Zm9v!A==", "Zm9-", "Zm9_",
		"Zh==",     /* non-zero bits under "==" */
		"Zm9vYmF=", /* non-zero bits under "=" */
		"Zm9vYg=A", "Zm9v\0A==",
	};
	char dec[32];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = strlen(bad[i]);

		if (i == sizeof(bad) / sizeof(bad[0]) - 1)
			n = 8; /* the one with an embedded NUL */
		if (base64_decode(dec, sizeof(dec), bad[i], n) != -1)
			print_message("accepted \"%s\"\n", bad[i]);
		assert_int_equal(base64_decode(dec, sizeof(dec), bad[i], n),
				 -1);
	}
	assert_int_equal(base64_decode(dec, sizeof(dec), "", 0), 0);
	/* lengths that are not a multiple of four, inside a longer buffer */
	for (i = 1; i < 8; i++) {
		if (i != 4)
			assert_int_equal(base64_decode(dec, sizeof(dec),
						       "Zm9vYmFy", i), -1);
	}
	assert_int_equal(base64_decode(dec, 5, "Zm9vYmFy", 8), -1);
	assert_int_equal(base64_decode(dec, 6, "Zm9vYmFy", 8), 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_connect),
		cmocka_unit_test(test_request_get_absolute),
		cmocka_unit_test(test_request_post_content_length),
		cmocka_unit_test(test_request_chunked),
		cmocka_unit_test(test_request_versions_and_shapes),
		cmocka_unit_test(test_field_values),
		cmocka_unit_test(test_known_first_kept_and_connection),
		cmocka_unit_test(test_reject_line_endings_and_controls),
		cmocka_unit_test(test_reject_field_syntax),
		cmocka_unit_test(test_reject_request_line),
		cmocka_unit_test(test_reject_framing),
		cmocka_unit_test(test_reject_early),
		cmocka_unit_test(test_reject_non_http_at_once),
		cmocka_unit_test(test_reject_reasons),
		cmocka_unit_test(test_too_many_fields),
		cmocka_unit_test(test_head_too_large),
		cmocka_unit_test(test_resume_does_not_rescan),
		cmocka_unit_test(test_prefixes_same_parser),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_response_ok),
		cmocka_unit_test(test_response_malformed),
		cmocka_unit_test(test_span_helpers),
		cmocka_unit_test(test_basic_auth),
		cmocka_unit_test(test_reason),
		cmocka_unit_test(test_error_response),
		cmocka_unit_test(test_connect_request),
		cmocka_unit_test(test_chunked_valid),
		cmocka_unit_test(test_chunked_small_output),
		cmocka_unit_test(test_chunked_malformed),
		cmocka_unit_test(test_chunked_limits),
		cmocka_unit_test(test_base64_vectors),
		cmocka_unit_test(test_base64_roundtrip),
		cmocka_unit_test(test_base64_invalid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
