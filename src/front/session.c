#include "front/session.h"

#include "front/accesslog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/monotime.h"
#include "common/route_wire.h"
#include "front/front.h"
#include "front/httpproxy.h"
#include "front/listener.h"
#include "front/route.h"
#include "front/socks.h"

static struct event_base *sess_base;
static const struct front_conf *sess_fc;
static const struct timeval *sess_deadline; /* a libevent common timeout */
static struct session *sess_live; /* sessions not yet closed */
static struct session *sess_dead; /* closed, freed by the reaper */
static struct event *sess_reaper;
/* tunnels that ran out of rounds with bytes still to move: resumed after
 * the next poll, so that one busy tunnel cannot hold the loop */
static struct session *sess_more, **sess_more_tail = &sess_more;
static unsigned sess_more_n;
static struct event *sess_more_ev;
static uint32_t sess_next_id;
static unsigned sess_count;

static void sess_list_add(struct session **head, struct session *s)
{
	s->prev = NULL;
	s->next = *head;
	if (*head != NULL)
		(*head)->prev = s;
	*head = s;
}

static void sess_list_del(struct session **head, struct session *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		*head = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
}

/* -f: the target is fixed; nothing to read before dialing. */
static void forward_on_read(struct session *s)
{
	(void)s;
}

static int forward_on_dialed(struct session *s, const struct dial_result *r)
{
	(void)s;
	return r->err == DIAL_OK ? 0 : -1;
}

static void forward_on_timeout(struct session *s)
{
	(void)s;
}

static const struct sess_driver forward_driver = {
	.bufsize = 0,
	.on_read = forward_on_read,
	.on_dialed = forward_on_dialed,
	.on_timeout = forward_on_timeout,
};

static void session_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s;

	(void)fd;
	(void)what;
	(void)arg;
	while ((s = sess_dead) != NULL) {
		sess_list_del(&sess_dead, s);
		free(s->target);
		free(s->user);
		if (s->route_owned)
			free(s->route);
		free(s);
	}
}

static void session_more_cb(evutil_socket_t fd, short what, void *arg);
static void session_more_del(struct session *s);

void session_setup(struct event_base *base, const struct front_conf *fc)
{
	sess_base = base;
	sess_fc = fc;
	sess_deadline = event_base_init_common_timeout(base, &fc->timeout);
	sess_reaper = event_new(base, -1, 0, session_reap_cb, NULL);
	sess_more_ev = evtimer_new(base, session_more_cb, NULL);
}

unsigned session_count(void)
{
	return sess_count;
}

uint32_t session_new_id(void)
{
	return ++sess_next_id;
}

static const char *proto_name(uint8_t p)
{
	static const char *const names[] = {
		"-",	   "socks4",	  "socks4a",	"socks5", "http",
		"forward", "socks5-bind", "socks5-udp", "tproxy"
	};
	return p < sizeof(names) / sizeof(names[0]) ? names[p] : "?";
}

static const char *session_block_name(uint8_t b)
{
	if (b == SESS_BLOCK_NONE)
		return NULL;
	if (b == SESS_BLOCK_SELF)
		return "self";
	return addr_class_name((enum addr_class)(b - SESS_BLOCK_CLASS));
}

void session_log_fields(const struct session *s, struct accesslog *a)
{
	const char *to = NULL;

	memset(a, 0, sizeof(*a));
	a->client = &s->client.sa;
	a->proto = proto_name(s->proto);
	a->target = s->target;
	a->route = !s->dialed ? NULL : s->route ? s->route : "direct";
	if (s->dialed && s->route != NULL && s->route_owned)
		to = s->route + strlen(s->route) + 1;
	a->to = to != NULL && to[0] != '\0' ? to : NULL;
	a->block = session_block_name(s->block);
	a->reply = s->reply;
	a->socks_version =
		s->proto == PROTO_SOCKS4 || s->proto == PROTO_SOCKS4A ? 4 : 5;
	a->user = s->user;
}

