/* httpfwd: the HTTP/1.1 forward proxy's state machine (see httpfwd.h).
 *
 * A request under way is a struct hf_req with two directions:
 *   up    client -> upstream: the rewritten request head, then the body;
 *   down  upstream -> client: response heads (1xx interim ones passed on
 *         to HTTP/1.1 clients), the rewritten final head, then the body.
 * Each direction sends its queued bytes (a head, a chunk header) first,
 * then body bytes: those already read into its input buffer (the
 * client's in the handshake buffer, the upstream's in rin), then straight
 * from socket to socket through the session's relay_dir with a budget
 * that stops at the end of the body (Content-Length, the current chunk),
 * so no byte of the next message is ever read by the relay. Chunk framing
 * is read through the input buffer by http1_chunked_decode() and written
 * anew (extensions and trailers dropped); to an HTTP/1.0 client the body
 * goes without it and the connection closes at its end.
 *
 * The directions run concurrently: a client waiting for 100 Continue gets
 * it (or a final answer) while its body has not been sent. When the
 * answer ends before the request body, the client connection closes after
 * it. The handshake deadline (-t) covers the request head, the decision,
 * the dial, and, once the request is sent whole, the wait for the answer
 * (504); bodies have no deadline, like tunnels. */
#include "front/httpfwd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event_struct.h>

#include "common/http1fwd.h"
#include "common/log.h"
#include "common/monotime.h"
#include "front/accesslog.h"
#include "front/front.h"
#include "front/httpproxy.h"

#define HF_HEAD_OUT_MAX (HTTP1_MAX_HEAD + 512) /* a rewritten request head */
#define HF_RIN_START 16384 /* upstream input; grown for a large head */
#define HF_RIN_MAX 65536   /* a head must fit in HTTP1_HEAD_CAP bytes */
#define HF_URL_LOG_MAX 512
#define HF_USER_LOG_MAX 64

struct hf_dir {
	uint8_t framing; /* enum http1fwd_framing */
	bool done;
	bool crlf;    /* chunked: a chunk's data went before (its CRLF is due) */
	bool rechunk; /* chunked: send the chunk framing on */
	bool out_owned;
	short want;   /* blocked on: EV_READ (source) or EV_WRITE (destination) */
	uint64_t left; /* LENGTH: body bytes not yet taken */
	struct http1_chunked ck;
	char *out; /* bytes to send before any body byte */
	uint32_t outlen, outoff;
	char small[HTTP1FWD_CHUNK_HDR_MAX];
};

struct hf_req {
	struct http1fwd_req ri;
	bool client10;     /* an HTTP/1.0 client */
	bool reused;       /* sent over a kept upstream connection */
	bool retried;      /* ... which had closed: dialed again once */
	bool resp_started; /* a byte of the answer arrived */
	bool head_queued;  /* the final response head is queued (or sent) */
	bool close_after;  /* the client connection closes after this answer */
	bool up_broken;    /* sending to the upstream failed */
	bool reusable;     /* the upstream may serve the next request */
	int status;        /* the final status answered, 0 before */
	uint32_t n;        /* request number on this connection */
	char method[40];
	char url[HF_URL_LOG_MAX];
	char user[HF_USER_LOG_MAX];
	int64_t t0_us;
	uint64_t up0, down0; /* s->bytes_up/down when it began */
	struct hf_dir up, down;
	char *rin; /* upstream bytes: response heads, then the body's start */
	uint32_t rinlen, rinoff, rincap;
	struct http1_parser rp;
	char *head; /* the request head for upstream, kept for a retry */
	uint32_t headlen;
};

struct httpfwd {
	struct event idle;
	bool idle_armed;
	bool draining;
	bool closing;   /* the connection ends after the answer just logged */
	bool up_keep;   /* s->ufd serves requests routed as up_target/hops */
	struct netaddr up_target;
	const struct proxy_hop *up_hops;
	struct proxy_hop *up_hops_mem; /* owned, or NULL (then -x's or none) */
	size_t up_nhops;
	uint32_t nreq;
	struct hf_req *req; /* the request under way, or NULL */
};

static struct event_base *hf_base;
static struct timeval hf_idle_tv = { 60, 0 };

void httpfwd_setup(struct event_base *base, const struct front_conf *fc)
{
	hf_base = base;
	hf_idle_tv.tv_sec = (time_t)fc->c.http_idle;
	hf_idle_tv.tv_usec = (suseconds_t)((fc->c.http_idle -
					    (double)hf_idle_tv.tv_sec) *
					   1e6);
}

/* ---- the access line ---- */

