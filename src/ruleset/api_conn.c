/* api_conn: the REST API's HTTP/1.1 transport.
 *
 * A connection reads a request head with the shared strict parser, has
 * api_access.c check who may ask (allowlist at accept; Origin, Host and
 * bearer token on the head, before any body is read), reads the body (Content-Length or
 * chunked, at most 4 MiB, and at most 4 MiB once inflated), hands the
 * request to the router and answers in order: pipelined requests wait
 * their turn. Deadlines: a request must arrive whole within --api-timeout;
 * an idle keep-alive connection closes after --api-idle; at most
 * --api-max-conns connections (more get a 503).
 *
 * Unauthenticated clients cannot hold the slots an admin needs: the first
 * request's head must arrive within --api-head-timeout of the accept (a
 * connection whose head passed the credentials check is "authed" and gets
 * the ordinary deadlines), and api_access.c decides whether a client gets
 * a slot at all (the reserved slots; once slots run short, the cap per
 * address).
 *
 * Over TLS (--api-tls-cert) the connection's bytes pass through tlsconn.c:
 * the handshake comes first, within the first head's deadline and in a
 * slot like any connection, so a slow handshake holds nothing longer than
 * a slow head would; a client certificate matching
 * --api-tls-readonly-subject makes the connection read-only. Answers are
 * encrypted as they are sent; close_notify goes before a close. */
#include "ruleset/api_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "common/addr.h"
#include "common/growbuf.h"
#include "common/http1.h"
#include "common/log.h"
#include "ruleset/api.h"
#include "ruleset/api_access.h"
#include "ruleset/api_routes.h"
#include "ruleset/api_tls.h"
#include "ruleset/ruleset_main.h"
#include "ruleset/zbody.h"

#define API_IN_MAX (API_BODY_MAX + 2 * HTTP1_MAX_HEAD) /* + pipelined */
#define API_OUT_MAX (8u << 20) /* stop reading while this much waits */
/* what may be queued: that, and one more answer with its head */
#define API_OUT_CAP (API_OUT_MAX + API_TEXT_MAX + 65536)

enum conn_state { C_HEAD, C_BODY, C_BUSY, C_CLOSING };

struct api_conn {
	struct api_conn *prev, *next;
	int fd;
	struct event ev, timer;
	short evflags;
	uint32_t nreq;
	enum conn_state state;
	struct sockaddr_storage peer;
	char host_here[INET6_ADDRSTRLEN + 8]; /* "addr:port" it came to */
	/* input */
	char *inbuf;      /* the allocation, incap bytes */
	char *in;         /* where the unconsumed input starts in it */
	size_t inlen, incap; /* inlen: unconsumed bytes from in */
	struct http1_parser parser;
	size_t head_len; /* of the request being read */
	int64_t clen;    /* Content-Length, or -1 */
	bool chunked;
	struct http1_chunked ck;
	size_t body_in;  /* input bytes the body took */
	char *body;      /* the body (chunked: decoded) */
	size_t body_len;
	struct api_req *req; /* being answered */
	char encoding[32];
	bool close_after; /* close once the output is written */
	bool eof;         /* the client finished sending */
	bool deadline;    /* the timer is the request's deadline */
	bool dispatching; /* inside conn_process: replies do not re-enter */
	bool stalled;     /* requests wait until the output drains */
	bool authed;      /* a request passed the credentials check */
	bool head_grace;  /* the head deadline passed with bytes unread */
	struct tlsconn *tls; /* over TLS: the session; NULL: plain HTTP */
	bool tls_readonly;   /* its client certificate is read-only */
	bool tls_more;       /* decrypted input waits for room in inbuf */
	struct api_access_key key; /* the client, for the per-address cap */
	struct growbuf out; /* answers queued */
	size_t out_off;     /* ... of which written */
	/* socket-free connections (fd < 0): output goes to sink; gone is
	 * set when the connection is closed (and freed) */
	api_sink_fn sink;
	void *sink_ud;
	bool *gone;
};

static struct {
	struct event_base *base;
	struct event *lev;
	struct api_conn *conns;
	struct timeval req_tv, idle_tv;
	struct timeval first_tv; /* the first head: --api-head-timeout, or
				  * --api-timeout if that is shorter */
	bool tls;                /* --api-tls-cert: every connection */
	bool tls_client_certs;   /* --api-tls-client-ca */
	char tls_ro_subject[CONF_PATH_MAX]; /* --api-tls-readonly-subject */
	struct api_counters ctr;
} api_server;

const struct api_counters *api_counters(void)
{
	return &api_server.ctr;
}

/* ---- connection life ---- */

static void conn_cb(evutil_socket_t fd, short what, void *arg);
static void api_peer_name(const struct sockaddr_storage *ss, char *buf,
			  size_t cap);
static void conn_process(struct api_conn *c);
static void conn_consume(struct api_conn *c);
static void conn_drop_req(struct api_conn *c);

