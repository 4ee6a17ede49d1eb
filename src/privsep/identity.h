/* identity: who each child becomes and how it is jailed. Resolved once by
 * the parent at start (names are looked up while files can still be read)
 * and reused for every respawn. */
#ifndef NEOSOCKSD_IDENTITY_H
#define NEOSOCKSD_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/msg.h"

/* The users the children run as when root and not told otherwise (see
 * sandbox/neosocksd.sysusers). */
#define IDENTITY_FRONT_USER "neosocksd"
#define IDENTITY_RULESET_USER "neosocksd-rules"

/* Fill the front's and the ruleset's sandbox settings. As root: -u (default
 * IDENTITY_FRONT_USER) for the front, --ruleset-user (default
 * IDENTITY_RULESET_USER) for the ruleset; a default user that does not
 * exist is an error (there is no fallback to 'nobody'); never uid or gid 0;
 * two different uids unless both were named. The jail directory is created
 * if missing and must be empty, root-owned and not writable by others. Not
 * root: the children keep the invoking user and get no jail. 0 or -1 with
 * err; warn gets what the parent should log (a named 'nobody', a shared
 * uid), or "". */
int identity_resolve(const struct config *c, struct msg_sandbox *front,
		     struct msg_sandbox *ruleset, char *err, size_t errcap,
		     char *warn, size_t warncap);

/* Capabilities children need at exec for their own setup (the parent
 * keeps them permitted, not effective): user switch, bounding-set drop,
 * chroot, namespaces. 0 when not root. */
uint64_t identity_respawn_caps(const struct msg_sandbox *front,
			       const struct msg_sandbox *ruleset);

#endif
