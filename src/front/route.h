/* route: asking the ruleset process for decisions. Requests are pipelined
 * (many in flight, correlated by session id); a decision for a session
 * that is gone is dropped; while the ruleset process is down every request
 * fails closed. */
#ifndef NEOSOCKSD_ROUTE_H
#define NEOSOCKSD_ROUTE_H

#include <stdbool.h>

#include "common/chanev.h"

struct session;

void route_setup(struct event_base *base);
/* A new channel to the ruleset process (after it (re)started). */
void route_attach(int fd);
/* Called when the ruleset process breaks the protocol on our channel. */
void route_set_fault_cb(void (*cb)(void));
bool route_available(void);

/* Ask for a decision for s (its hs holds the target and credentials).
 * 0 asked; -1 cannot ask (the caller fails the request closed). */
int route_ask(struct session *s);
/* s is closing: forget it and tell the ruleset. */
void route_forget(struct session *s);
/* The dial that await.forward asked for finished. */
void route_forward_result(struct session *s, bool ok, const char *err);

#endif
