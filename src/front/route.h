/* route: asking the ruleset process for decisions. Requests are pipelined
 * (many in flight, correlated by session id); a decision for a session
 * that is gone is dropped; while the ruleset process is down every request
 * fails closed. */
#ifndef NEOSOCKSD_ROUTE_H
#define NEOSOCKSD_ROUTE_H

#include <stdbool.h>
#include <stdint.h>

struct session;

/* Ask for a decision for s (its hs holds the target and credentials).
 * 0 asked; -1 cannot ask (the caller fails the request closed). */
int route_ask(struct session *s);
/* s is closing: forget it and tell the ruleset. */
void route_forget(struct session *s);
/* The dial that await.forward asked for finished. */
void route_forward_result(struct session *s, bool ok, const char *err);
struct route_decision;
/* The ruleset process decided for session id (ROUTE_REPLY), or asks for
 * its dial (FORWARD_REQ: forward). A session that is gone is dropped. */
void route_decided(uint32_t id, const struct route_decision *d, bool forward);
/* The channel is gone: every waiting request fails closed. */
void route_fail_all(void);

/* Decisions for something other than a session: a destination of a UDP
 * association. The asker embeds this; its id comes from session_new_id()
 * (one id space with the sessions). The callbacks run from the event loop:
 * decided (forward: an await.forward, answered with
 * route_asker_forward_result()), or failed (DIAL_ERR_RULESET_*). */
struct route_asker;
struct route_asker_ops {
	void (*decided)(struct route_asker *a, const struct route_decision *d,
			bool forward);
	void (*failed)(struct route_asker *a, int err);
};
struct route_asker {
	struct route_asker *next;
	const struct route_asker_ops *ops;
	uint32_t id;
	bool pending;
};
struct netaddr;
/* 0 asked; -1 cannot ask (the ruleset process is down). */
int route_asker_ask(struct route_asker *a, const struct netaddr *target,
		    const char *user, const char *pass);
void route_asker_forget(struct route_asker *a);
void route_asker_forward_result(struct route_asker *a, bool ok,
				const char *err);

#endif