void session_log_line(const struct session *s, const char *outcome)
{
	struct accesslog a;
	char id[16];

	if (log_level < LOGL_INFO)
		return;
	session_log_fields(s, &a);
	snprintf(id, sizeof(id), "%u", s->id);
	a.id = id;
	a.up = s->bytes_up;
	a.down = s->bytes_down;
	a.dur = (double)(monotime_us() - s->t_start_us) / 1e6;
	/* an HTTP CONNECT's outcome starts with the status it answered */
	if (outcome != NULL && outcome[0] >= '1' && outcome[0] <= '5' &&
	    strlen(outcome) > 4 && outcome[3] == ' ' &&
	    sscanf(outcome, "%3d", &a.status) == 1)
		outcome += 4;
	a.outcome = outcome;
	if (s->proto == PROTO_HTTP && s->target != NULL)
		a.method = "CONNECT";
	accesslog_write(&a);
}

static void session_log(struct session *s, const char *outcome)
{
	if (s->drv->log != NULL)
		s->drv->log(s, outcome);
	else
		session_log_line(s, outcome);
}

static void session_unwatch(struct event *ev, short *flags)
{
	if (*flags != 0)
		event_del(ev);
	*flags = 0;
}

static void session_client_cb(evutil_socket_t fd, short what, void *arg);
static void session_upstream_cb(evutil_socket_t fd, short what, void *arg);

void session_watch_et(struct session *s, bool client)
{
	struct event *ev = client ? &s->cev : &s->uev;
	short *cur = client ? &s->cflags : &s->uflags;
	const short et = EV_READ | EV_WRITE | EV_ET | EV_CLOSED;

	if (*cur == et)
		return;
	session_unwatch(ev, cur);
	event_assign(ev, sess_base, client ? s->cfd : s->ufd,
		     et | EV_PERSIST,
		     client ? session_client_cb : session_upstream_cb, s);
	if (event_add(ev, NULL) == 0)
		*cur = et;
	/* a new registration reports what the socket is now: the edges
	 * recorded before belong to the old one */
	s->rdy &= (uint8_t)(client ? ~(SESS_RDY_CR | SESS_RDY_CW | SESS_RDY_CH)
				   : ~(SESS_RDY_UR | SESS_RDY_UW |
				       SESS_RDY_UH));
}

/* Watch fd for exactly flags (0 = nothing). */
void session_watch(struct session *s, bool client, short flags)
{
	struct event *ev = client ? &s->cev : &s->uev;
	short *cur = client ? &s->cflags : &s->uflags;

	if (*cur == flags)
		return;
	session_unwatch(ev, cur);
	if (flags == 0)
		return;
	event_assign(ev, sess_base, client ? s->cfd : s->ufd,
		     flags | EV_PERSIST,
		     client ? session_client_cb : session_upstream_cb, s);
	if (event_add(ev, NULL) == 0)
		*cur = flags;
}

void session_hs_free(struct session *s)
{
	struct hs *hs = s->hs;

	if (hs == NULL)
		return;
	evtimer_del(&hs->timer);
	if (hs->dial != NULL)
		dial_cancel(hs->dial);
	free(hs->own_hops);
	explicit_bzero(hs->pass, sizeof(hs->pass));
	/* the raw request may hold credentials (Proxy-Authorization) */
	explicit_bzero(hs->buf, hs->len);
	free(hs);
	s->hs = NULL;
}

/* Everything but the client socket: the counters, the access line, the
 * ruleset's pending decision, the driver's state, the upstream side. */
static void session_release(struct session *s, const char *outcome)
{
	if (s->active)
		front_stats.active--;
	else
		front_stats.halfopen--;
	session_log(s, outcome);
	route_forget(s);
	if (s->drv->on_close != NULL)
		s->drv->on_close(s);
	session_unwatch(&s->uev, &s->uflags);
	if (s->hs != NULL && s->hs->dial != NULL)
		s->ufd = -1; /* still the dialer's: dial_cancel closes it */
	session_hs_free(s);
	relay_release(&s->up);
	relay_release(&s->down);
	if (s->ufd >= 0)
		close(s->ufd);
	s->ufd = -1;
}

