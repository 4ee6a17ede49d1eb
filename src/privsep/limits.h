/* limits: the descriptor limit and the admission defaults derived from it.
 * The parent raises RLIMIT_NOFILE's soft limit to its hard limit at start
 * (the children inherit it), and -m and --max-startups, when not given,
 * are set so that the front cannot run out of descriptors with sessions
 * alone: a session holds two (client and upstream), half-open connections
 * are held to half the sessions. */
#ifndef NEOSOCKSD_LIMITS_H
#define NEOSOCKSD_LIMITS_H

#include <stdbool.h>

#include "common/config.h"

/* Descriptors kept out of -m's share: listeners, channels, log pipes,
 * evdns, relay pipes. */
#define LIMITS_NOFILE_RESERVE 128
#define LIMITS_SESSIONS_MIN 16

/* Raise the soft RLIMIT_NOFILE to the hard one. Returns the soft limit in
 * force afterwards (capped at INT_MAX); *raised_from gets the old one. */
long limits_raise_nofile(long *raised_from);

/* The -m default for a soft descriptor limit of nofile:
 * (nofile - LIMITS_NOFILE_RESERVE) / 2, at least LIMITS_SESSIONS_MIN. */
int limits_sessions_for(long nofile);

/* Fill in what the command line did not set: -m (m_given false) from
 * nofile; --max-startups (startups_given false) as M/4:30:M/2 of the
 * effective -m (of the derived one when -m is 0, unlimited). An explicit
 * --max-startups whose full value is above the derived -m raises -m to it. */
void limits_derive(struct config *c, long nofile, bool m_given,
		   bool startups_given);

/* --workers when not given (0): the CPUs this process may run on
 * (sched_getaffinity), at most CONF_WORKERS_MAX, at least 1. */
void limits_workers(struct config *c);

#endif