static void conn_watch(struct api_conn *c, short flags)
{
	if (c->evflags == flags)
		return;
	if (c->fd < 0) {
		c->evflags = flags; /* what a socket would be watched for */
		return;
	}
	if (c->evflags != 0)
		event_del(&c->ev);
	c->evflags = 0;
	if (flags == 0)
		return;
	event_assign(&c->ev, api_server.base, c->fd, flags | EV_PERSIST,
		     conn_cb, c);
	if (event_add(&c->ev, NULL) == 0)
		c->evflags = flags;
}

static void conn_close(struct api_conn *c)
{
	if (c->req != NULL && c->state == C_BUSY) {
		/* a handler has it: its late reply is dropped (and frees it) */
		c->req->conn = NULL;
		c->req = NULL;
	}
	conn_drop_req(c); /* a request still being read is ours to free */
	conn_watch(c, 0);
	evtimer_del(&c->timer);
	tlsconn_free(c->tls);
	if (c->fd >= 0)
		close(c->fd);
	if (c->gone != NULL)
		*c->gone = true;
	if (c->sink != NULL)
		c->sink(c->sink_ud, NULL, 0); /* the end */
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		api_server.conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	api_server.ctr.conns--;
	free(c->inbuf);
	growbuf_free(&c->out);
	free(c);
}

static void conn_timer(struct api_conn *c, const struct timeval *tv)
{
	evtimer_del(&c->timer);
	c->deadline = false;
	if (tv != NULL)
		evtimer_add(&c->timer, tv);
}

/* A request has begun: it must be whole within --api-timeout of its
 * first byte. Armed once; more bytes do not push it back (a client
 * sending a byte at a time is cut off all the same). */
static void conn_deadline(struct api_conn *c)
{
	if (c->deadline)
		return;
	conn_timer(c, &api_server.req_tv);
	c->deadline = true;
}

/* Between requests: the keep-alive idle timeout. */
static void conn_wait_next(struct api_conn *c)
{
	if (c->inlen > 0)
		conn_deadline(c);
	else if (!c->deadline)
		conn_timer(c, &api_server.idle_tv);
}

static void conn_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct api_conn *c = arg;
	char b;

	(void)fd;
	(void)what;
	/* slow or idle clients are cut off; a request being answered is
	 * bounded by its handler, not here */
	if (c->state == C_BUSY)
		return;
	if (!c->authed && !c->head_grace && c->fd >= 0 &&
	    recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0) {
		/* bytes came before the deadline but are not read yet (this
		 * process was busy): read them first, once */
		static const struct timeval now = { 0, 0 };

		c->head_grace = true;
		evtimer_add(&c->timer, &now);
		return;
	}
	LOGD("api: %s, closing",
	     !c->authed	      ? "no request head in time"
	     : c->inlen > 0 ? "request deadline passed"
			    : "idle");
	conn_close(c);
}

/* ---- TLS ---- */

/* Is ciphertext waiting for the socket? */
static bool conn_tls_out(struct api_conn *c)
{
	const char *p;

	return c->tls != NULL && tlsconn_out_peek(c->tls, &p) > 0;
}

/* Before a close: over TLS, close_notify goes out first. true when the
 * socket may be closed now (all sent, or it broke). */
static bool conn_tls_closed(struct api_conn *c)
{
	if (c->tls == NULL)
		return true;
	tlsconn_close(c->tls);
	return tlsconn_send_fd(c->tls, c->fd) != 0;
}

/* Over TLS: answers through the library, its ciphertext to the socket.
 * 0, or -1 when the connection broke. */
static int conn_send_tls(struct api_conn *c)
{
	for (;;) {
		int sent = tlsconn_send_fd(c->tls, c->fd);
		ssize_t n;

		if (sent < 0)
			return -1;
		if (sent == 0 || c->out_off == c->out.len ||
		    !tlsconn_established(c->tls))
			return 0; /* the socket is full, or all is out */
		n = tlsconn_write(c->tls, c->out.p + c->out_off,
				  c->out.len - c->out_off);
		if (n == TLSCONN_ERR || (n == TLSCONN_AGAIN && !conn_tls_out(c)))
			return -1;
		if (n > 0) {
			c->out_off += (size_t)n;
			api_server.ctr.tx += (uint64_t)n;
		}
	}
}

/* Answers to the socket (or the sink), through TLS when it is on. 0, or
 * -1 when the connection broke. */
static int conn_send(struct api_conn *c)
{
	if (c->tls != NULL)
		return conn_send_tls(c);
	while (c->out_off < c->out.len) {
		ssize_t n = (ssize_t)(c->out.len - c->out_off);

		if (c->fd >= 0)
			n = send(c->fd, c->out.p + c->out_off, (size_t)n,
				 MSG_NOSIGNAL);
		else
			c->sink(c->sink_ud, c->out.p + c->out_off, (size_t)n);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		c->out_off += (size_t)n;
		api_server.ctr.tx += (uint64_t)n;
	}
	return 0;
}