static void hf_log_request(const struct session *s, const struct hf_req *q,
			   const char *outcome)
{
	struct accesslog a;
	char id[32];
	int st;

	if (log_level < LOGL_INFO)
		return;
	session_log_fields(s, &a);
	snprintf(id, sizeof(id), "%u.%u", s->id, q->n);
	a.id = id;
	a.user = q->user[0] != '\0' && strcmp(q->user, "-") != 0 ? q->user
								: NULL;
	a.method = q->method;
	a.url = q->url;
	a.up = s->bytes_up - q->up0;
	a.down = s->bytes_down - q->down0;
	a.dur = (double)(monotime_us() - q->t0_us) / 1e6;
	a.status = q->status;
	/* an error answer's outcome comes with its status: "502 why" */
	if (outcome != NULL && outcome[0] >= '1' && outcome[0] <= '9' &&
	    strlen(outcome) > 4 && outcome[3] == ' ' &&
	    sscanf(outcome, "%3d", &st) == 1) {
		a.status = st;
		outcome += 4;
	}
	a.outcome = outcome;
	accesslog_write(&a);
}

bool httpfwd_log(struct session *s, const char *outcome)
{
	struct httpfwd *f = s->fwd;

	if (f->req != NULL) {
		hf_log_request(s, f->req, outcome);
		return true;
	}
	/* between requests: a malformed next request gets the plain line,
	 * an idle connection that ends gets none */
	if (!f->closing && s->state == SS_HANDSHAKE && s->hs != NULL &&
	    s->hs->len > 0)
		return false;
	LOGD("[#%u] http connection closed after %u requests (%s)", s->id,
	     f->nreq, outcome != NULL ? outcome : "ok");
	return true;
}

/* ---- the connection's state ---- */

static void hf_out_clear(struct hf_dir *d)
{
	if (d->out_owned)
		free(d->out);
	d->out = NULL;
	d->out_owned = false;
	d->outlen = d->outoff = 0;
}

static void hf_req_free(struct hf_req *q)
{
	if (q == NULL)
		return;
	hf_out_clear(&q->up);
	hf_out_clear(&q->down);
	free(q->rin);
	free(q->head);
	free(q);
}

static void hf_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	s->fwd->idle_armed = false;
	session_close(s, "idle");
}

static struct httpfwd *hf_ctx(struct session *s)
{
	struct httpfwd *f = s->fwd;

	if (f != NULL)
		return f;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	evtimer_assign(&f->idle, hf_base, hf_idle_cb, s);
	s->fwd = f;
	return f;
}

/* Both relay directions back to nothing held, no EOF seen. */
static void hf_relays_reset(struct session *s)
{
	relay_release(&s->up);
	relay_release(&s->down);
	memset(&s->up, 0, sizeof(s->up));
	memset(&s->down, 0, sizeof(s->down));
}

/* Close the upstream connection kept (or in use). */
static void hf_drop_upstream(struct session *s)
{
	struct httpfwd *f = s->fwd;

	if (s->ufd >= 0) {
		session_watch(s, false, 0);
		close(s->ufd);
		s->ufd = -1;
	}
	hf_relays_reset(s);
	f->up_keep = false;
	free(f->up_hops_mem);
	f->up_hops_mem = NULL;
	f->up_hops = NULL;
	f->up_nhops = 0;
}

void httpfwd_on_close(struct session *s)
{
	struct httpfwd *f = s->fwd;

	if (f == NULL)
		return;
	if (f->idle_armed)
		evtimer_del(&f->idle);
	hf_req_free(f->req);
	free(f->up_hops_mem);
	free(f);
	s->fwd = NULL;
}

void httpfwd_end(struct session *s)
{
	if (s->fwd == NULL)
		return;
	hf_drop_upstream(s);
	httpfwd_on_close(s);
}

void httpfwd_wake(struct session *s)
{
	struct httpfwd *f = s->fwd;

	if (f->idle_armed) {
		evtimer_del(&f->idle);
		f->idle_armed = false;
	}
}

static bool hf_hop_eq(const struct proxy_hop *a, const struct proxy_hop *b)
{
	return a->scheme == b->scheme && a->has_user == b->has_user &&
	       a->has_pass == b->has_pass && strcmp(a->user, b->user) == 0 &&
	       strcmp(a->pass, b->pass) == 0 && addr_equal(&a->addr, &b->addr);
}

/* Is the decision in hs the route of the upstream connection kept? The
 * hops' credentials count: another account is another connection. */