/* The client socket goes too, and the session to the reaper. */
static void session_finish(struct session *s)
{
	session_unwatch(&s->cev, &s->cflags);
	session_unwatch(&s->uev, &s->uflags); /* a lingering one's timer */
	if (s->cfd >= 0)
		close(s->cfd);
	s->cfd = -1;
	s->state = SS_CLOSED;
	if (s->more)
		session_more_del(s);
	sess_list_del(&sess_live, s);
	sess_list_add(&sess_dead, s);
	sess_count--;
	event_active(sess_reaper, EV_TIMEOUT, 1);
	listener_session_closed();
}

void session_close(struct session *s, const char *outcome)
{
	/* a lingering session has ended already: it finishes by itself */
	if (s->state == SS_CLOSED || s->state == SS_LINGER)
		return;
	session_release(s, outcome);
	session_finish(s);
}

#define SESS_LINGER_BYTES (1u << 20)

static void session_linger_timeout_cb(evutil_socket_t fd, short what,
				      void *arg)
{
	(void)fd;
	(void)what;
	session_finish(arg);
}

void session_linger(struct session *s, const char *outcome)
{
	static const struct timeval tv = { 5, 0 };

	if (s->state == SS_CLOSED || s->state == SS_LINGER)
		return;
	session_release(s, outcome);
	s->state = SS_LINGER;
	s->bytes_up = 0; /* from now on: bytes drained */
	if (shutdown(s->cfd, SHUT_WR) < 0) {
		session_finish(s);
		return;
	}
	session_watch(s, true, EV_READ);
	event_assign(&s->uev, sess_base, -1, 0, session_linger_timeout_cb, s);
	if (event_add(&s->uev, &tv) == 0)
		s->uflags = EV_TIMEOUT;
}

/* Read and drop what the client still sends; close on its EOF. */
static void session_linger_read(struct session *s)
{
	char buf[4096];
	ssize_t n = recv(s->cfd, buf, sizeof(buf), 0);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0 && (s->bytes_up += (uint64_t)n) < SESS_LINGER_BYTES)
		return;
	session_finish(s);
}

void session_drain(void)
{
	struct session *s, *next;

	for (s = sess_live; s != NULL; s = next) {
		next = s->next;
		if (s->drv->on_drain != NULL)
			s->drv->on_drain(s);
	}
}

void session_close_all(const char *outcome)
{
	struct session *s;

	while ((s = sess_live) != NULL) {
		if (s->state == SS_LINGER)
			session_finish(s);
		else
			session_close(s, outcome);
	}
}