/* Write what is queued, then decide what to watch (or close). 0, or -1
 * when the connection was closed (and freed). */
static int conn_flush(struct api_conn *c)
{
	short want = 0;

	if (conn_send(c) < 0) {
		conn_close(c);
		return -1;
	}
	if (c->out_off == c->out.len) {
		c->out_off = c->out.len = 0;
		/* the last answer is out (a request that asked for the close
		 * may still be arriving: C_HEAD, C_BODY or C_BUSY) */
		if (c->state == C_CLOSING && conn_tls_closed(c)) {
			conn_close(c);
			return -1;
		}
	}
	if (c->out.len > c->out_off || conn_tls_out(c))
		want |= EV_WRITE;
	if ((c->state == C_HEAD || c->state == C_BODY ||
	     (c->state == C_BUSY && !c->close_after)) &&
	    !c->eof && c->out.len - c->out_off < API_OUT_MAX &&
	    c->inlen < API_IN_MAX)
		want |= EV_READ;
	conn_watch(c, want);
	if ((want & EV_READ) && c->tls_more && c->evflags != 0) {
		/* decrypted input is buffered where the socket's readiness
		 * does not show it: read it now */
		c->tls_more = false;
		event_active(&c->ev, EV_READ, 0);
	}
	return 0;
}

static const char *http_date(char *buf, size_t cap)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	return buf;
}

/* Queue one response. Every response carries Content-Length. */
static void conn_respond(struct api_conn *c, int status, const char *ctype,
			 const void *body, size_t len, const char *extra,
			 bool close)
{
	char head[1024], date[64];
	int n;

	if (close)
		c->close_after = true;
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: %s\r\n"
		     "Cache-Control: no-store\r\n"
		     "%s%s%s%sContent-Length: %zu\r\n\r\n",
		     status, http1_reason(status),
		     http_date(date, sizeof(date)),
		     c->close_after ? "close" : "keep-alive",
		     ctype ? "Content-Type: " : "", ctype ? ctype : "",
		     ctype ? "\r\n" : "", extra ? extra : "", len);
	if (n < 0 || (size_t)n >= sizeof(head) ||
	    growbuf_add(&c->out, head, (size_t)n) < 0 ||
	    growbuf_add(&c->out, body, len) < 0) {
		c->close_after = true;
		return;
	}
	api_server.ctr
		.by_status[status >= 100 && status < 600 ? status / 100 - 1
							 : 5]++;
	if (status >= 200 && status < 400)
		api_server.ctr.success++;
}

/* An error answered by the transport itself. close: the framing cannot
 * be trusted, nothing after this request is read. */
static void conn_error(struct api_conn *c, int status, const char *extra,
		       bool close)
{
	char body[64];
	int n = snprintf(body, sizeof(body), "%d %s\n", status,
			 http1_reason(status));

	api_server.ctr.requests++;
	conn_respond(c, status, "text/plain; charset=utf-8", body, (size_t)n,
		     extra, close);
	if (close || c->close_after)
		c->state = C_CLOSING; /* or the request asked for it */
}

/* A request api_access refused: 401 with the challenge, 403 saying why;
 * the connection closes. */
static void conn_refuse(struct api_conn *c, int status, const char *why)
{
	char body[256];
	int n;

	if (why == NULL) {
		conn_error(c, status,
			   status == 401 ? "WWW-Authenticate: Bearer "
					   "realm=\"neosocksd\"\r\n"
					 : NULL,
			   true);
		return;
	}
	n = snprintf(body, sizeof(body), "%d %s: %s\n", status,
		     http1_reason(status), why);
	if (n < 0 || (size_t)n >= sizeof(body))
		n = (int)sizeof(body) - 1;
	api_server.ctr.requests++;
	conn_respond(c, status, "text/plain; charset=utf-8", body, (size_t)n,
		     NULL, true);
	c->state = C_CLOSING;
}

/* These take the request body as their input: one must be framed. */
static bool api_needs_body(const char *method, const char *path)
{
	return strcmp(method, "POST") == 0 &&
	       (strcmp(path, "/ruleset/invoke") == 0 ||
		strcmp(path, "/ruleset/update") == 0 ||
		strcmp(path, "/ruleset/rpcall") == 0);
}

/* ---- requests ---- */

static void conn_span(const char *buf, struct http1_span s, char *out,
		      size_t cap)
{
	size_t n = s.len < cap - 1 ? s.len : cap - 1;

	memcpy(out, buf + s.off, n);
	out[n] = '\0';
}

