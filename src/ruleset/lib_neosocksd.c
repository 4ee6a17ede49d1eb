/* lib_neosocksd: the neosocksd.* table. */
#include "ruleset/lib_neosocksd.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <lauxlib.h>

#include "common/addr.h"
#include "common/log.h"
#include "common/proxyuri.h"
#include "ruleset/aroutine.h"
#include "ruleset/hostapi.h"
#include "ruleset/lib_await.h"
#include "ruleset/rpcall_client.h"
#include "ruleset/ruleset_front.h"
#include "ruleset/ruleset_main.h"
#include "ruleset/stats.h"
#include "ruleset/vm.h"

static struct {
	struct event *tick;
} lib_neosocksd;

/* ---- config() ---- */

/* -x without passwords: config() is readable by any ruleset code */
static void nsd_config_proxy(lua_State *L, const char *csv)
{
	struct proxy_hop hops[PROXYCHAIN_MAX];
	char out[CONF_PROXY_MAX];
	size_t n = 0;
	const char *why;

	if (csv[0] == '\0' ||
	    proxyuri_parse_chain(hops, PROXYCHAIN_MAX, &n, csv, strlen(csv),
				 &why) < 0) {
		lua_pushnil(L);
		return;
	}
	(void)proxyuri_format_chain(hops, n, ",", out, sizeof(out));
	explicit_bzero(hops, sizeof(hops));
	lua_pushstring(L, out);
}

static void nsd_config_push(lua_State *L, const struct config *c,
			    const struct config_setting *s)
{
	const char *str;

	switch (s->type) {
	case CONF_T_STR:
		str = config_str(c, s);
		if (s->flags & CONF_SECRETS)
			nsd_config_proxy(L, str);
		else if (str[0] != '\0')
			lua_pushstring(L, str);
		else
			lua_pushnil(L);
		break;
	case CONF_T_INT:
	case CONF_T_OCT:
		lua_pushinteger(L, config_int(c, s));
		break;
	case CONF_T_NUM:
		lua_pushnumber(L, config_num(c, s));
		break;
	case CONF_T_BOOL:
		lua_pushboolean(L, config_bool(c, s));
		break;
	default: /* a reference feature this daemon does not have */
		lua_pushboolean(L, false);
	}
}

/* The settings marked CONF_LUA in settings.def. */
static int nsd_config(lua_State *L)
{
	const struct config *c = ruleset_conf();

	lua_createtable(L, 0, 40);
	for (size_t i = 0; i < config_nsettings; i++) {
		const struct config_setting *s = &config_settings[i];

		if (!(s->flags & CONF_LUA))
			continue;
		nsd_config_push(L, c, s);
		lua_setfield(L, -2, s->key);
	}
	return 1;
}

/* ---- addresses ---- */

static int nsd_splithostport(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	char host[ADDR_NAME_MAX + 1], port[8];

	if (len > ADDR_STRLEN)
		return luaL_error(L, "address too long: %d bytes", (int)len);
	if (addr_splithostport(s, len, host, sizeof(host), port,
			       sizeof(port)) < 0)
		return luaL_error(L, "invalid address: `%s'", s);
	lua_pushstring(L, host);
	lua_pushstring(L, port);
	return 2;
}

static int nsd_parse_ipv4(lua_State *L)
{
	const char *s = luaL_checkstring(L, 1);
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return 0;
	lua_pushinteger(L, (lua_Integer)ntohl(a.s_addr));
	return 1;
}

static int nsd_parse_ipv6(lua_State *L)
{
	const char *s = luaL_checkstring(L, 1);
	unsigned char b[16];
	uint64_t hi = 0, lo = 0;

	if (inet_pton(AF_INET6, s, b) != 1)
		return 0;
	for (int i = 0; i < 8; i++) {
		hi = hi << 8 | b[i];
		lo = lo << 8 | b[8 + i];
	}
	lua_pushinteger(L, (lua_Integer)hi);
	lua_pushinteger(L, (lua_Integer)lo);
	return 2;
}

/* neosocksd.resolve(host): inside an asynchronous routine it is
 * await.resolve (it yields); elsewhere it answers synchronously, as the
 * reference does, by a round trip to the front's resolver that waits at
 * most the entry's budget (this process serves nothing meanwhile; the
 * front and its sessions go on). nil for a name that does not resolve in
 * time, or is not a host name. */
static int nsd_resolve(lua_State *L)
{
	size_t len, n = 0;
	const char *host = luaL_checklstring(L, 1, &len);
	unsigned char buf[16];
	char res[sizeof(struct msg_result) + 64 + 1];
	struct msg_result r;
	int worker;

	if (ar_current(L) != NULL)
		return await_resolve_impl(L);
	if (inet_pton(AF_INET, host, buf) == 1 ||
	    inet_pton(AF_INET6, host, buf) == 1) {
		lua_settop(L, 1);
		return 1;
	}
	/* any worker resolves as well as another */
	worker = ruleset_front_pick();
	if (!addr_name_valid(host, len) || worker < 0 ||
	    !ruleset_front_call((unsigned)worker, MSG_RESOLVE_REQ,
				await_resolve_qid(), host, len,
				MSG_RESOLVE_RES, vm_budget_ms(), res,
				sizeof(res) - 1, &n) ||
	    n < sizeof(r)) {
		luaL_pushfail(L);
		return 1;
	}
	memcpy(&r, res, sizeof(r));
	if (!r.ok || n == sizeof(r)) {
		luaL_pushfail(L);
		return 1;
	}
	lua_pushlstring(L, res + sizeof(r), n - sizeof(r));
	return 1;
}

/* ---- timers ---- */

