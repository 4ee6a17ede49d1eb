/* rpcdial: connections the ruleset process's RPC client asks the front to
 * dial (it has no network of its own); the connected socket is handed
 * over in MSG_DIAL_RES. */
#ifndef NEOSOCKSD_RPCDIAL_H
#define NEOSOCKSD_RPCDIAL_H

#include <event2/event.h>

#include "common/chanev.h"
#include "common/msg.h"
#include "front/front.h"

void rpcdial_setup(struct event_base *base, const struct front_conf *fc);
/* MSG_DIAL_REQ or MSG_DIAL_CANCEL from the ruleset process on ch. */
void rpcdial_on_msg(struct chanev *ch, const struct msg *m);
void rpcdial_cancel_all(void);

#endif