static void conn_req_fields(struct api_conn *c, struct api_req *r,
			    const struct http1_head *h)
{
	const struct http1_span *v;
	char target[sizeof(r->path) + sizeof(r->query) + 2];
	char *q;

	conn_span(c->in, h->method, r->method, sizeof(r->method));
	conn_span(c->in, h->target, target, sizeof(target));
	q = strchr(target, '?');
	if (q != NULL) {
		*q++ = '\0';
		snprintf(r->query, sizeof(r->query), "%.*s",
			 (int)sizeof(r->query) - 1, q);
	}
	snprintf(r->path, sizeof(r->path), "%.*s", (int)sizeof(r->path) - 1,
		 target);
	r->keepalive = h->version_minor >= 1 && !(h->conn & HTTP1_CONN_CLOSE);
	v = http1_known_value(h, HTTP1_H_ACCEPT_ENCODING);
	r->accept_deflate = v != NULL && (http1_list_has(c->in, *v, "deflate") ||
					  http1_list_has(c->in, *v, "*"));
	v = http1_known_value(h, HTTP1_H_CONTENT_TYPE);
	if (v != NULL)
		conn_span(c->in, *v, r->content_type, sizeof(r->content_type));
	c->encoding[0] = '\0';
	v = http1_known_value(h, HTTP1_H_CONTENT_ENCODING);
	if (v != NULL)
		conn_span(c->in, *v, c->encoding, sizeof(c->encoding));
}

/* The head is whole: set the request up, check access, learn the body's
 * framing. 0 go on; -1 answered and closing; -2 answered, the head is
 * consumed and the next request may follow. */
static int conn_head(struct api_conn *c, const struct http1_head *h)
{
	struct api_access_peer who = { c->peer.ss_family == AF_UNIX,
				       c->host_here, c->tls_readonly,
				       c->tls != NULL };
	struct api_req *r;
	const struct http1_span *v;
	const char *why;
	int level, status;

	api_server.ctr.rx += c->head_len;
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		conn_error(c, 500, NULL, true);
		return -1;
	}
	c->req = r;
	r->conn = c;
	r->seq = ++c->nreq;
	{
		/* the path and the query must fit, not be cut */
		const char *t = c->in + h->target.off;
		const char *q = memchr(t, '?', h->target.len);
		size_t plen = q ? (size_t)(q - t) : h->target.len;
		size_t qlen = q ? h->target.len - plen - 1 : 0;

		if (plen >= sizeof(r->path) || qlen >= sizeof(r->query)) {
			conn_error(c, 414, NULL, true);
			return -1;
		}
	}
	conn_req_fields(c, r, h);
	if (!r->keepalive)
		c->close_after = true; /* HTTP/1.0 and Connection: close */
	if (r->path[0] != '/' || strstr(r->path, "//") != NULL) {
		conn_error(c, 400, NULL, true);
		return -1;
	}
	status = api_access_check(c->in, h, &who, r->method, r->path, &level,
				  &why);
	if (status != 0) {
		conn_refuse(c, status, why);
		return -1;
	}
	if (!c->authed) {
		/* the head deadline is over; the rest of this request has
		 * the ordinary one */
		c->authed = true;
		conn_timer(c, &api_server.req_tv);
		c->deadline = true;
	}
	r->level = level;
	c->clen = h->content_length;
	c->chunked = h->chunked;
	if (c->clen > (int64_t)API_BODY_MAX) {
		conn_error(c, 413, NULL, true);
		return -1;
	}
	if (c->clen < 0 && !c->chunked && api_needs_body(r->method, r->path)) {
		/* no body at all is well framed: answer and go on */
		conn_error(c, 411, NULL, false);
		c->body_in = 0;
		conn_consume(c);
		return -2;
	}
	v = http1_known_value(h, HTTP1_H_EXPECT);
	if (v != NULL) {
		if (!http1_span_eq_ci(c->in, *v, "100-continue")) {
			conn_error(c, 417, NULL, true);
			return -1;
		}
		if (c->clen > 0 || c->chunked) {
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
			(void)growbuf_add(&c->out, cont, sizeof(cont) - 1);
		}
	}
	if (c->chunked)
		http1_chunked_init(&c->ck);
	c->body_in = 0;
	c->body_len = 0;
	return 0;
}

/* Is the body here? 1 yes, 0 not yet, -1 answered an error. */
static int conn_body(struct api_conn *c)
{
	const char *in = c->in + c->head_len;
	size_t avail = c->inlen - c->head_len;
	long n;

	if (!c->chunked) {
		size_t want = c->clen > 0 ? (size_t)c->clen : 0;

		if (avail < want)
			return 0;
		c->body = malloc(want + 1);
		if (c->body == NULL) {
			conn_error(c, 500, NULL, true);
			return -1;
		}
		if (want > 0)
			memcpy(c->body, in, want);
		c->body[want] = '\0';
		c->body_len = want;
		c->body_in = want;
		return 1;
	}
	if (c->body == NULL) {
		c->body = malloc(API_BODY_MAX + 1);
		if (c->body == NULL) {
			conn_error(c, 500, NULL, true);
			return -1;
		}
	}
	n = http1_chunked_decode(&c->ck, in + c->body_in, avail - c->body_in,
				 c->body, API_BODY_MAX, &c->body_len);
	if (n < 0) {
		conn_error(c, 400, NULL, true);
		return -1;
	}
	c->body_in += (size_t)n;
	if (!c->ck.done) {
		if (c->body_len == API_BODY_MAX) {
			conn_error(c, 413, NULL, true);
			return -1;
		}
		return 0;
	}
	c->body[c->body_len] = '\0';
	return 1;
}