static int nsd_tick_call(lua_State *L)
{
	double now = *(double *)lua_touserdata(L, 1);

	if (lua_getglobal(L, "ruleset") != LUA_TTABLE ||
	    lua_getfield(L, -1, "tick") != LUA_TFUNCTION)
		return 0;
	lua_pushnumber(L, now);
	lua_call(L, 1, 0);
	return 0;
}

static void nsd_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv;
	double now;

	(void)fd;
	(void)what;
	(void)arg;
	event_base_gettimeofday_cached(ruleset_base(), &tv);
	now = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
	if (vm_pcall(nsd_tick_call, &now) != LUA_OK) {
		lua_State *L = vm_state();
		LOG_RL(LOGL_WARN, 1, "ruleset.tick: %s", lua_tostring(L, -1));
		stats_set_lasterror(lua_tostring(L, -1));
		lua_pop(L, 1);
	}
}

static void nsd_tick_stop(void)
{
	if (lib_neosocksd.tick != NULL) {
		event_free(lib_neosocksd.tick);
		lib_neosocksd.tick = NULL;
	}
}

static int nsd_setinterval(lua_State *L)
{
	lua_Number sec = luaL_checknumber(L, 1);
	struct timeval tv;

	nsd_tick_stop();
	if (!isnormal(sec))
		return 0; /* 0, NaN, infinities, subnormals: stop */
	sec = fabs(sec);
	if (sec < 1e-3)
		sec = 1e-3;
	if (sec > 1e9)
		sec = 1e9;
	lib_neosocksd.tick =
		event_new(ruleset_base(), -1, EV_PERSIST, nsd_tick_cb, NULL);
	if (lib_neosocksd.tick == NULL)
		return luaL_error(L, "out of memory");
	tv.tv_sec = (time_t)sec;
	tv.tv_usec = (suseconds_t)((sec - floor(sec)) * 1e6);
	event_add(lib_neosocksd.tick, &tv);
	return 0;
}

/* ---- neosocksd.async(finish, func, ...) ---- */

struct async_done {
	lua_State *co;
	int status, nres;
	int finish; /* registry ref */
};

static int nsd_async_finish(lua_State *L)
{
	struct async_done *d = lua_touserdata(L, 1);

	lua_rawgeti(L, LUA_REGISTRYINDEX, d->finish);
	if (!lua_isfunction(L, -1)) {
		/* nobody to hand an error to: it is not lost silently */
		if (d->status != LUA_OK)
			LOG_RL(LOGL_WARN, 1, "async routine: %s",
			       d->status == LUA_ERRMEM ? "not enough memory"
			       : lua_type(d->co, -1) == LUA_TSTRING
				       ? lua_tostring(d->co, -1)
				       : "(error object is not a string)");
		return 0;
	}
	lua_pushboolean(L, d->status == LUA_OK);
	if (d->status == LUA_OK) {
		luaL_checkstack(L, d->nres, "async results");
		lua_xmove(d->co, L, d->nres);
		lua_call(L, 1 + d->nres, 0);
	} else {
		if (d->status != LUA_ERRMEM && lua_gettop(d->co) > 0)
			lua_xmove(d->co, L, 1);
		else
			lua_pushliteral(L, "not enough memory");
		lua_call(L, 2, 0);
	}
	return 0;
}

static void nsd_async_done(struct aroutine *ar, lua_State *co, int status,
			   int nres)
{
	struct async_done d = { co, status, nres,
				(int)(intptr_t)ar_arg(ar) };
	lua_State *L = vm_state();

	if (vm_pcall(nsd_async_finish, &d) != LUA_OK) {
		LOG_RL(LOGL_WARN, 1, "async finish: %s", lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	luaL_unref(L, LUA_REGISTRYINDEX, d.finish);
}

static int nsd_async(lua_State *L)
{
	int n = lua_gettop(L), finish;
	struct aroutine *ar;

	if (!lua_isnil(L, 1))
		luaL_checktype(L, 1, LUA_TFUNCTION);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_pushvalue(L, 1);
	finish = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_remove(L, 1); /* func and its args remain */
	ar = ar_start(L, n - 2, AR_ASYNC, nsd_async_done,
		      (void *)(intptr_t)finish);
	(void)ar;
	return 1; /* the coroutine */
}

/* ---- the rest ---- */

static int nsd_stats(lua_State *L)
{
	stats_push_table(L);
	return 1;
}

static int nsd_now(lua_State *L)
{
	struct timeval tv;

	event_base_gettimeofday_cached(ruleset_base(), &tv);
	lua_pushnumber(L, (double)tv.tv_sec + (double)tv.tv_usec / 1e6);
	return 1;
}

static int nsd_traceback(lua_State *L)
{
	const char *msg = luaL_optstring(L, 1, NULL);

	luaL_traceback(L, L, msg, 1);
	LOGV("%s", lua_tostring(L, -1));
	return 1;
}

static const luaL_Reg nsd_funcs[] = {
	{ "config", nsd_config },
	{ "resolve", nsd_resolve },
	{ "splithostport", nsd_splithostport },
	{ "parse_ipv4", nsd_parse_ipv4 },
	{ "parse_ipv6", nsd_parse_ipv6 },
	{ "setinterval", nsd_setinterval },
	{ "async", nsd_async },
	{ "invoke", rpcall_client_nsd_invoke },
	{ "unpark", await_unpark_impl },
	{ "stats", nsd_stats },
	{ "now", nsd_now },
	{ "traceback", nsd_traceback },
	{ NULL, NULL },
};

int luaopen_neosocksd(lua_State *L)
{
	luaL_newlib(L, nsd_funcs);
	return 1;
}
