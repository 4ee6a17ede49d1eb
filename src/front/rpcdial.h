/* rpcdial: connections the ruleset process's RPC client asks the front to
 * dial (it has no network of its own); the connected socket is handed
 * over in MSG_DIAL_RES. */
#ifndef NEOSOCKSD_RPCDIAL_H
#define NEOSOCKSD_RPCDIAL_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "front/front.h"

void rpcdial_setup(struct event_base *base, const struct front_conf *fc);
/* DIAL_REQ: dial the address and hops the payload names (a struct
 * msg_route) and answer DIAL_RES with the socket, or with the error. */
void rpcdial_start(uint32_t id, const void *data, size_t len);
/* DIAL_CANCEL: the RPC call gave up. */
void rpcdial_cancel(uint32_t id);
void rpcdial_cancel_all(void);

#endif