/* Undo Content-Encoding (deflate = zlib, gzip), bounded like any body. */
static int conn_decode(struct api_conn *c)
{
	char *out;
	size_t outlen;
	int gz, r;

	if (c->encoding[0] == '\0' || strcasecmp(c->encoding, "identity") == 0)
		return 0;
	if (strcasecmp(c->encoding, "deflate") == 0) {
		gz = 0;
	} else if (strcasecmp(c->encoding, "gzip") == 0) {
		gz = 1;
	} else {
		conn_error(c, 415, NULL, false);
		return -1;
	}
	r = zbody_inflate(c->body, c->body_len, gz, API_BODY_MAX, &out,
			  &outlen);
	if (r != ZBODY_OK) {
		conn_error(c, r == ZBODY_ELIMIT ? 413 : 400, NULL, false);
		return -1;
	}
	free(c->body);
	c->body = out;
	c->body_len = outlen;
	return 0;
}

/* Drop the request's bytes from the input; the next one may follow. */
static void conn_consume(struct api_conn *c)
{
	size_t used = c->head_len + c->body_in;

	/* no move here: with many pipelined requests buffered, moving the
	 * rest after each one would cost quadratic time */
	c->in += used;
	c->inlen -= used;
	if (c->inlen == 0)
		c->in = c->inbuf;
	c->head_len = 0;
	c->body_in = 0;
	http1_parser_init(&c->parser, HTTP1_REQUEST);
	conn_timer(c, NULL); /* it arrived whole: its deadline is over */
}

static void conn_drop_req(struct api_conn *c)
{
	if (c->req != NULL) {
		free(c->req->body);
		free(c->req);
		c->req = NULL;
	}
	free(c->body);
	c->body = NULL;
}

/* Nothing more will arrive and what is buffered is incomplete. */
static bool conn_stop_waiting(struct api_conn *c)
{
	if (!c->eof)
		return false;
	c->close_after = true;
	c->state = C_CLOSING;
	return true;
}

/* Parse and dispatch while whole requests are buffered. A handler that
 * answers at once does not re-enter (pipelined requests are a loop here,
 * not a recursion), and no request is taken while API_OUT_MAX of answers
 * wait for the client to read them. */
static void conn_process(struct api_conn *c)
{
	while (c->state == C_HEAD || c->state == C_BODY) {
		int r;

		if (c->out.len - c->out_off >= API_OUT_MAX) {
			if (conn_flush(c) < 0)
				return;
			if (c->out.len - c->out_off < API_OUT_MAX)
				continue; /* it was written */
			/* resumed by conn_cb once written (conn_flush
			 * watches for it); a client that does not read is
			 * idle */
			c->stalled = true;
			conn_timer(c, &api_server.idle_tv);
			return;
		}

		if (c->state == C_HEAD) {
			struct http1_head h;

			r = http1_parse(&c->parser, c->in, c->inlen, &h);
			if (r == 0) {
				if (!conn_stop_waiting(c))
					conn_wait_next(c);
				break;
			}
			if (r < 0) {
				conn_error(c, c->parser.status, NULL, true);
				break;
			}
			c->head_len = (size_t)r;
			r = conn_head(c, &h);
			if (r < 0) {
				conn_drop_req(c);
				if (r == -2)
					continue;
				break;
			}
			c->state = C_BODY;
		}
		r = conn_body(c);
		if (r == 0) {
			if (!conn_stop_waiting(c))
				conn_deadline(c);
			break;
		}
		if (r < 0) {
			conn_drop_req(c);
			break;
		}
		api_server.ctr.rx += c->body_in;
		api_server.ctr.requests++;
		conn_consume(c);
		c->state = C_HEAD;
		if (conn_decode(c) < 0) {
			api_server.ctr.requests--; /* counted by conn_error */
			conn_drop_req(c);
			continue;
		}
		conn_timer(c, NULL);
		c->req->body = c->body;
		c->req->body_len = c->body_len;
		c->body = NULL;
		c->state = C_BUSY;
		c->dispatching = true;
		api_dispatch(c->req); /* may answer at once */
		c->dispatching = false;
		if (c->state == C_BUSY)
			return; /* answered later; api_reply goes on */
	}
	(void)conn_flush(c);
}

bool api_req_alive(const struct api_req *req)
{
	return req->conn != NULL;
}

