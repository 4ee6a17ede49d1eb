/* modules: require() for the ruleset process: module sources read by the
 * parent, cached until SIGHUP. */
#ifndef NEOSOCKSD_MODULES_H
#define NEOSOCKSD_MODULES_H

#include "common/msg.h"
#include "privsep/proc.h"

/* An R_MODULE_REQ; -1 refuses (the caller kills the child). */
int modules_request(struct child *c, const struct msg *m);
void modules_clear(void);

#endif
