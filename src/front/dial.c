#include "front/dial.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event_struct.h>

#include "common/http1.h"
#include "common/log.h"
#include "common/monotime.h"
#include "front/resolver.h"
#include "front/selfdial.h"
#include "front/socks_proto.h"

enum dial_step {
	STEP_RESOLVE,
	STEP_PRIVSOCK,   /* waiting for the parent's socket */
	STEP_CONNECT,
	STEP_S4_RESOLVE, /* a socks4:// hop: its target's IPv4 address */
	STEP_S4,         /* SOCKS4/4A request sent, waiting for the reply */
	STEP_S5_GREET,
	STEP_S5_AUTH,
	STEP_S5_CONNECT,
	STEP_HTTP,
	STEP_DONE, /* result decided, callback pending */
};

#define DIAL_OUT_MAX 1200 /* longest request we send to a proxy */
#define DIAL_PEEK_S5 (4 + 1 + 255 + 2)

struct dialer {
	dial_cb cb;
	dial_watch_cb watch;
	void *arg;
	const struct proxy_hop *hops;
	size_t nhops, hop; /* hop: the proxy being negotiated */
	struct netaddr target;
	int fd;
	uint8_t step;
	bool sending;
	bool self_ok;     /* DIAL_F_SELF_OK */
	bool udp;         /* DIAL_F_UDP */
	short watching;   /* flags the owner watches the fd for */
	struct event ev;  /* deferred completion (no fd) */
	struct resolver_query *rq;
	uint32_t priv_req;            /* STEP_PRIVSOCK: request id */
	struct sockaddr_storage peer; /* the first hop, for connect() */
	socklen_t peerlen;
	uint16_t outlen, outoff;
	uint8_t out[DIAL_OUT_MAX];
	uint8_t *in;     /* a proxy's reply so far (HTTP1_MAX_HEAD bytes) */
	uint16_t inlen;
	int64_t t0_us;
	struct dial_result res;
};

static struct event_base *dial_base;
static struct dial_policy dial_pol;

void dial_setup(struct event_base *base, const struct dial_policy *p)
{
	dial_base = base;
	dial_pol = *p;
}

bool dial_brokered(void)
{
	return dial_pol.broker != NULL;
}

const char *dial_strerror(enum dial_err e)
{
	switch (e) {
	case DIAL_OK:
		return "success";
	case DIAL_ERR_CANCELLED:
		return "operation cancelled";
	case DIAL_ERR_SYSTEM:
		return "system error";
	case DIAL_ERR_RESOLVE:
		return "name resolution failed";
	case DIAL_ERR_CONNECT:
		return "connection failed";
	case DIAL_ERR_PROXY_PROTO:
		return "proxy protocol error";
	case DIAL_ERR_PROXY_AUTH:
		return "proxy authentication failed";
	case DIAL_ERR_PROXY_REFUSED:
		return "proxy refused connection";
	case DIAL_ERR_PROXY_REJECTED:
		return "request rejected by proxy";
	case DIAL_ERR_EOF:
		return "unexpected end of connection";
	case DIAL_ERR_BLOCKED:
		return "connection blocked by policy";
	case DIAL_ERR_TIMEOUT:
		return "timeout";
	case DIAL_ERR_RULESET_REJECT:
		return "rejected by ruleset";
	case DIAL_ERR_RULESET_ERROR:
		return "ruleset error";
	case DIAL_ERR_RULESET_DOWN:
		return "ruleset unavailable";
	}
	return "unknown error";
}

static void dial_release(struct dialer *d)
{
	event_del(&d->ev);
	if (d->rq != NULL)
		resolver_cancel(d->rq);
	if (d->priv_req != 0)
		dial_pol.broker->cancel(d->priv_req);
	if (d->fd >= 0)
		close(d->fd);
	free(d->in);
	free(d);
}

static void dial_finish_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dialer *d = arg;
	struct dial_result res = d->res;

	(void)fd;
	(void)what;
	if (res.err == DIAL_OK) {
		res.latency_us = (uint64_t)(monotime_us() - d->t0_us);
		res.fd = d->fd;
		d->fd = -1;
	} else {
		res.fd = -1;
	}
	res.peer = d->peerlen > 0 ? (const struct sockaddr *)&d->peer : NULL;
	res.hop = d->hop;
	d->cb(&res, d->arg);
	dial_release(d);
}

