/* http1: a strict HTTP/1.x message-head parser (RFC 9110, RFC 9112) and
 * a few encoders. See http1.h for the contract.
 *
 * How the head parser works: the bytes are scanned once, from p->pos, and
 * checked as they go by (CR must be followed by LF, no bare LF, no control
 * bytes other than HTAB). Each time a CRLF is found, the line that it ends
 * (from p->line) gets the syntax checks that need no state (start line,
 * field-line syntax), so most bad input fails before the head is complete.
 * When the empty line arrives, one more pass over the complete head fills
 * the caller's struct http1_head from scratch and applies the checks that
 * span fields (duplicates, framing, field count). Every byte is thus looked
 * at a bounded number of times whatever the number of calls, and h need
 * not keep its contents between calls: it is only written by the call
 * that completes the head (or fails in that last pass).
 *
 * Framing rules applied to both kinds of message: Content-Length must be
 * 1*DIGIT and at most 2^62, and may appear only once (no lists, no
 * repeated equal values); Transfer-Encoding may appear once and only as
 * "chunked", never with Content-Length, and not in an HTTP/1.0 request.
 * A request with another transfer coding is answered 501. A response with
 * one is refused with status 400: this proxy only reads heads of upstream
 * responses to CONNECT and has no use for other codings; the status only
 * tells the caller why, it is not meant to be sent back upstream. */
#include "common/http1.h"

#include "common/base64.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#define HTTP1_MAX_CONTENT_LENGTH ((uint64_t)1 << 62)
#define HTTP1_MAX_CHUNK_LINE 4096
#define HTTP1_MAX_TRAILERS 8192

enum {
	HTTP1_ST_START_LINE,  /* waiting for the end of the start line */
	HTTP1_ST_FIRST_FIELD, /* the line after the start line */
	HTTP1_ST_FIELDS,      /* field lines or the final empty line */
	HTTP1_ST_DONE,        /* p->pos is the head length */
	HTTP1_ST_ERROR,
};

/* Names of the headers recorded in known[], indexed by enum http1_known. */
static const char *const http1_known_names[HTTP1_H_COUNT] = {
	[HTTP1_H_HOST] = "host",
	[HTTP1_H_PROXY_AUTHORIZATION] = "proxy-authorization",
	[HTTP1_H_AUTHORIZATION] = "authorization",
	[HTTP1_H_EXPECT] = "expect",
	[HTTP1_H_CONTENT_ENCODING] = "content-encoding",
	[HTTP1_H_CONTENT_TYPE] = "content-type",
	[HTTP1_H_ACCEPT_ENCODING] = "accept-encoding",
	[HTTP1_H_ORIGIN] = "origin",
	[HTTP1_H_UPGRADE] = "upgrade",
	[HTTP1_H_PROXY_CONNECTION] = "proxy-connection",
};

/* ---- character classes (ASCII only, no locale) ---- */

static bool http1_is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool http1_is_vchar(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e;
}

static bool http1_is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static bool http1_is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static unsigned char http1_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Value of a hex digit, or -1. */
static int http1_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = http1_lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static bool http1_mem_eq_ci(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (http1_lower((unsigned char)a[i]) !=
		    http1_lower((unsigned char)b[i]))
			return false;
	}
	return true;
}

static struct http1_span http1_mkspan(size_t start, size_t end)
{
	struct http1_span s = { (uint16_t)start, (uint16_t)(end - start) };

	return s;
}

/* ---- head parser ---- */

static int http1_fail(struct http1_parser *p, int status, const char *why)
{
	p->state = HTTP1_ST_ERROR;
	p->status = status;
	p->why = why;
	return -1;
}

static void http1_head_reset(struct http1_head *h)
{
	size_t k;

	memset(h, 0, sizeof(*h));
	h->content_length = -1;
	for (k = 0; k < HTTP1_H_COUNT; k++)
		h->known[k] = -1;
}

void http1_parser_init(struct http1_parser *p, enum http1_kind kind)
{
	memset(p, 0, sizeof(*p));
	p->kind = (uint8_t)kind;
	p->state = HTTP1_ST_START_LINE;
	p->maxhead = HTTP1_MAX_HEAD;
	p->maxfields = HTTP1_MAX_FIELDS;
}