int session_reply(struct session *s, const void *buf, size_t len)
{
	ssize_t n;

	do {
		n = send(s->cfd, buf, len, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n > 0)
		front_stats.hs_tx += (uint64_t)n;
	/* replies are small; a client that cannot take one is not served */
	return n == (ssize_t)len ? 0 : -1;
}

/* ---- relaying ----
 *
 * Both sockets of a tunnel are registered once, edge-triggered, for
 * reading and writing (session_watch_et()): no epoll_ctl() while it lives,
 * whatever the backpressure. Each edge sets a bit in s->rdy; relay_flow()
 * clears it when a call shows the socket empty or full. */

/* Off the queue of tunnels to resume (a short queue: the busiest). */
static void session_more_del(struct session *s)
{
	struct session **pp = &sess_more;

	while (*pp != s)
		pp = &(*pp)->more_next;
	*pp = s->more_next;
	if (sess_more_tail == &s->more_next)
		sess_more_tail = pp;
	s->more = false;
	sess_more_n--;
}

/* One direction. 0 wait, 1 more to move later, -1 error. */
static int session_flow(struct session *s, bool upward)
{
	uint8_t rb = upward ? SESS_RDY_CR : SESS_RDY_UR;
	uint8_t wb = upward ? SESS_RDY_UW : SESS_RDY_CW;
	uint8_t hb = upward ? SESS_RDY_CH : SESS_RDY_UH;
	struct relay_ready rdy = { (s->rdy & rb) != 0, (s->rdy & wb) != 0,
				   (s->rdy & hb) != 0 };
	uint64_t moved;
	int r;

	if (upward) {
		r = relay_flow(&s->up, s->cfd, s->ufd, relay_done(&s->down),
			       &rdy, &moved);
		s->bytes_up += moved;
		front_stats.bytes_up += moved;
	} else {
		r = relay_flow(&s->down, s->ufd, s->cfd, relay_done(&s->up),
			       &rdy, &moved);
		s->bytes_down += moved;
		front_stats.bytes_down += moved;
	}
	s->rdy &= (uint8_t)~(rb | wb);
	s->rdy |= (uint8_t)((rdy.src ? rb : 0) | (rdy.dst ? wb : 0));
	return r;
}

static void session_relay_run(struct session *s)
{
	static const struct timeval now = { 0, 0 };
	int up = session_flow(s, true), down = up < 0 ? 0 : session_flow(s, false);

	if (up < 0 || down < 0) {
		char why[64];
		snprintf(why, sizeof(why), "relay error: %s", strerror(errno));
		session_close(s, why);
		return;
	}
	if (relay_done(&s->up) && relay_done(&s->down)) {
		session_close(s, "ok");
		return;
	}
	if ((up > 0 || down > 0) && !s->more) {
		s->more = true;
		s->more_next = NULL;
		*sess_more_tail = s;
		sess_more_tail = &s->more_next;
		sess_more_n++;
		evtimer_add(sess_more_ev, &now);
	}
}

static void session_more_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	/* one turn each for those queued now; one that runs out of rounds
	 * again queues behind them for the next turn */
	for (unsigned n = sess_more_n; n > 0 && sess_more != NULL; n--) {
		struct session *s = sess_more;

		session_more_del(s);
		session_relay_run(s);
	}
}

/* Note what an edge of an edge-triggered socket said. */
static void session_edge(struct session *s, short what, bool client)
{
	if (what & EV_READ)
		s->rdy |= client ? SESS_RDY_CR : SESS_RDY_UR;
	if (what & EV_WRITE)
		s->rdy |= client ? SESS_RDY_CW : SESS_RDY_UW;
	if (what & EV_CLOSED)
		s->rdy |= client ? SESS_RDY_CR | SESS_RDY_CH
				 : SESS_RDY_UR | SESS_RDY_UH;
}

static void session_relay_event(struct session *s, short what, bool client)
{
	session_edge(s, what, client);
	session_relay_run(s);
}

void session_set_active(struct session *s)
{
	if (s->active)
		return;
	s->active = true;
	front_stats.halfopen--;
	front_stats.active++;
	if (front_stats.active > front_stats.peak)
		front_stats.peak = front_stats.active;
}

void session_start_relay(struct session *s)
{
	struct hs *hs = s->hs;
	size_t left = hs != NULL ? (size_t)(hs->len - hs->off) : 0;

	if (left > 0 && relay_preload(&s->up, hs->buf + hs->off, left) < 0) {
		session_close(s, "out of memory");
		return;
	}
	session_hs_free(s);
	s->state = SS_RELAY;
	session_set_active(s);
	/* a socket that was not registered this way reports its state when
	 * it is; the client's edges seen since the request are in s->rdy */
	session_watch_et(s, true);
	session_watch_et(s, false);
	/* the reply has just gone out and the upstream socket is fresh:
	 * both take bytes, so what the client sent after its request goes
	 * on now, not after another wakeup */
	s->rdy |= SESS_RDY_CW | SESS_RDY_UW;
	session_relay_run(s);
}

/* ---- handshake ---- */

