/* ruleset: the jailed Lua process. */
#ifndef NEOSOCKSD_RULESET_H
#define NEOSOCKSD_RULESET_H

#include <event2/event.h>

#include "common/chanev.h"
#include "common/config.h"

int ruleset_main(void);

struct event_base *ruleset_base(void);
/* The channel to the front, or NULL while there is none. */
struct chanev *ruleset_front(void);
struct chanev *ruleset_parent(void);
const struct config *ruleset_conf(void);
/* With --state-dir, have the parent save a successful /ruleset/update. */
void ruleset_persist(int kind, const char *module, const char *chunkname,
		     const char *src, size_t len);

#endif