void http1_parser_limits(struct http1_parser *p, size_t maxhead,
			 unsigned maxfields)
{
	p->maxhead = (uint16_t)(maxhead < HTTP1_HEAD_CAP ? maxhead
							 : HTTP1_HEAD_CAP);
	p->maxfields = (uint8_t)(maxfields < HTTP1_FIELDS_CAP
					 ? maxfields
					 : HTTP1_FIELDS_CAP);
}

/* "HTTP/" DIGIT "." DIGIT, exactly n == 8 bytes at v. */
static int http1_parse_version(struct http1_parser *p, const char *v,
			       size_t n, struct http1_head *h)
{
	if (n != 8 || memcmp(v, "HTTP/", 5) != 0 ||
	    !http1_is_digit((unsigned char)v[5]) || v[6] != '.' ||
	    !http1_is_digit((unsigned char)v[7]))
		return http1_fail(p, 400, "malformed HTTP version");
	if (v[5] != '1')
		return http1_fail(p, 505, "unsupported HTTP major version");
	h->version_minor = v[7] > '1' ? 1 : v[7] - '0';
	return 0;
}

/* method SP request-target SP HTTP-version, in buf[s..e). */
static int http1_request_line(struct http1_parser *p, const char *buf,
			      size_t s, size_t e, struct http1_head *h)
{
	size_t i = s, t;

	while (i < e && http1_is_tchar((unsigned char)buf[i]))
		i++;
	if (i == s || i >= e || buf[i] != ' ')
		return http1_fail(p, 400, "malformed request method");
	h->method = http1_mkspan(s, i);
	t = ++i;
	while (i < e && http1_is_vchar((unsigned char)buf[i]))
		i++;
	if (i == t || i >= e || buf[i] != ' ')
		return http1_fail(p, 400, "malformed request target");
	h->target = http1_mkspan(t, i);
	i++;
	return http1_parse_version(p, buf + i, e - i, h);
}

/* HTTP-version SP 3DIGIT [SP reason-phrase], in buf[s..e). */
static int http1_status_line(struct http1_parser *p, const char *buf,
			     size_t s, size_t e, struct http1_head *h)
{
	const char *d;
	size_t k;

	if (e - s < 12 || buf[s + 8] != ' ')
		return http1_fail(p, 400, "malformed status line");
	d = buf + s + 9;
	if (http1_parse_version(p, buf + s, 8, h) != 0)
		return -1;
	h->status = 0;
	for (k = 0; k < 3; k++) {
		if (!http1_is_digit((unsigned char)d[k]))
			return http1_fail(p, 400, "malformed status code");
		h->status = h->status * 10 + (d[k] - '0');
	}
	if (h->status < 100)
		return http1_fail(p, 400, "malformed status code");
	if (e - s == 12) {
		h->reason = http1_mkspan(e, e);
		return 0;
	}
	if (buf[s + 12] != ' ')
		return http1_fail(p, 400, "malformed status line");
	h->reason = http1_mkspan(s + 13, e);
	return 0;
}

static int http1_content_length(struct http1_parser *p, const char *buf,
				struct http1_head *h, struct http1_span v)
{
	uint64_t n = 0;
	size_t i;

	if (h->content_length >= 0)
		return http1_fail(p, 400, "duplicate Content-Length");
	if (h->chunked)
		return http1_fail(p, 400,
				  "Content-Length with Transfer-Encoding");
	if (v.len == 0)
		return http1_fail(p, 400, "empty Content-Length");
	for (i = v.off; i < (size_t)v.off + v.len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (!http1_is_digit(c))
			return http1_fail(p, 400, "malformed Content-Length");
		if (n > (HTTP1_MAX_CONTENT_LENGTH - (c - '0')) / 10)
			return http1_fail(p, 400, "Content-Length too large");
		n = n * 10 + (c - '0');
	}
	h->content_length = (int64_t)n;
	return 0;
}

