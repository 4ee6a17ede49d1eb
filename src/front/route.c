#include "front/route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/u32sort.h"
#include "common/route_wire.h"
#include "front/resolver.h"
#include "front/rpcdial.h"
#include "front/session.h"
#include "privsep/sandbox.h"

#define ROUTE_BUCKETS 4096 /* power of two */
#define RESOLVE_PENDING_MAX 1024

struct resolve_pending {
	uint32_t id;
	struct resolver_query *q;
};

static struct {
	struct event_base *base;
	struct chanev ch;
	struct session *bucket[ROUTE_BUCKETS];
	unsigned npending;
	struct resolve_pending res[RESOLVE_PENDING_MAX];
	unsigned nres;
} route;

static struct session **route_slot(uint32_t id)
{
	return &route.bucket[id & (ROUTE_BUCKETS - 1)];
}

static void route_add(struct session *s)
{
	struct session **slot = route_slot(s->id);

	s->route_next = *slot;
	*slot = s;
	s->route_pending = true;
	route.npending++;
}

static void route_del(struct session *s)
{
	struct session **pp = route_slot(s->id);

	if (!s->route_pending)
		return;
	for (; *pp != NULL; pp = &(*pp)->route_next) {
		if (*pp == s) {
			*pp = s->route_next;
			break;
		}
	}
	s->route_next = NULL;
	s->route_pending = false;
	route.npending--;
}

static struct session *route_find(uint32_t id)
{
	struct session *s = *route_slot(id);

	while (s != NULL && s->id != id)
		s = s->route_next;
	return s;
}

static void (*route_fault_cb)(void);

void route_set_fault_cb(void (*cb)(void))
{
	route_fault_cb = cb;
}

static void route_fail_all(void);

/* The ruleset process broke the protocol: drop the channel and tell the
 * parent, which replaces that process (and so the channel). */
static void route_peer_fault(void)
{
	chanev_close(&route.ch);
	route_fail_all();
	if (route_fault_cb != NULL)
		route_fault_cb();
}

bool route_available(void)
{
	return route.ch.open;
}

/* The ruleset process went away: every waiting request fails closed. */
static void route_fail_all(void)
{
	for (unsigned i = 0; i < ROUTE_BUCKETS; i++) {
		struct session *s;

		while ((s = route.bucket[i]) != NULL) {
			route_del(s);
			session_route_failed(s, DIAL_ERR_RULESET_DOWN);
		}
	}
	for (unsigned i = 0; i < route.nres; i++)
		resolver_cancel(route.res[i].q);
	route.nres = 0;
	rpcdial_cancel_all();
}

int route_ask(struct session *s)
{
	struct hs *hs = s->hs;
	char addr[ADDR_STRLEN];
	char buf[sizeof(struct msg_route_req) + ROUTE_STR_MAX +
		 2 * ROUTE_CRED_MAX];
	struct route_request r = { 0 };
	int n = addr_format(&hs->target, addr, sizeof(addr));

	if (hs->target.type == ADDR_DOMAIN && hs->target.namelen == 0 &&
	    hs->target.port == 0)
		n = snprintf(addr, sizeof(addr), ":"); /* -f ":" */
	if (!route.ch.open || n < 0)
		return -1;
	r.kind = hs->target.type == ADDR_DOMAIN ? ROUTE_KIND_RESOLVE
		 : hs->target.type == ADDR_IPV4 ? ROUTE_KIND_ROUTE
						 : ROUTE_KIND_ROUTE6;
	r.addr = (struct route_str){ addr, (uint16_t)n };
	r.has_user = hs->has_user;
	r.has_pass = hs->has_pass;
	r.user = (struct route_str){ hs->user, (uint16_t)strlen(hs->user) };
	r.pass = (struct route_str){ hs->pass, (uint16_t)strlen(hs->pass) };
	n = route_wire_encode_req(buf, sizeof(buf), &r);
	if (n < 0 || chanev_send(&route.ch, MSG_ROUTE_REQ, s->id, buf,
				 (size_t)n, -1) < 0) {
		explicit_bzero(buf, sizeof(buf));
		return -1;
	}
	explicit_bzero(buf, sizeof(buf)); /* the password was in there */
	route_add(s);
	return 0;
}

void route_forget(struct session *s)
{
	if (!s->route_pending)
		return;
	route_del(s);
	if (route.ch.open)
		chanev_send(&route.ch, MSG_ROUTE_CANCEL, s->id, NULL, 0, -1);
}

void route_forward_result(struct session *s, bool ok, const char *err)
{
	struct msg_result r = { .ok = ok ? 1 : 0 };
	size_t elen = ok || err == NULL ? 0 : strnlen(err, 256);
	struct iovec iov[2] = { { &r, sizeof(r) },
				{ (void *)(uintptr_t)err, elen } };

	if (ok)
		route_del(s); /* committed: a later reply is moot */
	if (route.ch.open)
		chanev_sendv(&route.ch, MSG_FORWARD_RES, s->id, iov,
			     elen > 0 ? 2 : 1, -1);
}

static void route_decision(const struct msg *m, bool forward)
{
	struct route_decision d;
	struct session *s = route_find(m->id);

	if (route_wire_decode(m->data, m->len, &d) < 0 ||
	    (forward && d.result != ROUTE_GO)) {
		LOGE("malformed %s from the ruleset process", msg_name(m->type));
		route_peer_fault();
		return;
	}
	if (s == NULL)
		return; /* the session is gone: drop */
	if (!forward)
		route_del(s);
	session_route_decided(s, &d, forward);
}