/* Read what the client sent into the handshake buffer and hand it to the
 * driver, until a read comes back short: the client socket is registered
 * edge-triggered, so nothing may stay unread that no new edge announces.
 * Stops when the driver moves on (or closes). */
static int session_hs_read1(struct session *s);

static void session_hs_read(struct session *s)
{
	bool more;

	/* a short read empties the socket, but an EOF that came with the
	 * bytes is still to be read: no later edge would say so */
	do {
		int r = session_hs_read1(s);

		more = r > 0 || (r == 0 && (s->rdy & SESS_RDY_CH));
	} while (more && s->state == SS_HANDSHAKE && s->hs != NULL);
	/* the driver moved on with more (or the EOF) perhaps waiting:
	 * relaying reads it first */
	if (more)
		s->rdy |= SESS_RDY_CR;
}

/* One read: 1 it filled the buffer (there may be more), 0 it was short,
 * -1 nothing to read now (or the session ended). */
static int session_hs_read1(struct session *s)
{
	struct hs *hs = s->hs;
	size_t want;
	ssize_t n;

	if (hs->off > 0) {
		memmove(hs->buf, hs->buf + hs->off, hs->len - hs->off);
		hs->len -= hs->off;
		hs->off = 0;
	}
	if (hs->len == hs->cap) {
		session_close(s, "request too large");
		return -1;
	}
	want = (size_t)(hs->cap - hs->len);
	n = recv(s->cfd, hs->buf + hs->len, want, 0);
	if (n == 0) {
		session_close(s, hs->len > 0 ? "client closed mid-request"
					     : "client closed");
		return -1;
	}
	if (n < 0) {
		if (errno == EINTR)
			return 1;
		if (errno != EAGAIN)
			session_close(s, "client read error");
		return -1;
	}
	hs->len += (uint16_t)n;
	front_stats.hs_rx += (uint64_t)n;
	s->drv->on_read(s);
	return (size_t)n == want ? 1 : 0;
}

static void session_client_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	if (s->cflags & EV_ET)
		session_edge(s, what, true);
	switch (s->state) {
	case SS_HANDSHAKE:
		if (!(what & EV_READ))
			return; /* an edge-triggered writable edge */
		/* an idle keep-alive connection has no handshake context */
		if (s->hs == NULL && session_hs_next(s) < 0) {
			session_close(s, "out of memory");
			return;
		}
		session_hs_read(s);
		break;
	case SS_RELAY:
		session_relay_run(s); /* the edge is noted */
		break;
	case SS_EXCHANGE:
		s->drv->on_event(s, what, true);
		break;
	case SS_LINGER:
		session_linger_read(s);
		break;
	default:
		/* bytes before the tunnel exists: leave them in the socket
		 * until relaying, which reads them first (edge-triggered: the
		 * edge is noted; level-triggered: stop watching until then) */
		if (!(s->cflags & EV_ET))
			session_watch(s, true, 0);
	}
}

static void session_upstream_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	if (s->state == SS_RELAY)
		session_relay_event(s, what, false);
	else if (s->state == SS_DIAL && s->hs->dial != NULL)
		dial_on_event(s->hs->dial, what);
	else if (s->drv->on_event != NULL)
		s->drv->on_event(s, what, false);
}

/* The dialer's socket is watched through the session's own event, which
 * then carries on into relaying without epoll changes. */
static void session_dial_watch(int fd, short flags, void *arg)
{
	struct session *s = arg;

	if (s->ufd != fd) {
		session_watch(s, false, 0);
		s->ufd = fd;
	}
	session_watch(s, false, flags);
}

static void session_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	front_stats.reject_timeout++;
	s->drv->on_timeout(s);
	session_close(s, "timeout");
}

void session_arm_deadline(struct session *s)
{
	evtimer_add(&s->hs->timer, sess_deadline);
}

