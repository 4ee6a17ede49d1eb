/* updates: run-time replacement of the ruleset or a module, and running
 * submitted code. */
#ifndef NEOSOCKSD_UPDATES_H
#define NEOSOCKSD_UPDATES_H

#include <stddef.h>

#include <lua.h>

#include "common/msg.h"

/* kind: UPDATE_RULESET (the chunk gets "ruleset" and must return a table)
 * or UPDATE_MODULE (gets name; its result replaces package.loaded[name],
 * and _G[name] when that was the old module). 0 or -1 with err. */
int updates_apply(int kind, const char *name, const char *chunkname,
		  const char *src, size_t len, char *err, size_t errcap);
/* /ruleset/invoke: run src synchronously in a sandbox environment. */
int updates_invoke(const char *src, size_t len, char *err, size_t errcap);
/* Push a table that reads through to _G and keeps its own writes. */
void updates_push_env(lua_State *L);

#endif