static bool hf_same_route(const struct httpfwd *f, const struct hs *hs)
{
	if (!addr_equal(&f->up_target, &hs->target) ||
	    f->up_nhops != hs->nhops)
		return false;
	for (size_t i = 0; i < hs->nhops; i++) {
		if (!hf_hop_eq(&f->up_hops[i], &hs->hops[i]))
			return false;
	}
	return true;
}

/* ---- a new request ---- */

/* The URL for the log: the target up to its query, bounded. */
static void hf_url_text(const char *buf, struct http1_span t, char *out,
			size_t cap)
{
	const char *p = buf + t.off, *q = memchr(p, '?', t.len);
	size_t n = q != NULL ? (size_t)(q - p) : t.len;

	if (n >= cap)
		snprintf(out, cap, "%.*s...", (int)(cap - 4), p);
	else
		snprintf(out, cap, "%.*s", (int)n, p);
}

static struct hf_req *hf_req_new(struct session *s, struct httpfwd *f,
				 const struct http1_head *h)
{
	const char *buf = (const char *)s->hs->buf;
	struct hf_req *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->n = ++f->nreq;
	q->t0_us = monotime_us();
	q->up0 = s->bytes_up;
	q->down0 = s->bytes_down;
	/* the parser bounds a method to 32 bytes */
	memcpy(q->method, buf + h->method.off,
	       h->method.len < sizeof(q->method) ? h->method.len
						 : sizeof(q->method) - 1);
	hf_url_text(buf, h->target, q->url, sizeof(q->url));
	if (s->hs->has_user)
		accesslog_user_text(s->hs->user, q->user, sizeof(q->user));
	else
		snprintf(q->user, sizeof(q->user), "-");
	q->client10 = h->version_minor == 0;
	/* the client's head counts as bytes up */
	s->bytes_up += s->hs->off;
	front_stats.bytes_up += s->hs->off;
	return q;
}

void httpfwd_request(struct session *s, const struct http1_head *h)
{
	struct httpfwd *f = hf_ctx(s);
	const char *buf = (const char *)s->hs->buf;
	struct http1fwd_uri u;
	struct hf_req *q;
	const char *why;
	int n;

	if (f == NULL || (q = hf_req_new(s, f, h)) == NULL) {
		httpproxy_fail(s, 500, "local error: out of memory", NULL);
		return;
	}
	f->req = q;
	f->closing = false;
	if (http1fwd_parse_uri(buf, h->target, &u, &why) < 0) {
		httpproxy_fail(s, 400, why, NULL);
		return;
	}
	http1fwd_request_info(buf, h, &q->ri);
	q->head = malloc(HF_HEAD_OUT_MAX);
	n = q->head == NULL ? -1
			    : http1fwd_request_head(q->head, HF_HEAD_OUT_MAX,
						    buf, h, &u, &q->ri);
	if (n < 0) {
		httpproxy_fail(s, 500, "local error: cannot rewrite the request",
			       NULL);
		return;
	}
	q->headlen = (uint32_t)n;
	q->close_after = f->draining;
	s->hs->target = u.target;
	session_request(s);
}

/* ---- moving bytes ---- */

static void hf_count(struct session *s, bool up, uint64_t n)
{
	if (up) {
		s->bytes_up += n;
		front_stats.bytes_up += n;
	} else {
		s->bytes_down += n;
		front_stats.bytes_down += n;
	}
}

/* A direction's input already read: the client's bytes after the head in
 * the handshake buffer, or the upstream's in rin. */
static const char *hf_in(struct session *s, struct hf_req *q, bool up,
			 size_t *n)
{
	if (up) {
		*n = (size_t)(s->hs->len - s->hs->off);
		return (const char *)s->hs->buf + s->hs->off;
	}
	*n = q->rinlen - q->rinoff;
	return q->rin + q->rinoff;
}

static void hf_in_take(struct session *s, struct hf_req *q, bool up,
		       size_t n)
{
	if (up)
		s->hs->off = (uint16_t)(s->hs->off + n);
	else
		q->rinoff += (uint32_t)n;
}

static int hf_rin_room(struct hf_req *q)
{
	char *p;
	uint32_t cap;

	if (q->rinoff > 0 && q->rinoff == q->rinlen)
		q->rinoff = q->rinlen = 0;
	if (q->rinlen < q->rincap)
		return 0;
	if (q->rinoff > 0) { /* keep what is unread, at the start */
		memmove(q->rin, q->rin + q->rinoff, q->rinlen - q->rinoff);
		q->rinlen -= q->rinoff;
		q->rinoff = 0;
		return 0;
	}
	cap = q->rincap == 0 ? HF_RIN_START : q->rincap * 2;
	if (cap > HF_RIN_MAX)
		return -1; /* the parser has refused the head by now */
	p = realloc(q->rin, cap);
	if (p == NULL)
		return -1;
	q->rin = p;
	q->rincap = cap;
	return 0;
}