static int http1_transfer_encoding(struct http1_parser *p, const char *buf,
				   struct http1_head *h, struct http1_span v)
{
	/* any earlier Transfer-Encoding either failed or set chunked */
	if (h->chunked)
		return http1_fail(p, 400, "duplicate Transfer-Encoding");
	if (h->content_length >= 0)
		return http1_fail(p, 400,
				  "Content-Length with Transfer-Encoding");
	if (!http1_span_eq_ci(buf, v, "chunked")) {
		if (p->kind == HTTP1_REQUEST)
			return http1_fail(p, 501,
					  "unsupported Transfer-Encoding");
		return http1_fail(p, 400, "unsupported Transfer-Encoding");
	}
	if (p->kind == HTTP1_REQUEST && h->version_minor == 0)
		return http1_fail(p, 400, "Transfer-Encoding in HTTP/1.0");
	h->chunked = true;
	return 0;
}

static void http1_connection(const char *buf, struct http1_head *h,
			     struct http1_span v)
{
	if (http1_list_has(buf, v, "close"))
		h->conn |= HTTP1_CONN_CLOSE;
	if (http1_list_has(buf, v, "keep-alive"))
		h->conn |= HTTP1_CONN_KEEPALIVE;
	if (http1_list_has(buf, v, "upgrade"))
		h->conn |= HTTP1_CONN_UPGRADE;
}

/* Apply the semantics of field fields[idx]: framing, Connection, known[]. */
static int http1_field_apply(struct http1_parser *p, const char *buf,
			     struct http1_head *h, uint16_t idx)
{
	const struct http1_field *f = &h->fields[idx];
	size_t k;

	if (http1_span_eq_ci(buf, f->name, "content-length"))
		return http1_content_length(p, buf, h, f->value);
	if (http1_span_eq_ci(buf, f->name, "transfer-encoding"))
		return http1_transfer_encoding(p, buf, h, f->value);
	if (http1_span_eq_ci(buf, f->name, "connection")) {
		http1_connection(buf, h, f->value);
		return 0;
	}
	for (k = 0; k < HTTP1_H_COUNT; k++) {
		if (!http1_span_eq_ci(buf, f->name, http1_known_names[k]))
			continue;
		if (h->known[k] >= 0) {
			if (k == HTTP1_H_HOST)
				return http1_fail(p, 400, "duplicate Host");
			return 0; /* keep the first */
		}
		h->known[k] = (int16_t)idx;
		return 0;
	}
	return 0;
}

/* field-name ":" OWS field-value OWS, in buf[s..e), e > s. Syntax only;
 * first tells whether the start line came right before. */
static int http1_field_line(struct http1_parser *p, const char *buf,
			    size_t s, size_t e, bool first,
			    struct http1_field *f)
{
	size_t i = s, vs, ve;

	if (http1_is_ows((unsigned char)buf[s])) {
		if (first)
			return http1_fail(p, 400,
					  "whitespace after start line");
		return http1_fail(p, 400, "obsolete line folding");
	}
	while (i < e && http1_is_tchar((unsigned char)buf[i]))
		i++;
	if (i >= e)
		return http1_fail(p, 400, "field line without colon");
	if (buf[i] != ':') {
		if (http1_is_ows((unsigned char)buf[i]))
			return http1_fail(p, 400,
					  "whitespace before colon");
		return http1_fail(p, 400, "malformed field name");
	}
	if (i == s)
		return http1_fail(p, 400, "empty field name");
	vs = i + 1;
	ve = e;
	while (vs < ve && http1_is_ows((unsigned char)buf[vs]))
		vs++;
	while (ve > vs && http1_is_ows((unsigned char)buf[ve - 1]))
		ve--;
	f->name = http1_mkspan(s, i);
	f->value = http1_mkspan(vs, ve);
	return 0;
}

/* Append a parsed field to h and apply its semantics. */
static int http1_field_add(struct http1_parser *p, const char *buf,
			   struct http1_head *h, const struct http1_field *f)
{
	if (h->nfields >= p->maxfields)
		return http1_fail(p, 431, "too many header fields");
	h->fields[h->nfields] = *f;
	h->nfields++;
	return http1_field_apply(p, buf, h, (uint16_t)(h->nfields - 1));
}

