/* rpcdial: outbound connections for the ruleset process's RPC client
 * (await.invoke and friends). The ruleset process has no network; it asks
 * us to dial an address through a chain (the -x chain first, as for
 * routed requests), and we hand it the connected socket. */
#include "front/rpcdial.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "common/log.h"
#include "common/route_wire.h"
#include "front/dial.h"
#include "front/front_ruleset.h"

#define RPCDIAL_MAX 64 /* dials in flight */

struct rpcdial {
	struct rpcdial *next;
	uint32_t id;
	struct dialer *d;
	int fd;
	struct event ev, timer;
	bool watching;
	struct proxy_hop *hops;
};

static struct {
	struct event_base *base;
	const struct front_conf *fc;
	struct rpcdial *list;
	unsigned n;
} rpcdial;

static void rpcdial_answer(uint32_t id, int fd, const char *err)
{
	struct msg_result r = { .ok = fd >= 0 };
	size_t elen = err != NULL ? strnlen(err, 200) : 0;
	struct iovec iov[2] = { { &r, sizeof(r) },
				{ (void *)(uintptr_t)err, elen } };

	if (front_ruleset() != NULL)
		chanev_sendv(front_ruleset(), MSG_DIAL_RES, id, iov,
			     elen ? 2 : 1, fd);
}

static void rpcdial_free(struct rpcdial *x)
{
	struct rpcdial **pp = &rpcdial.list;

	while (*pp != NULL && *pp != x)
		pp = &(*pp)->next;
	if (*pp == x)
		*pp = x->next;
	rpcdial.n--;
	if (x->watching)
		event_del(&x->ev);
	evtimer_del(&x->timer);
	free(x->hops);
	free(x);
}

static void rpcdial_ev_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rpcdial *x = arg;

	(void)fd;
	dial_on_event(x->d, what);
}

static void rpcdial_watch(int fd, short flags, void *arg)
{
	struct rpcdial *x = arg;

	if (x->watching) {
		event_del(&x->ev);
		x->watching = false;
	}
	x->fd = fd;
	if (flags == 0)
		return;
	event_assign(&x->ev, rpcdial.base, fd, flags | EV_PERSIST,
		     rpcdial_ev_cb, x);
	if (event_add(&x->ev, NULL) == 0)
		x->watching = true;
}

static void rpcdial_done(const struct dial_result *r, void *arg)
{
	struct rpcdial *x = arg;

	if (x->watching) {
		event_del(&x->ev);
		x->watching = false;
	}
	x->d = NULL;
	if (r->err == DIAL_OK) {
		/* the channel owns the socket now (closed once it is sent) */
		if (front_ruleset() != NULL)
			rpcdial_answer(x->id, r->fd, NULL);
		else
			close(r->fd);
	} else {
		rpcdial_answer(x->id, -1, dial_strerror(r->err));
	}
	rpcdial_free(x);
}

static void rpcdial_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct rpcdial *x = arg;

	(void)fd;
	(void)what;
	if (x->watching) {
		event_del(&x->ev);
		x->watching = false;
	}
	dial_cancel(x->d);
	rpcdial_answer(x->id, -1, "timeout");
	rpcdial_free(x);
}

void rpcdial_start(uint32_t id, const void *data, size_t len)
{
	const struct front_conf *fc = rpcdial.fc;
	struct route_decision dec;
	struct netaddr to;
	struct rpcdial *x;
	size_t n;
	const char *why;

	if (route_wire_decode(data, len, &dec) < 0 ||
	    dec.result != ROUTE_GO ||
	    addr_parse(&to, dec.addr.p, dec.addr.len, -1) < 0 ||
	    to.port == 0) {
		rpcdial_answer(id, -1, "invalid address");
		return;
	}
	if (rpcdial.n >= RPCDIAL_MAX) {
		rpcdial_answer(id, -1, "too many RPC connections");
		return;
	}
	x = calloc(1, sizeof(*x));
	n = fc->nhops + dec.nhops;
	if (x != NULL && n > 0)
		x->hops = calloc(n, sizeof(*x->hops));
	if (x == NULL || (n > 0 && x->hops == NULL)) {
		free(x);
		rpcdial_answer(id, -1, "out of memory");
		return;
	}
	if (fc->nhops > 0)
		memcpy(x->hops, fc->hops, fc->nhops * sizeof(*x->hops));
	for (size_t i = 0; i < dec.nhops; i++) {
		if (proxyuri_parse(&x->hops[fc->nhops + i], dec.hops[i].p,
				   dec.hops[i].len, &why) < 0) {
			free(x->hops);
			free(x);
			rpcdial_answer(id, -1, "invalid proxy");
			return;
		}
	}
	x->id = id;
	x->fd = -1;
	x->next = rpcdial.list;
	rpcdial.list = x;
	rpcdial.n++;
	evtimer_assign(&x->timer, rpcdial.base, rpcdial_timeout, x);
	evtimer_add(&x->timer, &fc->timeout);
	/* the ruleset's own RPC, not a client's request: it may call this
	 * daemon's API (its token and code are the ruleset's) */
	x->d = dial_start(&to, x->hops, n, DIAL_F_SELF_OK, rpcdial_done,
			  rpcdial_watch, x);
	if (x->d == NULL) {
		rpcdial_answer(id, -1, "out of memory");
		rpcdial_free(x);
	}
}

void rpcdial_cancel(uint32_t id)
{
	for (struct rpcdial *x = rpcdial.list; x != NULL; x = x->next) {
		if (x->id != id)
			continue;
		if (x->watching) {
			event_del(&x->ev);
			x->watching = false;
		}
		dial_cancel(x->d);
		rpcdial_free(x);
		return;
	}
}

/* The ruleset process went away: nobody wants these any more. */
void rpcdial_cancel_all(void)
{
	while (rpcdial.list != NULL) {
		struct rpcdial *x = rpcdial.list;

		if (x->watching) {
			event_del(&x->ev);
			x->watching = false;
		}
		dial_cancel(x->d);
		rpcdial_free(x);
	}
}

void rpcdial_setup(struct event_base *base, const struct front_conf *fc)
{
	rpcdial.base = base;
	rpcdial.fc = fc;
}
