/* request: ruleset.resolve/route/route6 calls for the front's requests. */
#ifndef NEOSOCKSD_REQUEST_H
#define NEOSOCKSD_REQUEST_H

#include <lua.h>

#include "common/msg.h"

void request_on_route(const struct msg *m);
void request_on_cancel(const struct msg *m);
void request_on_forward_result(const struct msg *m);
/* The front went away: every request is dropped. */
void request_drop_all(void);
/* await.forward(addr, proxyN, ..., proxy1) */
int request_await_forward(lua_State *L);
unsigned request_pending(void);

/* The configured ruleset did not load in this process (a respawn that
 * failed to load the last good one): requests fail instead of going
 * direct until one loads. */
void request_set_fail_closed(bool on);

#endif
