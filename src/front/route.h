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

#endif