/* End the dial; the callback runs from the event loop. */
static void dial_end(struct dialer *d, enum dial_err err, int sys_errno)
{
	d->res.err = err;
	d->res.sys_errno = sys_errno;
	d->step = STEP_DONE;
	event_active(&d->ev, EV_TIMEOUT, 1);
}

static void dial_wait(struct dialer *d, short what)
{
	if (d->watching != what) {
		d->watching = what;
		d->watch(d->fd, what, d->arg);
	}
}

/* The first hop is one of our own endpoints (selfdial.h). */
static bool dial_self(const struct dialer *d, const struct sockaddr *sa,
		      bool connected)
{
	char buf[ADDR_STRLEN];

	if (d->self_ok)
		return false;
	if (!(connected ? selfdial_connected_to_self(d->fd, sa)
			: selfdial_refused(sa)))
		return false;
	if (addr_format_sockaddr(sa, buf, sizeof(buf)) < 0)
		strcpy(buf, "?");
	LOG_RL(LOGL_WARN, 10,
	       "refused to dial %s: this daemon's own listener or API "
	       "(--allow-self-dial allows it)",
	       buf);
	return true;
}

bool dial_blocked(const struct sockaddr *sa)
{
	switch (addr_classify(sa)) {
	case ADDR_CLASS_LOOPBACK:
		return dial_pol.block_loopback;
	case ADDR_CLASS_MULTICAST:
		return dial_pol.block_multicast;
	case ADDR_CLASS_LOCAL:
		return dial_pol.block_local;
	case ADDR_CLASS_GLOBAL:
		return dial_pol.block_global;
	default:
		return true;
	}
}

static void dial_sockopts(int fd)
{
	int one = 1;

	if (dial_pol.tcp_nodelay)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				 sizeof(one));
	if (dial_pol.tcp_keepalive)
		(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one,
				 sizeof(one));
	if (dial_pol.fastopen_connect)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one,
				 sizeof(one));
	if (dial_pol.sndbuf > 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &dial_pol.sndbuf,
				 sizeof(int));
	if (dial_pol.rcvbuf > 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &dial_pol.rcvbuf,
				 sizeof(int));
}

static void dial_connected(struct dialer *d, bool known_ok);

static bool dial_established(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
	       ti.tcpi_state == TCP_ESTABLISHED;
}

/* Connect the socket we now hold to d->peer. */
static void dial_connect_fd(struct dialer *d)
{
	dial_sockopts(d->fd);
	d->step = STEP_CONNECT;
	if (connect(d->fd, (struct sockaddr *)&d->peer, d->peerlen) < 0 &&
	    errno != EINPROGRESS) {
		dial_end(d, DIAL_ERR_CONNECT, errno);
		return;
	}
	/* on loopback and fast links the handshake often completes inside
	 * connect(): then there is nothing to wait for */
	if (dial_established(d->fd)) {
		dial_connected(d, true);
		return;
	}
	dial_wait(d, EV_WRITE);
}

void dial_priv_socket(struct dialer *d, int fd, int err)
{
	d->priv_req = 0;
	if (fd < 0) {
		dial_end(d, DIAL_ERR_SYSTEM, err);
		return;
	}
	d->fd = fd;
	dial_connect_fd(d);
}

static void dial_connect(struct dialer *d, struct sockaddr_storage *ss,
			 socklen_t len, uint16_t port)
{
	struct sockaddr *sa = (struct sockaddr *)ss;

	if (sa->sa_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	memcpy(&d->peer, ss, len);
	d->peerlen = len;
	if (dial_blocked(sa)) {
		dial_end(d, DIAL_ERR_BLOCKED, 0);
		return;
	}
	if (dial_self(d, sa, false)) {
		d->res.self_dial = true;
		dial_end(d, DIAL_ERR_BLOCKED, 0);
		return;
	}
	if (dial_pol.broker != NULL) {
		d->step = STEP_PRIVSOCK;
		d->priv_req = dial_pol.broker->request(sa->sa_family, d);
		if (d->priv_req == 0)
			dial_end(d, DIAL_ERR_SYSTEM, EAGAIN);
		return;
	}
	d->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		       IPPROTO_TCP);
	if (d->fd < 0) {
		dial_end(d, DIAL_ERR_SYSTEM, errno);
		return;
	}
	dial_connect_fd(d);
}

static void dial_resolved(int result, const struct sockaddr *sa,
			  socklen_t salen, void *arg)
{
	struct dialer *d = arg;
	struct sockaddr_storage ss;
	const struct netaddr *first =
		d->nhops > 0 ? &d->hops[0].addr : &d->target;

	d->rq = NULL;
	if (result < 0) {
		dial_end(d, DIAL_ERR_RESOLVE, 0);
		return;
	}
	memcpy(&ss, sa, salen);
	dial_connect(d, &ss, salen, first->port);
}