void api_reply(struct api_req *req, int status, const char *ctype,
	       const void *body, size_t len, const char *extra_headers)
{
	struct api_conn *c = req->conn;

	if (c == NULL) {
		/* the client left while we worked */
		free(req->body);
		free(req);
		return;
	}
	conn_respond(c, status, ctype, body, len, extra_headers, false);
	conn_drop_req(c);
	c->state = c->close_after ? C_CLOSING : C_HEAD;
	if (c->dispatching)
		return; /* answered inside conn_process: its loop goes on */
	conn_process(c); /* pipelined requests, then writing */
}

void api_reply_text(struct api_req *req, int status, const char *ctype,
		    const char *text, size_t len, bool compress)
{
	char *z = NULL;
	size_t zlen = 0;

	if (compress && req->accept_deflate && len > 0 &&
	    zbody_deflate(text, len, &z, &zlen) == ZBODY_OK) {
		api_reply(req, status, ctype, z, zlen,
			  "Content-Encoding: deflate\r\n"
			  "X-Content-Type-Options: nosniff\r\n");
		free(z);
		return;
	}
	free(z);
	api_reply(req, status, ctype, text, len,
		  ctype ? "X-Content-Type-Options: nosniff\r\n" : NULL);
}

/* ---- I/O ---- */

/* Room for input after what is buffered: the free bytes; 0 when the
 * buffer is at its cap (the rest waits for processing); -1 when out of
 * memory. */
static ssize_t conn_room(struct api_conn *c)
{
	if ((size_t)(c->in - c->inbuf) + c->inlen == c->incap &&
	    c->in != c->inbuf) {
		/* consumed bytes at the front: reuse that room (offsets into
		 * the input are relative to in) */
		memmove(c->inbuf, c->in, c->inlen);
		c->in = c->inbuf;
	}
	if (c->inlen == c->incap) {
		size_t cap = c->incap ? c->incap * 2 : 16384;
		char *np;

		if (c->incap >= API_IN_MAX)
			return 0;
		if (cap > API_IN_MAX)
			cap = API_IN_MAX;
		np = realloc(c->inbuf, cap);
		if (np == NULL)
			return -1;
		c->inbuf = c->in = np;
		c->incap = cap;
	}
	return (ssize_t)(c->incap - (size_t)(c->in - c->inbuf) - c->inlen);
}

/* The client is done sending: answer what it sent. 0, or -1 when that
 * closed the connection. */
static int conn_eof(struct api_conn *c)
{
	c->eof = true;
	if (c->inlen == 0 && c->state == C_HEAD && c->out.len == c->out_off) {
		conn_close(c);
		return -1;
	}
	return 0;
}

static void conn_input(struct api_conn *c)
{
	if (c->state == C_HEAD || c->state == C_BODY)
		conn_process(c);
	else
		(void)conn_flush(c);
}

/* The TLS handshake, as bytes come. 1 done, 0 waiting (the connection
 * watches for what it needs), -1 failed (closed and freed). */
static int conn_tls_handshake(struct api_conn *c)
{
	char who[ADDR_STRLEN + 8], subject[256];
	int r = tlsconn_handshake(c->tls);

	if (r == TLSCONN_AGAIN)
		return conn_flush(c) < 0 ? -1 : 0;
	api_peer_name(&c->peer, who, sizeof(who));
	if (r == 1) {
		tlsconn_peer_subject(c->tls, subject, sizeof(subject));
		c->tls_readonly =
			api_server.tls_client_certs &&
			api_tls_level(subject, api_server.tls_ro_subject) ==
				API_READ;
		LOGD("api: %s: %s%s%s%s", who,
		     SSL_get_version(tlsconn_ssl(c->tls)),
		     subject[0] ? ", client " : "", subject,
		     c->tls_readonly ? " (read-only)" : "");
		return 1;
	}
	if (r == TLSCONN_EOF) {
		LOGD("api: %s left during the TLS handshake", who);
	} else if (tlsconn_plain_http(c->tls)) {
		/* say it in the client's language, once, then close */
		static const char plain[] =
			"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
			"Cache-Control: no-store\r\n"
			"Content-Type: text/plain; charset=utf-8\r\n"
			"Content-Length: 39\r\n\r\n"
			"this API speaks TLS: use https:// URLs\n";

		LOG_RL(LOGL_WARN, 10, "api: %s: plain HTTP on the TLS API",
		       who);
		(void)send(c->fd, plain, sizeof(plain) - 1, MSG_NOSIGNAL);
	} else {
		LOG_RL(LOGL_WARN, 10, "api: %s: TLS handshake failed: %s", who,
		       tlsconn_error(c->tls));
		(void)tlsconn_send_fd(c->tls, c->fd); /* the alert */
	}
	conn_close(c);
	return -1;
}

/* Over TLS: ciphertext in, the handshake, then the plaintext into the
 * input buffer. */
