/* ruleset_main: the jailed Lua process. */
#ifndef NEOSOCKSD_RULESET_MAIN_H
#define NEOSOCKSD_RULESET_MAIN_H

#include <event2/event.h>

#include "common/chanev.h"
#include "common/config.h"

int ruleset_main(void);

struct event_base *ruleset_base(void);
/* The channel to the front, or NULL while there is none. */
struct chanev *ruleset_front(void);
struct chanev *ruleset_parent(void);
/* A synchronous round trip to the front (neosocksd.resolve, stats()):
 * send type/id/data, then wait at most timeout_ms for the answer of type
 * reply with that id (MSG_STATS: any id), blocking this process; other
 * messages keep their order and are handled after. Copies the answer's
 * payload (at most cap bytes). 1 answered, 0 no front, timeout or end. */
int ruleset_front_call(uint16_t type, uint32_t id, const void *data,
		       size_t len, uint16_t reply, int timeout_ms, void *out,
		       size_t cap, size_t *outlen);
const struct config *ruleset_conf(void);
/* With --state-dir, have the parent save a successful /ruleset/update. */
void ruleset_persist(int kind, const char *module, const char *chunkname,
		     const char *src, size_t len);

#endif