/* Read more of a direction's input (only when none is left unread):
 * > 0 bytes, 0 EOF, -1 with errno. */
static ssize_t hf_in_fill(struct session *s, struct hf_req *q, bool up)
{
	ssize_t n;

	if (up) {
		struct hs *hs = s->hs;

		hs->len = hs->off = 0;
		n = recv(s->cfd, hs->buf, hs->cap, 0);
		if (n > 0)
			hs->len = (uint16_t)n;
		return n;
	}
	if (hf_rin_room(q) < 0) {
		errno = ENOMEM;
		return -1;
	}
	n = recv(s->ufd, q->rin + q->rinlen, q->rincap - q->rinlen, 0);
	if (n > 0)
		q->rinlen += (uint32_t)n;
	return n;
}

/* Send d's queued bytes: 1 all sent, 0 blocked (want set), -1 errno. */
static int hf_flush(struct session *s, struct hf_dir *d, bool up)
{
	int dst = up ? s->ufd : s->cfd;

	while (d->outoff < d->outlen) {
		ssize_t n = send(dst, d->out + d->outoff, d->outlen - d->outoff,
				 MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				d->want = EV_WRITE;
				return 0;
			}
			return -1;
		}
		d->outoff += (uint32_t)n;
		if (!up) /* up: the client's head was counted as read */
			hf_count(s, false, (uint64_t)n);
	}
	if (d->out != NULL && d->out != s->fwd->req->head)
		hf_out_clear(d);
	else
		d->outlen = d->outoff = 0;
	return 1;
}

static void hf_queue_small(struct hf_dir *d, uint64_t size)
{
	int n = http1fwd_chunk_header(d->small, sizeof(d->small), size,
				      d->crlf);

	d->out = d->small;
	d->out_owned = false;
	d->outlen = n > 0 ? (uint32_t)n : 0;
	d->outoff = 0;
}

static void hf_finish(struct session *s);

/* The exchange cannot go on: answer when no answer has begun, else just
 * close. Returns -1 (stop: the session is over). */
static int hf_error(struct session *s, struct hf_req *q, int status,
		    const char *why)
{
	if (!q->head_queued && status > 0) {
		httpproxy_fail(s, status, why, NULL);
		return -1;
	}
	session_close(s, why);
	return -1;
}

/* Sending the request upstream failed: the upstream may have answered
 * already (and stopped reading), so read on; the connection is not kept.
 * Returns 0. */
static int hf_up_broken(struct hf_req *q)
{
	q->up_broken = true;
	q->up.done = true;
	q->close_after = true;
	return 0;
}

/* A source ended or failed in the middle of a body. */
static int hf_body_cut(struct session *s, struct hf_req *q, bool up, int err)
{
	char why[160];

	if (up) {
		snprintf(why, sizeof(why), "the client %s in the middle of "
					   "the request body",
			 err != 0 ? "failed" : "closed");
		return hf_error(s, q, 0, why);
	}
	snprintf(why, sizeof(why), "the upstream %s in the middle of the "
				   "response%s%s",
		 err != 0 ? "failed" : "closed", err != 0 ? ": " : "",
		 err != 0 ? strerror(err) : "");
	return hf_error(s, q, 502, why);
}

static int hf_framing_error(struct session *s, struct hf_req *q, bool up)
{
	if (up)
		return hf_error(s, q, 400, "malformed chunked request body");
	return hf_error(s, q, 502, "the upstream broke the chunked framing");
}

/* The bytes of the current chunk or body were taken from the source. */
static void hf_taken(struct hf_dir *d, uint64_t n)
{
	if (d->framing == HTTP1FWD_LENGTH)
		d->left -= n;
	else if (d->framing == HTTP1FWD_CHUNKED)
		http1_chunked_take(&d->ck, n);
}

/* Body bytes the direction may take now: UINT64_MAX for a body that ends
 * with the connection. */
static uint64_t hf_budget(const struct hf_dir *d)
{
	switch (d->framing) {
	case HTTP1FWD_LENGTH:
		return d->left;
	case HTTP1FWD_CHUNKED:
		return http1_chunked_data_left(&d->ck);
	default:
		return UINT64_MAX;
	}
}

/* Read and re-emit chunk framing up to the next chunk's data (or the end).
 * 1 to go on, 0 blocked, -1 stop. */
