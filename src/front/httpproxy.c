/* httpproxy: the HTTP proxy driver (CONNECT). The request head is parsed
 * by the pure http1 parser; other methods are answered 405 until the
 * forward proxy exists. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/http1.h"
#include "common/log.h"
#include "front/front.h"
#include "front/session.h"

static bool http_auth_required;

void http_set_auth_required(bool on);
void http_set_auth_required(bool on)
{
	http_auth_required = on;
}

static void http_send_error(struct session *s, int status, const char *extra)
{
	char buf[512];
	int n = http1_error_response(buf, sizeof(buf), status, extra);

	if (n > 0)
		(void)session_reply(s, buf, (size_t)n);
}

static void http_fail(struct session *s, int status, const char *why)
{
	char outcome[128];

	http_send_error(s, status, NULL);
	snprintf(outcome, sizeof(outcome), "%d %s", status, why);
	session_close(s, outcome);
}

static void http_on_accept(struct session *s)
{
	s->proto = PROTO_HTTP;
	http1_parser_init(&s->hs->p.http, HTTP1_REQUEST);
}

static int http_take_auth(struct session *s, const char *buf,
			  const struct http1_head *h)
{
	const struct http1_span *v =
		http1_known_value(h, HTTP1_H_PROXY_AUTHORIZATION);
	struct hs *hs = s->hs;

	if (v == NULL)
		return 0;
	if (http1_basic_auth_decode(buf + v->off, v->len, hs->user,
				    sizeof(hs->user), hs->pass,
				    sizeof(hs->pass)) < 0)
		return -1;
	hs->has_user = hs->has_pass = true;
	return 0;
}

static void http_on_read(struct session *s)
{
	struct hs *hs = s->hs;
	const char *buf = (const char *)hs->buf;
	struct http1_head h;
	int r;

	r = http1_parse(&hs->p.http, buf, hs->len, &h);
	if (r == 0)
		return;
	if (r < 0) {
		http_fail(s, hs->p.http.status, hs->p.http.why);
		return;
	}
	hs->off = (uint16_t)r;
	if (!http1_span_eq(buf, h.method, "CONNECT")) {
		http_send_error(s, 405, "Allow: CONNECT\r\n");
		session_close(s, "405 method not supported");
		return;
	}
	if (addr_parse(&hs->target, buf + h.target.off, h.target.len, -1) < 0 ||
	    hs->target.port == 0) {
		http_fail(s, 400, "bad CONNECT target");
		return;
	}
	if (http_take_auth(s, buf, &h) < 0) {
		http_fail(s, 400, "malformed Proxy-Authorization");
		return;
	}
	if (http_auth_required && !hs->has_user) {
		http_send_error(s, 407,
				"Proxy-Authenticate: Basic realm=\"neosocksd\"\r\n");
		session_close(s, "407 credentials required");
		return;
	}
	session_request(s);
}

static int http_status_for(const struct dial_result *r)
{
	switch (r->err) {
	case DIAL_ERR_BLOCKED:
	case DIAL_ERR_RULESET_REJECT:
	case DIAL_ERR_RULESET_ERROR:
		return 403;
	case DIAL_ERR_RULESET_DOWN:
		return 503;
	case DIAL_ERR_TIMEOUT:
		return 504;
	case DIAL_ERR_SYSTEM:
		return 500;
	default:
		return 502;
	}
}

static int http_on_dialed(struct session *s, const struct dial_result *r)
{
	static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";

	if (r->err != DIAL_OK) {
		http_send_error(s, http_status_for(r), NULL);
		return -1;
	}
	return session_reply(s, ok, sizeof(ok) - 1);
}

static void http_on_timeout(struct session *s)
{
	if (s->hs->request_done)
		http_send_error(s, 504, NULL);
	else if (s->hs->len > 0)
		http_send_error(s, 408, NULL);
}

const struct sess_driver http_driver = {
	.bufsize = HTTP1_MAX_HEAD + 1024,
	.on_accept = http_on_accept,
	.on_read = http_on_read,
	.on_dialed = http_on_dialed,
	.on_timeout = http_on_timeout,
};