static int http1_start_line(struct http1_parser *p, const char *buf,
			    size_t s, size_t e, struct http1_head *h)
{
	if (e == s)
		return http1_fail(p, 400, "empty start line");
	if (p->kind == HTTP1_REQUEST)
		return http1_request_line(p, buf, s, e, h);
	return http1_status_line(p, buf, s, e, h);
}

/* The head buf[0..end) is complete and every line in it has passed the
 * checks that need no state. Fill h from scratch in one pass and apply
 * the checks across fields. Returns end or -1. */
static int http1_finish(struct http1_parser *p, const char *buf, size_t end,
			struct http1_head *h)
{
	const char *cr = memchr(buf, '\r', end);

	http1_head_reset(h);
	if (cr == NULL) /* cannot happen: the head ends with CRLF CRLF */
		return http1_fail(p, 400, "no start line");
	if (http1_start_line(p, buf, 0, (size_t)(cr - buf), h) != 0)
		return -1;
	for (;;) {
		struct http1_field f;
		size_t s = (size_t)(cr - buf) + 2, e;

		cr = memchr(buf + s, '\r', end - s);
		if (cr == NULL)
			return http1_fail(p, 400, "no end of head");
		e = (size_t)(cr - buf);
		if (e == s)
			break;
		if (http1_field_line(p, buf, s, e, h->nfields == 0, &f) != 0 ||
		    http1_field_add(p, buf, h, &f) != 0)
			return -1;
	}
	p->state = HTTP1_ST_DONE;
	p->pos = (uint16_t)end;
	return (int)end;
}

/* A line buf[p->line..eol) ended by CRLF at eol: check what can be
 * checked without state now, so bad input fails early. Returns -1 on
 * error, 0 to go on, or the head length after the final empty line. */
static int http1_line(struct http1_parser *p, const char *buf, size_t eol,
		      struct http1_head *h)
{
	size_t s = p->line;
	struct http1_head scratch;
	struct http1_field f;

	switch (p->state) {
	case HTTP1_ST_START_LINE:
		if (http1_start_line(p, buf, s, eol, &scratch) != 0)
			return -1;
		p->state = HTTP1_ST_FIRST_FIELD;
		return 0;
	case HTTP1_ST_FIRST_FIELD:
	case HTTP1_ST_FIELDS:
		if (eol == s)
			return http1_finish(p, buf, eol + 2, h);
		if (http1_field_line(p, buf, s, eol,
				     p->state == HTTP1_ST_FIRST_FIELD, &f) != 0)
			return -1;
		p->state = HTTP1_ST_FIELDS;
		return 0;
	default:
		return http1_fail(p, 400, "bad parser state");
	}
}

#define HTTP1_METHOD_MAX 32

/* Is byte i still within the method (no SP since the line began)? The
 * scan is bounded by HTTP1_METHOD_MAX. */
static bool http1_in_method(const char *buf, size_t line, size_t i)
{
	return i - line <= HTTP1_METHOD_MAX &&
	       memchr(buf + line, ' ', i - line) == NULL;
}

int http1_parse(struct http1_parser *p, const char *buf, size_t len,
		struct http1_head *h)
{
	size_t i, lim;