static int hf_chunk_framing(struct session *s, struct hf_req *q,
			    struct hf_dir *d, bool up)
{
	size_t avail, dummy = 0;
	const char *data = hf_in(s, q, up, &avail);
	uint64_t left;
	long c;

	if (avail == 0) {
		ssize_t n = hf_in_fill(s, q, up);

		if (n > 0)
			return 1;
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			d->want = EV_READ;
			return 0;
		}
		return hf_body_cut(s, q, up, n < 0 ? errno : 0);
	}
	c = http1_chunked_decode(&d->ck, data, avail, NULL, 0, &dummy);
	if (c < 0)
		return hf_framing_error(s, q, up);
	hf_in_take(s, q, up, (size_t)c);
	if (d->ck.done) {
		if (d->rechunk)
			hf_queue_small(d, 0);
		d->framing = HTTP1FWD_NONE; /* done once that is sent */
		return 1;
	}
	left = http1_chunked_data_left(&d->ck);
	if (left > 0) {
		if (d->rechunk)
			hf_queue_small(d, left);
		d->crlf = true;
	}
	return 1;
}

/* Body bytes through the relay, socket to socket (splice). 1 to go on,
 * 0 blocked, -1 stop. */
static int hf_relay_body(struct session *s, struct hf_req *q,
			 struct hf_dir *d, bool up, uint64_t want)
{
	struct relay_dir *rd = up ? &s->up : &s->down;
	int src = up ? s->cfd : s->ufd, dst = up ? s->ufd : s->cfd;
	uint64_t budget = want, moved = 0;

	if (relay_move(rd, src, dst, &budget, &moved) < 0) {
		int err = errno;

		if (up && (err == EPIPE || err == ECONNRESET))
			return hf_up_broken(q);
		if (!up && (err == EPIPE || err == ECONNRESET))
			return hf_error(s, q, 0, "the client went away");
		return hf_body_cut(s, q, up, err);
	}
	hf_count(s, up, moved);
	hf_taken(d, want - budget);
	if (rd->eof && rd->pending == 0) {
		if (d->framing == HTTP1FWD_CLOSE) {
			d->done = true;
			return 1;
		}
		return hf_body_cut(s, q, up, 0);
	}
	if (rd->pending > 0) {
		d->want = EV_WRITE;
		return 0;
	}
	if (hf_budget(d) == 0)
		return 1; /* at a boundary: framing or the end */
	d->want = EV_READ;
	return 0;
}

/* Body bytes already read into the direction's input buffer. */
static int hf_send_input(struct session *s, struct hf_req *q,
			 struct hf_dir *d, bool up, const char *data,
			 size_t n)
{
	ssize_t w = send(up ? s->ufd : s->cfd, data, n, MSG_NOSIGNAL);

	if (w < 0) {
		if (errno == EAGAIN || errno == EINTR) {
			d->want = EV_WRITE;
			return 0;
		}
		if (up)
			return hf_up_broken(q);
		return hf_error(s, q, 0, "the client went away");
	}
	hf_in_take(s, q, up, (size_t)w);
	hf_taken(d, (uint64_t)w);
	hf_count(s, up, (uint64_t)w);
	return 1;
}

/* Advance one direction's body. 0 (blocked or done), -1 stop. */
static int hf_dir_pump(struct session *s, struct hf_req *q, bool up)
{
	struct hf_dir *d = up ? &q->up : &q->down;
	struct relay_dir *rd = up ? &s->up : &s->down;

	while (!d->done) {
		uint64_t want, zero = 0, moved = 0;
		size_t avail;
		const char *data;
		int r;

		if (rd->pending > 0) { /* bytes in flight in the relay */
			if (relay_move(rd, -1, up ? s->ufd : s->cfd, &zero,
				       &moved) < 0)
				return up ? hf_up_broken(q)
					  : hf_error(s, q, 0,
						     "the client went away");
			hf_count(s, up, moved);
			if (rd->pending > 0) {
				d->want = EV_WRITE;
				return 0;
			}
		}
		r = hf_flush(s, d, up);
		if (r <= 0)
			return r < 0 ? (up ? hf_up_broken(q)
					   : hf_error(s, q, 0,
						      "the client went away"))
				     : 0;
		if (q->up_broken && up)
			return 0;
		if (d->framing == HTTP1FWD_NONE ||
		    (d->framing == HTTP1FWD_LENGTH && d->left == 0)) {
			d->done = true;
			break;
		}
		want = hf_budget(d);
		if (d->framing == HTTP1FWD_CHUNKED && want == 0) {
			r = hf_chunk_framing(s, q, d, up);
			if (r <= 0)
				return r;
			continue;
		}
		data = hf_in(s, q, up, &avail);
		if (avail > 0) {
			r = hf_send_input(s, q, d, up, data,
					  avail < want ? avail : (size_t)want);
		} else if (d->framing == HTTP1FWD_TUNNEL) {
			d->done = true; /* what came with the 101 is passed on */
			break;
		} else {
			r = hf_relay_body(s, q, d, up, want);
		}
		if (r <= 0)
			return r;
		if (up && q->up_broken)
			return 0;
	}
	return 0;
}

