/* httpproxy: the HTTP proxy driver. The request head is parsed by the pure
 * http1 parser; CONNECT becomes a tunnel here, every other method goes to
 * the forward proxy (httpfwd.c), which may run many requests on one
 * connection. Every error answer carries a sentence that says why, and
 * the access line's outcome is "<status> <the same sentence>". */
#include "front/httpproxy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/http1.h"
#include "common/log.h"
#include "front/front.h"
#include "front/httpfwd.h"

#define HTTP_REALM_HEADER "Proxy-Authenticate: Basic realm=\"neosocksd\"\r\n"

static bool http_auth_required;
static double http_timeout_s = 60.0;

void httpproxy_set_auth_required(bool on)
{
	http_auth_required = on;
}

void httpproxy_setup(struct event_base *base, const struct front_conf *fc)
{
	http_auth_required = fc->c.auth_required;
	http_timeout_s = fc->c.timeout;
	httpfwd_setup(base, fc);
}

double httpproxy_timeout(void)
{
	return http_timeout_s;
}

void httpproxy_fail(struct session *s, int status, const char *why,
		    const char *extra_headers)
{
	char buf[1024], outcome[400];
	int n = http1_error_response_text(buf, sizeof(buf), status,
					  extra_headers, why);

	if (n < 0)
		n = http1_error_response(buf, sizeof(buf), status,
					 extra_headers);
	if (n > 0 && session_reply(s, buf, (size_t)n) == 0)
		s->bytes_down += (uint64_t)n;
	snprintf(outcome, sizeof(outcome), "%d %s", status, why);
	session_linger(s, outcome);
}

static void http_on_accept(struct session *s)
{
	s->proto = PROTO_HTTP;
	http1_parser_init(&s->hs->p.http, HTTP1_REQUEST);
	if (s->fwd != NULL)
		httpfwd_wake(s);
}

/* Proxy-Authorization into hs->user/pass. 0, or -1 when malformed. */
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

/* Credentials: 0 to go on, -1 when the request was answered. */
static int http_check_auth(struct session *s, const char *buf,
			   const struct http1_head *h)
{
	if (http_take_auth(s, buf, h) < 0) {
		if (http_auth_required)
			httpproxy_fail(s, 407,
				       "malformed Proxy-Authorization (Basic "
				       "user:password expected)",
				       HTTP_REALM_HEADER);
		else
			httpproxy_fail(s, 400, "malformed Proxy-Authorization",
				       NULL);
		return -1;
	}
	if (http_auth_required && !s->hs->has_user) {
		httpproxy_fail(s, 407, "this proxy requires credentials",
			       HTTP_REALM_HEADER);
		return -1;
	}
	return 0;
}

static void http_on_read(struct session *s)
{
	struct hs *hs = s->hs;
	const char *buf = (const char *)hs->buf;
	struct http1_head h;
	char why[160];
	int r;

	r = http1_parse(&hs->p.http, buf, hs->len, &h);
	if (r == 0)
		return;
	if (r < 0) {
		snprintf(why, sizeof(why), "malformed request: %s",
			 hs->p.http.why ? hs->p.http.why : "?");
		httpproxy_fail(s, hs->p.http.status, why, NULL);
		return;
	}
	hs->off = (uint16_t)r;
	if (http_check_auth(s, buf, &h) < 0)
		return;
	if (!http1_span_eq(buf, h.method, "CONNECT")) {
		httpfwd_request(s, &h);
		return;
	}
	if (s->fwd != NULL)
		httpfwd_end(s); /* a tunnel now takes the connection */
	if (addr_parse(&hs->target, buf + h.target.off, h.target.len, -1) < 0 ||
	    hs->target.port == 0) {
		httpproxy_fail(s, 400,
			       "bad CONNECT target (host:port expected, with a "
			       "valid host name)",
			       NULL);
		return;
	}
	session_request(s);
}

/* "proxy socks5://user@a:1080" for hop i of the session's chain. */
static void http_hop_text(const struct session *s, size_t i, char *buf,
			  size_t cap)
{
	const struct hs *hs = s->hs;

	if (hs == NULL || i >= hs->nhops ||
	    proxyuri_format(&hs->hops[i], buf, cap) < 0)
		snprintf(buf, cap, "?");
}

/* The address the dial was about: the first hop as connected (or, before
 * that, as named). */
static void http_peer_text(const struct session *s,
			   const struct dial_result *r, char *buf, size_t cap)
{
	const struct hs *hs = s->hs;
	const struct netaddr *first = NULL;

	if (r->peer != NULL && addr_format_sockaddr(r->peer, buf, cap) > 0)
		return;
	if (hs != NULL)
		first = hs->nhops > 0 ? &hs->hops[0].addr : &hs->target;
	if (first == NULL || addr_format(first, buf, cap) < 0)
		snprintf(buf, cap, "?");
}

static int http_connect_reason(const struct session *s,
			       const struct dial_result *r, char *why,
			       size_t cap)
{
	char peer[ADDR_STRLEN + 16];
	const char *via = s->hs != NULL && s->hs->nhops > 0 ? "proxy " : "";

	http_peer_text(s, r, peer, sizeof(peer));
	switch (r->sys_errno) {
	case ECONNREFUSED:
		snprintf(why, cap, "connection refused by %s%s", via, peer);
		break;
	case ETIMEDOUT:
		snprintf(why, cap, "connection to %s%s timed out", via, peer);
		break;
	case ENETUNREACH:
		snprintf(why, cap, "network unreachable for %s%s", via, peer);
		break;
	case EHOSTUNREACH:
		snprintf(why, cap, "host unreachable: %s%s", via, peer);
		break;
	default:
		snprintf(why, cap, "cannot connect to %s%s: %s", via, peer,
			 strerror(r->sys_errno));
	}
	return 502;
}

