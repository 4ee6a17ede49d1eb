/* lib_await: the await.* primitives of asynchronous routines. */
#ifndef NEOSOCKSD_LIB_AWAIT_H
#define NEOSOCKSD_LIB_AWAIT_H

#include <stdint.h>

#include <lua.h>

#include "common/msg.h"

int luaopen_await(lua_State *L);

/* await.resolve (also neosocksd.resolve inside a routine) */
int await_resolve_impl(lua_State *L);
/* A query id for RESOLVE_REQ (one space for await.resolve and the
 * synchronous neosocksd.resolve, so a late answer matches nothing). */
uint32_t await_resolve_qid(void);
/* neosocksd.unpark(key): wake the routines parked on key (await.park). */
int await_unpark_impl(lua_State *L);
/* RESOLVE_RES from that front worker. */
void await_on_resolve_result(const struct msg *m, unsigned worker);
/* That worker's channel closed: its pending queries fail (nil). */
void await_front_gone(unsigned worker);
void await_on_executed(const struct msg *m);

#endif