	if (p->state == HTTP1_ST_ERROR)
		return -1;
	if (p->kind != HTTP1_REQUEST && p->kind != HTTP1_RESPONSE)
		return http1_fail(p, 400, "parser not initialised");
	if (len < p->pos)
		return http1_fail(p, 400, "buffer shrank between calls");
	if (p->state == HTTP1_ST_DONE)
		return http1_finish(p, buf, p->pos, h);
	lim = len < p->maxhead ? len : p->maxhead;
	i = p->pos;
	while (i < lim) {
		unsigned char c = (unsigned char)buf[i];

		if (c == '\r') {
			int r;

			if (i + 1 >= lim)
				break; /* decide when the next byte is here */
			if (buf[i + 1] != '\n')
				return http1_fail(p, 400, "bare CR");
			r = http1_line(p, buf, i, h);
			if (r != 0)
				return r;
			i += 2;
			p->line = (uint16_t)i;
			continue;
		}
		if (c == '\n')
			return http1_fail(p, 400, "bare LF");
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return http1_fail(p, 400, "control byte in head");
		if (p->state == HTTP1_ST_START_LINE && p->kind == HTTP1_REQUEST &&
		    http1_in_method(buf, p->line, i) && c != ' ' &&
		    (!http1_is_tchar(c) || i - p->line >= HTTP1_METHOD_MAX))
			/* not HTTP at all: say so now, not after 8 KiB */
			return http1_fail(p, 400, "bad method");
		i++;
	}
	p->pos = (uint16_t)i;
	if (len > p->maxhead)
		return http1_fail(p, 431, "head too large");
	return 0;
}

/* ---- helpers over a parsed head ---- */

bool http1_span_eq(const char *buf, struct http1_span s, const char *lit)
{
	size_t n = strlen(lit);

	return n == s.len && memcmp(buf + s.off, lit, n) == 0;
}

bool http1_span_eq_ci(const char *buf, struct http1_span s, const char *lit)
{
	size_t n = strlen(lit);

	return n == s.len && http1_mem_eq_ci(buf + s.off, lit, n);
}

/* End (exclusive) of the list element starting at i: the next ',' that
 * is not inside a quoted-string, or e. */
static size_t http1_elem_end(const char *buf, size_t i, size_t e)
{
	bool quoted = false;

	for (; i < e; i++) {
		char c = buf[i];

		if (quoted && c == '\\')
			i++; /* quoted-pair; may step onto e, loop ends */
		else if (c == '"')
			quoted = !quoted;
		else if (c == ',' && !quoted)
			break;
	}
	return i < e ? i : e;
}

bool http1_list_has(const char *buf, struct http1_span s, const char *tok)
{
	return http1_list_has_n(buf, s, tok, strlen(tok));
}

bool http1_list_has_n(const char *buf, struct http1_span s, const char *tok,
		      size_t toklen)
{
	size_t i = s.off, e = (size_t)s.off + s.len;

	while (i < e) {
		size_t end = http1_elem_end(buf, i, e);
		size_t a = i, b = end;
		const char *semi;

		/* the token is what precedes any ";parameters" */
		semi = memchr(buf + a, ';', b - a);
		if (semi != NULL)
			b = (size_t)(semi - buf);
		while (a < b && http1_is_ows((unsigned char)buf[a]))
			a++;
		while (b > a && http1_is_ows((unsigned char)buf[b - 1]))
			b--;
		if (b > a && b - a == toklen &&
		    http1_mem_eq_ci(buf + a, tok, toklen))
			return true;
		i = end + 1;
	}
	return false;
}

const struct http1_span *http1_known_value(const struct http1_head *h,
					   enum http1_known k)
{
	int idx;

	if ((unsigned)k >= HTTP1_H_COUNT)
		return NULL;
	idx = h->known[k];
	if (idx < 0 || idx >= h->nfields)
		return NULL;
	return &h->fields[idx].value;
}

/* ---- Basic credentials ---- */

struct http1_cred_sink {
	char *user, *pass;
	size_t usercap, passcap, ulen, plen;
	bool colon;
};

/* Route one decoded byte to the user or the password. */
static int http1_cred_put(struct http1_cred_sink *k, unsigned char c)
{
	if (c == '\0')
		return -1;
	if (!k->colon && c == ':') {
		k->colon = true;
		return 0;
	}
	if (!k->colon) {
		if (k->ulen + 1 >= k->usercap)
			return -1;
		k->user[k->ulen++] = (char)c;
		return 0;
	}
	if (k->plen + 1 >= k->passcap)
		return -1;
	k->pass[k->plen++] = (char)c;
	return 0;
}

/* Decode b64[0..n) one quad at a time into the sink, so no buffer for
 * the whole credential is needed. */