static int http_blocked_reason(const struct session *s,
			       const struct dial_result *r, char *why,
			       size_t cap)
{
	char peer[ADDR_STRLEN];
	enum addr_class c;

	http_peer_text(s, r, peer, sizeof(peer));
	if (r->self_dial) {
		snprintf(why, cap,
			 "refused to connect to %s: this daemon's own "
			 "listener or API (--allow-self-dial)",
			 peer);
		return 403;
	}
	c = r->peer != NULL ? addr_classify(r->peer) : ADDR_CLASS_UNKNOWN;
	if (c == ADDR_CLASS_UNKNOWN)
		snprintf(why, cap, "refused to connect to %s: not a routable "
				   "address",
			 peer);
	else
		snprintf(why, cap, "blocked by --block-outbound (%s)",
			 addr_class_name(c));
	return 403;
}

int httpproxy_reason(const struct session *s, const struct dial_result *r,
		     char *why, size_t cap)
{
	char hop[CONF_PROXY_MAX > 600 ? 600 : CONF_PROXY_MAX];
	char name[ADDR_STRLEN];
	const struct hs *hs = s->hs;

	switch (r->err) {
	case DIAL_ERR_RESOLVE:
		if (hs == NULL ||
		    addr_format_host(hs->nhops > 0 ? &hs->hops[0].addr
						   : &hs->target,
				     name, sizeof(name)) < 0)
			snprintf(name, sizeof(name), "?");
		snprintf(why, cap, "name resolution failed for %s", name);
		return 502;
	case DIAL_ERR_CONNECT:
		return http_connect_reason(s, r, why, cap);
	case DIAL_ERR_BLOCKED:
		return http_blocked_reason(s, r, why, cap);
	case DIAL_ERR_PROXY_AUTH:
	case DIAL_ERR_PROXY_REFUSED:
	case DIAL_ERR_PROXY_REJECTED:
	case DIAL_ERR_PROXY_PROTO:
	case DIAL_ERR_EOF:
		http_hop_text(s, r->hop, hop, sizeof(hop));
		snprintf(why, cap, "proxy %s %s", hop,
			 r->err == DIAL_ERR_PROXY_AUTH ? "refused our credentials"
			 : r->err == DIAL_ERR_PROXY_REFUSED
				 ? "could not connect onward"
			 : r->err == DIAL_ERR_PROXY_REJECTED
				 ? "refused the request"
			 : r->err == DIAL_ERR_EOF
				 ? "closed the connection"
				 : "broke its protocol");
		return 502;
	case DIAL_ERR_TIMEOUT:
		snprintf(why, cap, "upstream did not answer within %g s",
			 http_timeout_s);
		return 504;
	case DIAL_ERR_RULESET_REJECT:
		if (http_auth_required) {
			snprintf(why, cap, "credentials refused by the ruleset");
			return 407;
		}
		snprintf(why, cap, "refused by the ruleset");
		return 403;
	case DIAL_ERR_RULESET_ERROR:
		snprintf(why, cap, "refused: the ruleset failed on this "
				   "request (see the daemon's log)");
		return 403;
	case DIAL_ERR_RULESET_DOWN:
		snprintf(why, cap, "the ruleset is unavailable; try again");
		return 503;
	case DIAL_ERR_SYSTEM:
		snprintf(why, cap, "local error: %s", strerror(r->sys_errno));
		return 500;
	default:
		snprintf(why, cap, "%s", dial_strerror(r->err));
		return 502;
	}
}

static int http_on_dialed(struct session *s, const struct dial_result *r)
{
	static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	char why[400];
	int status;

	if (r->err != DIAL_OK) {
		status = httpproxy_reason(s, r, why, sizeof(why));
		httpproxy_fail(s, status, why,
			       status == 407 ? HTTP_REALM_HEADER : NULL);
		return -1;
	}
	if (s->fwd != NULL)
		return httpfwd_dialed(s);
	return session_reply(s, ok, sizeof(ok) - 1);
}

static void http_on_timeout(struct session *s)
{
	char why[160];

	switch (s->state) {
	case SS_HANDSHAKE:
		if (s->hs->len == 0)
			return; /* nothing asked: close without a word */
		snprintf(why, sizeof(why),
			 "the request did not arrive whole within %g s",
			 http_timeout_s);
		httpproxy_fail(s, 408, why, NULL);
		return;
	case SS_ROUTE:
		snprintf(why, sizeof(why),
			 "no routing decision within %g s (the ruleset is "
			 "slow)",
			 http_timeout_s);
		httpproxy_fail(s, 504, why, NULL);
		return;
	case SS_EXCHANGE:
		httpfwd_timeout(s);
		return;
	default:
		snprintf(why, sizeof(why),
			 "upstream did not answer within %g s", http_timeout_s);
		httpproxy_fail(s, 504, why, NULL);
	}
}

static void http_log(struct session *s, const char *outcome)
{
	if (s->fwd != NULL && httpfwd_log(s, outcome))
		return;
	session_log_line(s, outcome);
}

const struct sess_driver http_driver = {
	.bufsize = HTTP1_MAX_HEAD + 1024,
	.on_accept = http_on_accept,
	.on_read = http_on_read,
	.on_dialed = http_on_dialed,
	.on_timeout = http_on_timeout,
	.before_dial = httpfwd_before_dial,
	.on_event = httpfwd_on_event,
	.log = http_log,
	.on_close = httpfwd_on_close,
	.on_drain = httpfwd_on_drain,
};
