/* front_parent: the front's end of its channel to the parent (fd 3). */
#ifndef NEOSOCKSD_FRONT_PARENT_H
#define NEOSOCKSD_FRONT_PARENT_H

#include <event2/event.h>

#include "common/chanev.h"

/* Watch the channel the parent left on fd 3. 0 or -1. */
int front_parent_init(struct event_base *base);
/* The channel, to send on. */
struct chanev *front_parent(void);

#endif
