/* parent_front: the front workers and the parent's ends of their
 * channels (parent.fronts[0 .. --workers - 1]). */
#ifndef NEOSOCKSD_PARENT_FRONT_H
#define NEOSOCKSD_PARENT_FRONT_H

#include <stdbool.h>
#include <stdint.h>

#include "privsep/proc.h"

/* Start --workers fronts (after the listeners are bound). -1 when one
 * could not be started (logged). */
int parent_fronts_start(void);
/* A new front<->ruleset channel for that worker (if both are up). */
void parent_front_link(struct child *c);
/* The same for the workers whose bit is set in which (bit i: worker i). */
void parent_fronts_link(uint64_t which);
#define PARENT_FRONTS_ALL UINT64_MAX
/* Every worker has said READY. */
bool parent_fronts_ready(void);
/* The workers' restarts, summed. */
unsigned parent_fronts_restarts(void);
/* SIGHUP: the resolver files again, to every serving worker. */
void parent_fronts_resolver(void);

#endif
