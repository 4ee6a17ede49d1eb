/* front_ruleset: the front's end of the front<->ruleset channel. */
#ifndef NEOSOCKSD_FRONT_RULESET_H
#define NEOSOCKSD_FRONT_RULESET_H

#include <event2/event.h>

#include "common/chanev.h"

void front_ruleset_setup(struct event_base *base);
/* A new channel to the ruleset process (PEER_CHAN, after it (re)started):
 * the old one, if any, is closed and what waited on it fails. */
void front_ruleset_attach(int fd);
/* The channel, or NULL while there is none (the ruleset process is down:
 * requests fail closed). */
struct chanev *front_ruleset(void);

#endif
