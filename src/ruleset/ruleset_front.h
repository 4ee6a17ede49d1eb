/* ruleset_front: the ruleset process's ends of the front<->ruleset
 * channels, one per front worker (0 to --workers - 1). */
#ifndef NEOSOCKSD_RULESET_FRONT_H
#define NEOSOCKSD_RULESET_FRONT_H

#include <stddef.h>
#include <stdint.h>

#include "common/chanev.h"

/* The channel to that worker, or NULL while there is none. */
struct chanev *ruleset_front(unsigned worker);
/* A worker with an open channel, taking turns (for work that any of them
 * can do: a name to resolve, a socket for the RPC client); -1 when there
 * is none. */
int ruleset_front_pick(void);
/* A new channel for that worker (R_PEER_CHAN, after it (re)started): the
 * old one's requests are dropped. -1 for a worker number out of range. */
int ruleset_front_attach(unsigned worker, int fd);
/* A synchronous round trip to a worker (neosocksd.resolve, stats()):
 * send type/id/data, then wait at most timeout_ms for the answer of type
 * reply with that id (chanev_await), blocking this process; other
 * messages keep their order and are handled after. Copies the answer's
 * payload (at most cap bytes). 1 answered, 0 no channel, timeout or end. */
int ruleset_front_call(unsigned worker, uint16_t type, uint32_t id,
		       const void *data, size_t len, uint16_t reply,
		       int timeout_ms, void *out, size_t cap, size_t *outlen);

#endif