static void dial_write(struct dialer *d);

/* Queue the request for the current hop and start sending it. */
static void dial_send(struct dialer *d, size_t len, uint8_t step)
{
	if (len == 0) {
		dial_end(d, DIAL_ERR_PROXY_PROTO, 0);
		return;
	}
	d->outlen = (uint16_t)len;
	d->outoff = 0;
	d->inlen = 0;
	d->step = step;
	d->sending = true;
	dial_write(d); /* a fresh socket almost always takes it at once */
}

static const struct netaddr *dial_next_target(const struct dialer *d)
{
	return d->hop + 1 < d->nhops ? &d->hops[d->hop + 1].addr : &d->target;
}

static void dial_s4_send(struct dialer *d, const struct netaddr *next)
{
	const struct proxy_hop *h = &d->hops[d->hop];

	dial_send(d,
		  socks_proto_c4_request(d->out, sizeof(d->out), next,
					 h->has_user ? h->user : NULL),
		  STEP_S4);
}

static void dial_s4_resolved(int result, const struct sockaddr *sa,
			     socklen_t salen, void *arg)
{
	struct dialer *d = arg;
	struct netaddr next;

	(void)salen;
	d->rq = NULL;
	if (result < 0 || sa->sa_family != AF_INET ||
	    addr_from_sockaddr(&next, sa) < 0) {
		dial_end(d, DIAL_ERR_RESOLVE, 0);
		return;
	}
	next.port = dial_next_target(d)->port;
	dial_s4_send(d, &next);
}

/* A socks4:// hop takes an IPv4 address only: a name is resolved here
 * (to IPv4), an IPv6 address cannot go through it. */
static void dial_s4_start(struct dialer *d, const struct netaddr *next)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	int r;

	if (next->type == ADDR_IPV4) {
		dial_s4_send(d, next);
		return;
	}
	if (next->type != ADDR_DOMAIN) {
		dial_end(d, DIAL_ERR_RESOLVE, 0);
		return;
	}
	d->step = STEP_S4_RESOLVE;
	dial_wait(d, 0); /* nothing to read from the hop meanwhile */
	r = resolver_lookup(next->u.name, AF_INET, &ss, &len,
			    dial_s4_resolved, d, &d->rq);
	if (r > 0)
		dial_s4_resolved(0, (struct sockaddr *)&ss, len, d);
	else if (r < 0)
		dial_end(d, DIAL_ERR_RESOLVE, 0);
}

static void dial_hop_start(struct dialer *d)
{
	const struct proxy_hop *h = &d->hops[d->hop];
	const struct netaddr *next = dial_next_target(d);
	char hostport[ADDR_STRLEN];
	int n;

	switch (h->scheme) {
	case PROXY_SOCKS4A:
		dial_s4_send(d, next);
		break;
	case PROXY_SOCKS4:
		dial_s4_start(d, next);
		break;
	case PROXY_SOCKS5:
		dial_send(d,
			  socks_proto_c5_greeting(d->out, sizeof(d->out),
						  h->has_user),
			  STEP_S5_GREET);
		break;
	case PROXY_HTTP:
		if (addr_format(next, hostport, sizeof(hostport)) < 0) {
			dial_end(d, DIAL_ERR_PROXY_PROTO, 0);
			return;
		}
		n = http1_connect_request((char *)d->out, sizeof(d->out),
					  hostport,
					  h->has_user ? h->user : NULL,
					  h->has_pass ? h->pass : "");
		dial_send(d, n > 0 ? (size_t)n : 0, STEP_HTTP);
		break;
	default:
		dial_end(d, DIAL_ERR_PROXY_PROTO, 0);
	}
}

static void dial_hop_done(struct dialer *d)
{
	d->hop++;
	if (d->hop >= d->nhops)
		dial_end(d, DIAL_OK, 0);
	else
		dial_hop_start(d);
}

/* known_ok: TCP_INFO said ESTABLISHED, so there is no error to fetch */
static void dial_connected(struct dialer *d, bool known_ok)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (!known_ok &&
	    getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		dial_end(d, DIAL_ERR_CONNECT, err);
		return;
	}
	/* after the fact too: an address of this host the front cannot
	 * list (another interface's) shows as local == peer */
	if (dial_self(d, (struct sockaddr *)&d->peer, true)) {
		d->res.self_dial = true;
		dial_end(d, DIAL_ERR_BLOCKED, 0);
		return;
	}
	if (d->nhops == 0) {
		dial_end(d, DIAL_OK, 0);
		return;
	}
	d->hop = 0;
	dial_hop_start(d);
}

