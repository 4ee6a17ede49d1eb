/* identity: who each child becomes and how it is jailed. Resolved once by
 * the parent at start (names are looked up while files can still be read)
 * and reused for every respawn. */
#ifndef NEOSOCKSD_IDENTITY_H
#define NEOSOCKSD_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/msg.h"

/* Fill the front's and the ruleset's sandbox settings. As root: -u (or the
 * 'neosocksd' user, or 'nobody') for the front, --ruleset-user (or the
 * front's) for the ruleset, never uid or gid 0; the jail directory is
 * created if missing and must be empty, root-owned and not writable by
 * others. Not root: the children keep the invoking user and get no jail.
 * 0 or -1 with err. */
int identity_resolve(const struct config *c, struct msg_sandbox *front,
		     struct msg_sandbox *ruleset, char *err, size_t errcap);

/* Capabilities children need at exec for their own setup (the parent
 * keeps them permitted, not effective): user switch, bounding-set drop,
 * chroot, namespaces. 0 when not root. */
uint64_t identity_respawn_caps(const struct msg_sandbox *front,
			       const struct msg_sandbox *ruleset);

#endif