static void route_resolved(int result, const struct sockaddr *sa,
			   socklen_t len, void *arg)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;
	struct msg_result r = { .ok = 0 };
	char text[ADDR_STRLEN] = "";
	struct netaddr na;
	struct iovec iov[2];

	(void)len;
	for (unsigned i = 0; i < route.nres; i++) {
		if (route.res[i].id == id) {
			route.res[i] = route.res[--route.nres];
			break;
		}
	}
	if (result == 0 && addr_from_sockaddr(&na, sa) == 0 &&
	    addr_format_host(&na, text, sizeof(text)) > 0)
		r.ok = 1;
	iov[0] = (struct iovec){ &r, sizeof(r) };
	iov[1] = (struct iovec){ text, r.ok ? strlen(text) : 0 };
	if (route.ch.open)
		chanev_sendv(&route.ch, MSG_RESOLVE_RES, id, iov, r.ok ? 2 : 1,
			     -1);
}

/* await.resolve in the ruleset: we resolve, it has no network. */
static void route_resolve(const struct msg *m)
{
	char name[256];
	struct sockaddr_storage ss;
	socklen_t len;
	struct resolver_query *q = NULL;
	int r;

	memcpy(name, m->data, m->len);
	name[m->len] = '\0';
	/* a name a compromised ruleset process sends is checked here too */
	if (!addr_name_valid(name, m->len) ||
	    route.nres == RESOLVE_PENDING_MAX) {
		route_resolved(-1, NULL, 0, (void *)(uintptr_t)m->id);
		return;
	}
	r = resolver_lookup(name, &ss, &len, route_resolved,
			    (void *)(uintptr_t)m->id, &q);
	if (r == 0) {
		route.res[route.nres++] = (struct resolve_pending){ m->id, q };
		return;
	}
	route_resolved(r > 0 ? 0 : -1, (struct sockaddr *)&ss, len,
		       (void *)(uintptr_t)m->id);
}

/* /stats and /metrics in the ruleset process ask for our counters */
static void route_send_stats(uint32_t id)
{
	const struct front_stats *f = &front_stats;
	const struct resolver_stats *rs = resolver_stats();
	struct msg_stats m = {
		.accepts = f->accepts, .accept_drops = f->accept_drops,
		.requests = f->requests, .success = f->success,
		.reject_ruleset = f->reject_ruleset,
		.reject_timeout = f->reject_timeout,
		.reject_upstream = f->reject_upstream,
		.bytes_up = f->bytes_up, .bytes_down = f->bytes_down,
		.hs_rx = f->hs_rx, .hs_tx = f->hs_tx,
		.dial_rx = f->dial_rx, .dial_tx = f->dial_tx,
		.dns_queries = rs->queries, .dns_success = rs->success,
		.dials = f->dials, .dial_us_sum = f->dial_us_sum,
		.active = f->active, .halfopen = f->halfopen, .peak = f->peak,
		.nlat = f->nlat,
		.sandbox = sandbox_state(),
		.log_dropped = (uint32_t)log_dropped(),
	};
	uint32_t lat[256];
	struct timespec ts;

	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0)
		m.cpu_ns = (uint64_t)ts.tv_sec * 1000000000u +
			   (uint64_t)ts.tv_nsec;
	if (f->nlat > 0) {
		memcpy(lat, f->lat, f->nlat * sizeof(lat[0]));
		u32sort(lat, f->nlat);
		m.lat_p50_us = lat[(f->nlat - 1) * 50 / 100];
		m.lat_p90_us = lat[(f->nlat - 1) * 90 / 100];
		m.lat_p99_us = lat[(f->nlat - 1) * 99 / 100];
		m.lat_max_us = lat[f->nlat - 1];
	}
	chanev_send(&route.ch, MSG_STATS, id, &m, sizeof(m), -1);
}

static void route_on_msg(struct chanev *ce, struct msg *m, void *arg)
{
	(void)ce;
	(void)arg;
	switch (m->type) {
	case MSG_STATS_REQ:
		route_send_stats(m->id);
		break;
	case MSG_ROUTE_REPLY:
		route_decision(m, false);
		break;
	case MSG_FORWARD_REQ:
		route_decision(m, true);
		break;
	case MSG_RESOLVE_REQ:
		route_resolve(m);
		break;
	case MSG_DIAL_REQ:
	case MSG_DIAL_CANCEL:
		rpcdial_on_msg(&route.ch, m);
		break;
	default:
		LOGE("unexpected %s from the ruleset process",
		     msg_name(m->type));
		route_peer_fault();
	}
}

static void route_on_err(struct chanev *ce, int err, const char *why,
			 void *arg)
{
	(void)arg;
	(void)ce;
	if (err != 0) {
		LOGE("ruleset channel: %s", why);
		route_peer_fault();
		return;
	}
	LOGN("ruleset channel closed; requests fail until it is back");
	chanev_close(&route.ch);
	route_fail_all();
}

void route_attach(int fd)
{
	if (route.ch.open) {
		chanev_close(&route.ch);
		route_fail_all();
	}
	if (chanev_init(&route.ch, route.base, fd, CHAN_FRONT_RULESET,
			ROLE_RULESET, route_on_msg, route_on_err, NULL) < 0) {
		LOGE("cannot watch the ruleset channel");
		close(fd);
	}
}

void route_setup(struct event_base *base)
{
	route.base = base;
}