static void dial_write(struct dialer *d)
{
	ssize_t n = send(d->fd, d->out + d->outoff, d->outlen - d->outoff,
			 MSG_NOSIGNAL);

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			dial_end(d, DIAL_ERR_CONNECT, errno);
		else
			dial_wait(d, EV_WRITE);
		return;
	}
	d->res.tx += (uint64_t)n;
	d->outoff += (uint16_t)n;
	if (d->outoff == d->outlen) {
		d->sending = false;
		dial_wait(d, EV_READ);
	} else {
		dial_wait(d, EV_WRITE);
	}
}

/* Parse a proxy's reply from peeked bytes. -1 error (d ended), 0 need
 * more, >0 bytes that form the reply. */
static int dial_parse_reply(struct dialer *d, const uint8_t *buf, size_t len)
{
	const struct proxy_hop *h = &d->hops[d->hop];
	uint8_t code = 0;
	int r;

	switch (d->step) {
	case STEP_S4:
		r = socks_proto_c4_reply(buf, len, &code);
		if (r > 0 && code != SOCKS4_GRANTED) {
			dial_end(d, DIAL_ERR_PROXY_REJECTED, 0);
			return -1;
		}
		break;
	case STEP_S5_GREET:
		r = socks_proto_c5_method(buf, len, &code);
		if (r > 0 && !(code == SOCKS5_METHOD_NOAUTH ||
			       (code == SOCKS5_METHOD_USERPASS && h->has_user))) {
			dial_end(d, code == SOCKS5_METHOD_NONE ||
					    code == SOCKS5_METHOD_USERPASS
				       ? DIAL_ERR_PROXY_AUTH
				       : DIAL_ERR_PROXY_PROTO,
				 0);
			return -1;
		}
		break;
	case STEP_S5_AUTH:
		r = socks_proto_c5_auth_reply(buf, len, &code);
		if (r > 0 && code != 0) {
			dial_end(d, DIAL_ERR_PROXY_AUTH, 0);
			return -1;
		}
		break;
	case STEP_S5_CONNECT:
		r = socks_proto_c5_reply(buf, len, &code,
					 d->udp && d->hop + 1 == d->nhops
						 ? &d->res.bnd
						 : NULL);
		if (r > 0 && code != SOCKS5_REP_SUCCEEDED) {
			d->res.upstream_rep = code;
			dial_end(d, code == SOCKS5_REP_NOT_ALLOWED
					    ? DIAL_ERR_PROXY_REJECTED
					    : DIAL_ERR_PROXY_REFUSED,
				 0);
			return -1;
		}
		break;
	default:
		r = -1;
	}
	if (r < 0)
		dial_end(d, DIAL_ERR_PROXY_PROTO, 0);
	return r;
}

static int dial_parse_http(struct dialer *d, const uint8_t *buf, size_t len)
{
	static struct http1_head head; /* one parse at a time: not reentrant */
	struct http1_parser p;
	int r;

	http1_parser_init(&p, HTTP1_RESPONSE);
	r = http1_parse(&p, (const char *)buf, len, &head);
	if (r < 0) {
		dial_end(d, DIAL_ERR_PROXY_PROTO, 0);
		return -1;
	}
	if (r == 0)
		return 0;
	if (head.status >= 200 && head.status < 300)
		return r;
	if (head.status == 407)
		dial_end(d, DIAL_ERR_PROXY_AUTH, 0);
	else if (head.status == 403)
		dial_end(d, DIAL_ERR_PROXY_REJECTED, 0);
	else if (head.status == 502 || head.status == 503 ||
		 head.status == 504)
		dial_end(d, DIAL_ERR_PROXY_REFUSED, 0);
	else
		dial_end(d, DIAL_ERR_PROXY_PROTO, 0);
	return -1;
}