static void conn_read_tls(struct api_conn *c)
{
	ssize_t n = tlsconn_recv_fd(c->tls, c->fd);

	if (n < 0 && errno != EAGAIN && errno != EINTR && errno != ENOBUFS) {
		conn_close(c);
		return;
	}
	if (!tlsconn_established(c->tls) && conn_tls_handshake(c) <= 0)
		return;
	for (;;) {
		ssize_t space = conn_room(c), r;

		if (space < 0) {
			conn_close(c);
			return;
		}
		if (space == 0) {
			c->tls_more = true; /* read again once there is room */
			break;
		}
		r = tlsconn_read(c->tls, c->in + c->inlen, (size_t)space);
		if (r > 0) {
			c->inlen += (size_t)r;
			continue;
		}
		if (r == TLSCONN_AGAIN)
			break;
		if (r == TLSCONN_EOF) {
			if (conn_eof(c) < 0)
				return;
			break;
		}
		LOGD("api: TLS: %s, closing", tlsconn_error(c->tls));
		conn_close(c);
		return;
	}
	conn_input(c);
}

static void conn_read(struct api_conn *c)
{
	if (c->tls != NULL) {
		conn_read_tls(c);
		return;
	}
	for (;;) {
		ssize_t space = conn_room(c), n;

		if (space < 0) {
			conn_close(c);
			return;
		}
		if (space == 0)
			break; /* the rest waits for processing */
		n = recv(c->fd, c->in + c->inlen, (size_t)space, 0);
		if (n == 0) {
			if (conn_eof(c) < 0)
				return;
			break;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			conn_close(c);
			return;
		}
		c->inlen += (size_t)n;
		if (n < space)
			break; /* a short read: drained for now */
	}
	conn_input(c);
}

static void conn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct api_conn *c = arg;

	(void)fd;
	if (what & EV_READ) {
		conn_read(c);
		return; /* c may be gone */
	}
	if (what & EV_WRITE) {
		if (conn_flush(c) < 0)
			return;
		if (c->stalled && c->out.len - c->out_off < API_OUT_MAX) {
			c->stalled = false;
			conn_process(c); /* the requests that waited */
		}
	}
}

