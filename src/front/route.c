/* route: asking the ruleset process for decisions: the sessions waiting
 * for one, by session id. */
#include "front/route.h"

#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

#include "common/log.h"
#include "common/route_wire.h"
#include "front/front_ruleset.h"
#include "front/session.h"

#define ROUTE_BUCKETS 4096 /* power of two */

static struct {
	struct session *bucket[ROUTE_BUCKETS];
	unsigned npending;
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

/* The ruleset process went away: every waiting request fails closed. */
void route_fail_all(void)
{
	for (unsigned i = 0; i < ROUTE_BUCKETS; i++) {
		struct session *s;

		while ((s = route.bucket[i]) != NULL) {
			route_del(s);
			session_route_failed(s, DIAL_ERR_RULESET_DOWN);
		}
	}
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
	if (front_ruleset() == NULL || n < 0)
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
	if (n < 0 || chanev_send(front_ruleset(), MSG_ROUTE_REQ, s->id, buf,
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
	if (front_ruleset() != NULL)
		chanev_send(front_ruleset(), MSG_ROUTE_CANCEL, s->id, NULL, 0,
			    -1);
}

void route_forward_result(struct session *s, bool ok, const char *err)
{
	struct msg_result r = { .ok = ok ? 1 : 0 };
	size_t elen = ok || err == NULL ? 0 : strnlen(err, 256);
	struct iovec iov[2] = { { &r, sizeof(r) },
				{ (void *)(uintptr_t)err, elen } };

	if (ok)
		route_del(s); /* committed: a later reply is moot */
	if (front_ruleset() != NULL)
		chanev_sendv(front_ruleset(), MSG_FORWARD_RES, s->id, iov,
			     elen > 0 ? 2 : 1, -1);
}

void route_decided(uint32_t id, const struct route_decision *d,
		   bool forward)
{
	struct session *s = route_find(id);

	if (s == NULL)
		return; /* the session is gone: drop */
	if (!forward)
		route_del(s);
	session_route_decided(s, d, forward);
}