int session_hs_next(struct session *s)
{
	struct hs *hs = s->hs;

	if (hs == NULL) {
		hs = calloc(1, sizeof(*hs) + s->drv->bufsize);
		if (hs == NULL)
			return -1;
		hs->cap = s->drv->bufsize;
		evtimer_assign(&hs->timer, sess_base, session_timeout_cb, s);
		s->hs = hs;
	} else {
		/* the bytes already read are the next request's */
		memmove(hs->buf, hs->buf + hs->off, hs->len - hs->off);
		hs->len -= hs->off;
		hs->off = 0;
		free(hs->own_hops);
		hs->own_hops = NULL;
		hs->hops = NULL;
		hs->nhops = 0;
		hs->request_done = hs->forwarding = false;
		hs->has_user = hs->has_pass = false;
		explicit_bzero(hs->user, sizeof(hs->user));
		explicit_bzero(hs->pass, sizeof(hs->pass));
		memset(&hs->target, 0, sizeof(hs->target));
	}
	s->state = SS_HANDSHAKE;
	session_arm_deadline(s);
	if (s->drv->on_accept != NULL)
		s->drv->on_accept(s);
	return 0;
}

void session_reset_request(struct session *s)
{
	free(s->target);
	s->target = NULL;
	free(s->user);
	s->user = NULL;
	s->block = SESS_BLOCK_NONE;
	if (s->route_owned)
		free(s->route);
	s->route = NULL;
	s->route_owned = false;
	s->dialed = false;
}

static void session_forward_failed(struct session *s,
				   const struct dial_result *r)
{
	struct hs *hs = s->hs;

	/* the request stays pending: the ruleset may try another way */
	session_watch(s, false, 0);
	s->ufd = -1;
	free(hs->own_hops);
	hs->own_hops = NULL;
	hs->forwarding = false;
	s->state = SS_ROUTE;
	route_forward_result(s, false, dial_strerror(r->err));
}

static void session_dialed(const struct dial_result *r, void *arg)
{
	struct session *s = arg;
	bool forwarding = s->hs->forwarding;
	char why[96];
	int how;

	s->hs->dial = NULL;
	if (r->err == DIAL_ERR_BLOCKED)
		s->block = r->self_dial ? SESS_BLOCK_SELF
			   : SESS_BLOCK_CLASS +
				   (r->peer != NULL ? addr_classify(r->peer)
						    : ADDR_CLASS_UNKNOWN);
	front_stats.dial_rx += r->rx;
	front_stats.dial_tx += r->tx;
	if (forwarding && r->err != DIAL_OK) {
		session_forward_failed(s, r);
		return;
	}
	if (r->err == DIAL_OK) {
		s->ufd = r->fd;
		if (forwarding)
			route_forward_result(s, true, NULL);
	} else {
		/* the dialer closes its socket after this callback */
		session_watch(s, false, 0);
		s->ufd = -1;
	}
	how = s->drv->on_dialed(s, r);
	if (how < 0) {
		if (r->err == DIAL_OK) {
			session_close(s, "client gone");
			return;
		}
		front_stats.reject_upstream++;
		if (r->err == DIAL_ERR_CONNECT || r->err == DIAL_ERR_SYSTEM)
			snprintf(why, sizeof(why), "%s: %s",
				 dial_strerror(r->err), strerror(r->sys_errno));
		else
			snprintf(why, sizeof(why), "%s", dial_strerror(r->err));
		session_close(s, why);
		return;
	}
	stats_served(r->latency_us);
	if (how == 0)
		session_start_relay(s);
}

void session_dial(struct session *s)
{
	struct hs *hs = s->hs;

	s->state = SS_DIAL;
	s->dialed = true;
	if (s->drv->before_dial != NULL && s->drv->before_dial(s))
		return;
	hs->dial = dial_start(&hs->target, hs->hops, hs->nhops, 0,
			      session_dialed, session_dial_watch, s);
	if (hs->dial == NULL) {
		struct dial_result r = { .err = DIAL_ERR_SYSTEM,
					 .sys_errno = ENOMEM,
					 .fd = -1 };
		session_dialed(&r, s);
	}
}