static int http1_cred_decode(struct http1_cred_sink *k, const char *b64,
			     size_t n)
{
	size_t i;

	if (n == 0 || n % 4 != 0)
		return -1;
	/* padding is only valid in the final quad */
	if (memchr(b64, '=', n - 4) != NULL)
		return -1;
	for (i = 0; i < n; i += 4) {
		unsigned char q[3];
		int m = base64_decode(q, sizeof(q), b64 + i, 4);
		int j;

		if (m < 0)
			return -1;
		for (j = 0; j < m; j++) {
			if (http1_cred_put(k, q[j]) != 0)
				return -1;
		}
	}
	return 0;
}

int http1_basic_auth_decode(const char *value, size_t len, char *user,
			    size_t usercap, char *pass, size_t passcap)
{
	struct http1_cred_sink k = {
		.user = user, .pass = pass,
		.usercap = usercap, .passcap = passcap,
	};
	size_t i = 5;

	if (usercap == 0 || passcap == 0)
		return -1;
	user[0] = '\0';
	pass[0] = '\0';
	if (len < 6 || !http1_mem_eq_ci(value, "basic", 5) || value[5] != ' ')
		return -1;
	while (i < len && value[i] == ' ')
		i++;
	if (http1_cred_decode(&k, value + i, len - i) != 0 || !k.colon) {
		user[0] = '\0';
		pass[0] = '\0';
		return -1;
	}
	user[k.ulen] = '\0';
	pass[k.plen] = '\0';
	return 0;
}

/* ---- encoders ---- */

const char *http1_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 407: return "Proxy Authentication Required";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 421: return "Misdirected Request";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

/* Returns -1 as well for a status outside 100..999, which cannot be
 * written as the 3DIGIT status code. */
int http1_error_response(char *buf, size_t cap, int status,
			 const char *extra_headers)
{
	const char *reason = http1_reason(status);
	/* body: "<3 digits> <reason>\n" */
	size_t bodylen = 3 + 1 + strlen(reason) + 1;
	int n;

	if (status < 100 || status > 999)
		return -1;
	if (cap > INT_MAX)
		cap = INT_MAX;
	n = snprintf(buf, cap,
		     "HTTP/1.1 %d %s\r\n"
		     "Connection: close\r\n"
		     "Content-Type: text/plain; charset=utf-8\r\n"
		     "X-Content-Type-Options: nosniff\r\n"
		     "Content-Length: %zu\r\n"
		     "%s"
		     "\r\n"
		     "%d %s\n",
		     status, reason, bodylen,
		     extra_headers != NULL ? extra_headers : "", status,
		     reason);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	return n;
}

int http1_error_response_text(char *buf, size_t cap, int status,
			      const char *extra_headers, const char *text)
{
	size_t bodylen = strlen(text) + 1;
	int n;

	if (status < 100 || status > 999 || strpbrk(text, "\r\n") != NULL)
		return -1;
	if (cap > INT_MAX)
		cap = INT_MAX;
	n = snprintf(buf, cap,
		     "HTTP/1.1 %d %s\r\n"
		     "Connection: close\r\n"
		     "Content-Type: text/plain; charset=utf-8\r\n"
		     "X-Content-Type-Options: nosniff\r\n"
		     "Content-Length: %zu\r\n"
		     "%s"
		     "\r\n"
		     "%s\n",
		     status, http1_reason(status), bodylen,
		     extra_headers != NULL ? extra_headers : "", text);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	return n;
}

int http1_sniff_request(const char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len && i <= 16; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c == ' ')
			return i >= 3 ? 1 : -1;
		if (c < 'A' || c > 'Z')
			return -1;
	}
	return i > 16 ? -1 : 0;
}

/* Append base64(user ":" pass) at buf[*o..cap), NUL-terminated, feeding
 * base64_encode() one 3-byte group at a time. */