static void conn_host_here(struct api_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char a[INET6_ADDRSTRLEN];

	if (getsockname(c->fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
		snprintf(c->host_here, sizeof(c->host_here), "%s:%u", a,
			 ntohs(in->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
		snprintf(c->host_here, sizeof(c->host_here), "[%s]:%u", a,
			 ntohs(in6->sin6_port));
	}
}

/* The client's address for logs (an IPv4-mapped one as IPv4). */
static void api_peer_name(const struct sockaddr_storage *ss, char *buf,
			  size_t cap)
{
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
	struct sockaddr_in in4;
	const struct sockaddr *sa = (const struct sockaddr *)ss;

	if (ss->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
		memset(&in4, 0, sizeof(in4));
		in4.sin_family = AF_INET;
		in4.sin_port = in6->sin6_port;
		memcpy(&in4.sin_addr, in6->sin6_addr.s6_addr + 12, 4);
		sa = (const struct sockaddr *)&in4;
	}
	if (addr_format_sockaddr(sa, buf, cap) < 0)
		snprintf(buf, cap, "a client");
}

/* 503, Retry-After, and close: the client may come back. Over TLS only
 * the close: an answer would cost a handshake, which is what a flood
 * wants to be spent. */
static void api_busy(int fd)
{
	char busy[256], date[64];
	int n;

	if (api_server.tls) {
		close(fd);
		return;
	}
	n = snprintf(busy, sizeof(busy),
		     "HTTP/1.1 503 Service Unavailable\r\n"
		     "Date: %s\r\nConnection: close\r\n"
		     "Cache-Control: no-store\r\n"
		     "Content-Type: text/plain; charset=utf-8\r\n"
		     "Retry-After: 1\r\n"
		     "Content-Length: 24\r\n\r\n"
		     "503 Service Unavailable\n",
		     http_date(date, sizeof(date)));
	if (n > 0 && (size_t)n < sizeof(busy))
		(void)send(fd, busy, (size_t)n, MSG_NOSIGNAL);
	close(fd);
}

/* Connections open from this client's address (IPv6: its /64). */
static uint32_t api_conns_from(const struct api_access_key *k)
{
	uint32_t n = 0;

	for (const struct api_conn *c = api_server.conns; c != NULL;
	     c = c->next)
		n += api_access_key_eq(&c->key, k);
	return n;
}

/* A connection on fd (or, fd < 0, one whose output goes to sink). */
static struct api_conn *conn_new(int fd, const struct sockaddr_storage *ss,
				 api_sink_fn sink, void *sink_ud)
{
	struct api_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	if (fd >= 0 && api_server.tls) {
		/* the certificate comes before the listener (R_TLS, then
		 * R_LISTENER): without one, nothing is served in plain text */
		SSL_CTX *ctx = api_tls_server();

		c->tls = ctx != NULL ? tlsconn_new(ctx, true, NULL) : NULL;
		if (c->tls == NULL) {
			LOG_RL(LOGL_ERROR, 10, "api: %s",
			       ctx == NULL ? "no TLS certificate"
					   : "out of memory");
			free(c);
			return NULL;
		}
	}
	c->fd = fd;
	c->sink = sink;
	c->sink_ud = sink_ud;
	c->peer = *ss;
	api_access_key_of(ss, &c->key);
	c->out = (struct growbuf)GROWBUF_INIT(API_OUT_CAP);
	if (fd >= 0)
		conn_host_here(c);
	c->state = C_HEAD;
	http1_parser_init(&c->parser, HTTP1_REQUEST);
	evtimer_assign(&c->timer, api_server.base, conn_timeout_cb, c);
	c->next = api_server.conns;
	if (api_server.conns != NULL)
		api_server.conns->prev = c;
	api_server.conns = c;
	api_server.ctr.conns++;
	/* the first request's head must come in time */
	conn_timer(c, &api_server.first_tv);
	c->deadline = true;
	conn_watch(c, EV_READ);
	return c;
}

static void api_accept_one(int fd, const struct sockaddr_storage *ss)
{
	struct api_access_key key;
	const char *why;

	if (!api_access_peer_ok(ss)) {
		LOG_RL(LOGL_WARN, 10, "api: a client not in --api-allow");
		close(fd);
		return;
	}
	api_access_key_of(ss, &key);
	why = api_access_room(api_server.ctr.conns,
			      key.len > 0 ? api_conns_from(&key) : 0, &key,
			      api_access_trusted(ss));
	if (why != NULL) {
		char who[ADDR_STRLEN + 8];

		api_peer_name(ss, who, sizeof(who));
		LOG_RL(LOGL_WARN, 10, "api: %s refused: %s", who, why);
		api_busy(fd);
		return;
	}
	if (ss->ss_family != AF_UNIX) {
		/* answers and TLS records go out whole: a small last
		 * segment (a close_notify after an answer, a handshake
		 * flight) must not wait for the client's delayed ACK */
		int one = 1;

		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				 sizeof(one));
	}
	if (conn_new(fd, ss, NULL, NULL) == NULL)
		close(fd);
}

static void api_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	(void)what;
	(void)arg;
	for (int i = 0; i < 16; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		api_accept_one(fd, &ss);
	}
}

static void api_tv(struct timeval *tv, double s)
{
	tv->tv_sec = (time_t)s;
	tv->tv_usec = (suseconds_t)((s - (double)tv->tv_sec) * 1e6);
}

int api_configure(const struct config *conf)
{
	api_server.base = ruleset_base();
	api_tv(&api_server.req_tv,
	       conf->api_timeout > 0 ? conf->api_timeout : 10.0);
	api_tv(&api_server.idle_tv, conf->api_idle > 0 ? conf->api_idle : 60.0);
	api_tv(&api_server.first_tv,
	       conf->api_head_timeout > 0 &&
			       conf->api_head_timeout < conf->api_timeout
		       ? conf->api_head_timeout
		       : (conf->api_timeout > 0 ? conf->api_timeout : 10.0));
	api_server.tls = conf->api_tls_cert[0] != '\0';
	api_server.tls_client_certs = conf->api_tls_client_ca[0] != '\0';
	snprintf(api_server.tls_ro_subject, sizeof(api_server.tls_ro_subject),
		 "%s", conf->api_tls_ro_subject);
	return api_access_setup(conf);
}

int api_start(int fd, const struct config *conf)
{
	if (api_configure(conf) < 0)
		return -1;
	api_server.lev = event_new(api_server.base, fd, EV_READ | EV_PERSIST,
				   api_accept_cb, NULL);
	if (api_server.lev == NULL || event_add(api_server.lev, NULL) < 0)
		return -1;
	return 0;
}

/* ---- socket-free connections (tests, fuzzing) ---- */

struct api_conn *api_conn_open(const struct sockaddr_storage *peer,
			       api_sink_fn sink, void *ud)
{
	return conn_new(-1, peer, sink, ud);
}

long api_conn_feed(struct api_conn *c, const void *data, size_t len,
		   bool eof)
{
	const char *p = data;
	bool gone = false;
	size_t took = 0;

	/* reset before returning while c lives; c is freed otherwise */
	/* cppcheck-suppress autoVariables */
	c->gone = &gone;
	/* as reads would: only while the connection watches for input */
	while (took < len && (c->evflags & EV_READ)) {
		ssize_t space = conn_room(c);
		size_t k;

		if (space < 0) {
			conn_close(c);
			return -1;
		}
		if (space == 0)
			break;
		k = len - took < (size_t)space ? len - took : (size_t)space;
		memcpy(c->in + c->inlen, p + took, k);
		c->inlen += k;
		took += k;
		conn_input(c);
		if (gone)
			return -1;
	}
	if (eof && took == len && (c->evflags & EV_READ)) {
		if (conn_eof(c) < 0)
			return -1;
		conn_input(c);
		if (gone)
			return -1;
	}
	c->gone = NULL;
	return (long)took;
}

void api_conn_drop(struct api_conn *c)
{
	conn_close(c);
}
