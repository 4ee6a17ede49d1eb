/* priv: the privileged requests a child may make of the parent, checked
 * against a table (who may ask, and when). */
#ifndef NEOSOCKSD_PRIV_H
#define NEOSOCKSD_PRIV_H

#include <stdint.h>

#include "common/config.h"
#include "common/msg.h"
#include "privsep/proc.h"

/* A privileged request from a child (PRIV_SOCKET, PRIV_UDP, PRIV_BIND),
 * answered by PRIV_SOCKET_REPLY; 0 handled, -1 refused (the caller kills
 * the child). */
int priv_request(struct child *c, const struct msg *m);
/* Capabilities the parent keeps effective for the configured features. */
uint64_t priv_caps_needed(const struct config *c);

#endif