static int http1_put_b64_cred(char *buf, size_t cap, size_t *o,
			      const char *user, const char *pass)
{
	size_t ulen = strlen(user), plen = strlen(pass);
	size_t total = ulen + 1 + plen, i = 0;

	while (i < total) {
		unsigned char g[3];
		size_t k;
		int w;

		for (k = 0; k < 3 && i < total; k++, i++) {
			if (i < ulen)
				g[k] = (unsigned char)user[i];
			else if (i == ulen)
				g[k] = ':';
			else
				g[k] = (unsigned char)pass[i - ulen - 1];
		}
		w = base64_encode(buf + *o, cap - *o, g, k);
		if (w < 0)
			return -1;
		*o += (size_t)w;
	}
	return 0;
}

/* Append the NUL-terminated string s at buf[*o..cap). */
static int http1_put(char *buf, size_t cap, size_t *o, const char *s)
{
	size_t n = strlen(s);

	if (cap - *o <= n)
		return -1;
	memcpy(buf + *o, s, n + 1);
	*o += n;
	return 0;
}

/* Returns -1 as well when hostport is empty or holds bytes that are not
 * VCHARs (they would break the request line). pass NULL means "". */
int http1_connect_request(char *buf, size_t cap, const char *hostport,
			  const char *user, const char *pass)
{
	size_t i, o = 0;

	if (cap > INT_MAX)
		cap = INT_MAX;
	if (hostport[0] == '\0')
		return -1;
	for (i = 0; hostport[i] != '\0'; i++) {
		if (!http1_is_vchar((unsigned char)hostport[i]))
			return -1;
	}
	if (http1_put(buf, cap, &o, "CONNECT ") ||
	    http1_put(buf, cap, &o, hostport) ||
	    http1_put(buf, cap, &o, " HTTP/1.1\r\n"))
		return -1;
	if (user != NULL) {
		const char *pw = pass != NULL ? pass : "";

		if (http1_put(buf, cap, &o, "Proxy-Authorization: Basic ") ||
		    http1_put_b64_cred(buf, cap, &o, user, pw) ||
		    http1_put(buf, cap, &o, "\r\n"))
			return -1;
	}
	if (http1_put(buf, cap, &o, "\r\n") != 0)
		return -1;
	return (int)o;
}

/* ---- chunked body decoder ---- */

enum {
	HTTP1_CK_SIZE,       /* hex digits of chunk-size */
	HTTP1_CK_SIZE_WS,    /* BWS after the size, before ';' */
	HTTP1_CK_EXT,        /* chunk extensions, skipped */
	HTTP1_CK_SIZE_LF,    /* LF ending the size line */
	HTTP1_CK_DATA,       /* remaining payload bytes */
	HTTP1_CK_DATA_CR,    /* CRLF after the payload */
	HTTP1_CK_DATA_LF,
	HTTP1_CK_TRAILER,    /* trailer lines; linelen 0 = at line start */
	HTTP1_CK_TRAILER_LF,
	HTTP1_CK_FINAL_LF,   /* LF of the empty line ending the body */
	HTTP1_CK_DONE,
	HTTP1_CK_ERROR,
};

void http1_chunked_init(struct http1_chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = HTTP1_CK_SIZE;
}

static bool http1_is_ctl(unsigned char ch)
{
	return (ch < 0x20 && ch != '\t') || ch == 0x7f;
}

/* Count one more byte of the size line; false when it is too long. */
static bool http1_ck_linebyte(struct http1_chunked *c)
{
	if (c->linelen >= HTTP1_MAX_CHUNK_LINE)
		return false;
	c->linelen++;
	return true;
}

