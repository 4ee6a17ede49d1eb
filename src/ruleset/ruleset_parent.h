/* ruleset_parent: the ruleset process's end of its channel to the
 * parent. */
#ifndef NEOSOCKSD_RULESET_PARENT_H
#define NEOSOCKSD_RULESET_PARENT_H

#include <stddef.h>

#include <event2/event.h>

#include "common/chanev.h"

/* Watch the channel the parent left on fd 3. 0 or -1. */
int ruleset_parent_init(struct event_base *base);
/* The channel, to send on. */
struct chanev *ruleset_parent(void);
/* Have the parent keep a successful /ruleset/update (replayed to a
 * respawned process; saved with --state-dir). */
void ruleset_parent_persist(int kind, const char *module,
			    const char *chunkname, const char *src, size_t len);

#endif