static void session_direct(struct session *s)
{
	struct hs *hs = s->hs;

	/* without a ruleset: direct, or through the -x chain */
	hs->hops = sess_fc->hops;
	hs->nhops = sess_fc->nhops;
	s->route = sess_fc->nhops > 0 ? (char *)sess_fc->chain_text : NULL;
	session_dial(s);
}

void session_note_user(struct session *s)
{
	const struct hs *hs = s->hs;

	free(s->user);
	s->user = NULL;
	if (hs->has_user) {
		char user[3 * sizeof(hs->user) + 4];

		accesslog_user_text(hs->user, user, sizeof(user));
		s->user = strdup(user);
	}
}

void session_request(struct session *s)
{
	struct hs *hs = s->hs;
	char buf[ADDR_STRLEN];

	hs->request_done = true;
	s->state = SS_ROUTE;
	front_stats.requests++;
	/* [::ffff:a.b.c.d] is the IPv4 host: the ruleset's route() decides
	 * it, as the IPv4 literal (docs/ruleset.md) */
	(void)addr_unmap(&hs->target);
	free(s->target);
	s->target = NULL;
	if (addr_format(&hs->target, buf, sizeof(buf)) >= 0)
		s->target = strdup(buf);
	session_note_user(s);
	if (!sess_fc->use_ruleset) {
		session_direct(s);
		return;
	}
	if (route_ask(s) < 0)
		session_route_failed(s, DIAL_ERR_RULESET_DOWN);
}

void session_route_failed(struct session *s, enum dial_err err)
{
	struct dial_result r = { .err = err, .fd = -1 };

	front_stats.reject_ruleset++;
	(void)s->drv->on_dialed(s, &r);
	session_close(s, dial_strerror(err));
}

/* "socks5://a->http://b" NUL "host:port" (the address the ruleset sent
 * the request to, "" when it is the one asked for) for the access log. */
static char *session_route_text(const struct proxy_hop *hops, size_t n,
				const struct netaddr *to, bool redirected)
{
	char buf[CONF_PROXY_MAX + ADDR_STRLEN + 2];
	size_t off;
	char *out;

	/* for the log: what does not fit is left out */
	(void)proxyuri_format_chain(hops, n, "->", buf, CONF_PROXY_MAX);
	if (n == 0)
		memcpy(buf, "direct", 7);
	off = strlen(buf) + 1;
	buf[off] = '\0';
	if (redirected)
		(void)addr_format(to, buf + off, sizeof(buf) - off);
	off += strlen(buf + off) + 1;
	out = malloc(off);
	if (out != NULL)
		memcpy(out, buf, off);
	return out;
}

/* The ruleset's addr and hops (first hop first), after the -x chain. */
static int session_take_decision(struct session *s,
				 const struct route_decision *d)
{
	struct hs *hs = s->hs;
	size_t n = sess_fc->nhops + d->nhops;
	struct proxy_hop *hops;
	struct netaddr to;
	bool redirected;
	const char *why;

	if (addr_parse(&to, d->addr.p, d->addr.len, -1) < 0 || to.port == 0)
		return -1;
	(void)addr_unmap(&to);
	if (n > PROXYCHAIN_MAX * 2)
		return -1;
	hops = n > 0 ? calloc(n, sizeof(*hops)) : NULL;
	if (n > 0 && hops == NULL)
		return -1;
	if (sess_fc->nhops > 0)
		memcpy(hops, sess_fc->hops, sess_fc->nhops * sizeof(*hops));
	for (size_t i = 0; i < d->nhops; i++) {
		if (proxyuri_parse(&hops[sess_fc->nhops + i], d->hops[i].p,
				   d->hops[i].len, &why) < 0) {
			free(hops);
			return -1;
		}
	}
	redirected = memcmp(&to, &hs->target, sizeof(to)) != 0;
	free(hs->own_hops);
	hs->own_hops = hops;
	hs->hops = hops;
	hs->nhops = n;
	hs->target = to;
	if (s->route_owned)
		free(s->route);
	s->route = session_route_text(hops, n, &to, redirected);
	s->route_owned = s->route != NULL;
	return 0;
}