/* One byte of a size line or trailer. Returns 0 or -1. */
static int http1_ck_byte(struct http1_chunked *c, unsigned char ch)
{
	int d;

	switch (c->state) {
	case HTTP1_CK_SIZE:
		d = http1_hexval(ch);
		if (d >= 0) {
			if (!http1_ck_linebyte(c) ||
			    c->remaining > (HTTP1_MAX_CONTENT_LENGTH -
					    (uint64_t)d) / 16)
				return -1;
			c->remaining = c->remaining * 16 + (uint64_t)d;
			return 0;
		}
		if (c->linelen == 0)
			return -1; /* no digits */
		if (ch == '\r') {
			c->state = HTTP1_CK_SIZE_LF;
			return 0;
		}
		if (ch == ';')
			c->state = HTTP1_CK_EXT;
		else if (http1_is_ows(ch))
			c->state = HTTP1_CK_SIZE_WS;
		else
			return -1;
		return http1_ck_linebyte(c) ? 0 : -1;
	case HTTP1_CK_SIZE_WS:
		if (ch == ';')
			c->state = HTTP1_CK_EXT;
		else if (!http1_is_ows(ch))
			return -1;
		return http1_ck_linebyte(c) ? 0 : -1;
	case HTTP1_CK_EXT:
		if (ch == '\r') {
			c->state = HTTP1_CK_SIZE_LF;
			return 0;
		}
		if (http1_is_ctl(ch) || !http1_ck_linebyte(c))
			return -1;
		return 0;
	case HTTP1_CK_SIZE_LF:
		if (ch != '\n')
			return -1;
		c->linelen = 0;
		c->state = c->remaining ? HTTP1_CK_DATA : HTTP1_CK_TRAILER;
		return 0;
	case HTTP1_CK_DATA_CR:
		if (ch != '\r')
			return -1;
		c->state = HTTP1_CK_DATA_LF;
		return 0;
	case HTTP1_CK_DATA_LF:
		if (ch != '\n')
			return -1;
		c->state = HTTP1_CK_SIZE;
		c->linelen = 0;
		c->remaining = 0;
		return 0;
	case HTTP1_CK_TRAILER:
		if (ch == '\r' && c->linelen == 0) {
			c->state = HTTP1_CK_FINAL_LF;
			return 0;
		}
		/* remaining counts the bytes of trailer lines here */
		if (++c->remaining > HTTP1_MAX_TRAILERS)
			return -1;
		if (ch == '\r') {
			c->state = HTTP1_CK_TRAILER_LF;
			return 0;
		}
		if (http1_is_ctl(ch) || (c->linelen == 0 && http1_is_ows(ch)))
			return -1;
		c->linelen = 1;
		return 0;
	case HTTP1_CK_TRAILER_LF:
		if (ch != '\n' || ++c->remaining > HTTP1_MAX_TRAILERS)
			return -1;
		c->state = HTTP1_CK_TRAILER;
		c->linelen = 0;
		return 0;
	case HTTP1_CK_FINAL_LF:
		if (ch != '\n')
			return -1;
		c->state = HTTP1_CK_DONE;
		c->done = true;
		return 0;
	default:
		return -1;
	}
}

uint64_t http1_chunked_data_left(const struct http1_chunked *c)
{
	return c->state == HTTP1_CK_DATA ? c->remaining : 0;
}

void http1_chunked_take(struct http1_chunked *c, uint64_t n)
{
	if (c->state != HTTP1_CK_DATA || n > c->remaining) {
		c->state = HTTP1_CK_ERROR;
		return;
	}
	c->remaining -= n;
	if (c->remaining == 0)
		c->state = HTTP1_CK_DATA_CR;
}

long http1_chunked_decode(struct http1_chunked *c, const char *in,
			  size_t inlen, char *out, size_t outcap,
			  size_t *outlen)
{
	size_t i = 0;

	if (c->state == HTTP1_CK_DONE)
		return 0;
	if (c->state == HTTP1_CK_ERROR || *outlen > outcap)
		goto fail;
	if (inlen > LONG_MAX)
		inlen = LONG_MAX;
	while (i < inlen && c->state != HTTP1_CK_DONE) {
		if (c->state == HTTP1_CK_DATA) {
			size_t n = inlen - i, room = outcap - *outlen;

			if (room == 0)
				break; /* out is full */
			if (n > room)
				n = room;
			if (n > c->remaining)
				n = (size_t)c->remaining;
			memcpy(out + *outlen, in + i, n);
			*outlen += n;
			i += n;
			c->remaining -= n;
			if (c->remaining == 0)
				c->state = HTTP1_CK_DATA_CR;
			continue;
		}
		if (http1_ck_byte(c, (unsigned char)in[i]) != 0)
			goto fail;
		i++;
	}
	return (long)i;
fail:
	c->state = HTTP1_CK_ERROR;
	return -1;
}
