/* http1fwd: the pure pieces of the HTTP/1.1 forward proxy. See
 * http1fwd.h for the contracts.
 *
 * Heads are rewritten field by field from the parsed head: nothing of the
 * original start line is copied but the method and the path, and every
 * field kept is copied as name ": " value CRLF with the value the parser
 * validated (no CR, LF or NUL can reach the output). The framing fields
 * (Content-Length, Transfer-Encoding) always pass unchanged, whatever the
 * Connection field names: a client that could strip them would make the
 * origin read the body as another request. */
#include "common/http1fwd.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

/* ---- output ---- */

struct http1fwd_out {
	char *buf;
	size_t cap, len;
	bool full;
};

static void http1fwd_put(struct http1fwd_out *o, const char *p, size_t n)
{
	if (o->full || o->cap - o->len <= n) {
		o->full = true;
		return;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void http1fwd_puts(struct http1fwd_out *o, const char *s)
{
	http1fwd_put(o, s, strlen(s));
}

static void http1fwd_put_span(struct http1fwd_out *o, const char *buf,
			      struct http1_span s)
{
	http1fwd_put(o, buf + s.off, s.len);
}

static int http1fwd_done(const struct http1fwd_out *o)
{
	if (o->full || o->len > INT_MAX)
		return -1;
	return (int)o->len;
}

/* ---- absolute-form targets ---- */

static bool http1fwd_scheme_is(const char *s, size_t n, const char *lit)
{
	size_t k = strlen(lit);

	if (n != k)
		return false;
	for (size_t i = 0; i < k; i++) {
		char c = s[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c + ('a' - 'A'));
		if (c != lit[i])
			return false;
	}
	return true;
}

/* Split the authority a[0..n) into host (brackets kept) and port; an
 * empty port is the default 80 (RFC 3986 3.2.3). 0 or -1. */
static int http1fwd_hostport(const char *a, size_t n, size_t *hostlen,
			     uint16_t *port)
{
	const char *colon;
	size_t h;

	if (n > 0 && a[0] == '[') {
		const char *rb = memchr(a, ']', n);

		if (rb == NULL)
			return -1;
		h = (size_t)(rb - a) + 1;
		if (h < n && a[h] != ':')
			return -1;
	} else {
		colon = memchr(a, ':', n);
		h = colon != NULL ? (size_t)(colon - a) : n;
	}
	*hostlen = h;
	*port = 80;
	if (h + 1 >= n)
		return 0; /* no port, or "host:" */
	if (addr_parse_port(a + h + 1, n - h - 1, port) < 0 || *port == 0)
		return -1;
	return 0;
}

int http1fwd_parse_uri(const char *buf, struct http1_span target,
		       struct http1fwd_uri *u, const char **why)
{
	const char *s = buf + target.off;
	size_t n = target.len, k, a, e, hostlen, q;
	char hostport[ADDR_NAME_MAX + 16];
	uint16_t port;
	int w;

	memset(u, 0, sizeof(*u));
	if (n == 0 || s[0] == '/' || (n == 1 && s[0] == '*')) {
		*why = "this is an HTTP proxy: ask it for an absolute URL "
		       "(GET http://host/path)";
		return -1;
	}
	for (k = 0; k < n && s[k] != ':'; k++)
		;
	if (k == n || n - k < 3 || memcmp(s + k, "://", 3) != 0) {
		*why = "the request target is not a URL";
		return -1;
	}
	if (http1fwd_scheme_is(s, k, "https")) {
		*why = "https:// URLs go through CONNECT: configure this "
		       "proxy for HTTPS too";
		return -1;
	}
	if (!http1fwd_scheme_is(s, k, "http")) {
		*why = "only http:// URLs can be forwarded";
		return -1;
	}
	if (memchr(s, '#', n) != NULL) {
		*why = "a URL fragment (#...) has no place in a request";
		return -1;
	}
	a = k + 3;
	for (e = a; e < n && s[e] != '/' && s[e] != '?'; e++)
		;
	if (memchr(s + a, '@', e - a) != NULL) {
		*why = "credentials in the URL (user@host) are not forwarded";
		return -1;
	}
	if (e == a || http1fwd_hostport(s + a, e - a, &hostlen, &port) < 0 ||
	    hostlen == 0 || hostlen > ADDR_NAME_MAX + 2) {
		*why = "the URL has no valid host and port";
		return -1;
	}
	w = snprintf(hostport, sizeof(hostport), "%.*s:%u", (int)hostlen,
		     s + a, (unsigned)port);
	if (w < 0 || (size_t)w >= sizeof(hostport) ||
	    addr_parse(&u->target, hostport, (size_t)w, -1) < 0) {
		*why = "the URL's host is not a valid host name or address";
		return -1;
	}
	u->authority.off = (uint16_t)(target.off + a);
	u->authority.len = (uint16_t)(e - a);
	u->path.off = (uint16_t)(target.off + e);
	u->path.len = (uint16_t)(n - e);
	for (q = e; q < n && s[q] != '?'; q++)
		;
	u->pathonly.off = u->path.off;
	u->pathonly.len = (uint16_t)(q - e);
	return 0;
}

/* ---- hop-by-hop fields ---- */

static const char *const http1fwd_hop_names[] = {
	"connection", "keep-alive", "proxy-connection", "proxy-authorization",
	"proxy-authenticate", "te", "trailer",
};

bool http1fwd_is_hop_by_hop(const char *buf, const struct http1_head *h,
			    struct http1_span name, bool keep_upgrade)
{
	size_t i;

	for (i = 0; i < sizeof(http1fwd_hop_names) /
			    sizeof(http1fwd_hop_names[0]);
	     i++) {
		if (http1_span_eq_ci(buf, name, http1fwd_hop_names[i]))
			return true;
	}
	if (http1_span_eq_ci(buf, name, "upgrade"))
		return !keep_upgrade;
	/* framing is never someone else's to remove */
	if (http1_span_eq_ci(buf, name, "content-length") ||
	    http1_span_eq_ci(buf, name, "transfer-encoding") ||
	    http1_span_eq_ci(buf, name, "host"))
		return false;
	for (i = 0; i < h->nfields; i++) {
		const struct http1_field *f = &h->fields[i];

		if (http1_span_eq_ci(buf, f->name, "connection") &&
		    http1_list_has_n(buf, f->value, buf + name.off, name.len))
			return true;
	}
	return false;
}

/* ---- requests ---- */

void http1fwd_request_info(const char *buf, const struct http1_head *h,
			   struct http1fwd_req *r)
{
	const struct http1_span *pc =
		http1_known_value(h, HTTP1_H_PROXY_CONNECTION);
	const struct http1_span *ex = http1_known_value(h, HTTP1_H_EXPECT);
	bool close = (h->conn & HTTP1_CONN_CLOSE) != 0;
	bool keep = (h->conn & HTTP1_CONN_KEEPALIVE) != 0;

	memset(r, 0, sizeof(*r));
	if (h->chunked) {
		r->framing = HTTP1FWD_CHUNKED;
	} else if (h->content_length > 0) {
		r->framing = HTTP1FWD_LENGTH;
		r->length = (uint64_t)h->content_length;
	}
	/* Proxy-Connection: what old clients send a proxy for Connection */
	if (pc != NULL) {
		close = close || http1_list_has(buf, *pc, "close");
		keep = keep || http1_list_has(buf, *pc, "keep-alive");
	}
	r->keepalive = h->version_minor >= 1 ? !close : keep && !close;
	r->upgrade = (h->conn & HTTP1_CONN_UPGRADE) != 0 &&
		     http1_known_value(h, HTTP1_H_UPGRADE) != NULL &&
		     r->framing == HTTP1FWD_NONE && h->version_minor >= 1;
	r->head = http1_span_eq(buf, h->method, "HEAD");
	r->options = http1_span_eq(buf, h->method, "OPTIONS");
	r->expect_continue =
		ex != NULL && http1_span_eq_ci(buf, *ex, "100-continue");
}

/* The kept fields of h, then Via. */
static void http1fwd_put_fields(struct http1fwd_out *o, const char *buf,
				const struct http1_head *h, bool keep_upgrade,
				bool drop_host, bool drop_te)
{
	char via[32];

	for (size_t i = 0; i < h->nfields; i++) {
		const struct http1_field *f = &h->fields[i];

		if (http1fwd_is_hop_by_hop(buf, h, f->name, keep_upgrade) ||
		    (drop_host && http1_span_eq_ci(buf, f->name, "host")) ||
		    (drop_te &&
		     http1_span_eq_ci(buf, f->name, "transfer-encoding")))
			continue;
		http1fwd_put_span(o, buf, f->name);
		http1fwd_put(o, ": ", 2);
		http1fwd_put_span(o, buf, f->value);
		http1fwd_put(o, "\r\n", 2);
	}
	snprintf(via, sizeof(via), "Via: 1.%d neosocksd\r\n",
		 h->version_minor >= 1 ? 1 : 0);
	http1fwd_puts(o, via);
}

int http1fwd_request_head(char *out, size_t cap, const char *buf,
			  const struct http1_head *h,
			  const struct http1fwd_uri *u,
			  const struct http1fwd_req *r)
{
	struct http1fwd_out o = { out, cap, 0, cap == 0 };

	http1fwd_put_span(&o, buf, h->method);
	http1fwd_put(&o, " ", 1);
	if (u->path.len == 0)
		http1fwd_puts(&o, r->options ? "*" : "/");
	else if (buf[u->path.off] == '?')
		http1fwd_put(&o, "/", 1);
	http1fwd_put_span(&o, buf, u->path);
	http1fwd_puts(&o, " HTTP/1.1\r\nHost: ");
	http1fwd_put_span(&o, buf, u->authority);
	http1fwd_put(&o, "\r\n", 2);
	http1fwd_put_fields(&o, buf, h, r->upgrade, true, false);
	if (r->upgrade)
		http1fwd_puts(&o, "Connection: upgrade\r\n");
	http1fwd_put(&o, "\r\n", 2);
	return http1fwd_done(&o);
}

/* ---- responses ---- */

void http1fwd_response_info(const char *buf, const struct http1_head *h,
			    const struct http1fwd_req *req,
			    struct http1fwd_resp *r)
{
	(void)buf;
	memset(r, 0, sizeof(*r));
	if (h->status < 200) {
		if (h->status == 101 && req->upgrade)
			r->framing = HTTP1FWD_TUNNEL;
		else
			r->interim = true;
		return;
	}
	if (req->head || h->status == 204 || h->status == 304) {
		r->framing = HTTP1FWD_NONE;
	} else if (h->chunked) {
		r->framing = HTTP1FWD_CHUNKED;
	} else if (h->content_length >= 0) {
		r->length = (uint64_t)h->content_length;
		r->framing = r->length > 0 ? HTTP1FWD_LENGTH : HTTP1FWD_NONE;
	} else {
		r->framing = HTTP1FWD_CLOSE;
	}
	r->reusable = r->framing != HTTP1FWD_CLOSE &&
		      !(h->conn & HTTP1_CONN_CLOSE) &&
		      (h->version_minor >= 1 ||
		       (h->conn & HTTP1_CONN_KEEPALIVE) != 0);
}

int http1fwd_response_head(char *out, size_t cap, const char *buf,
			   const struct http1_head *h,
			   enum http1fwd_conn conn, bool dechunk)
{
	struct http1fwd_out o = { out, cap, 0, cap == 0 };
	char line[16];

	snprintf(line, sizeof(line), "HTTP/1.1 %03d ", h->status % 1000);
	http1fwd_puts(&o, line);
	http1fwd_put_span(&o, buf, h->reason);
	http1fwd_put(&o, "\r\n", 2);
	http1fwd_put_fields(&o, buf, h, conn == HTTP1FWD_CONN_UPGRADE, false,
			    dechunk);
	switch (conn) {
	case HTTP1FWD_CONN_KEEP10:
		http1fwd_puts(&o, "Connection: keep-alive\r\n");
		break;
	case HTTP1FWD_CONN_CLOSE:
		http1fwd_puts(&o, "Connection: close\r\n");
		break;
	case HTTP1FWD_CONN_UPGRADE:
		http1fwd_puts(&o, "Connection: upgrade\r\n");
		break;
	default:
		break;
	}
	http1fwd_put(&o, "\r\n", 2);
	return http1fwd_done(&o);
}

int http1fwd_chunk_header(char *out, size_t cap, uint64_t size,
			  bool crlf_first)
{
	int n;

	if (cap > INT_MAX)
		cap = INT_MAX;
	if (size == 0)
		n = snprintf(out, cap, "%s0\r\n\r\n", crlf_first ? "\r\n" : "");
	else
		n = snprintf(out, cap, "%s%" PRIx64 "\r\n",
			     crlf_first ? "\r\n" : "", size);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	return n;
}
