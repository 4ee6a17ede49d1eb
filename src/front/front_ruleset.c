/* front_ruleset: the front's end of the front<->ruleset channel. The
 * ruleset process sends decisions (for route.c), asks for names to be
 * resolved (await.resolve: it has no network), for the front's counters
 * (/stats) and for connections its RPC client needs (rpcdial.c). A
 * violation closes the channel, fails what waited on it and is reported
 * to the parent, which replaces the ruleset process. */
#include "front/front_ruleset.h"

#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/msg.h"
#include "common/route_wire.h"
#include "front/front_parent.h"
#include "front/resolver.h"
#include "front/route.h"
#include "front/rpcdial.h"
#include "front/session.h"
#include "front/stats.h"

#define RESOLVE_PENDING_MAX 1024

struct resolve_pending {
	uint32_t id;
	struct resolver_query *q;
};

static struct {
	struct event_base *base;
	struct chanev ch;
	struct resolve_pending res[RESOLVE_PENDING_MAX];
	unsigned nres;
} ruleset_link; /* the channel, and the resolves it asked for */

struct chanev *front_ruleset(void)
{
	return ruleset_link.ch.open ? &ruleset_link.ch : NULL;
}

/* The ruleset process went away: every waiting request fails closed. */
static void front_ruleset_fail_all(void)
{
	route_fail_all();
	for (unsigned i = 0; i < ruleset_link.nres; i++)
		resolver_cancel(ruleset_link.res[i].q);
	ruleset_link.nres = 0;
	rpcdial_cancel_all();
}

/* The ruleset process broke the protocol: drop the channel and tell the
 * parent, which replaces that process (and so the channel). */
static void front_ruleset_fault(void)
{
	chanev_close(&ruleset_link.ch);
	front_ruleset_fail_all();
	chanev_send(front_parent(), MSG_PEER_FAULT, 0, NULL, 0, -1);
}

static void front_ruleset_resolved(int result, const struct sockaddr *sa,
				   socklen_t len, void *arg)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;
	struct msg_result r = { .ok = 0 };
	char text[ADDR_STRLEN] = "";
	struct netaddr na;
	struct iovec iov[2];

	(void)len;
	for (unsigned i = 0; i < ruleset_link.nres; i++) {
		if (ruleset_link.res[i].id == id) {
			ruleset_link.res[i] = ruleset_link.res[--ruleset_link.nres];
			break;
		}
	}
	if (result == 0 && addr_from_sockaddr(&na, sa) == 0 &&
	    addr_format_host(&na, text, sizeof(text)) > 0)
		r.ok = 1;
	iov[0] = (struct iovec){ &r, sizeof(r) };
	iov[1] = (struct iovec){ text, r.ok ? strlen(text) : 0 };
	if (ruleset_link.ch.open)
		chanev_sendv(&ruleset_link.ch, MSG_RESOLVE_RES, id, iov,
			     r.ok ? 2 : 1, -1);
}

/* await.resolve in the ruleset: we resolve, it has no network. */
static void front_ruleset_resolve(const struct msg *m)
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
	    ruleset_link.nres == RESOLVE_PENDING_MAX) {
		front_ruleset_resolved(-1, NULL, 0, (void *)(uintptr_t)m->id);
		return;
	}
	r = resolver_lookup(name, AF_UNSPEC, &ss, &len, front_ruleset_resolved,
			    (void *)(uintptr_t)m->id, &q);
	if (r == 0) {
		ruleset_link.res[ruleset_link.nres++] =
			(struct resolve_pending){ m->id, q };
		return;
	}
	front_ruleset_resolved(r > 0 ? 0 : -1, (struct sockaddr *)&ss, len,
			       (void *)(uintptr_t)m->id);
}

/* The front<->ruleset channel has one state: open. */
#define FR_OPEN 1

/* A decision for a session (ROUTE_REPLY), or a dial await.forward asks
 * for (FORWARD_REQ, always ROUTE_GO). */
static void front_ruleset_decision(struct chanev *ce, struct msg *m,
				   bool forward)
{
	struct route_decision d;

	if (route_wire_decode(m->data, m->len, &d) < 0 ||
	    (forward && d.result != ROUTE_GO)) {
		chanev_reject(ce, m, forward ? "malformed FORWARD_REQ"
					     : "malformed ROUTE_REPLY");
		return;
	}
	route_decided(m->id, &d, forward);
}

static void front_dispatch_ruleset_route_reply(struct chanev *ce,
					       struct msg *m, void *arg)
{
	(void)arg;
	front_ruleset_decision(ce, m, false);
}

static void front_dispatch_ruleset_forward_req(struct chanev *ce,
					       struct msg *m, void *arg)
{
	(void)arg;
	front_ruleset_decision(ce, m, true);
}

static void front_dispatch_ruleset_resolve_req(struct chanev *ce,
					       struct msg *m, void *arg)
{
	(void)ce;
	(void)arg;
	front_ruleset_resolve(m);
}

static void front_dispatch_ruleset_stats_req(struct chanev *ce,
					     struct msg *m, void *arg)
{
	struct msg_stats st;

	(void)ce;
	(void)arg;
	stats_encode(&st);
	chanev_send(&ruleset_link.ch, MSG_STATS, m->id, &st, sizeof(st), -1);
}

static void front_dispatch_ruleset_dial_req(struct chanev *ce, struct msg *m,
					    void *arg)
{
	(void)ce;
	(void)arg;
	rpcdial_start(m->id, m->data, m->len);
}

static void front_dispatch_ruleset_dial_cancel(struct chanev *ce,
					       struct msg *m, void *arg)
{
	(void)ce;
	(void)arg;
	rpcdial_cancel(m->id);
}

/* What the ruleset process sends. */
static const struct chanev_row front_dispatch_ruleset[] = {
	{ MSG_ROUTE_REPLY, FR_OPEN, front_dispatch_ruleset_route_reply },
	{ MSG_FORWARD_REQ, FR_OPEN, front_dispatch_ruleset_forward_req },
	{ MSG_RESOLVE_REQ, FR_OPEN, front_dispatch_ruleset_resolve_req },
	{ MSG_STATS_REQ, FR_OPEN, front_dispatch_ruleset_stats_req },
	{ MSG_DIAL_REQ, FR_OPEN, front_dispatch_ruleset_dial_req },
	{ MSG_DIAL_CANCEL, FR_OPEN, front_dispatch_ruleset_dial_cancel },
};

static void front_ruleset_on_err(struct chanev *ce, int err, const char *why,
				 void *arg)
{
	(void)arg;
	(void)ce;
	if (err != 0) {
		LOGE("ruleset channel: %s", why);
		front_ruleset_fault();
		return;
	}
	LOGN("ruleset channel closed; requests fail until it is back");
	chanev_close(&ruleset_link.ch);
	front_ruleset_fail_all();
}

static const struct chanev_end front_ruleset_end = {
	CHANEV_ROWS(front_dispatch_ruleset), front_ruleset_on_err, NULL
};

void front_ruleset_attach(int fd)
{
	if (ruleset_link.ch.open) {
		chanev_close(&ruleset_link.ch);
		front_ruleset_fail_all();
	}
	if (chanev_init(&ruleset_link.ch, ruleset_link.base, fd, CHAN_FRONT_RULESET,
			ROLE_RULESET, &front_ruleset_end, FR_OPEN, NULL) < 0) {
		LOGE("cannot watch the ruleset channel");
		close(fd);
	}
}

void front_ruleset_setup(struct event_base *base)
{
	ruleset_link.base = base;
}
