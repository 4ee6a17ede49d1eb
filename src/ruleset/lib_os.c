/* lib_os: the parts of os that reach outside the VM, done the jailed way.
 *
 * - os.getenv(name) reads a snapshot of the daemon's environment taken when
 *   this process starts (lib_os_snapshot_env), before the sandbox; the
 *   process itself then keeps an empty environment, TZ aside: glibc needs
 *   it set to keep the time zone it loaded before the sandbox (the
 *   daemon's TZ, else ":/etc/localtime").
 * - os.exit([code]) asks the parent to stop the whole daemon with that
 *   status, draining as SIGTERM does; the Lua code that called it stops
 *   there (every instruction after it raises, as when the time budget is
 *   spent), and so does every later entry into Lua. */
#include "ruleset/lib_os.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

#include "common/log.h"
#include "ruleset/vm.h"

#define LIB_OS_ENV_MAX (256u << 10) /* bytes of environment kept */
#define LIB_OS_ENV_COUNT 4096

extern char **environ;

static struct {
	char *env[LIB_OS_ENV_COUNT];
	size_t n;
	lib_os_exit_fn exit_fn;
} lib_os;

void lib_os_snapshot_env(void)
{
	size_t total = 0, dropped = 0;
	char *tz = NULL;

	for (char **e = environ; e != NULL && *e != NULL; e++) {
		size_t len = strlen(*e);
		char *copy;

		if (lib_os.n == LIB_OS_ENV_COUNT ||
		    total + len > LIB_OS_ENV_MAX ||
		    (copy = strdup(*e)) == NULL) {
			dropped++;
			continue;
		}
		total += len;
		lib_os.env[lib_os.n++] = copy;
		if (strncmp(copy, "TZ=", 3) == 0)
			tz = copy + 3;
	}
	clearenv();
	/* Load the time zone now: inside the jail /etc/localtime is gone and
	 * the seccomp filter kills an open(). With TZ unset, glibc's mktime()
	 * (os.time{...}) looks at /etc/localtime again on every call; with TZ
	 * set to the same value each time it keeps what it loaded. */
	setenv("TZ", tz != NULL ? tz : ":/etc/localtime", 1);
	tzset();
	if (dropped > 0)
		LOGW("os.getenv: %zu environment variables left out (over %u "
		     "entries or %u bytes)",
		     dropped, LIB_OS_ENV_COUNT, LIB_OS_ENV_MAX);
}

static int lib_os_getenv(lua_State *L)
{
	size_t len;
	const char *name = luaL_checklstring(L, 1, &len);

	for (size_t i = 0; i < lib_os.n; i++) {
		const char *e = lib_os.env[i];

		if (strncmp(e, name, len) == 0 && e[len] == '=' &&
		    memchr(name, '\0', len) == NULL) {
			lua_pushstring(L, e + len + 1);
			return 1;
		}
	}
	luaL_pushfail(L);
	return 1;
}

void lib_os_set_exit(lib_os_exit_fn fn)
{
	lib_os.exit_fn = fn;
}

/* os.exit([code [, close]]): true or none 0, false 1, else 0..255 */
static int lib_os_exit(lua_State *L)
{
	lua_Integer code;

	if (lua_isboolean(L, 1))
		code = lua_toboolean(L, 1) ? 0 : 1;
	else
		code = luaL_optinteger(L, 1, 0);
	if (code < 0 || code > 255)
		return luaL_argerror(L, 1, "exit status must be 0 to 255");
	if (lib_os.exit_fn == NULL)
		return luaL_error(L, "os.exit is not available here");
	LOGN("os.exit(%d): stopping the daemon", (int)code);
	lib_os.exit_fn((int)code);
	return vm_abort(L, "os.exit: the daemon is stopping");
}

void lib_os_open(lua_State *L)
{
	if (lua_getglobal(L, "os") == LUA_TTABLE) {
		lua_pushcfunction(L, lib_os_getenv);
		lua_setfield(L, -2, "getenv");
		lua_pushcfunction(L, lib_os_exit);
		lua_setfield(L, -2, "exit");
	}
	lua_pop(L, 1);
}
