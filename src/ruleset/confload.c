/* confload: evaluate a -c config file in the ruleset's VM. The chunk is
 * called with "config" and must return a table; its fields override the
 * command line's settings (nil keeps them), after all of them were
 * checked; a "ruleset" field (a table) becomes _G.ruleset. The parent gets
 * the merged settings and validates them before it binds anything. */
#include "ruleset/confload.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>

#include "ruleset/vm.h"

enum ckind { K_STR, K_INT, K_NUM, K_BOOL, K_FALSE_ONLY, K_REFUSED };

struct ckey {
	const char *name;
	uint8_t kind;
	size_t off, cap; /* K_STR: field and size; K_INT/K_NUM/K_BOOL: field */
};

#define F(f) offsetof(struct config, f)
#define S(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)

static const struct ckey ckeys[] = {
	{ "listen", K_STR, S(listen) },
	{ "forward", K_STR, S(forward) },
	{ "proxy", K_STR, S(proxy) },
	{ "restapi", K_STR, S(restapi) },
	{ "api_allow", K_STR, S(api_allow) },
	{ "api_token_file", K_STR, S(api_token_file) },
	{ "api_readonly_token_file", K_STR, S(api_ro_token_file) },
	{ "api_timeout", K_NUM, F(api_timeout), 0 },
	{ "api_idle", K_NUM, F(api_idle), 0 },
	{ "api_max_conns", K_INT, F(api_max_conns), 0 },
	{ "api_mode", K_INT, F(api_mode), 0 },
	{ "api_owner", K_REFUSED, 0, 0 },
	{ "state_dir", K_STR, S(state_dir) },
	{ "http_listen", K_STR, S(http_listen) },
	{ "nameserver", K_STR, S(nameserver) },
	{ "netdev", K_STR, S(netdev) },
	{ "loglevel", K_INT, F(loglevel), 0 },
	{ "resolve_pf", K_INT, F(resolve_pf), 0 },
	{ "timeout", K_NUM, F(timeout), 0 },
	{ "drain_timeout", K_NUM, F(drain_timeout), 0 },
	{ "memlimit", K_INT, F(memlimit), 0 },
	{ "mark", K_INT, F(mark), 0 },
	{ "auth_required", K_BOOL, F(auth_required), 0 },
	{ "pipe", K_BOOL, F(pipe), 0 },
	{ "reuseport", K_BOOL, F(reuseport), 0 },
	{ "tcp_fastopen", K_BOOL, F(tcp_fastopen), 0 },
	{ "tcp_fastopen_connect", K_BOOL, F(tcp_fastopen_connect), 0 },
	{ "tcp_nodelay", K_BOOL, F(tcp_nodelay), 0 },
	{ "tcp_keepalive", K_BOOL, F(tcp_keepalive), 0 },
	{ "traceback", K_BOOL, F(traceback), 0 },
	{ "block_loopback", K_BOOL, F(block_loopback), 0 },
	{ "block_multicast", K_BOOL, F(block_multicast), 0 },
	{ "block_local", K_BOOL, F(block_local), 0 },
	{ "block_global", K_BOOL, F(block_global), 0 },
	{ "tcp_sndbuf", K_INT, F(tcp_sndbuf), 0 },
	{ "tcp_rcvbuf", K_INT, F(tcp_rcvbuf), 0 },
	{ "max_sessions", K_INT, F(max_sessions), 0 },
	{ "startup_limit_start", K_INT, F(startup_limit_start), 0 },
	{ "startup_limit_rate", K_INT, F(startup_limit_rate), 0 },
	{ "startup_limit_full", K_INT, F(startup_limit_full), 0 },
	/* the reference's features this daemon does not have */
	{ "transparent", K_FALSE_ONLY, 0, 0 },
	{ "socks5_bind", K_FALSE_ONLY, 0, 0 },
	{ "socks5_udp", K_FALSE_ONLY, 0, 0 },
	{ "daemonize", K_FALSE_ONLY, 0, 0 },
	/* they decide how the process evaluating this file is jailed */
	{ "user_name", K_REFUSED, 0, 0 },
	{ "ruleset_user", K_REFUSED, 0, 0 },
	{ "jail", K_REFUSED, 0, 0 },
	{ NULL, 0, 0, 0 },
};

static const struct ckey *ckey_find(const char *name)
{
	for (const struct ckey *k = ckeys; k->name != NULL; k++)
		if (strcmp(k->name, name) == 0)
			return k;
	return NULL;
}