/* ---- the answer's heads ---- */

static int hf_on_final_head(struct session *s, struct hf_req *q,
			    const char *base, const struct http1_head *h,
			    const struct http1fwd_resp *r)
{
	enum http1fwd_conn conn;
	bool dechunk = r->framing == HTTP1FWD_CHUNKED && q->client10;
	size_t cap = (size_t)(q->rinlen - q->rinoff) + 256;
	int n;

	q->status = h->status;
	evtimer_del(&s->hs->timer); /* answered: bodies have no deadline */
	if (r->framing == HTTP1FWD_TUNNEL) {
		conn = HTTP1FWD_CONN_UPGRADE;
	} else {
		if (!q->ri.keepalive || r->framing == HTTP1FWD_CLOSE ||
		    dechunk || !q->up.done || s->fwd->draining)
			q->close_after = true;
		conn = q->close_after ? HTTP1FWD_CONN_CLOSE
		       : q->client10  ? HTTP1FWD_CONN_KEEP10
				      : HTTP1FWD_CONN_KEEP;
	}
	q->down.out = malloc(cap);
	n = q->down.out == NULL ? -1
				: http1fwd_response_head(q->down.out, cap, base,
							 h, conn, dechunk);
	if (n < 0)
		return hf_error(s, q, 502,
				"the upstream's response head cannot be passed on");
	q->down.out_owned = true;
	q->down.outlen = (uint32_t)n;
	q->down.outoff = 0;
	q->down.framing = r->framing;
	q->down.left = r->length;
	q->down.rechunk = !dechunk;
	http1_chunked_init(&q->down.ck);
	q->reusable = r->reusable;
	q->head_queued = true;
	return 0;
}

/* One complete head of len bytes at base. 0 or -1 (stop). */
static int hf_on_head(struct session *s, struct hf_req *q, const char *base,
		      const struct http1_head *h, int len)
{
	struct http1fwd_resp r;
	int n;

	http1fwd_response_info(base, h, &q->ri, &r);
	if (h->status == 101 && r.framing != HTTP1FWD_TUNNEL)
		return hf_error(s, q, 502,
				"the upstream switched protocols unasked");
	if (!r.interim) {
		if (hf_on_final_head(s, q, base, h, &r) < 0)
			return -1;
		q->rinoff += (uint32_t)len;
		return 0;
	}
	/* 100 Continue, 103 Early Hints: passed on, except to HTTP/1.0
	 * clients, which do not know them (RFC 9110 15.2) */
	if (!q->client10) {
		size_t cap = (size_t)len + 256;

		q->down.out = malloc(cap);
		n = q->down.out == NULL
			    ? -1
			    : http1fwd_response_head(q->down.out, cap, base, h,
						     HTTP1FWD_CONN_KEEP, false);
		if (n < 0)
			return hf_error(s, q, 502, "local error: out of memory");
		q->down.out_owned = true;
		q->down.outlen = (uint32_t)n;
		q->down.outoff = 0;
	}
	q->rinoff += (uint32_t)len;
	http1_parser_init(&q->rp, HTTP1_RESPONSE);
	http1_parser_limits(&q->rp, HTTP1_HEAD_CAP, HTTP1_FIELDS_CAP);
	return 0;
}

static bool hf_can_retry(const struct hf_req *q)
{
	return q->reused && !q->retried && !q->resp_started &&
	       !q->head_queued && q->ri.framing == HTTP1FWD_NONE;
}

/* The kept upstream connection had closed before it could answer (the
 * race every keep-alive client knows): dial again, once, for a request
 * without a body, which can be sent again whole. -1 (stop pumping). */
static int hf_retry(struct session *s, struct hf_req *q)
{
	LOGD("[#%u.%u] the kept upstream connection had closed; dialing "
	     "again",
	     s->id, q->n);
	q->retried = true;
	q->reused = false;
	q->up_broken = false;
	q->close_after = s->fwd->draining;
	hf_drop_upstream(s);
	session_arm_deadline(s);
	session_dial(s);
	return -1;
}

