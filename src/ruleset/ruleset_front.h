/* ruleset_front: the ruleset process's end of the front<->ruleset
 * channel. */
#ifndef NEOSOCKSD_RULESET_FRONT_H
#define NEOSOCKSD_RULESET_FRONT_H

#include <stddef.h>
#include <stdint.h>

#include "common/chanev.h"

/* The channel to the front, or NULL while there is none. */
struct chanev *ruleset_front(void);
/* A new channel (R_PEER_CHAN, after the front (re)started): the old one's
 * requests are dropped. */
void ruleset_front_attach(int fd);
/* A synchronous round trip to the front (neosocksd.resolve, stats()):
 * send type/id/data, then wait at most timeout_ms for the answer of type
 * reply with that id (chanev_await), blocking this process; other
 * messages keep their order and are handled after. Copies the answer's
 * payload (at most cap bytes). 1 answered, 0 no front, timeout or end. */
int ruleset_front_call(uint16_t type, uint32_t id, const void *data,
		       size_t len, uint16_t reply, int timeout_ms, void *out,
		       size_t cap, size_t *outlen);

#endif
