/* listener: the front's accepting sockets (bound by the parent). */
#ifndef NEOSOCKSD_LISTENER_H
#define NEOSOCKSD_LISTENER_H

#include <event2/event.h>

struct front_conf;

/* Take a listening socket received from the parent. 0 or -1. */
int listener_add(int fd, int kind);
int listener_count(void);
/* Start accepting on every listener. 0 or -1. */
int listener_start(struct event_base *base, const struct front_conf *fc);
/* Stop accepting and close the front's copies. */
void listener_stop(void);
/* A session closed: accepting paused on EMFILE resumes. */
void listener_session_closed(void);

#endif
