/* route: asking the ruleset process for decisions: the sessions waiting
 * for one, and the other askers (UDP destinations), by id. */
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
	struct route_asker *askers[ROUTE_BUCKETS];
} route;

static struct route_asker **route_asker_slot(uint32_t id)
{
	return &route.askers[id & (ROUTE_BUCKETS - 1)];
}

static void route_asker_del(struct route_asker *a)
{
	struct route_asker **pp = route_asker_slot(a->id);

	if (!a->pending)
		return;
	for (; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	}
	a->next = NULL;
	a->pending = false;
}

static struct route_asker *route_asker_find(uint32_t id)
{
	struct route_asker *a = *route_asker_slot(id);

	while (a != NULL && a->id != id)
		a = a->next;
	return a;
}

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
		struct route_asker *a;

		while ((s = route.bucket[i]) != NULL) {
			route_del(s);
			session_route_failed(s, DIAL_ERR_RULESET_DOWN);
		}
		while ((a = route.askers[i]) != NULL) {
			route_asker_del(a);
			a->ops->failed(a, DIAL_ERR_RULESET_DOWN);
		}
	}
}

/* ROUTE_REQ for target with the credentials (NULL: none). 0 or -1. */
static int route_send_req(uint32_t id, const struct netaddr *target,
			  const char *user, const char *pass)
{
	char addr[ADDR_STRLEN];
	char buf[sizeof(struct msg_route_req) + ROUTE_STR_MAX +
		 2 * ROUTE_CRED_MAX];
	struct route_request r = { 0 };
	int n = addr_format(target, addr, sizeof(addr));

	if (target->type == ADDR_DOMAIN && target->namelen == 0 &&
	    target->port == 0)
		n = snprintf(addr, sizeof(addr), ":"); /* -f ":" */
	if (front_ruleset() == NULL || n < 0)
		return -1;
	r.kind = target->type == ADDR_DOMAIN ? ROUTE_KIND_RESOLVE
		 : target->type == ADDR_IPV4 ? ROUTE_KIND_ROUTE
					      : ROUTE_KIND_ROUTE6;
	r.addr = (struct route_str){ addr, (uint16_t)n };
	r.has_user = user != NULL;
	r.has_pass = pass != NULL;
	if (user != NULL)
		r.user = (struct route_str){ user, (uint16_t)strlen(user) };
	if (pass != NULL)
		r.pass = (struct route_str){ pass, (uint16_t)strlen(pass) };
	n = route_wire_encode_req(buf, sizeof(buf), &r);
	if (n < 0 || chanev_send(front_ruleset(), MSG_ROUTE_REQ, id, buf,
				 (size_t)n, -1) < 0) {
		explicit_bzero(buf, sizeof(buf));
		return -1;
	}
	explicit_bzero(buf, sizeof(buf)); /* the password was in there */
	return 0;
}

int route_ask(struct session *s)
{
	struct hs *hs = s->hs;

	if (route_send_req(s->id, &hs->target, hs->has_user ? hs->user : NULL,
			   hs->has_pass ? hs->pass : NULL) < 0)
		return -1;
	route_add(s);
	return 0;
}

int route_asker_ask(struct route_asker *a, const struct netaddr *target,
		    const char *user, const char *pass)
{
	struct route_asker **slot = route_asker_slot(a->id);

	if (route_send_req(a->id, target, user, pass) < 0)
		return -1;
	a->next = *slot;
	*slot = a;
	a->pending = true;
	return 0;
}

void route_asker_forget(struct route_asker *a)
{
	if (!a->pending)
		return;
	route_asker_del(a);
	if (front_ruleset() != NULL)
		chanev_send(front_ruleset(), MSG_ROUTE_CANCEL, a->id, NULL, 0,
			    -1);
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

static void route_send_forward_result(uint32_t id, bool ok, const char *err)
{
	struct msg_result r = { .ok = ok ? 1 : 0 };
	size_t elen = ok || err == NULL ? 0 : strnlen(err, 256);
	struct iovec iov[2] = { { &r, sizeof(r) },
				{ (void *)(uintptr_t)err, elen } };

	if (front_ruleset() != NULL)
		chanev_sendv(front_ruleset(), MSG_FORWARD_RES, id, iov,
			     elen > 0 ? 2 : 1, -1);
}

void route_forward_result(struct session *s, bool ok, const char *err)
{
	if (ok)
		route_del(s); /* committed: a later reply is moot */
	route_send_forward_result(s->id, ok, err);
}

void route_asker_forward_result(struct route_asker *a, bool ok,
				const char *err)
{
	if (ok)
		route_asker_del(a); /* committed: a later reply is moot */
	route_send_forward_result(a->id, ok, err);
}

void route_decided(uint32_t id, const struct route_decision *d,
		   bool forward)
{
	struct session *s = route_find(id);

	if (s == NULL) {
		struct route_asker *a = route_asker_find(id);

		if (a == NULL)
			return; /* the session is gone: drop */
		if (!forward)
			route_asker_del(a);
		a->ops->decided(a, d, forward);
		return;
	}
	if (!forward)
		route_del(s);
	session_route_decided(s, d, forward);
}
