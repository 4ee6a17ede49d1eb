/* state: every /ruleset/update the ruleset process applied (R_PERSIST),
 * kept by the parent in memory, in order, for each new ruleset process,
 * and with --state-dir in an append-only log on disk so that a restart
 * keeps them too. */
#ifndef NEOSOCKSD_STATE_H
#define NEOSOCKSD_STATE_H

#include "common/chanev.h"
#include "common/msgchan.h"

/* At start: open --state-dir (created 0700 if missing; it must be owned
 * by this user and not writable by group or others) and read its log. A
 * torn or damaged tail is dropped (the file as found is kept as
 * updates.bad). 0, or -1 (logged as fatal). */
int state_load(void);
/* The --state-dir directory fd (the parent's sandbox lets it write only
 * under it), or -1. */
int state_dfd(void);
/* An R_PERSIST: keep it, and save it (at once, or within a second when a
 * save was just made). -1: a malformed record (the caller kills). */
int state_persist(const struct msg *m);
/* Send every kept update to a new ruleset process (R_UPDATE), in order. */
void state_replay(struct chanev *ch);
/* SIGHUP loaded the files again: they are the truth now; drop them all. */
void state_clear(void);
/* Stopping: write what waits, and compact the log if it holds superseded
 * records. */
void state_flush(void);

#endif
