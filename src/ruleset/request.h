/* request: ruleset.resolve/route/route6 calls for the front's requests. */
#ifndef NEOSOCKSD_REQUEST_H
#define NEOSOCKSD_REQUEST_H

#include <lua.h>

#include "common/msg.h"

/* A front worker's messages (worker: the channel they came on). */
void request_on_route(const struct msg *m, unsigned worker);
void request_on_cancel(const struct msg *m, unsigned worker);
void request_on_forward_result(const struct msg *m, unsigned worker);
/* A front worker went away: its requests are dropped. */
void request_drop_worker(unsigned worker);
/* await.forward(addr, proxyN, ..., proxy1) */
int request_await_forward(lua_State *L);
unsigned request_pending(void);

/* The configured ruleset did not load in this process (a respawn that
 * failed to load the last good one): requests fail instead of going
 * direct until one loads. */
void request_set_fail_closed(bool on);

#endif
