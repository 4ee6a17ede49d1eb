/* lib_os: os.getenv (from a snapshot taken at start) and os.exit (stops
 * the whole daemon through the parent). See lib_os.c. */
#ifndef NEOSOCKSD_LIB_OS_H
#define NEOSOCKSD_LIB_OS_H

#include <lua.h>

/* Copy the environment, then clear it (TZ stays) and load the time zone.
 * Call once, before the sandbox. */
void lib_os_snapshot_env(void);

typedef void (*lib_os_exit_fn)(int code);
/* Who carries os.exit(code) to the parent. */
void lib_os_set_exit(lib_os_exit_fn fn);

/* Add getenv and exit to the os table. */
void lib_os_open(lua_State *L);

#endif
