/* stats: what the ruleset process knows for neosocksd.stats() and the
 * API: its own VM and routines, and the front's counters. */
#ifndef NEOSOCKSD_RSTATS_H
#define NEOSOCKSD_RSTATS_H

#include <lua.h>

#include "common/msg.h"

void stats_set_lasterror(const char *msg);
/* R_STATUS: when the daemon started (for uptime). */
void stats_set_status(const struct msg_status *st);
/* neosocksd.stats() */
void stats_push_table(lua_State *L);

#endif