/* The reply has been consumed: move on. */
static void dial_advance(struct dialer *d, uint8_t code)
{
	const struct proxy_hop *h = &d->hops[d->hop];

	switch (d->step) {
	case STEP_S5_GREET:
		if (code == SOCKS5_METHOD_USERPASS) {
			dial_send(d,
				  socks_proto_c5_auth(d->out, sizeof(d->out),
						      h->user,
						      h->has_pass ? h->pass
								  : ""),
				  STEP_S5_AUTH);
			return;
		}
		/* fall through: no authentication, send the request */
		/* FALLTHROUGH */
	case STEP_S5_AUTH:
		dial_send(d,
			  socks_proto_c5_request(
				  d->out, sizeof(d->out),
				  d->udp && d->hop + 1 == d->nhops
					  ? SOCKS5_CMD_UDP_ASSOCIATE
					  : SOCKS5_CMD_CONNECT,
				  dial_next_target(d)),
			  STEP_S5_CONNECT);
		return;
	default:
		dial_hop_done(d);
	}
}

/* Read a proxy's reply. Bytes of an incomplete reply all belong to it, so
 * they are taken off the socket into d->in; a complete reply is consumed
 * exactly, leaving any tunnel bytes after it in the socket. */
static void dial_read(struct dialer *d)
{
	size_t cap = d->step == STEP_HTTP ? HTTP1_MAX_HEAD : DIAL_PEEK_S5;
	size_t total, want;
	ssize_t n;
	int r;

	if (d->in == NULL) {
		d->in = malloc(HTTP1_MAX_HEAD);
		if (d->in == NULL) {
			dial_end(d, DIAL_ERR_SYSTEM, ENOMEM);
			return;
		}
	}
	n = recv(d->fd, d->in + d->inlen, cap - d->inlen, MSG_PEEK);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			dial_end(d, DIAL_ERR_CONNECT, errno);
		return;
	}
	if (n == 0) {
		dial_end(d, DIAL_ERR_EOF, 0);
		return;
	}
	total = d->inlen + (size_t)n;
	if (d->step == STEP_HTTP)
		r = dial_parse_http(d, d->in, total);
	else
		r = dial_parse_reply(d, d->in, total);
	if (r < 0)
		return;
	if (r == 0 && total == cap) {
		dial_end(d, DIAL_ERR_PROXY_PROTO, 0); /* too long to be a reply */
		return;
	}
	/* incomplete: take what came, all of it is reply; complete: take
	 * exactly the rest of the reply */
	want = r == 0 ? (size_t)n : (size_t)r - d->inlen;
	if (recv(d->fd, d->in + d->inlen, want, 0) != (ssize_t)want) {
		dial_end(d, DIAL_ERR_SYSTEM, errno);
		return;
	}
	d->res.rx += want;
	if (r == 0) {
		d->inlen = (uint16_t)total;
		return;
	}
	d->inlen = 0;
	dial_advance(d, d->step == STEP_S5_GREET ? d->in[1] : 0);
}

void dial_on_event(struct dialer *d, short what)
{
	(void)what;
	if (d->step == STEP_DONE || d->step == STEP_RESOLVE ||
	    d->step == STEP_S4_RESOLVE || d->step == STEP_PRIVSOCK)
		return;
	if (d->step == STEP_CONNECT)
		dial_connected(d, false);
	else if (d->sending)
		dial_write(d);
	else
		dial_read(d);
}

struct dialer *dial_start(const struct netaddr *target,
			  const struct proxy_hop *hops, size_t nhops,
			  unsigned flags, dial_cb cb, dial_watch_cb watch,
			  void *arg)
{
	struct dialer *d = calloc(1, sizeof(*d));
	const struct netaddr *first = nhops > 0 ? &hops[0].addr : target;
	struct sockaddr_storage ss;
	socklen_t len = 0;
	int r;

	if (d == NULL)
		return NULL;
	d->cb = cb;
	d->watch = watch;
	d->arg = arg;
	event_assign(&d->ev, dial_base, -1, 0, dial_finish_cb, d);
	d->hops = hops;
	d->nhops = nhops;
	d->target = *target;
	d->fd = -1;
	d->self_ok = (flags & DIAL_F_SELF_OK) != 0;
	d->udp = (flags & DIAL_F_UDP) != 0;
	d->t0_us = monotime_us();
	if (first->type != ADDR_DOMAIN) {
		len = (socklen_t)addr_to_sockaddr(first, &ss);
		dial_connect(d, &ss, len, first->port);
		return d;
	}
	d->step = STEP_RESOLVE;
	r = resolver_lookup(first->u.name, AF_UNSPEC, &ss, &len, dial_resolved,
			    d, &d->rq);
	if (r > 0)
		dial_connect(d, &ss, len, first->port);
	else if (r < 0)
		dial_end(d, DIAL_ERR_RESOLVE, 0);
	return d;
}

void dial_cancel(struct dialer *d)
{
	if (d != NULL)
		dial_release(d);
}