static int hf_head_error(struct session *s, struct hf_req *q)
{
	char why[160];

	if (q->rp.status == 431)
		return hf_error(s, q, 502,
				"the upstream's response head is over 64 KiB");
	snprintf(why, sizeof(why), "malformed response from the upstream: %s",
		 q->rp.why != NULL ? q->rp.why : "?");
	return hf_error(s, q, 502, why);
}

/* Read and handle response heads until the final one is queued. 0
 * (blocked, or the final head queued), -1 stop. */
static int hf_read_heads(struct session *s, struct hf_req *q)
{
	while (!q->head_queued) {
		struct http1_head h;
		ssize_t n;
		int r;

		r = hf_flush(s, &q->down, false);
		if (r < 0)
			return hf_error(s, q, 0, "the client went away");
		if (r == 0)
			return 0;
		if (q->rinlen > q->rinoff) {
			const char *base = q->rin + q->rinoff;

			r = http1_parse(&q->rp, base, q->rinlen - q->rinoff,
					&h);
			if (r < 0)
				return hf_head_error(s, q);
			if (r > 0) {
				if (hf_on_head(s, q, base, &h, r) < 0)
					return -1;
				continue;
			}
		}
		n = hf_in_fill(s, q, false);
		if (n > 0) {
			q->resp_started = true;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			q->down.want = EV_READ;
			return 0;
		}
		if (n < 0 && errno == ENOMEM)
			return hf_head_error(s, q);
		if (hf_can_retry(q))
			return hf_retry(s, q);
		if (n == 0 && !q->resp_started)
			return hf_error(s, q, 502,
					"the upstream closed the connection "
					"without answering");
		if (n == 0)
			return hf_error(s, q, 502,
					"the upstream closed the connection "
					"in the middle of its response head");
		{
			char why[160];

			snprintf(why, sizeof(why),
				 "the upstream connection failed: %s",
				 strerror(errno));
			return hf_error(s, q, 502, why);
		}
	}
	return 0;
}

/* ---- running an exchange ---- */

static void hf_watch(struct session *s, const struct hf_req *q)
{
	short cf = 0, uf = 0;

	if (!q->up.done) {
		if (q->up.want == EV_READ)
			cf |= EV_READ;
		else
			uf |= EV_WRITE;
	}
	if (!q->down.done) {
		if (q->down.want == EV_WRITE)
			cf |= EV_WRITE;
		else
			uf |= EV_READ;
	}
	session_watch(s, true, cf);
	session_watch(s, false, uf);
}

static void hf_pump(struct session *s)
{
	struct hf_req *q = s->fwd->req;
	bool up_was_done = q->up.done;

	if (!q->up.done && hf_dir_pump(s, q, true) < 0)
		return;
	if (q->up.done && !up_was_done && !q->head_queued)
		session_arm_deadline(s); /* sent whole: now the answer */
	if (!q->head_queued && hf_read_heads(s, q) < 0)
		return;
	if (q->head_queued && !q->down.done && hf_dir_pump(s, q, false) < 0)
		return;
	/* a 101's tunnel needs the whole request out first */
	if (q->down.done &&
	    (q->down.framing != HTTP1FWD_TUNNEL || q->up.done)) {
		hf_finish(s);
		return;
	}
	hf_watch(s, q);
}

/* A connection (new or kept) to the decided destination is in s->ufd:
 * send the request and read the answer. */
static void hf_begin(struct session *s)
{
	struct hf_req *q = s->fwd->req;

	s->state = SS_EXCHANGE;
	session_set_active(s);
	memset(&q->up, 0, sizeof(q->up));
	memset(&q->down, 0, sizeof(q->down));
	q->up.out = q->head;
	q->up.outlen = q->headlen;
	q->up.framing = q->ri.framing;
	q->up.left = q->ri.length;
	q->up.rechunk = true;
	q->up.want = EV_WRITE;
	http1_chunked_init(&q->up.ck);
	q->down.want = EV_READ;
	q->rinlen = q->rinoff = 0;
	http1_parser_init(&q->rp, HTTP1_RESPONSE);
	http1_parser_limits(&q->rp, HTTP1_HEAD_CAP, HTTP1_FIELDS_CAP);
	if (q->ri.framing == HTTP1FWD_NONE)
		session_arm_deadline(s); /* now: the answer */
	else
		evtimer_del(&s->hs->timer); /* the body may take its time */
	hf_pump(s);
}

