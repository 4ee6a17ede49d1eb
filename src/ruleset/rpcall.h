/* rpcall: RPC between daemons, the reference's wire format version 1.
 * Server: /ruleset/rpcall runs the posted chunk in a routine and answers
 * "return true,<marshal(results)>". Client: await.invoke and friends. */
#ifndef NEOSOCKSD_RPCALL_H
#define NEOSOCKSD_RPCALL_H

#include <lua.h>

#include "common/msgchan.h"
#include "ruleset/api.h"

void rpcall_serve(struct api_req *r);

/* rpcall_client.c */
int rpc_await_invoke(lua_State *L);   /* await.invoke */
int rpc_nsd_invoke(lua_State *L);     /* neosocksd.invoke */
void rpc_client_on_dial(const struct msg *m); /* MSG_DIAL_RES */
void rpc_client_front_gone(void);

#endif
