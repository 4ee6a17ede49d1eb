/* rpcall_client: await.invoke and neosocksd.invoke, the RPC client (the
 * reference's wire format version 1). */
#ifndef NEOSOCKSD_RPCALL_CLIENT_H
#define NEOSOCKSD_RPCALL_CLIENT_H

#include <lua.h>

#include "common/msg.h"

int rpcall_client_await_invoke(lua_State *L); /* await.invoke */
int rpcall_client_nsd_invoke(lua_State *L);   /* neosocksd.invoke */
/* DIAL_RES from that front worker */
void rpcall_client_on_dial(const struct msg *m, unsigned worker);
/* That worker's channel closed: the calls it was dialing for fail. */
void rpcall_client_front_gone(unsigned worker);

#endif