bool httpfwd_before_dial(struct session *s)
{
	struct httpfwd *f = s->fwd;

	if (f == NULL)
		return false;
	if (f->req != NULL && f->up_keep && s->ufd >= 0 &&
	    !s->hs->forwarding && hf_same_route(f, s->hs)) {
		f->req->reused = true;
		front_stats.success++;
		hf_begin(s);
		return true;
	}
	hf_drop_upstream(s);
	return false;
}

int httpfwd_dialed(struct session *s)
{
	struct httpfwd *f = s->fwd;
	struct hs *hs = s->hs;

	/* remember the route of this connection, for the next request */
	free(f->up_hops_mem);
	f->up_hops_mem = NULL;
	f->up_target = hs->target;
	f->up_nhops = hs->nhops;
	f->up_hops = hs->hops;
	if (hs->own_hops != NULL && hs->hops == hs->own_hops) {
		f->up_hops_mem = hs->own_hops; /* now ours; hs->hops still
						* points there until the
						* request ends */
		hs->own_hops = NULL;
	}
	f->up_keep = false;
	hf_begin(s);
	return 1;
}

/* An upstream connection kept between requests became readable: it
 * closed, or it talks out of turn. Either way it serves no more. */
static void hf_idle_upstream(struct session *s)
{
	char c;
	ssize_t n = recv(s->ufd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	hf_drop_upstream(s);
}

void httpfwd_on_event(struct session *s, short what, bool client)
{
	struct httpfwd *f = s->fwd;

	(void)what;
	if (f == NULL)
		return;
	if (s->state == SS_EXCHANGE && f->req != NULL) {
		hf_pump(s);
		return;
	}
	if (!client && s->ufd >= 0)
		hf_idle_upstream(s);
}

void httpfwd_timeout(struct session *s)
{
	struct hf_req *q = s->fwd->req;
	char why[96];

	snprintf(why, sizeof(why), "upstream did not answer within %g s",
		 httpproxy_timeout());
	(void)hf_error(s, q, 504, why);
}

/* The answer is complete: log it, then keep the connection for the next
 * request or end it. */
static void hf_finish(struct session *s)
{
	struct httpfwd *f = s->fwd;
	struct hf_req *q = f->req;
	bool keep_up;

	if (q->down.framing == HTTP1FWD_TUNNEL) {
		/* the 101 and what came with it are out: now a tunnel; the
		 * request's line is written when it closes */
		f->up_keep = false;
		hf_out_clear(&q->up);
		hf_out_clear(&q->down);
		free(q->rin);
		q->rin = NULL;
		free(q->head);
		q->head = NULL;
		hf_relays_reset(s);
		session_start_relay(s);
		return;
	}
	hf_log_request(s, q, "ok");
	keep_up = q->reusable && q->up.done && !q->up_broken &&
		  q->rinoff == q->rinlen;
	if (q->close_after || !q->up.done || f->draining) {
		char c;
		/* a client with nothing more on its way gets a plain close;
		 * one still sending (a body the answer did not wait for, a
		 * pipelined request) gets a lingering one, so that the close
		 * does not reset the answer away */
		bool quiet = q->up.done && !q->up_broken &&
			     s->hs->len == s->hs->off &&
			     recv(s->cfd, &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
			     errno == EAGAIN;

		f->req = NULL;
		hf_req_free(q);
		f->closing = true;
		if (quiet)
			session_close(s, "ok");
		else
			session_linger(s, "ok");
		return;
	}
	f->req = NULL;
	hf_req_free(q);
	session_reset_request(s);
	if (keep_up) {
		f->up_keep = true;
		session_watch(s, false, EV_READ); /* notice when it closes */
	} else {
		hf_drop_upstream(s);
	}
	hf_relays_reset(s); /* idle: no pipe or buffer held */
	if (s->hs->len > s->hs->off) {
		/* the next request is here already (pipelined) */
		if (session_hs_next(s) < 0) {
			session_close(s, "out of memory");
			return;
		}
		session_watch(s, true, EV_READ);
		s->drv->on_read(s);
		return;
	}
	session_hs_free(s);
	s->state = SS_HANDSHAKE;
	session_watch(s, true, EV_READ);
	if (evtimer_add(&f->idle, &hf_idle_tv) == 0)
		f->idle_armed = true;
}

void httpfwd_on_drain(struct session *s)
{
	struct httpfwd *f = s->fwd;

	if (f == NULL)
		return;
	f->draining = true;
	if (f->req == NULL && s->state == SS_HANDSHAKE &&
	    (s->hs == NULL || s->hs->len == 0))
		session_close(s, "shutdown");
}