void session_route_decided(struct session *s, const struct route_decision *d,
			   bool forward)
{
	if (forward) {
		if (s->state != SS_ROUTE) {
			route_forward_result(s, false,
					     "the request is not forwardable");
			return;
		}
		if (session_take_decision(s, d) < 0) {
			route_forward_result(s, false, "invalid address");
			return;
		}
		s->hs->forwarding = true;
		session_dial(s);
		return;
	}
	if (s->state != SS_ROUTE)
		return; /* forwarded already (ROUTE_DONE), or closing */
	switch (d->result) {
	case ROUTE_GO:
		if (session_take_decision(s, d) < 0) {
			LOG_RL(LOGL_WARN, 10,
			       "ruleset returned an unusable route for %s",
			       s->target ? s->target : "?");
			session_route_failed(s, DIAL_ERR_RULESET_ERROR);
			return;
		}
		session_dial(s);
		return;
	case ROUTE_NO_RULESET:
		session_direct(s);
		return;
	case ROUTE_ERROR:
		session_route_failed(s, DIAL_ERR_RULESET_ERROR);
		return;
	default:
		session_route_failed(s, DIAL_ERR_RULESET_REJECT);
	}
}

/* --tproxy: the connection's own local address is where the client
 * meant to go; it is routed as a CONNECT to it. */
static void session_tproxy(struct session *s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	s->proto = PROTO_TPROXY;
	if (getsockname(s->cfd, (struct sockaddr *)&ss, &len) < 0 ||
	    addr_from_sockaddr(&s->hs->target, (struct sockaddr *)&ss) < 0) {
		session_close(s, "no original destination");
		return;
	}
	session_request(s);
}

void session_accept(int fd, const struct sockaddr *sa, socklen_t salen,
		    int lkind, bool readable)
{
	const struct sess_driver *drv;
	struct session *s;

	switch (lkind) {
	case LISTENER_SOCKS:
		drv = &socks_driver;
		break;
	case LISTENER_HTTP:
		drv = &http_driver;
		break;
	case LISTENER_FORWARD:
	case LISTENER_TPROXY:
		drv = &forward_driver;
		break;
	default:
		close(fd);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (s != NULL)
		s->hs = calloc(1, sizeof(struct hs) + drv->bufsize);
	if (s == NULL || s->hs == NULL) {
		LOG_RL(LOGL_ERROR, 10, "accept: out of memory");
		free(s);
		close(fd);
		return;
	}
	s->id = ++sess_next_id;
	s->reply = -1;
	s->cfd = fd;
	s->ufd = -1;
	s->lkind = (uint8_t)lkind;
	s->drv = drv;
	s->t_start_us = monotime_us();
	if (salen <= sizeof(s->client))
		memcpy(&s->client, sa, salen);
	s->hs->cap = drv->bufsize;
	sess_list_add(&sess_live, s);
	sess_count++;
	front_stats.halfopen++;
	evtimer_assign(&s->hs->timer, sess_base, session_timeout_cb, s);
	evtimer_add(&s->hs->timer, sess_deadline);
	if (lkind == LISTENER_FORWARD) {
		s->proto = PROTO_FORWARD;
		s->hs->target = sess_fc->forward;
		session_request(s);
		return;
	}
	if (lkind == LISTENER_TPROXY) {
		session_tproxy(s);
		return;
	}
	if (drv->on_accept != NULL)
		drv->on_accept(s);
	if (readable) {
		/* the request (or its first part) is in: no wakeup to wait
		 * for; the driver may answer, or even be relaying, by the
		 * time this returns */
		session_hs_read(s);
		if (s->state != SS_HANDSHAKE || s->hs == NULL)
			return;
	}
	session_watch_et(s, true);
}