/* Check one field and, when apply, store it. Raises on a bad value. */
static void confload_field(lua_State *L, const struct ckey *k, int vi,
			   struct config *c, bool apply)
{
	char *base = (char *)c;
	size_t len;

	switch (k->kind) {
	case K_STR: {
		const char *s;
		if (lua_type(L, vi) != LUA_TSTRING)
			luaL_error(L, "config: %s: expected string, got %s",
				   k->name, luaL_typename(L, vi));
		s = lua_tolstring(L, vi, &len);
		if (len == 0 || len >= k->cap || memchr(s, '\0', len) != NULL)
			luaL_error(L, "config: %s: bad length or NUL byte",
				   k->name);
		if (apply)
			memcpy(base + k->off, s, len + 1);
		break;
	}
	case K_INT: {
		lua_Integer v;
		if (!lua_isinteger(L, vi))
			luaL_error(L, "config: %s: expected integer, got %s",
				   k->name, luaL_typename(L, vi));
		v = lua_tointeger(L, vi);
		if (v < INT32_MIN || v > INT32_MAX)
			luaL_error(L, "config: %s: out of range", k->name);
		if (apply)
			*(int *)(void *)(base + k->off) = (int)v;
		break;
	}
	case K_NUM:
		if (lua_type(L, vi) != LUA_TNUMBER ||
		    !isfinite(lua_tonumber(L, vi)))
			luaL_error(L, "config: %s: expected number, got %s",
				   k->name, luaL_typename(L, vi));
		if (apply)
			*(double *)(void *)(base + k->off) = lua_tonumber(L, vi);
		break;
	case K_BOOL:
		if (lua_type(L, vi) != LUA_TBOOLEAN)
			luaL_error(L, "config: %s: expected boolean, got %s",
				   k->name, luaL_typename(L, vi));
		if (apply)
			*(bool *)(void *)(base + k->off) = lua_toboolean(L, vi);
		break;
	case K_FALSE_ONLY:
		if (lua_toboolean(L, vi))
			luaL_error(L, "config: %s is not supported by this "
				      "daemon", k->name);
		break;
	default:
		luaL_error(L, "config: %s cannot be set in a config file (use "
			      "the command line)", k->name);
	}
}

struct confload_ctx {
	const char *src;
	size_t len;
	const char *chunkname;
	struct config *c;
};

/* Two passes over the table: check everything, then apply, so a bad
 * field leaves every setting as it was. */
static int confload_call(lua_State *L)
{
	struct confload_ctx *x = lua_touserdata(L, 1);

	if (luaL_loadbufferx(L, x->src, x->len, x->chunkname, "t") != LUA_OK)
		return lua_error(L);
	lua_pushliteral(L, "config");
	lua_call(L, 1, 1);
	if (!lua_istable(L, -1))
		return luaL_error(L, "config: expected table, got %s",
				  luaL_typename(L, -1));
	for (int pass = 0; pass < 2; pass++) {
		lua_pushnil(L);
		while (lua_next(L, -2) != 0) {
			const struct ckey *k;
			const char *name;

			if (lua_type(L, -2) != LUA_TSTRING)
				return luaL_error(L, "config: keys must be "
						     "strings");
			name = lua_tostring(L, -2);
			if (strcmp(name, "ruleset") == 0) {
				if (!lua_istable(L, -1))
					return luaL_error(
						L, "config: ruleset must be a "
						   "table (use -r for a file)");
			} else if ((k = ckey_find(name)) == NULL) {
				return luaL_error(L, "config: unknown key '%s'",
						  name);
			} else {
				confload_field(L, k, lua_gettop(L), x->c,
					       pass == 1);
			}
			lua_pop(L, 1);
		}
	}
	if (lua_getfield(L, -1, "ruleset") == LUA_TTABLE)
		lua_setglobal(L, "ruleset");
	else
		lua_pop(L, 1);
	return 0;
}

int confload_eval(const char *src, size_t len, const char *chunkname,
		  struct config *c, char *err, size_t errcap)
{
	struct config merged = *c;
	struct confload_ctx x = { .chunkname = chunkname, .c = &merged };
	char *buf;
	lua_State *L = vm_state();

	if (vm_prepare_source(src, len, &x.src, &x.len, &buf, err, errcap) < 0)
		return -1;
	if (vm_pcall(confload_call, &x) != LUA_OK) {
		snprintf(err, errcap, "%s",
			 lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
		lua_pop(L, 1);
		free(buf);
		return -1;
	}
	free(buf);
	*c = merged;
	return 0;
}
